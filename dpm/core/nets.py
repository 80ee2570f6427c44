"""Reverse-process networks. They emit raw coefficients and know nothing about diffusion:
the process turns the coefficients into μ, Σ or a Bernoulli rate (``p_params``).

Time enters only through the readout: one readout layer per time step t = 1..T, every other
layer shared across time (Paper: App. D.1).

Every initial weight is drawn from the ``generator`` handed in, never from torch's global one:
two nets built from the same seed are bit-identical whatever the process did before, and
building one leaves the global random state as it was.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dpm.core.temporal import Bumps, readout


def _layer(layer_cls: type[nn.Linear] | type[nn.Conv2d], *args, generator: torch.Generator | None = None,
           **kwargs) -> nn.Linear | nn.Conv2d:
    """A Linear or Conv2d layer with PyTorch's default initial distribution, drawn from ``generator``.

    The layer is built without initialising it (PyTorch's constructor would draw from the
    global generator), then every element is written: weights by kaiming_uniform_(a = √5),
    biases from U(−1/√fan_in, 1/√fan_in), as PyTorch's ``reset_parameters``. With
    ``generator=None`` the draws come from the global generator, exactly as the constructor's.
    """
    layer = nn.utils.skip_init(layer_cls, *args, **kwargs)
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    if layer.bias is not None:
        bound = 1.0 / math.sqrt(layer.weight[0].numel())  # fan_in
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


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
    Option (``local_linear``, off by default): each unit's readout may be a local linear model
    a_k(t) + B_k(t)·x rather than a constant a_k(t) (the "normalised RBF network with local
    linear models" of Jones et al.). The normalised units already blend their constants
    smoothly in x, and the ablation "swiss-roll network" (studies/dvc.yaml, row
    ``swiss_roll_local_linear``) finds no gain from it at twice the training time, so the
    paper's constant readouts are used; the option is kept for that ablation.

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
    Deviation: hidden weights Glorot-uniform × 4 (``init="glorot_sigmoid"``, ``_glorot_sigmoid``);
    ``init="pytorch"`` is PyTorch's default, for the ablation.

    Returns:
        (z,), z shaped like x.
    """

    def __init__(self, n_steps: int, n_bits: int, n_hidden: int, n_layers: int,
                 generator: torch.Generator | None = None, init: str = "glorot_sigmoid"):
        super().__init__()
        sizes = [n_bits] + [n_hidden] * n_layers
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            if init == "glorot_sigmoid":
                linear = _glorot_sigmoid(nn.utils.skip_init(nn.Linear, n_in, n_out), generator)
            elif init == "pytorch":  # the ablation of our initialisation (README "Deviations")
                linear = _layer(nn.Linear, n_in, n_out, generator=generator)
            else:
                raise ValueError(f"unknown initialisation {init!r}: expected glorot_sigmoid or pytorch")
            layers += [linear, nn.Sigmoid()]
        self.hidden = nn.Sequential(*layers)
        self.readout = TimeReadout(n_steps, n_hidden, n_bits, init_scale=0.1, generator=generator)

    def forward(self, x: Tensor, t: Tensor) -> tuple[Tensor]:
        return (self.readout(self.hidden(x), t),)


def _glorot_sigmoid(layer: nn.Linear, generator: torch.Generator | None) -> nn.Linear:
    """Glorot & Bengio (2010) uniform initialisation scaled by 4 for sigmoid units; writes every
    weight and bias of ``layer`` (which may come uninitialised from ``skip_init``).

    PyTorch's default leaves three stacked sigmoid layers nearly constant at 0.5, and the
    heartbeat model then barely learns in the first thousand iterations.
    """
    limit = 4.0 * (6.0 / (layer.in_features + layer.out_features)) ** 0.5
    with torch.no_grad():
        layer.weight.uniform_(-limit, limit, generator=generator)
        layer.bias.zero_()
    return layer


