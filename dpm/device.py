"""Which device runs the numbers: CUDA when available, else the CPU; params.yaml can override."""

from __future__ import annotations

import torch


def resolve(name: str) -> torch.device:
    """``auto`` → CUDA if available else CPU; ``cpu``; ``cuda`` (an error if there is none)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was asked for in params.yaml, but torch sees no CUDA device")
    return torch.device(name)


def describe(device: torch.device) -> str:
    """A human-readable name for result tables: the GPU model, or the CPU and its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform
    return f"CPU {platform.machine()} ({torch.get_num_threads()} threads)"
