"""What every stage shares: the validated params, a clean error exit, provenance."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from dpm.base import config as cfg
from dpm.base import workers
from dpm.base.atomic import atomic_write_text
from dpm.base.provenance import computed_on, git_commit, provenance  # noqa: F401  (re-exported: the stages record them)

PARAMS = Path("params.yaml")


class StageError(RuntimeError):
    """A problem a stage found in its inputs; the message says which and what to do."""


def run(main: Callable[[list[str] | None], None]) -> None:
    """Run a stage's ``main``; a known failure prints ``error: ...`` and exits with status 1.

    Freed memory is kept for reuse (``dpm.base.device.keep_freed_memory``).
    """
    from dpm.base.device import keep_freed_memory
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    keep_freed_memory()
    try:
        main(None)
    except (cfg.ConfigError, StageError, RuntimeError, OSError, ValueError) as error:
        if not _left_for_the_stage(str(error)):
            print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    _record_imports()


def _left_for_the_stage(message: str) -> bool:
    """In a training worker started by torchrun: the error left for the stage that started it,
    which prints each worker's error once (``dpm.run.distributed.relaunch``)."""
    return workers.leave_error(message)


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


def load_config(overrides: dict | None = None) -> cfg.Config:
    """params.yaml with dotted ``overrides`` (a study's ``{"mnist.train.seed": 1}``), validated as a
    whole (raises ConfigError naming the key), ``threads`` checked against this machine's cores;
    torch's CPU threads set to it, whichever tool runs the stage (Snakemake also schedules the
    stage as that many cores)."""
    import torch
    config = cfg.load(PARAMS, overrides)
    problem = threads_problem(config.threads)
    if problem:
        raise cfg.ConfigError(f"threads: {problem}")
    torch.set_num_threads(config.threads)
    return config


def threads_problem(threads: int) -> str | None:
    """What is wrong with running ``threads`` CPU threads here: more than the cores this process
    may use (its CPU affinity: a cluster job's allocation, ``taskset``); None if nothing."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if threads <= cores:
        return None
    return (f"{threads}, but this machine gives this process {cores} core{'s' if cores > 1 else ''}: "
            f"set threads to at most {cores}")


def provenance_option(parser) -> None:
    """The ``--provenance FILE`` option of a stage that writes records (``write_provenance``)."""
    parser.add_argument("--provenance", type=Path, metavar="FILE",
                        help="where to write the git commit and the timings of this run (no stage reads it)")


def write_provenance(path: Path | None, **seconds: float) -> None:
    """A stage's provenance file (``--provenance``, results/provenance/<stage>/ in dvc.yaml): the
    git commit of the code that ran and the run's wall-clock ``seconds``. Two runs that compute
    the same numbers may differ in these alone, so they are kept out of the records other stages
    read: those stay the same bytes, and an identical rerun reruns nothing below it. No stage
    depends on this file. Nothing is written without a path (a stage run by hand)."""
    if path is not None:
        write_json(path, {"git_commit": git_commit(), **{name: round(value, 1) for name, value in seconds.items()}})


def write_json(path: str | Path, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
