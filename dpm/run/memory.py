"""Memory: a lower bound on what one training step needs, worked out without allocating it, and
what the device has free, so that a batch that cannot fit is refused before training starts.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

META = torch.device("meta")


def training_step_bytes(model: nn.Module, objective, batch_size: int, n_dims: int,
                        activation_scale: float = 1.0) -> int:
    """A lower bound on the bytes one training step of ``model`` holds at once, in float32.

    When the backward pass starts, these are all alive: the parameters, their gradients and
    Adam's two moments (4 × the parameters), the batch (``batch_size`` × ``n_dims``), and every
    tensor the forward pass saved for the backward one, counted once per storage. Worked out on
    the ``meta`` device, where tensors have shapes and no data: nothing is allocated, whatever
    the batch size. ``activation_scale`` scales the saved tensors (½ where amp computes them in
    bfloat16). torch.compile may save fewer (recomputing them): no bound for a compiled net.

    Args:
        model: the model on the meta device.
        objective: its objective on the meta device (``Objective.of(..., "meta")``): the training
            loss of a batch.
    """
    own = {t.untyped_storage()._cdata for t in [*model.parameters(), *model.buffers()]}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage._cdata not in own:
            saved[storage._cdata] = storage.nbytes()
        return tensor

    batch = torch.zeros((batch_size, n_dims), device=META)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        objective.loss(model, batch)
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    return int(4 * parameters + batch.numel() * batch.element_size() + activation_scale * sum(saved.values()))


def free_bytes(device: torch.device) -> int | None:
    """The memory a new allocation can take on ``device``: a GPU's free memory; on the CPU the
    system's available memory (``MemAvailable``), or less where this process's cgroup (a cluster
    job's ``--mem``, a container) limits it. None where it cannot be told (not Linux)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    except OSError:
        return None
    available = int(meminfo["MemAvailable"].split()[0]) * 1024
    limit = _cgroup_room()
    return available if limit is None else min(available, limit)


def _cgroup_room() -> int | None:
    """The memory limit of this process's cgroup less its use (cgroup v2's ``memory.max``, v1's
    ``memory.limit_in_bytes``), None if it sets none or cannot be read."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    root = Path("/sys/fs/cgroup")
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2
            folders, files = [root / path.lstrip("/"), root], ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):  # v1; inside a cgroup namespace, the mount's root
            folders, files = [root / "memory" / path.lstrip("/"), root / "memory"], (
                "memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        for folder in folders:
            try:
                limit, used = ((folder / name).read_text().strip() for name in files)
            except OSError:
                continue
            if limit == "max" or int(limit) >= 2 ** 62:  # no limit
                return None
            return int(limit) - int(used)
    return None


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocator's refusal: CUDA's ``OutOfMemoryError``, or the CPU
    allocator's ``can't allocate memory``."""
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error))


def gib(n_bytes: float) -> str:
    """``n_bytes`` for a message: ``1.5 GiB``, ``12 MiB``."""
    return f"{n_bytes / 2 ** 30:.1f} GiB" if n_bytes >= 2 ** 30 else f"{n_bytes / 2 ** 20:.0f} MiB"
