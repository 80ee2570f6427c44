"""Which device runs the numbers: CUDA when available, else the CPU; params.yaml can override."""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used: the params check (check_params) needs none of it
    import torch

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def resolve(name: str) -> torch.device:
    """``auto`` → CUDA if available else CPU; ``cpu``; ``cuda`` (an error if there is none)."""
    import torch
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was asked for in params.yaml, but torch sees no CUDA device")
    return torch.device(name)


def describe(device: torch.device) -> str:
    """A human-readable name for result tables: the GPU model, or the CPU and its thread count."""
    import torch
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform
    n = torch.get_num_threads()
    return f"CPU {platform.machine()} ({n} thread{'s' if n > 1 else ''})"


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of handing it back at once.

    By default every tensor of more than a few MB is a fresh mmap, whose pages fault in again
    on each use; a reverse-chain step of the MNIST net at batch 500 allocates several of 31 MB.
    Heap allocation up to 32 MB (M_MMAP_THRESHOLD), a 2 GB trim threshold and 1 GB of top pad
    keep that memory. The benchmark at one thread (results/bench/quick-cpu-1thread*.md) measured
    MNIST training 1.6× and dead-leaves batched sampling 1.6× faster with it, MNIST batched
    sampling unchanged; at two threads the differences were within the run-to-run noise. The
    numbers are the same. Freed memory stays with the process until it ends. PyTorch's CPU
    tuning guide gets the same effect from jemalloc or tcmalloc.

    Returns:
        Whether the settings were applied (False off glibc, e.g. on macOS).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    settings = ((_M_MMAP_THRESHOLD, 32 * 2 ** 20), (_M_TRIM_THRESHOLD, 2 ** 31 - 1), (_M_TOP_PAD, 2 ** 30))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
