"""Time dependence of the image models: J normalised Gaussian bump functions g_j(t).

The image network is shared across time; its per-pixel coefficients y_j are mixed by the
bumps, z = Σ_j y_j g_j(t) (Paper: Eq. 63–64, App. D.2.1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Bumps(nn.Module):
    """g_j(t) = exp(−(t − τ_j)² / 2w²) / Σ_k exp(−(t − τ_k)² / 2w²) for j = 1..J.

    Centres τ_j = (j − ½)·T/J, evenly spaced in (0, T); w = ``width`` × the spacing T/J.

    Paper: Eq. 64 (w is "the spacing between bump centres", width = 1).
    Deviation: the default width 0.5 is the authors' code (std = half the spacing); with
    width 1 neighbouring bumps overlap so much that the readout is nearly constant in t.

    Args:
        n_steps: T.
        n_bumps: J.
        width: w in units of the spacing between centres.
    """

    def __init__(self, n_steps: int, n_bumps: int, width: float = 0.5):
        super().__init__()
        spacing = n_steps / n_bumps
        self.register_buffer("centres", (torch.arange(n_bumps, dtype=torch.float64) + 0.5) * spacing)
        self.w = width * spacing

    def forward(self, t: Tensor) -> Tensor:
        """t: integer tensor of 1-based steps, any shape → (*t.shape, J), each row summing to 1."""
        logits = -0.5 * ((t.unsqueeze(-1).double() - self.centres) / self.w) ** 2
        return torch.softmax(logits, dim=-1).float()


def readout(y: Tensor, g: Tensor) -> Tensor:
    """z_i = Σ_j y_ij g_j(t) (Paper: Eq. 63).

    Args:
        y: (B, J, ...) per-pixel coefficients; g: (B, J) bump values at each example's t.

    Returns:
        (B, ...) the time-dependent output.
    """
    return torch.einsum("bj...,bj->b...", y, g.to(y.dtype))
