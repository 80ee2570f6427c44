"""Forward diffusion rates β_1..β_T (Paper: §2.4.1).

Both schedules are modules whose ``forward()`` returns β as a (T,) float64 tensor with
``beta[t - 1] = β_t``, so a learned schedule gets gradients from K ("frozen noise": the forward
samples are reparameterised through β, Paper: §2.4.1) and a fixed one follows ``.to(device)``.
"""

from __future__ import annotations

import torch
from torch import nn

# A learned β_t is kept strictly inside (0, 1): at β_t = 1 the step's logit is infinite.
_LEARNED_BETA_MAX = 1.0 - 1e-3


def erase_fraction_betas(n_steps: int, beta_1: float) -> torch.Tensor:
    """β_t = 1/(T − t + 1) for t = 2..T and the given β_1.

    Each step erases a constant fraction 1/T of the original signal, so ᾱ_t = (T − t)/T
    for t ≥ 2 when β_1 = 1/T; β_T = 1 makes x_T exactly a sample of π.

    Paper: §2.4.1 and its footnote 2.
    Deviation: β_1 is a parameter. The authors' code added 0.001 to β_1 (β_1 ≈ 0.002 for
    T = 1000); with β_1 = 1/T this is exactly the paper's schedule.

    Returns:
        (T,) float64 tensor, ``beta[t - 1] = β_t``.
    """
    t = torch.arange(1, n_steps + 1, dtype=torch.float64)
    beta = 1.0 / (n_steps - t + 1.0)
    beta[0] = beta_1
    return beta


class FixedSchedule(nn.Module):
    """β_t = 1/(T − t + 1) with a chosen β_1, stored as a buffer."""

    def __init__(self, n_steps: int, beta_1: float):
        super().__init__()
        self.register_buffer("beta", erase_fraction_betas(n_steps, beta_1))

    def forward(self) -> torch.Tensor:
        return self.beta


class LearnedSchedule(nn.Module):
    """β_2..β_T learned by gradient ascent on K; β_1 fixed (Paper: §2.4.1).

    β_t = sigmoid(θ_t) for t ≥ 2, θ initialised at the logit of the erase-fraction schedule
    (β_T capped just below 1 so its logit is finite).
    Deviation: the authors' code perturbed logit β with 10 bump functions and never trained it;
    with T ≤ 40 steps one free parameter per step is what the paper describes.
    """

    def __init__(self, n_steps: int, beta_1: float):
        super().__init__()
        init = erase_fraction_betas(n_steps, beta_1)[1:].clamp(max=_LEARNED_BETA_MAX)
        self.logit_beta = nn.Parameter(torch.logit(init).float())
        self.register_buffer("beta_1", torch.tensor([beta_1], dtype=torch.float64))

    def forward(self) -> torch.Tensor:
        return torch.cat([self.beta_1, torch.sigmoid(self.logit_beta.double())])


def make_schedule(kind: str, n_steps: int, beta_1: float) -> nn.Module:
    """The schedule named in params.yaml: ``fixed`` or ``learned``."""
    schedules = {"fixed": FixedSchedule, "learned": LearnedSchedule}
    return schedules[kind](n_steps, beta_1)
