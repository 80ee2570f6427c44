"""Which device runs the numbers (CUDA when available, else the CPU; params.yaml can override),
in what float32 precision, and what a record says of it (``environment``)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # torch is imported where it is used: the params check (check_params) needs none of it
    import torch

    from dpm.base.sections import TF32Config

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def resolve(name: str, tf32: TF32Config | None = None) -> torch.device:
    """``auto`` → CUDA if available else CPU; ``cpu``; ``cuda`` (an error if there is none).

    On CUDA it also fixes the float32 precision (``set_tf32``): params.yaml's ``tf32`` section
    where the stage passes it, else full float32; never torch's defaults (convolutions in TF32).
    """
    import torch
    if name == "cuda" and not torch.cuda.is_available():
        why = "this torch is a CPU build" if torch.version.cuda is None else "no GPU is visible to it"
        raise RuntimeError(f"device: cuda was asked for in params.yaml, but torch sees no CUDA device ({why}): "
                           f"set device to auto or cpu, or run where a GPU is")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        set_tf32(tf32)
    return torch.device(name)


def set_tf32(tf32: TF32Config | None = None) -> None:
    """TF32 (10-bit mantissa) on CUDA for float32 matrix products if ``tf32.matmul`` and for cuDNN
    convolutions if ``tf32.conv``; full float32 (torch's ``ieee``) otherwise, and for both when
    ``tf32`` is None. Set through torch's ``fp32_precision`` flags, which leave the CPU's alone."""
    import torch
    torch.backends.cuda.matmul.fp32_precision = "tf32" if tf32 is not None and tf32.matmul else "ieee"
    torch.backends.cudnn.conv.fp32_precision = "tf32" if tf32 is not None and tf32.conv else "ieee"


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """Full float32 matrix products and convolutions inside the block (or the decorated function),
    whatever ``set_tf32`` set; the settings before it afterwards."""
    import torch
    flags = (torch.backends.cuda.matmul, torch.backends.cudnn.conv)
    before = [flag.fp32_precision for flag in flags]
    set_tf32(None)
    try:
        yield
    finally:
        for flag, precision in zip(flags, before):
            flag.fp32_precision = precision


def environment(device: torch.device) -> dict:
    """What numbers computed on ``device`` depend on besides the code, the params and the data:
    torch's version, the device (``describe``) and, on CUDA, the CUDA and cuDNN versions and the
    float32 precision in force for matrix products and convolutions (torch's ``fp32_precision``:
    ``ieee`` is full float32, ``tf32`` TF32); None for what does not apply on the CPU."""
    import torch
    cuda = device.type == "cuda"
    precision = {"matmul": torch.backends.cuda.matmul.fp32_precision,
                 "conv": torch.backends.cudnn.conv.fp32_precision}
    return {"torch": str(torch.__version__), "device": describe(device),  # plain str: weights_only loading
            "cuda": torch.version.cuda if cuda else None,
            "cudnn": torch.backends.cudnn.version() if cuda else None,
            "fp32_precision": precision if cuda else None}


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
