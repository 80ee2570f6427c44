"""Where a number came from: the git commit of the code that computed it, and the device and
software it was computed with."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from dpm import device as devices

if TYPE_CHECKING:
    import torch


def provenance(device: torch.device) -> dict:
    """What every metrics file and model file the stages write says of its numbers' origin:
    ``device`` (``dpm.device.describe``), ``environment`` (``dpm.device.environment``: versions,
    float32 precision) and ``git_commit``."""
    return {"device": devices.describe(device), "environment": devices.environment(device),
            "git_commit": git_commit()}


def git_commit() -> str:
    """The commit of the code that ran, with ``-dirty`` if tracked files under dpm/ or pipeline/
    differ from it; ``unknown`` outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "dpm", "pipeline"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")
