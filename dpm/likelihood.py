"""The log-likelihood log p(x_0) by importance sampling over forward trajectories (Paper: Eq. 9).

With k trajectories x_{1:T}^{(i)} ~ q(x_{1:T}|x_0),

    L_k(x_0) = log (1/k) Σ_i p(x_{0:T}^{(i)}) / q(x_{1:T}^{(i)}|x_0),

a lower bound in expectation that rises with k towards log p(x_0) (Burda et al. 2016); E[L_1] is
the bound K of ``dpm/bound.py``, term for term, with the same model: π(x_T), the ``reverse``
steps t = 2..T and the last step tied to the forward kernel T_π(x_0|x_1; β_1) (App. B.2).
Everything is per example and in nats; log-weights are summed and averaged in float64.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from dpm.bound import Reverse
from dpm.diffusion import BinomialDiffusion

# Elements (trajectories × examples × dimensions) of one pass through the chain.
MAX_ELEMENTS = 2 ** 22


def _log_normal(x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    """log N(x; mean, var), diagonal, summed over the last dimension (nats, float64)."""
    x, mean, var = x.double(), mean.double(), var.double()
    return (-0.5 * ((x - mean) ** 2 / var + torch.log(2 * math.pi * var))).sum(-1)


def _log_bernoulli(x: Tensor, rate: Tensor) -> Tensor:
    """log Bernoulli(x; rate) per bit, summed over the last dimension (nats, float64)."""
    x, rate = x.double(), rate.double()
    return (torch.special.xlogy(x, rate) + torch.special.xlogy(1 - x, 1 - rate)).sum(-1)


def log_p_step(process, params, x_prev: Tensor) -> Tensor:
    """log p(x_{t−1}|x_t) at x_prev, from ``reverse``'s output ``params`` (nats, float64)."""
    if isinstance(process, BinomialDiffusion):
        logit, x_prev = params.double(), x_prev.double()
        return (x_prev * F.logsigmoid(logit) + (1 - x_prev) * F.logsigmoid(-logit)).sum(-1)
    return _log_normal(x_prev, *params)


def log_q_step(process, x_prev: Tensor, t: Tensor, xt: Tensor) -> Tensor:
    """log q(x_t|x_{t−1}) (nats, float64). Paper: Table C.1."""
    if isinstance(process, BinomialDiffusion):
        return _log_bernoulli(xt, process.step_rate(x_prev.double(), t))
    beta = process.beta.double()[t - 1].unsqueeze(-1)
    return _log_normal(xt, (1.0 - beta).sqrt() * x_prev.double(), beta.expand(xt.shape))


def log_weights(process, reverse: Reverse, x0: Tensor, n_k: int, generator: torch.Generator | None = None,
                tied_edge: bool = True) -> Tensor:
    """log p(x_{0:T}) − log q(x_{1:T}|x_0) for ``n_k`` forward trajectories per example.

    Args:
        process: a GaussianDiffusion or BinomialDiffusion.
        reverse: maps (process, x_t, t) to the parameters of p(x_{t−1}|x_t), as in ``bound.py``.
        x0: (B, D) data in model units; the chain runs in x0's dtype (the network's).
        tied_edge: True: p(x_0|x_1) = T_π(x_0|x_1; β_1), so log p(x_0|x_1) − log q(x_1|x_0) =
            log π(x_0) − log π(x_1) by detailed balance (App. B.2, ``BoundTerms.edge``). False:
            ``reverse`` gives p(x_0|x_1) too (t = 1), e.g. an exact reverse in a test.

    Returns:
        (n_k, B) float64 nats. Paper: Eq. 9 (the integrand), Eq. 10–14 (its expectation is K).
    """
    x0_k = x0.expand((n_k,) + x0.shape)  # (k, B, D)
    x_prev, x1 = x0_k, None
    log_w = x0.new_zeros(x0_k.shape[:-1], dtype=torch.float64)
    for t in range(1, process.n_steps + 1):
        t_k = torch.full(x0_k.shape[:-1], t, dtype=torch.long, device=x0.device)
        xt = process.q_step(x_prev, t_k, process.noise_like(x_prev, generator))
        if t == 1 and tied_edge:
            x1 = xt
        else:
            log_w += log_p_step(process, reverse(process, xt, t_k), x_prev) - log_q_step(process, x_prev, t_k, xt)
        x_prev = xt
    log_w += process.log_prior(x_prev.double())
    if tied_edge:
        log_w += process.log_prior(x0_k.double()) - process.log_prior(x1.double())
    return log_w


@torch.no_grad()
def log_likelihood(process, reverse: Reverse, x0: Tensor, n_k: int, generator: torch.Generator | None = None,
                   tied_edge: bool = True, max_elements: int = MAX_ELEMENTS) -> Tensor:
    """L_k(x_0) = log (1/k) Σ_{i=1}^k w_i for each example of x0 (B, D), w_i from ``log_weights``.

    The k trajectories are drawn in passes of at most ``max_elements`` values, and the passes'
    log-sums combined (float64 logsumexp), so memory does not grow with k. A given generator
    state, batch and ``max_elements`` give the same draws.

    Returns:
        (B,) float64 nats: a stochastic lower bound on log p(x_0), E[L_1] = K, rising with k.
        Paper: Eq. 9.
    """
    per_pass = max(1, max_elements // x0.numel())
    log_sum = x0.new_full(x0.shape[:-1], -math.inf, dtype=torch.float64)
    for start in range(0, n_k, per_pass):
        log_w = log_weights(process, reverse, x0, min(per_pass, n_k - start), generator, tied_edge)
        log_sum = torch.logaddexp(log_sum, torch.logsumexp(log_w, 0))
    return log_sum - math.log(n_k)


@torch.no_grad()
def holdout_log_likelihood(process, reverse: Reverse, x: Tensor, n_k: int, batch_size: int, seed: int,
                           tied_edge: bool = True, max_elements: int = MAX_ELEMENTS) -> Tensor:
    """``log_likelihood`` of every row of a holdout set x (M, D) in model units, in batches, from
    one seeded generator on x's device.

    Returns:
        (M,) float64 nats. Their mean and standard error std/√M, in bits per reporting unit:
        ``dpm.evaluate.Estimate.of(nats / n_units)``.
    """
    generator = torch.Generator(device=x.device).manual_seed(seed)
    return torch.cat([log_likelihood(process, reverse, x[start:start + batch_size], n_k, generator, tied_edge,
                                     max_elements)
                      for start in range(0, len(x), batch_size)])
