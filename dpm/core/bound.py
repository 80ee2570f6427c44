"""The lower bound K on the log-likelihood as named terms (Paper: Eq. 14, App. B).

Everything is per example and in nats; ``to_bits`` converts once, at reporting.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import Tensor

# reverse(process, x_t, t) -> the parameters of p(x_{t−1}|x_t), as process.p_params returns them
Reverse = Callable[[object, Tensor, Tensor], object]


class BoundTerms(NamedTuple):
    """The terms of K for each example (nats), shape (B,). Paper: Eq. 14, App. B.

    Deviation: Eq. 14 writes −H_p(X_T) for ``log_prior_T`` and drops ``edge``; both steps
    are exact only in expectation over unit-variance data (App. B.1–B.2). We keep the exact
    per-example terms, so K is a bound for every example and any schedule.
    """
    kl: Tensor  # Σ_{t=2}^T E_q KL(q(x_{t−1}|x_t, x_0) ‖ p(x_{t−1}|x_t))
    entropy_T: Tensor  # H_q(X_T|X_0)
    entropy_1: Tensor  # H_q(X_1|X_0)
    log_prior_T: Tensor  # E_q log π(x_T)   (Eq. 14: −H_p(X_T))
    edge: Tensor  # E_q [log π(x_0) − log π(x_1)]   (App. B.2: p(x_0|x_1) = T_π(x_0|x_1; β_1))

    @property
    def k(self) -> Tensor:
        """K = −Σ KL + H_q(X_T|X_0) − H_q(X_1|X_0) + E log π(x_T) + edge (nats)."""
        return -self.kl + self.entropy_T - self.entropy_1 + self.log_prior_T + self.edge


def kl_sum(process, reverse: Reverse, x0: Tensor, generator: torch.Generator | None = None,
           n_t: int | None = None, proposal: Tensor | None = None) -> Tensor:
    """Σ_{t=2}^T KL(q(x_{t−1}|x_t, x_0) ‖ p(x_{t−1}|x_t)) with one x_t ~ q(x_t|x_0) per term.

    Args:
        process: a GaussianDiffusion or BinomialDiffusion.
        reverse: maps (process, x_t, t) to the reverse step's parameters.
        x0: (B, D) data.
        n_t: None sums every t = 2..T exactly (every readout gets a gradient); an integer
            draws that many t per example and weights each term by 1/(n_t·P(t)) (unbiased).
        proposal: (T − 1,) probabilities P(t) of t = 2..T for the draw; None is uniform.

    Returns:
        (B,) nats.
    """
    n_steps = process.n_steps
    if n_t is None:
        t = torch.arange(2, n_steps + 1, device=x0.device)
        weight = 1.0
    elif proposal is None:
        t = torch.randint(2, n_steps + 1, (n_t,) + x0.shape[:-1], generator=generator,
                          device=x0.device)
        weight = (n_steps - 1) / n_t
    else:
        n_draws = n_t * x0.shape[:-1].numel()
        index = torch.multinomial(proposal, n_draws, replacement=True, generator=generator)
        index = index.reshape((n_t,) + x0.shape[:-1])
        t, weight = index + 2, 1.0 / (n_t * proposal[index].to(x0.dtype))
    return (weight * kl_terms(process, reverse, x0, t, generator)).sum(0)


def kl_terms(process, reverse: Reverse, x0: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """KL(q(x_{t−1}|x_t, x_0) ‖ p(x_{t−1}|x_t)) at one x_t ~ q(x_t|x_0) for each t of ``t`` and example.

    Args:
        x0: (B, D) data.
        t: (n_t,) or (n_t, B) integer times in 2..T.

    Returns:
        (n_t, B) nats. Paper: Eq. 14 (the terms of its sum over t).
    """
    x0_t = x0.expand(t.shape[:1] + x0.shape)  # (n_t, B, D)
    xt = process.q_sample(x0_t, t, process.noise_like(x0_t, generator))
    return process.kl(process.q_posterior(x0_t, xt, t), reverse(process, xt, t))


def inverse_t_proposal(n_steps: int, uniform_share: float = 0.1, device: torch.device | str = "cpu") -> Tensor:
    """P(t) ∝ 1/t on t = 2..T, mixed with a uniform share: the KL terms of image models fall
    roughly like 1/t under the erase-fraction schedule, so terms weighted by 1/P(t) are nearly
    constant in t and the Monte Carlo sum over t has a small variance.

    Deviation: the authors' code draws t uniformly; both are unbiased for K, this one with a
    standard error many times smaller (README "Deviations").

    Returns:
        (T − 1,) float64 probabilities of t = 2..T.
    """
    t = torch.arange(2, n_steps + 1, dtype=torch.float64, device=device)
    inverse = (1.0 / t) / (1.0 / t).sum()
    return (1 - uniform_share) * inverse + uniform_share / (n_steps - 1)


def bound_terms(process, reverse: Reverse, x0: Tensor, generator: torch.Generator | None = None,
                n_t: int | None = None, proposal: Tensor | None = None) -> BoundTerms:
    """All terms of K for each example of x0 (B, D); see ``kl_sum`` for ``n_t`` and ``proposal``."""
    t_1 = torch.ones(x0.shape[:-1], dtype=torch.long, device=x0.device)
    t_T = torch.full_like(t_1, process.n_steps)
    return BoundTerms(
        kl=kl_sum(process, reverse, x0, generator, n_t, proposal),
        entropy_T=process.entropy(x0, t_T),
        entropy_1=process.entropy(x0, t_1),
        log_prior_T=process.expected_log_prior(x0, t_T),
        edge=process.log_prior(x0) - process.expected_log_prior(x0, t_1),
    )


def to_bits(nats: float | Tensor) -> float | Tensor:
    """nats → bits, applied once, at reporting."""
    return nats / math.log(2.0)
