"""Data-parallel training with PyTorch's own engine: torchrun starts the processes, one per GPU
(NCCL) or several on the CPU (gloo), and DistributedDataParallel averages their gradients.

No orphans: torchrun ends with the stage that started it and the workers with torchrun, however
either ends (``relaunch``); a worker's error reaches the stage, which prints each error once.

Each process (rank r of R) draws its own batch from its own seed stream, so one step sees
R × batch_size examples and its gradient is that of the mean of the R ranks' losses. Rank 0 draws
the stream a single process draws (``rank_seed``): one process is the plain training loop,
bit for bit. Outside torchrun (no ``WORLD_SIZE`` in the environment) every function here is the
single-process case: rank 0 of 1, no communication.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

from dpm.core import seeds
from dpm.base import workers
from dpm.base.params import ConfigError


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


_PARENT = "DPM_PARENT_PID"
"""The process that started this one through ``relaunch``: the stage (for torchrun), torchrun (for
a worker)."""
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def relaunch(n: int, module: str, argv: list[str], threads: int) -> str | None:
    """Run ``python -m module argv`` as ``n`` processes under torchrun on this machine.

    Each worker sets its own threads (``threads``; torchrun would set 1). Nothing outlives this
    process: SIGTERM, SIGINT or SIGHUP sent to it is passed to torchrun, which stops the workers,
    and it waits for them; if it is killed outright (SIGKILL), Linux sends torchrun SIGTERM, and a
    worker whose torchrun ends gets SIGKILL (``PR_SET_PDEATHSIG``, set by each for itself).

    Returns:
        None if every worker succeeded; else one line: the workers' errors, each said once
        (``dpm.base.workers.leave_error``; ``rank r: …`` where ranks differ), or how a worker ended.
    """
    with tempfile.TemporaryDirectory(prefix="dpm-workers-") as errors:
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads)),
               _PARENT: str(os.getpid()), workers.ERRORS: errors}
        command = [sys.executable, "-m", __name__, "--standalone", f"--nproc-per-node={n}", "-m", module, *argv]
        process = subprocess.Popen(command, env=env)
        received: list[int] = []

        def forward(signum: int, _frame) -> None:
            received.append(signum)
            process.send_signal(signum)
        previous = {s: signal.signal(s, forward) for s in _FORWARDED}
        try:
            status = process.wait()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        if received:
            return f"stopped by {signal.Signals(received[0]).name}: the {n} training processes were stopped too"
        return None if status == 0 else _failure(Path(errors), n, status)


def _failure(errors: Path, n: int, status: int) -> str:
    """One line for a failed torchrun: the workers' errors, each once, else torchrun's account."""
    said = {int(f.name.split("-")[1]): f.read_text() for f in errors.glob("rank-*")}
    if said:
        messages = list(dict.fromkeys(said.values()))
        return messages[0] if len(messages) == 1 else "; ".join(f"rank {r}: {m}" for r, m in sorted(said.items()))
    account = errors / "torchrun"
    return account.read_text() if account.exists() else f"training with {n} processes failed (exit status {status})"


def _die_with_parent(sig: signal.Signals) -> None:
    """Have Linux send ``sig`` to this process when the process that started it (``_PARENT``) ends;
    end at once if it already has. Nothing elsewhere than Linux, or outside ``relaunch``."""
    parent = os.environ.get(_PARENT)
    if parent is None or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(1, int(sig), 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != int(parent):
        os.kill(os.getpid(), sig)


def _torchrun(argv: list[str]) -> None:
    """torchrun (``torch.distributed.run``) as ``relaunch`` runs it: ended with the stage, its
    workers ended with it, and on a worker's failure one line left for the stage instead of
    torchrun's traceback and warnings."""
    _die_with_parent(signal.SIGTERM)  # torchrun stops its workers on SIGTERM
    os.environ[_PARENT] = str(os.getpid())  # the workers' parent
    logging.disable(logging.ERROR)  # torchrun's account of a failure: the one line below instead
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run
    try:
        run(parse_args(argv))
    except ChildFailedError as failed:
        ended = [f"rank {rank} was killed by {f.signal_name()}" if f.exitcode < 0
                 else f"rank {rank} exited with status {f.exitcode}" for rank, f in sorted(failed.failures.items())]
        Path(os.environ[workers.ERRORS], "torchrun").write_text("; ".join(ended))
        sys.exit(1)


def setup(device: torch.device) -> torch.device:
    """Join the process group if torchrun started us; returns this rank's device (GPU
    ``LOCAL_RANK`` on CUDA). A plain process gets ``device`` back unchanged."""
    if not launched():
        return device
    _die_with_parent(signal.SIGKILL)  # torchrun starts it in a session of its own, out of our signals' reach
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
    return seed if rank == 0 else seeds.mixed_seed(seed, rank)


def this_rank_seed(seed: int) -> int:
    """The training seed of the rank this process is."""
    return rank_seed(seed, rank())


def rank_generator(seed: int, device: torch.device) -> torch.Generator:
    """This rank's training generator on ``device``, seeded from ``this_rank_seed(seed)``."""
    return torch.Generator(device=device).manual_seed(this_rank_seed(seed))


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


if __name__ == "__main__":  # relaunch's torchrun
    _torchrun(sys.argv[1:])
