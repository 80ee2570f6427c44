"""What every stage shares: the validated params, a clean error exit, provenance."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from dpm import config as cfg
from dpm.atomic import atomic_write_text

PARAMS = Path("params.yaml")


class StageError(RuntimeError):
    """A problem a stage found in its inputs; the message says which and what to do."""


def run(main: Callable[[list[str] | None], None]) -> None:
    """Run a stage's ``main``; a known failure prints ``error: ...`` and exits with status 1.

    ``DPM_THREADS`` (set by the Snakefile to the rule's threads) caps torch's CPU threads.
    Freed memory is kept for reuse (``dpm.device.keep_freed_memory``).
    """
    from dpm.device import keep_freed_memory
    from dpm.train import TrainingDiverged
    keep_freed_memory()
    threads = os.environ.get("DPM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        import torch
        torch.set_num_threads(int(threads))
    try:
        main(None)
    except (cfg.ConfigError, StageError, TrainingDiverged, RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


def load_config() -> cfg.Config:
    """params.yaml, validated (raises ConfigError naming the key)."""
    return cfg.load(PARAMS)


def fingerprint(*parts: object) -> str:
    """A short hash of JSON-able parts (configuration sections, data digests)."""
    text = json.dumps([asdict(p) if hasattr(p, "__dataclass_fields__") else p for p in parts], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def source_digest() -> str:
    """sha256 over the library's source files: a checkpoint written by other code is not resumed."""
    import dpm
    files = sorted(Path(dpm.__file__).parent.rglob("*.py"))
    return hashlib.sha256(b"".join(file_digest(f).encode() for f in files)).hexdigest()


def git_commit() -> str:
    """The commit of the code that ran, with ``-dirty`` if tracked files differ from it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "dpm", "pipeline"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def write_json(path: str | Path, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
