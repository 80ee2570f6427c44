"""Parzen-window (isotropic Gaussian mixture) log-likelihood, Goodfellow et al. (2014) protocol.

p(x) = (1/M) Σ_m N(x; c_m, σ² I). Squared distances are computed block by block as
‖x‖² − 2 x·c + ‖c‖² (one matmul per block, ‖x‖² pulled out of the sum) and reduced with a
running logsumexp, so memory is bounded by one batch_x × batch_c block. The distances do not
depend on σ, so a σ search evaluates every candidate on each block once it is computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from dpm.base.device import full_float32

SIGMAS = tuple(float(s) for s in np.logspace(-1, 0, 10))  # Goodfellow et al. 2014 grid


@dataclass(frozen=True)
class ParzenResult:
    """The Parzen estimate of the mean log-likelihood of a test set (± std/√N, ddof = 0)."""
    sigma: float
    mean_nats: float
    se_nats: float
    mean_bits: float
    se_bits: float
    n_test: int
    n_centres: int
    sigma_search: tuple[tuple[float, float], ...] = ()  # (σ, mean validation log-likelihood in nats)


def _as_rows(a, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(N, ...) array or tensor → (N, D) tensor of ``dtype`` on ``device``."""
    a = torch.as_tensor(np.asarray(a) if not isinstance(a, Tensor) else a)
    return a.reshape(a.shape[0], -1).to(device=device, dtype=dtype)


@full_float32()  # on a GPU too, whatever tf32 says: the distances cancel (‖x‖² − 2x·c + ‖c‖²)
def log_likelihoods(x, centres, sigmas: Sequence[float], batch_x: int = 500, batch_c: int = 5000,
                    device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """log (1/M) Σ_m N(x_n; c_m, σ² I) for every σ in ``sigmas``, in nats.

    Args:
        x: (N, ...) test points; flattened to (N, D).
        centres: (M, ...) mixture centres, same D.
        sigmas: S candidate bandwidths (> 0).
        batch_x, batch_c: block size; at most batch_x × batch_c distances exist at once.
        device: where to compute (default: the CPU).
        dtype: float32 (fast) or float64 (reference).

    Returns:
        (S, N) float64 tensor on the CPU.

    Deviation: both sets are shifted by the centres' mean (computed in float64) before the
    matmul; distances are unchanged, but ‖x‖² and ‖c‖² shrink, which limits float32 cancellation.
    """
    device = torch.device(device or "cpu")
    c64 = _as_rows(centres, torch.float64, torch.device("cpu"))
    shift = c64.mean(dim=0)
    centres = (c64 - shift).to(device=device, dtype=dtype)
    x = (_as_rows(x, torch.float64, torch.device("cpu")) - shift).to(device=device, dtype=dtype)
    (n, d), m = x.shape, centres.shape[0]  # test points, dimensions; centres
    if centres.shape[1] != d:
        raise ValueError(f"x has {d} dimensions, centres have {centres.shape[1]}")
    sigmas = [float(s) for s in sigmas]
    # −‖x−c‖²/(2σ²) = a·(2x·c − ‖c‖²) − a·‖x‖² with a = 1/(2σ²): the last term is constant over
    # centres, so it leaves the logsumexp, and one addmm per block gives a_0·(2x·c − ‖c‖²).
    a = [0.5 / s ** 2 for s in sigmas]
    c_sq = (centres * centres).sum(dim=1)  # (M,)
    x_sq = (x * x).sum(dim=1).to(torch.float64).cpu()  # (N,)
    out = torch.empty(len(sigmas), n, dtype=torch.float64)
    for i in range(0, n, batch_x):
        xb = x[i:i + batch_x]
        running = torch.full((len(sigmas), xb.shape[0]), -math.inf, dtype=dtype, device=device)
        for j in range(0, m, batch_c):
            scaled = torch.addmm(c_sq[j:j + batch_c], xb, centres[j:j + batch_c].T, beta=-a[0], alpha=2 * a[0])
            for k in range(len(sigmas)):
                block = torch.logsumexp(scaled if k == 0 else scaled * (a[k] / a[0]), dim=1)  # (bx,)
                running[k] = torch.logaddexp(running[k], block)
        out[:, i:i + batch_x] = running.to(torch.float64).cpu()
    out -= torch.tensor(a, dtype=torch.float64)[:, None] * x_sq
    log_norm = torch.tensor([-0.5 * d * math.log(2 * math.pi * s ** 2) - math.log(m) for s in sigmas],
                            dtype=torch.float64)
    return out + log_norm[:, None]


def log_likelihood(x, centres, sigma: float, batch_x: int = 500, batch_c: int = 5000,
                   device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """log (1/M) Σ_m N(x_n; c_m, σ² I) in nats, shape (N,) float64. See `log_likelihoods`."""
    return log_likelihoods(x, centres, [sigma], batch_x, batch_c, device, dtype)[0]


def select_sigma(validation, centres, sigmas: Sequence[float] = SIGMAS, **kwargs) -> tuple[float, np.ndarray]:
    """The σ in ``sigmas`` with the best mean validation log-likelihood.

    Returns:
        (best σ, mean log-likelihood in nats for each σ, shape (S,)).
    """
    mean_ll = log_likelihoods(validation, centres, sigmas, **kwargs).mean(dim=1).numpy()
    return float(sigmas[int(np.argmax(mean_ll))]), mean_ll


def estimate(test, validation, centres, sigmas: Sequence[float] = SIGMAS, **kwargs) -> ParzenResult:
    """Goodfellow et al. (2014): σ by validation log-likelihood, then test mean ± std/√N.

    All inputs in [0, 1] pixel space as given; ``kwargs`` go to `log_likelihoods`.
    """
    sigma, validation_nats = select_sigma(validation, centres, sigmas, **kwargs)
    ll_nats = log_likelihood(test, centres, sigma, **kwargs).numpy()
    mean, se = float(ll_nats.mean()), float(ll_nats.std(ddof=0) / math.sqrt(ll_nats.size))
    return ParzenResult(sigma=sigma, mean_nats=mean, se_nats=se, mean_bits=mean / math.log(2),
                        se_bits=se / math.log(2), n_test=int(ll_nats.size), n_centres=int(len(centres)),
                        sigma_search=tuple((float(s), float(v)) for s, v in zip(sigmas, validation_nats)))
