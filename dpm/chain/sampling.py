"""Sampling the reverse process, for any model whose process has the common interface."""

from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from dpm.core import seeds
from dpm.core.model import DiffusionModel
from dpm.chain.posterior import Unconditioned, posterior_sample, posterior_trajectory

UNCONDITIONED = Unconditioned()


def reverse_trajectory(model: DiffusionModel, shape: tuple[int, ...], generator: torch.Generator | None = None,
                       device: torch.device | str = "cpu", final_mean: bool = False) -> Iterator[tuple[int, Tensor]]:
    """Yield (t, x_t) for t = T, T−1, …, 0 along one run of the reverse chain: the posterior
    chain with r ≡ 1 (``dpm.chain.posterior``).

    x_T ~ π; x_{t−1} ~ p(x_{t−1}|x_t) for t = T..2; x_0 ~ T_π(x_0|x_1; β_1), the last
    step tied to the forward kernel (``final_step``; its mean with ``final_mean``).
    Paper: Eq. 5, App. B.2.
    """
    return posterior_trajectory(model, UNCONDITIONED, shape, generator, device, final_mean)


def final_step(process, x1: Tensor, generator: torch.Generator | None = None, mean: bool = False) -> Tensor:
    """x_0 ~ T_π(x_0|x_1; β_1) = N(x_1√(1−β_1), β_1 I), the last reverse step, tied to the
    forward kernel; with ``mean``, its mean x_1√(1−β_1) (no noise drawn). Paper: App. B.2.

    The mean is defined for Gaussian diffusion only: a binary step has no binary mean.
    """
    return UNCONDITIONED.last_step(process, x1, None if mean else process.noise_like(x1, generator))


def sample(model: DiffusionModel, shape: tuple[int, ...], generator: torch.Generator | None = None,
           device: torch.device | str = "cpu", final_mean: bool = False) -> Tensor:
    """x_0 ~ p(x_0): the end of ``reverse_trajectory``. Paper: Eq. 5."""
    return posterior_sample(model, UNCONDITIONED, shape, generator, device, final_mean)


def shard_device(device: torch.device, shard: int) -> torch.device:
    """Where shard ``shard`` of a sample set is drawn: GPU shard mod (visible GPUs) on CUDA, so
    shards run side by side spread over the GPUs; ``device`` itself on the CPU. The batches of
    a set are the same on any GPU of one model (their seeds do not depend on the device)."""
    if device.type != "cuda":
        return device
    return torch.device("cuda", shard % torch.cuda.device_count())


def sample_batch(model: DiffusionModel, batch: int, n_samples: int, batch_size: int, n_dims: int, seed: int,
                 device: torch.device | str = "cpu", final_mean: bool = False) -> Tensor:
    """Rows b·batch_size .. of a set of n_samples samples of p(x_0), b = ``batch``, drawn from
    their own seed ``seeds.mixed_seed(seed, b)``: the set is the same whichever process draws which
    batch. Returns (rows, n_dims), the last batch possibly short. ``final_mean``: see
    ``final_step`` (x_1 is the same either way: the final step draws last)."""
    if not 0 <= batch * batch_size < n_samples:
        raise ValueError(f"batch {batch} is outside the set of {n_samples} samples drawn {batch_size} at a time")
    rows = min(batch_size, n_samples - batch * batch_size)
    generator = torch.Generator(device=device).manual_seed(seeds.mixed_seed(seed, batch))
    return sample(model, (rows, n_dims), generator, device, final_mean)
