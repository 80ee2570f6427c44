"""K on a holdout set, with standard errors: as the objective estimates it, and by uniform t as a check."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from dpm.core.bound import BoundTerms, bound_terms, to_bits
from dpm.base.sections import EvalConfig
from dpm.core.model import DiffusionModel
from dpm.core.objective import Objective


@dataclass(frozen=True)
class Estimate:
    """A holdout mean and its standard error std/√n (ddof = 0), in bits per example."""
    mean_bits: float
    se_bits: float

    @classmethod
    def of(cls, per_example_nats: Tensor) -> "Estimate":
        values = to_bits(per_example_nats.double())
        return cls(values.mean().item(), values.std(unbiased=False).item() / math.sqrt(len(values)))


@torch.no_grad()
def repeated_terms(terms: Callable[[Tensor, torch.Generator], BoundTerms], x: Tensor, n_repeats: int,
                   batch_size: int, seed: int) -> BoundTerms:
    """Each term of K per holdout example, averaged over ``n_repeats`` forward samples.

    Args:
        terms: (x0 batch, generator) → BoundTerms of that batch, one forward sample each.
        x: (M, D) holdout data in model units, on the model's device.

    Returns:
        BoundTerms of (M,) tensors, nats.
    """
    generator = torch.Generator(device=x.device).manual_seed(seed)
    batches = []
    for start in range(0, len(x), batch_size):
        x0 = x[start:start + batch_size]
        repeats = [terms(x0, generator) for _ in range(n_repeats)]
        batches.append(BoundTerms(*(torch.stack(term).mean(0) for term in zip(*repeats))))
    return BoundTerms(*(torch.cat(term) for term in zip(*batches)))


def holdout_terms(model: DiffusionModel, x: Tensor, n_repeats: int, batch_size: int, seed: int,
                  n_t: int | None = None, proposal: Tensor | None = None) -> BoundTerms:
    """``repeated_terms`` of ``bound_terms``: None ``n_t`` sums t = 2..T exactly; an integer samples
    that many t per example from ``proposal`` (None: uniform)."""
    process = model.process()
    return repeated_terms(lambda x0, g: bound_terms(process, model.reverse, x0, g, n_t, proposal),
                          x, n_repeats, batch_size, seed)


@dataclass(frozen=True)
class Evaluation:
    """K on a holdout set, per reporting unit (bits per example, or per pixel).

    Attributes:
        k: K as the objective estimates it (toys: exact over t; images: importance-sampled t).
        k_uniform_t: K by one uniformly drawn t per example and repeat (the authors' estimator).
        gain: K − L_null, per example then averaged (its standard error is the paired one).
        l_null: the holdout's log-likelihood under π.
        terms_bits: each term of K, its holdout mean.
        beta_T: the schedule's last β.
    """
    k: Estimate
    k_uniform_t: Estimate
    gain: Estimate
    l_null: Estimate
    terms_bits: dict[str, float]
    beta_T: float


@torch.no_grad()
def evaluate(model: DiffusionModel, objective: Objective, x: Tensor, c: EvalConfig) -> Evaluation:
    """K, its uniform-t check and L_null on holdout data ``x`` in model units (one process for all)."""
    process = model.process()
    k = repeated_terms(lambda x0, g: objective.terms(process, model.reverse, x0, g), x, c.n_repeats, c.batch_size,
                       c.seed)
    check = repeated_terms(lambda x0, g: objective.terms(process, model.reverse, x0, g, uniform=True), x,
                           c.n_repeats, c.batch_size, c.seed + 1)
    l_null = process.log_prior(x)
    per_unit = lambda nats: Estimate.of(nats / objective.n_units)  # noqa: E731
    return Evaluation(k=per_unit(k.k), k_uniform_t=per_unit(check.k), gain=per_unit(k.k - l_null),
                      l_null=per_unit(l_null),
                      terms_bits={name: to_bits(term.mean().item()) / objective.n_units
                                  for name, term in k._asdict().items()},
                      beta_T=process.beta[-1].item())
