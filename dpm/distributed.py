"""Data-parallel training with PyTorch's own engine: torchrun starts the processes, one per GPU
(NCCL) or several on the CPU (gloo), and DistributedDataParallel averages their gradients.

Each process (rank r of R) draws its own batch from its own seed stream, so one step sees
R × batch_size examples and its gradient is that of the mean of the R ranks' losses. Rank 0 draws
the stream a single process draws (``rank_seed``): one process is the plain training loop,
bit for bit. Outside torchrun (no ``WORLD_SIZE`` in the environment) every function here is the
single-process case: rank 0 of 1, no communication.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from dpm.config import ConfigError


def n_processes(requested: int, device: torch.device) -> int:
    """params.yaml's ``processes`` on this machine: 0 is one per visible GPU.

    Checked here, where the train stage starts on the machine that trains, not by check_params,
    which runs where the pipeline is started (a cluster's login node may have no GPU).

    Raises:
        ConfigError: on CUDA, more processes than visible GPUs (each process takes one); on the
            CPU, 0 (there are no GPUs to count).
    """
    if device.type != "cuda":
        if not requested:
            raise ConfigError("processes: 0 is one training process per visible GPU, but the device is the CPU: "
                              "set processes to a number (1: a plain process)")
        return requested
    visible = torch.cuda.device_count()
    if requested > visible:
        raise ConfigError(f"processes: {requested}, but {visible} GPU{'' if visible == 1 else 's'} visible "
                          f"(one process per GPU): set processes to at most {visible}, or 0 for one per visible GPU")
    return requested or visible


def launched() -> bool:
    """Whether this process is a worker started by torchrun."""
    return "WORLD_SIZE" in os.environ


def relaunch(n: int, module: str, argv: list[str], threads: int) -> int:
    """Run ``python -m module argv`` as ``n`` processes under torchrun on this machine; returns
    its exit status. Each worker sets its own threads (``threads``; torchrun would set 1)."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads))}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
               "-m", module, *argv]
    return subprocess.run(command, env=env).returncode


def setup(device: torch.device) -> torch.device:
    """Join the process group if torchrun started us; returns this rank's device (GPU
    ``LOCAL_RANK`` on CUDA). A plain process gets ``device`` back unchanged."""
    if not launched():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def finish() -> None:
    """Leave the process group (after every rank has reached this point)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def rank_seed(seed: int, rank: int) -> int:
    """The training seed of ``rank``: ``seed`` itself for rank 0 (a single process is unchanged),
    distinct well-mixed streams (numpy's SeedSequence) for the others."""
    return seed if rank == 0 else mixed_seed(seed, rank)


def mixed_seed(*keys: int) -> int:
    """A seed for the stream named by ``keys``: distinct, well-mixed streams for distinct keys
    (numpy's SeedSequence)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1, dtype=np.uint64)[0] >> 1)


class _Loss(nn.Module):
    """The training loss as a module, so DistributedDataParallel sees it as its forward."""

    def __init__(self, model: nn.Module, loss: Callable[..., Tensor]):
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        return self.loss(self.model, batch, generator)


def data_parallel(model: nn.Module, loss: Callable[..., Tensor],
                  wrap: bool = False) -> Callable[[Tensor, torch.Generator], Tensor]:
    """``(batch, generator) → loss(model, batch, generator)``; with several ranks through
    DistributedDataParallel, whose backward averages the gradients over the ranks. The models'
    buffers are constant tables, so they are not broadcast at each step. ``wrap``: through
    DistributedDataParallel in a process group of one rank too (dpm/gpu_check.py on one GPU)."""
    if world_size() == 1 and not wrap:
        return functools.partial(loss, model)
    device = next(model.parameters()).device
    return nn.parallel.DistributedDataParallel(_Loss(model, loss), device_ids=[device] if device.type == "cuda" else None,
                                               broadcast_buffers=False)


def mean(value: Tensor) -> Tensor:
    """The mean of a 0-d tensor over the ranks (every rank must call it)."""
    if world_size() == 1:
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / world_size()


def minimum(value: Tensor) -> Tensor:
    """The smallest of a 0-d tensor over the ranks (every rank must call it)."""
    if world_size() == 1:
        return value
    smallest = value.clone()
    dist.all_reduce(smallest, op=dist.ReduceOp.MIN)
    return smallest


def gather(value: object) -> list[object]:
    """Every rank's ``value``, in rank order (every rank must call it)."""
    if world_size() == 1:
        return [value]
    values = [None] * world_size()
    dist.all_gather_object(values, value)
    return values


def from_rank_0(value: object) -> object:
    """Rank 0's ``value`` on every rank (every rank must call it)."""
    if world_size() == 1:
        return value
    values = [value]
    dist.broadcast_object_list(values, src=0)
    return values[0]
