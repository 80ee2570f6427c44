"""Reverse-process networks. They emit raw coefficients and know nothing about diffusion:
the process turns the coefficients into μ, Σ or a Bernoulli rate (``p_params``).

Time enters only through the readout: one readout layer per time step t = 1..T, every other
layer shared across time (Paper: App. D.1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class TimeReadout(nn.Module):
    """A separate affine readout for each t = 1..T (Paper: App. D.1.1, D.1.2).

    Args:
        n_steps: T.
        n_in, n_out: feature sizes.
        init_scale: standard deviation of the initial weights, in units of 1/√n_in; biases
            start at zero, so a small scale starts the model near the process's own starting
            point (the forward kernel) while every shared layer still gets a gradient.
        generator: random generator for the initial weights.
    """

    def __init__(self, n_steps: int, n_in: int, n_out: int, init_scale: float = 0.1,
                 generator: torch.Generator | None = None):
        super().__init__()
        weight = torch.randn(n_steps, n_in, n_out, generator=generator) * init_scale / n_in ** 0.5
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(n_steps, n_out))

    def forward(self, h: Tensor, t: Tensor) -> Tensor:
        """h: (*t.shape, ..., n_in), t: integer tensor of 1-based steps → (*t.shape, ..., n_out)."""
        n_groups = t.numel()
        grouped = h.reshape(n_groups, -1, h.shape[-1])  # (groups, rows per t, n_in)
        index = t.reshape(-1) - 1
        out = torch.baddbmm(self.bias[index].unsqueeze(1), grouped, self.weight[index])
        return out.reshape(h.shape[:-1] + (out.shape[-1],))


class NormalisedRBF(nn.Module):
    """Normalised radial-basis-function layer: softmax_k(−‖x − c_k‖² / 2s_k²).

    Paper: App. D.1.1 (one hidden layer of 16 units for the swiss roll).
    """

    def __init__(self, n_in: int, n_hidden: int, generator: torch.Generator | None = None):
        super().__init__()
        self.centres = nn.Parameter(torch.randn(n_hidden, n_in, generator=generator))
        self.log_width = nn.Parameter(torch.zeros(n_hidden))

    @torch.no_grad()
    def init_from_data(self, x: Tensor, generator: torch.Generator | None = None,
                       overlap: float = 3.0) -> None:
        """Centres at random training points, so that no unit starts off the data; widths at
        ``overlap`` times the mean distance to the nearest other centre, so that neighbouring
        units share their inputs (narrower, the normalised layer is a hard partition whose
        centres get almost no gradient)."""
        index = torch.randperm(len(x), generator=generator)[:len(self.centres)]
        self.centres.copy_(x[index])
        distance = torch.cdist(self.centres, self.centres).fill_diagonal_(float("inf"))
        self.log_width.fill_(math.log(overlap * distance.min(1).values.mean().item()))

    def forward(self, x: Tensor) -> Tensor:
        sq_dist = ((x.unsqueeze(-2) - self.centres) ** 2).sum(-1)  # (..., n_hidden)
        return torch.softmax(-0.5 * sq_dist * torch.exp(-2 * self.log_width), dim=-1)


class RBFNet(nn.Module):
    """f_μ and f_Σ coefficients for low-dimensional data from one shared normalised RBF layer.

    Paper: App. D.1.1: weights shared across time steps and across both functions, a readout
    per time step for each function.
    Deviation (``local_linear``): each unit's readout may be a local linear model
    a_k(t) + B_k(t)·x rather than a constant a_k(t) (the "normalised RBF network with local
    linear models" of Jones et al.), so that a few units can pull points onto a thin manifold;
    with constants the output is piecewise constant in x and cannot resolve a roll much thinner
    than the spacing of its units.

    Returns:
        (z_μ, z_Σ), each shaped like x.
    """

    def __init__(self, n_steps: int, n_dims: int, n_hidden: int, local_linear: bool = False,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.local_linear = local_linear
        self.rbf = NormalisedRBF(n_dims, n_hidden, generator)
        n_features = n_hidden * (1 + n_dims) if local_linear else n_hidden
        self.readout_mu = TimeReadout(n_steps, n_features, n_dims, generator=generator)
        self.readout_sigma = TimeReadout(n_steps, n_features, n_dims, generator=generator)

    def forward(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        h = self.rbf(x)  # (..., n_hidden)
        if self.local_linear:
            h = torch.cat([h, (h.unsqueeze(-1) * x.unsqueeze(-2)).flatten(-2)], dim=-1)
        return self.readout_mu(h, t), self.readout_sigma(h, t)


class SigmoidMLP(nn.Module):
    """Coefficients z of the Bernoulli rate f_b(x_t, t) from a sigmoid MLP.

    Paper: App. D.1.2 (20 inputs, three hidden layers of 50 sigmoid units, a readout per
    time step passed through a sigmoid, applied in ``BinomialDiffusion``).

    Returns:
        (z,), z shaped like x.
    """

    def __init__(self, n_steps: int, n_bits: int, n_hidden: int, n_layers: int,
                 generator: torch.Generator | None = None):
        super().__init__()
        sizes = [n_bits] + [n_hidden] * n_layers
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [_glorot_sigmoid(nn.Linear(n_in, n_out), generator), nn.Sigmoid()]
        self.hidden = nn.Sequential(*layers)
        self.readout = TimeReadout(n_steps, n_hidden, n_bits, init_scale=0.1, generator=generator)

    def forward(self, x: Tensor, t: Tensor) -> tuple[Tensor]:
        return (self.readout(self.hidden(x), t),)


def _glorot_sigmoid(layer: nn.Linear, generator: torch.Generator | None) -> nn.Linear:
    """Glorot & Bengio (2010) uniform initialisation scaled by 4 for sigmoid units.

    PyTorch's default leaves three stacked sigmoid layers nearly constant at 0.5, and the
    heartbeat model then barely learns in the first thousand iterations.
    """
    limit = 4.0 * (6.0 / (layer.in_features + layer.out_features)) ** 0.5
    with torch.no_grad():
        layer.weight.uniform_(-limit, limit, generator=generator)
        layer.bias.zero_()
    return layer
