"""Synthetic data of a dataset's shape, from its params.yaml section alone: what a model is built
and timed on without reading its data (the benchmark, the GPU check, memory bounds, tests)."""

from __future__ import annotations

import torch
from torch import Tensor

from dpm.base import registry
from dpm.datasets import heartbeat
from dpm.data.scaling import Scaling
from dpm.data.split import DataInfo


def data_info(name: str, section) -> DataInfo:
    """What ``models.build`` and the objective need of a dataset's data, from its section alone."""
    data = section.data
    if registry.get(name).is_image:
        n_colours, height, width = data.image_shape()
        # model units as they are: unit scale, no dequantisation noise
        return DataInfo(label=name, unit="bits/pixel", n_dims=n_colours * height * width, n_units=height * width,
                        scaling=Scaling(0.0, 1.0), image_shape=(n_colours, height, width), dequantisation="none")
    if registry.get(name).model == "sigmoid_mlp":
        return DataInfo(label=name, unit="bits/seq", n_dims=data.n_bits, p_pi=heartbeat.mean_activity(data.n_bits,
                                                                                                      data.period))
    return DataInfo(label=name, unit="bits", n_dims=2)


def draw(info: DataInfo, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """(n, D) data as stored: bits at rate p_π (binary models), else standard normal values."""
    shape = (n, info.n_dims)
    if info.p_pi is not None:
        return torch.bernoulli(torch.full(shape, info.p_pi, device=device), generator=generator)
    return torch.randn(shape, generator=generator, device=device)
