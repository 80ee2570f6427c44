"""K on a holdout set: exactly over t = 2..T and by Monte Carlo over t, each with a standard error."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from dpm.bound import BoundTerms, bound_terms, to_bits
from dpm.model import DiffusionModel


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
def holdout_terms(model: DiffusionModel, x: Tensor, n_repeats: int, batch_size: int, seed: int,
                  n_t: int | None = None, proposal: Tensor | None = None) -> BoundTerms:
    """Each term of K per holdout example, averaged over ``n_repeats`` forward samples.

    Args:
        x: (M, D) holdout data on the model's device.
        n_t: None sums t = 2..T exactly; an integer samples that many t per example (MC).
        proposal: the distribution of the sampled t (``bound.kl_sum``); None is uniform.

    Returns:
        BoundTerms of (M,) tensors, nats.
    """
    generator = torch.Generator(device=x.device).manual_seed(seed)
    process = model.process()
    batches = []
    for start in range(0, len(x), batch_size):
        x0 = x[start:start + batch_size]
        repeats = [bound_terms(process, model.reverse, x0, generator, n_t, proposal) for _ in range(n_repeats)]
        batches.append(BoundTerms(*(torch.stack(term).mean(0) for term in zip(*repeats))))
    return BoundTerms(*(torch.cat(term) for term in zip(*batches)))
