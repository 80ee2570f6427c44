"""What every stage shares: the validated params, a clean error exit, provenance."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from dpm import config as cfg
from dpm.atomic import atomic_write_text
from dpm.provenance import git_commit, provenance  # noqa: F401  (re-exported: every stage records them)

PARAMS = Path("params.yaml")


class StageError(RuntimeError):
    """A problem a stage found in its inputs; the message says which and what to do."""


def run(main: Callable[[list[str] | None], None]) -> None:
    """Run a stage's ``main``; a known failure prints ``error: ...`` and exits with status 1.

    Freed memory is kept for reuse (``dpm.device.keep_freed_memory``).
    """
    from dpm.device import keep_freed_memory
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    keep_freed_memory()
    try:
        main(None)
    except (cfg.ConfigError, StageError, RuntimeError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    _record_imports()


def _record_imports() -> None:
    """With ``DPM_IMPORTS_LOG`` set, append the stage's command line and the project files it
    imported (lazy imports included) as a JSON line: the tests check dvc.yaml's deps against it."""
    log_file = os.environ.get("DPM_IMPORTS_LOG")
    if not log_file:
        return
    root = Path.cwd().resolve()
    files = {Path(m.__file__).resolve() for m in list(sys.modules.values()) if getattr(m, "__file__", None)}
    ours = sorted(f.relative_to(root).as_posix() for f in files if f.is_relative_to(root))
    with open(log_file, "a") as f:
        f.write(json.dumps({"argv": sys.argv[1:], "module": sys.modules["__main__"].__spec__.name,
                            "files": ours}) + "\n")


def load_config() -> cfg.Config:
    """params.yaml, validated (raises ConfigError naming the key); torch's CPU threads set to its
    ``threads``, whichever tool runs the stage (Snakemake also schedules the stage as that many cores)."""
    import torch
    config = cfg.load(PARAMS)
    torch.set_num_threads(config.threads)
    return config


def fingerprint(*parts: object) -> str:
    """A short hash of JSON-able parts (configuration sections, data digests)."""
    text = json.dumps([asdict(p) if hasattr(p, "__dataclass_fields__") else p for p in parts], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_json(path: str | Path, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
