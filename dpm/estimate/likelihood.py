"""The log-likelihood log p(x_0) by importance sampling over forward trajectories (Paper: Eq. 9).

With k trajectories x_{1:T}^{(i)} ~ q(x_{1:T}|x_0),

    L_k(x_0) = log (1/k) Σ_i p(x_{0:T}^{(i)}) / q(x_{1:T}^{(i)}|x_0),

a lower bound in expectation that rises with k towards log p(x_0) (Burda et al. 2016); E[L_1] is
the bound K of ``dpm/core/bound.py``, term for term, with the same model: π(x_T), the ``reverse``
steps t = 2..T and the last step tied to the forward kernel T_π(x_0|x_1; β_1) (App. B.2).
Everything is per example and in nats; log-weights are summed and averaged in float64.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from dpm.core.bound import Reverse, bound_terms, kl_terms
from dpm.core.diffusion import BinomialDiffusion

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
        ``dpm.core.evaluate.Estimate.of(nats / n_units)``.
    """
    generator = torch.Generator(device=x.device).manual_seed(seed)
    return torch.cat([log_likelihood(process, reverse, x[start:start + batch_size], n_k, generator, tied_edge,
                                     max_elements)
                      for start in range(0, len(x), batch_size)])


@torch.no_grad()
def log_weight_pool(process, reverse: Reverse, x0: Tensor, n_trajectories: int,
                    generator: torch.Generator | None = None, tied_edge: bool = True,
                    max_elements: int = MAX_ELEMENTS) -> Tensor:
    """``n_trajectories`` log-weights per example of x0 (B, D), drawn in passes of at most
    ``max_elements`` values: the pool from which ``grouped`` forms L_k for several k.

    Returns:
        (n_trajectories, B) float64 nats. Paper: Eq. 9 (the integrand).
    """
    per_pass = max(1, max_elements // x0.numel())
    return torch.cat([log_weights(process, reverse, x0, min(per_pass, n_trajectories - start), generator, tied_edge)
                      for start in range(0, n_trajectories, per_pass)])


def grouped(log_w: Tensor, n_k: int) -> Tensor:
    """L_k of each of the ⌊N/k⌋ disjoint groups of k log-weights of a pool (N, B): independent
    draws of L_k for each example (nats). Paper: Eq. 9."""
    n_groups = log_w.shape[0] // n_k
    if n_groups == 0:
        raise ValueError(f"a pool of {log_w.shape[0]} trajectories holds no group of k = {n_k}")
    groups = log_w[:n_groups * n_k].reshape((n_groups, n_k) + log_w.shape[1:])
    return torch.logsumexp(groups, 1) - math.log(n_k)


def mean_and_variance(draws: Tensor) -> tuple[Tensor, Tensor]:
    """Per example: the mean of R independent draws (R, B) and the variance of that mean
    (sample variance / R; NaN where R = 1, where it cannot be estimated: see ``weighted_mean``)."""
    if draws.shape[0] == 1:
        return draws[0], torch.full_like(draws[0], math.nan)
    return draws.mean(0), draws.var(0, unbiased=True) / draws.shape[0]


def weighted_mean(mean: Tensor, variance: Tensor, counts: Tensor) -> tuple[Tensor, Tensor]:
    """The mean over a set of n examples of which only the distinct ones were computed, and its
    standard error.

    Args:
        mean: (S, ...) a Monte Carlo estimate for each distinct example (trailing dimensions, such
            as t, are kept).
        variance: (S, ...) the variance of each estimate (``mean_and_variance``).
        counts: (S,) how often each distinct example occurs in the set (n = Σ counts).

    Returns:
        (mean, se) as tensors of the trailing shape. se² = S²/n + Σ_s w_s (w_s − 1/n) v_s with
        w_s = counts/n and S² the spread of the per-example estimates over the n examples (ddof 0):
        with every example distinct this is the usual std/√n, which holds the estimates' own Monte
        Carlo noise; an estimate shared by c > 1 examples adds the part of its noise the spread
        does not show. So se is the error of the set's mean as an estimate of the population mean
        (the set a sample of the data), Monte Carlo noise included.
    """
    n = counts.sum().double()
    w = (counts.double() / n).reshape(counts.shape + (1,) * (mean.ndim - 1))
    repeated = (counts > 1).reshape(w.shape)
    if bool((repeated & variance.isnan()).any()):
        raise ValueError("a repeated example needs at least 2 Monte Carlo draws to estimate its noise")
    centre = (w * mean).sum(0)
    spread = (w * (mean - centre) ** 2).sum(0) / n
    shared = torch.where(repeated, w * (w - 1 / n) * variance, 0.0).sum(0)
    return centre, (spread + shared).clamp(min=0).sqrt()


def distinct(x: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct rows of x (M, D) and how often each occurs: a set with repeated examples
    (the heartbeat's 5 sequences) is computed once per distinct row, weighted by its count."""
    return torch.unique(x, dim=0, return_counts=True)


@torch.no_grad()
def kl_by_t(process, reverse: Reverse, x0: Tensor, n_repeats: int, generator: torch.Generator | None = None,
            max_elements: int = MAX_ELEMENTS) -> Tensor:
    """Every term KL(q(x_{t−1}|x_t, x_0) ‖ p(x_{t−1}|x_t)) of K, t = 2..T, each at ``n_repeats``
    independent x_t ~ q(x_t|x_0), computed in blocks of t of at most ``max_elements`` values.

    Returns:
        (n_repeats, T − 1, B) float64 nats; row t − 2 is time t. Paper: Eq. 14.
    """
    per_block = max(1, max_elements // x0.numel())
    t_all = torch.arange(2, process.n_steps + 1, device=x0.device)
    return torch.stack([torch.cat([kl_terms(process, reverse, x0, block, generator).double()
                                   for block in t_all.split(per_block)]) for _ in range(n_repeats)])


def holdout_subset(n_holdout: int, n_examples: int, seed: int) -> Tensor:
    """Indices of a seeded subset of min(n_examples, n_holdout) holdout examples: the first of
    one permutation, so a smaller subset with the same seed lies inside a larger one."""
    permutation = torch.randperm(n_holdout, generator=torch.Generator().manual_seed(seed))
    return permutation[:n_examples]


@torch.no_grad()
def k_draws(process, reverse: Reverse, x0: Tensor, n_repeats: int, generator: torch.Generator | None = None,
            max_elements: int = MAX_ELEMENTS) -> tuple[Tensor, Tensor]:
    """K of each example of x0 (B, D) exactly over t (every t = 2..T at its own x_t ~ q(x_t|x_0)),
    ``n_repeats`` independent draws, and its KL terms by t (``kl_by_t``).

    Returns:
        (n_repeats, B) and (n_repeats, T − 1, B), float64 nats. Paper: Eq. 14.
    """
    kl = kl_by_t(process, reverse, x0, n_repeats, generator, max_elements)
    rest = bound_terms(process, reverse, x0, generator, n_t=1)  # its kl (one t) is not used
    return -kl.sum(1) + (rest.entropy_T - rest.entropy_1 + rest.log_prior_T + rest.edge).double(), kl


@torch.no_grad()
def subset_estimates(process, reverse: Reverse, rows: Tensor, counts: Tensor, k_draws: Tensor, ks: Sequence[int],
                     n_trajectories: int, batch_size: int, generator: torch.Generator | None = None,
                     max_elements: int = MAX_ELEMENTS) -> dict[str, tuple[Tensor, Tensor]]:
    """L_k for every k of ``ks`` and K on a set given as its distinct rows (S, D) with their
    counts, as (mean, standard error) in nats per example (``weighted_mean``).

    Each row's L_k is the mean over the disjoint groups of k of one pool of ``n_trajectories``
    trajectories (``grouped``), so the k share trajectories. ``k_draws`` (R, S): draws of K per row
    (``k_draws``). Keys: ``K``, ``L_<k>``, ``L_<k>_minus_K`` (paired, per row).
    """
    pool = torch.cat([log_weight_pool(process, reverse, rows[start:start + batch_size], n_trajectories, generator,
                                      max_elements=max_elements)
                      for start in range(0, len(rows), batch_size)], dim=1)
    k_mean, k_var = mean_and_variance(k_draws)
    estimates = {"K": weighted_mean(k_mean, k_var, counts)}
    for n_k in ks:
        l_mean, l_var = mean_and_variance(grouped(pool, n_k))
        estimates[f"L_{n_k}"] = weighted_mean(l_mean, l_var, counts)
        estimates[f"L_{n_k}_minus_K"] = weighted_mean(l_mean - k_mean, l_var + k_var, counts)
    return estimates


def prepared_holdout(trained) -> Tensor:
    """A trained model's holdout (M, D) in model units on its device, as the evaluate stage sees it:
    images dequantised once, with noise seeded by ``eval.seed``."""
    noise = torch.Generator(device=trained.device).manual_seed(trained.section.eval.seed)
    return trained.objective.prepare(torch.from_numpy(trained.split.holdout).to(trained.device), noise)