class MultiScaleConv(nn.Module):
    """Mean-pool to scales 2^s, convolve at each scale, upsample, sum (Paper: App. D.2.1).

    The composition is a convolution with a multi-scale kernel, up to blocking artefacts of the
    nearest-neighbour upsampling (Barron et al. 2013). Image height and width must be
    divisible by 2^(n_scales − 1). The nonlinearity is applied by the caller.

    Args:
        n_in, n_out: channels.
        n_scales: number of scales s = 0..n_scales − 1; one scale is a plain convolution.
        kernel_size: odd; "same" padding at every scale.
        generator: random generator for the initial weights (PyTorch's default distribution).
    """

    def __init__(self, n_in: int, n_out: int, n_scales: int, kernel_size: int = 3,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.convs = nn.ModuleList(
            _layer(nn.Conv2d, n_in, n_out, kernel_size, padding=kernel_size // 2, bias=s == 0, generator=generator)
            for s in range(n_scales))

    def forward(self, x: Tensor) -> Tensor:
        out = self.convs[0](x)
        for s, conv in enumerate(self.convs[1:], start=1):
            factor = 2 ** s
            coarse = conv(F.avg_pool2d(x, factor))
            out = out + F.interpolate(coarse, scale_factor=factor, mode="nearest")
        return out


ACTIVATIONS = {
    # the authors' code: LeakyReLU(0.05) in every layer
    "leaky_relu": (lambda: nn.LeakyReLU(0.05), lambda: nn.LeakyReLU(0.05)),
    # the paper: soft ReLU after multi-scale convolutions, tanh in the dense layers (App. D.2.1)
    "paper": (nn.Softplus, nn.Tanh),
}


class ImageNet(nn.Module):
    """Per-pixel coefficients (z_μ, z_Σ) for images, time entering through J bumps.

    Paper: App. D.2.1, Fig. D.1. A multi-scale convolutional pathway and/or a dense pathway
    (each optional), concatenated per pixel, then 1×1 convolutions ("a dense transformation
    performed on each pixel"), then a linear map to 2J coefficients per pixel and colour,
    mixed over time by the bumps (Eq. 63–64). Without the dense pathway the network is fully
    convolutional: it accepts any image size divisible by 2^(n_scales − 1).

    The data arrive flattened, (..., C·H·W) as the diffusion math sees them; ``image_shape``
    is (C, H, W) and can be changed on a fully convolutional net to sample other sizes.

    Every layer but the last starts from PyTorch's default distribution, the last from
    N(0, readout_init² / n_features) with zero biases; all drawn from ``generator``.

    Returns:
        (z_μ, z_Σ), each shaped like x.
    """

    def __init__(self, n_steps: int, image_shape: tuple[int, int, int], c, generator: torch.Generator | None = None):
        super().__init__()
        self.image_shape = tuple(image_shape)
        n_colours, height, width = image_shape
        conv_act, dense_act = ACTIVATIONS[c.activation]
        self.conv = nn.Sequential(*[
            layer for i in range(c.conv_layers)
            for layer in (MultiScaleConv(n_colours if i == 0 else c.conv_channels, c.conv_channels, c.n_scales,
                                         c.kernel_size, generator), conv_act())])
        self.dense = None
        if c.dense_out > 0:
            sizes = [n_colours * height * width] + [c.dense_width] * c.dense_layers
            layers = [m for a, b in zip(sizes[:-1], sizes[1:])
                      for m in (_layer(nn.Linear, a, b, generator=generator), dense_act())]
            self.dense = nn.Sequential(*layers, _layer(nn.Linear, sizes[-1], c.dense_out * height * width,
                                                       generator=generator))
        n_features = (c.conv_channels if c.conv_layers else n_colours) + c.dense_out
        upper = []
        for _ in range(c.upper_layers):
            upper += [_layer(nn.Conv2d, n_features, c.upper_channels, 1, generator=generator), conv_act()]
            n_features = c.upper_channels
        self.upper = nn.Sequential(*upper)
        self.coefficients = nn.utils.skip_init(nn.Conv2d, n_features, 2 * c.n_bumps * n_colours, 1)
        nn.init.normal_(self.coefficients.weight, std=c.readout_init / n_features ** 0.5, generator=generator)
        nn.init.zeros_(self.coefficients.bias)
        self.bumps = Bumps(n_steps, c.n_bumps, c.bump_width)
        self.n_dense_out = c.dense_out
        # channels-last (B, H, W, C in memory), so that the per-pixel 1×1 convolutions are plain
        # matmuls over the channels.
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        lead = x.shape[:-1]
        n_colours, height, width = self.image_shape
        images = x.reshape(-1, n_colours, height, width)  # batch, colours, height, width
        h = self.conv(images.contiguous(memory_format=torch.channels_last)) if len(self.conv) else images
        if self.dense is not None:
            d = self.dense(images.flatten(1)).reshape(-1, self.n_dense_out, height, width)
            h = torch.cat([h, d], dim=1)
        y = self.coefficients(self.upper(h.contiguous(memory_format=torch.channels_last)))
        y = y.reshape(-1, 2, self.bumps.centres.shape[0], n_colours, height, width)  # (B, μ|Σ, J, C, H, W)
        t = t.reshape(t.shape + (1,) * (len(lead) - t.ndim)).expand(lead)  # t's shape is a prefix of lead
        g = self.bumps(t.reshape(-1))  # (B, J)
        z_mu, z_sigma = readout(y[:, 0], g), readout(y[:, 1], g)
        return z_mu.reshape(lead + (-1,)), z_sigma.reshape(lead + (-1,))
