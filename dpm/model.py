"""A diffusion probabilistic model: a β schedule, a reverse network and the process joining them."""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import Tensor, nn

from dpm import config as cfg
from dpm.diffusion import BinomialDiffusion, GaussianDiffusion
from dpm.nets import ImageNet, RBFNet, SigmoidMLP
from dpm.schedules import make_schedule


class DiffusionModel(nn.Module):
    """Schedule + network; ``process()`` builds the forward process from the current β.

    Args:
        schedule: module returning β_1..β_T (fixed or learned).
        net: module mapping (x_t, t) to a tuple of raw coefficients.
        make_process: builds a GaussianDiffusion or BinomialDiffusion from β.
    """

    def __init__(self, schedule: nn.Module, net: nn.Module, make_process: Callable[[Tensor], object]):
        super().__init__()
        self.schedule = schedule
        self.net = net
        self.make_process = make_process
        # bfloat16 autocast of the network on CUDA (training only; the bound stays float32)
        self.amp = False

    def process(self):
        return self.make_process(self.schedule())

    def reverse(self, process, xt: Tensor, t: Tensor):
        """Parameters of p(x_{t−1}|x_t) (Table C.1)."""
        if self.amp and xt.is_cuda:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                coefficients = self.net(xt, t)
            return process.p_params(xt, t, *(z.float() for z in coefficients))
        return process.p_params(xt, t, *self.net(xt, t))


def _gaussian(c, net: torch.nn.Module) -> DiffusionModel:
    """Gaussian diffusion with the schedule and mean parameterisation of section ``c``."""
    schedule = make_schedule(c.diffusion.schedule, c.diffusion.n_steps, c.diffusion.beta_1)
    return DiffusionModel(schedule, net, functools.partial(GaussianDiffusion, parameterisation=c.diffusion.parameterisation))


def swiss_roll_model(c: cfg.SwissRollConfig, seed: int) -> DiffusionModel:
    """Gaussian diffusion with the normalised RBF network of App. D.1.1."""
    generator = torch.Generator().manual_seed(seed)
    net = RBFNet(c.diffusion.n_steps, n_dims=2, n_hidden=c.net.n_hidden, local_linear=c.net.local_linear,
                 generator=generator)
    return _gaussian(c, net)


def heartbeat_model(c: cfg.HeartbeatConfig, p_pi: float, seed: int) -> DiffusionModel:
    """Binomial diffusion towards Bernoulli(p_π) with the sigmoid MLP of App. D.1.2."""
    generator = torch.Generator().manual_seed(seed)
    net = SigmoidMLP(c.diffusion.n_steps, c.data.n_bits, c.net.n_hidden, c.net.n_layers, generator)
    schedule = make_schedule(c.diffusion.schedule, c.diffusion.n_steps, c.diffusion.beta_1)
    return DiffusionModel(schedule, net, functools.partial(BinomialDiffusion, p_pi=p_pi,
                                                           parameterisation=c.diffusion.parameterisation))


def image_model(c, image_shape: tuple[int, int, int], seed: int) -> DiffusionModel:
    """Gaussian diffusion with the image network of App. D.2.1 (any image section of params.yaml).

    Raises:
        ConfigError: if the image size is not divisible by the coarsest scale 2^(n_scales − 1).
    """
    coarsest = 2 ** (c.net.n_scales - 1)
    if c.net.conv_layers and any(side % coarsest for side in image_shape[1:]):
        raise cfg.ConfigError(f"net.n_scales: {c.net.n_scales} scales need image sides divisible by {coarsest}, "
                              f"got {tuple(image_shape[1:])}")
    net = ImageNet(c.diffusion.n_steps, image_shape, c.net, torch.Generator().manual_seed(seed))
    return _gaussian(c, net)


def load(model: DiffusionModel, path) -> DiffusionModel:
    """Load the parameters saved at ``path`` (by the train stage) into ``model``, built from the
    same configuration."""
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["model"])
    return model


def build(name: str, config: cfg.Config, meta: dict, x_train: Tensor | None = None, seed: int = 0) -> DiffusionModel:
    """The model of dataset ``name`` from its params.yaml section and its data's ``meta``.

    The initial weights come from ``seed`` and, for the RBF centres, from ``x_train`` when
    given: a model about to be trained. A model about to load saved weights needs neither.
    """
    section = getattr(config, name)
    if name == "swiss_roll":
        model = swiss_roll_model(section, seed)
        if x_train is not None:
            model.net.rbf.init_from_data(x_train, torch.Generator().manual_seed(seed))
        return model
    if name == "heartbeat":
        return heartbeat_model(section, meta["p_pi"], seed)
    if name in cfg.IMAGE_DATASETS:
        return image_model(section, tuple(meta["image_shape"]), seed)
    raise ValueError(f"unknown dataset {name!r}")
