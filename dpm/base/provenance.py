"""Where a number came from: the git commit of the code that computed it, and the device and
software it was computed with."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from dpm.base import device as devices

if TYPE_CHECKING:
    import torch


def provenance(device: torch.device) -> dict:
    """``computed_on`` and the ``git_commit``: where a number came from."""
    return {**computed_on(device), "git_commit": git_commit()}


def computed_on(device: torch.device) -> dict:
    """What every metrics file and model file the stages write says of what its numbers were
    computed on: ``device`` (``dpm.base.device.describe``) and ``environment`` (``dpm.base.device.environment``:
    versions, float32 precision). The same for every run on one machine, so the records other
    stages read carry it; the git commit, which an edit changes without changing a number, goes
    to the stage's provenance file instead (``dpm.base.stages.write_provenance``)."""
    return {"device": devices.describe(device), "environment": devices.environment(device)}


RUN_FROM = ("dpm", "pipeline", "params.yaml")
"""What a stage's numbers follow from, besides its data: the code and the values it ran with."""


def git_commit() -> str:
    """The commit of the code that ran, with ``-dirty`` if the code (dpm/, pipeline/) or params.yaml
    differ from it (a file edited, staged, added or not yet committed); ``unknown`` outside a git
    checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        # --no-optional-locks: no refresh of the index, whose lock would make a concurrent job's
        # `git add` (DVC's autostage) fail
        dirty = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=all", "--",
                                *RUN_FROM], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def fingerprint(*parts: object) -> str:
    """A short hash of JSON-able parts (configuration sections, digests)."""
    text = json.dumps([dataclasses.asdict(p) if dataclasses.is_dataclass(p) else p for p in parts], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
