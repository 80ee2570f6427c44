"""The params.yaml sections every model shares (diffusion, networks, training, evaluation,
likelihood, limits, float32 precision) and the choices they offer.

Types and ranges only: the datasets' sections (dpm/base/registry.py) are assembled from these, and
the modules that implement a choice check against the tuples here (tests/test_choices.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

from dpm.base.params import Section, spec

# the choices params.yaml offers; the modules that implement them check against these
SCHEDULES = ("fixed", "learned")
GAUSSIAN_PARAMETERISATIONS = ("paper", "kernel", "x0", "v")
BINOMIAL_PARAMETERISATIONS = ("kernel", "x0")
ACTIVATIONS = ("leaky_relu", "paper")
MLP_INITS = ("glorot_sigmoid", "pytorch")
T_SAMPLINGS = ("uniform", "importance")
DEQUANTISATIONS = ("level", "authors", "none")


@dataclass(frozen=True)
class DiffusionConfig(Section):
    """Forward process: T, β_1 and the schedule (Paper: §2.4.1); how the reverse step reads the
    network's coefficients (``p_params`` of dpm/core/diffusion.py)."""
    n_steps: int = spec(2)
    beta_1: float = spec(0.0, 1.0, open_low=True, open_high=True)
    schedule: str = spec(choices=SCHEDULES)
    parameterisation: str = spec(choices=GAUSSIAN_PARAMETERISATIONS)


@dataclass(frozen=True)
class RBFConfig(Section):
    """Normalised radial-basis-function network (Paper: App. D.1.1)."""
    n_hidden: int = spec(1)
    local_linear: bool = spec()


@dataclass(frozen=True)
class MLPConfig(Section):
    """Sigmoid multilayer perceptron (Paper: App. D.1.2); ``init`` of its hidden layers:
    ``glorot_sigmoid`` (Glorot-uniform × 4, our deviation) or ``pytorch`` (PyTorch's default)."""
    n_hidden: int = spec(1)
    n_layers: int = spec(1)
    init: str = spec(choices=MLP_INITS)


@dataclass(frozen=True)
class TrainConfig(Section):
    """Optimisation: Adam on −K (nats), learning rate decayed stepwise; what is logged."""
    n_iterations: int = spec(1)
    batch_size: int = spec(1)
    learning_rate: float = spec(0.0, open_low=True)
    lr_decay: float = spec(0.0, 1.0, open_low=True)
    lr_decay_every: int = spec(1)
    checkpoint_every: int = spec(1)
    log_every: int = spec(1)
    n_log_examples: int = spec(1)
    n_log_samples: int = spec(1)
    seed: int = spec(0)


@dataclass(frozen=True)
class ImageTrainConfig(TrainConfig):
    """Training of an image model: one random t per example, drawn ``uniform`` (the authors'
    code) or by ``importance`` (P(t) ∝ 1/t, dpm/core/bound.py); bfloat16 autocast of the network on
    a GPU (``amp``; the bound itself is computed in float32)."""
    t_sampling: str = spec(choices=T_SAMPLINGS)
    amp: bool = spec()


@dataclass(frozen=True)
class ImageNetConfig(Section):
    """The image network of App. D.2.1: multi-scale convolution (``conv_layers`` = 0: none),
    a dense pathway (``dense_out`` = 0: none; ``dense_out`` outputs per pixel), 1×1 layers,
    J = ``n_bumps`` bump functions of width ``bump_width`` × their spacing."""
    conv_layers: int = spec(0)
    conv_channels: int = spec(1)
    n_scales: int = spec(1, 8)
    kernel_size: int = spec(1)
    dense_layers: int = spec(0)
    dense_width: int = spec(1)
    dense_out: int = spec(0)
    upper_layers: int = spec(0)
    upper_channels: int = spec(1)
    n_bumps: int = spec(1)
    bump_width: float = spec(0.0, open_low=True)
    activation: str = spec(choices=ACTIVATIONS)
    readout_init: float = spec(0.0)

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.conv_layers == 0 and self.dense_out == 0:
            yield "conv_layers", "needs a convolutional (conv_layers > 0) or a dense (dense_out > 0) pathway"
        if self.kernel_size % 2 == 0:
            yield "kernel_size", f"must be odd, got {self.kernel_size}"

    def coarsest_scale(self) -> int:
        """Image sides must be multiples of this: 2^(n_scales − 1) with a conv pathway, else 1."""
        return 2 ** (self.n_scales - 1) if self.conv_layers else 1


@dataclass(frozen=True)
class EvalConfig(Section):
    """Holdout evaluation of K and the samples drawn for figures."""
    n_repeats: int = spec(1)
    batch_size: int = spec(1)
    n_samples: int = spec(1)
    seed: int = spec(0)


@dataclass(frozen=True)
class LikelihoodConfig(Section):
    """The importance-weighted log-likelihood L_k (Paper: Eq. 9; dpm/estimate/likelihood.py) on a seeded
    subset of the holdout, and the per-t terms of K on another: L_k for k = 1, 10, …, ``max_k``
    (powers of ten) from a pool of ``n_trajectories`` forward trajectories per example, split into
    disjoint groups of k; K on the same subset from ``n_repeats`` draws per example. The subset
    comes from ``subset_seed``, the estimators' noise from ``seed``."""
    max_k: int = spec(1)
    n_trajectories: int = spec(1)
    n_examples: int = spec(1)
    n_repeats: int = spec(1)
    batch_size: int = spec(1)
    kl_examples: int = spec(1)
    kl_repeats: int = spec(1)
    subset_seed: int = spec(0)
    seed: int = spec(0)

    def problems(self) -> Iterator[tuple[str, str]]:
        if 10 ** round(math.log10(self.max_k)) != self.max_k:
            yield "max_k", f"must be a power of ten (1, 10, 100, …), got {self.max_k}"
        elif self.n_trajectories % self.max_k:
            yield "n_trajectories", f"must be a multiple of max_k ({self.max_k}), got {self.n_trajectories}"

    def ks(self) -> tuple[int, ...]:
        """k = 1, 10, …, max_k."""
        return tuple(10 ** i for i in range(round(math.log10(self.max_k)) + 1))


@dataclass(frozen=True)
class GaussianLimitConfig(Section):
    """The best K of Gaussian reverse steps with exact moments (dpm/estimate/limits.py): Monte Carlo over a
    seeded subset of ``n_examples`` holdout points (``subset_seed``), ``n_repeats`` x_t per t and
    point (``seed``), the posterior over the data by quadrature on ``n_nodes`` nodes."""
    n_examples: int = spec(1)
    n_repeats: int = spec(1)
    n_nodes: int = spec(2)
    batch_size: int = spec(1)
    subset_seed: int = spec(0)
    seed: int = spec(0)


@dataclass(frozen=True)
class BinomialLimitConfig(Section):
    """The best K of factorised (per-bit) reverse steps (dpm/estimate/limits.py): exact posterior over the
    data's distinct sequences, Monte Carlo over ``n_repeats`` x_t per t and sequence (``seed``)."""
    n_repeats: int = spec(1)
    seed: int = spec(0)


@dataclass(frozen=True)
class TF32Config(Section):
    """TensorFloat-32 on a CUDA device (``dpm.base.device.set_tf32``) for float32 matrix products
    (``matmul``) and cuDNN convolutions (``conv``); false: full float32. No effect on the CPU."""
    matmul: bool = spec()
    conv: bool = spec()
