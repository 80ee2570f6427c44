"""Stage ``check_params``: params.yaml validated, and checked against this machine, before any
other stage can delete an output.

Usage: python -m pipeline.check_params [OUT_FILE]

Every stage depends on OUT_FILE, and this stage depends on the whole of params.yaml, so any edit
of the file (a typo in a key no stage reads included) is checked first: DVC runs stages in
dependency order and stops at the first failure, before it removes the outputs of the stages
below. OUT_FILE's content never changes while the file is valid, so a valid edit reruns only the
stages whose own params changed. Without OUT_FILE it only checks (the Snakefile runs it so when
it is parsed, before any job).

The machine: ``threads`` above this machine's cores, ``device: cuda`` where torch sees no GPU,
``processes`` above the visible GPUs or 0 on the CPU are refused here too (``machine_problems``),
except where params.yaml asks a scheduler for GPUs (``resources.*.gpus`` > 0): the stages then run
as jobs on other machines (a cluster's GPU nodes), and a login node without GPUs must still submit
them. Each stage makes the checks of its own machine as it starts (``stages.load_config``; the
train stage the GPU ones), before it touches an output.
"""

from __future__ import annotations

import argparse
import functools
import os
from pathlib import Path
from typing import Iterator

from dpm.base import config as cfg
from dpm import studies
from dpm.base.atomic import atomic_write_text
from workflow import cluster
from dpm.base import stages

VERDICT = "params.yaml is valid\n"
BEFORE_EXP_ENV = "DPM_PARAMS_BEFORE_EXP"  # set by workflow/hydra_plugins/dpm_params_before_exp.py


def put_back_params_before_exp(check):
    """``check``; when it refuses params.yaml inside ``dvc exp run -S``, the file is put back as
    it was before DVC wrote its composition over it (a refused experiment loses no hand edit).

    workflow/hydra_plugins/dpm_params_before_exp.py copied the file aside as DVC began to compose
    and named the copy in ``BEFORE_EXP_ENV``, which only that run's stages inherit.
    """
    @functools.wraps(check)
    def checked(argv: list[str] | None) -> None:
        try:
            check(argv)
        except cfg.ConfigError as error:
            before = Path(os.environ.get(BEFORE_EXP_ENV) or "")
            if not before.is_file():
                raise
            atomic_write_text(stages.PARAMS, before.read_text())
            raise cfg.ConfigError(f"{error} (params.yaml is back as it was before `dvc exp run`)") from None
    return checked


@put_back_params_before_exp
def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_file", type=Path, nargs="?")
    args = parser.parse_args(argv)
    config, resources = load(stages.PARAMS)
    for key, problem in machine_problems(config, resources):
        raise cfg.ConfigError(f"{key}: {problem}")
    if args.out_file is not None and (not args.out_file.exists() or args.out_file.read_text() != VERDICT):
        atomic_write_text(args.out_file, VERDICT)


def load(path: Path) -> tuple[cfg.Config, cluster.Resources]:
    """The whole of params.yaml validated: what every stage reads (``dpm.base.config.load``; not
    stages.load_config: torch only where a GPU must be counted), the cluster's ``resources`` and
    the studies' sections (ConfigError naming the key)."""
    raw = cfg.read(path)
    config = cfg.build_config(raw)
    resources = cluster.load_resources(raw, config.device)
    studies.of(raw, config)
    return config, resources


def machine_problems(config: cfg.Config, resources: cluster.Resources) -> Iterator[tuple[str, str]]:
    """(key, what is wrong) for each value this machine cannot run; none where params.yaml asks a
    scheduler for GPUs (the checks are then the jobs' own, module docstring). torch is imported
    only where GPUs must be counted: ``device: cuda``, or ``auto`` with ``processes`` other than 1."""
    if any(getattr(resources, kind).gpus for kind in ("default", "train", "sample")):
        return
    problem = stages.threads_problem(config.threads)
    if problem:
        yield "threads", problem
    if config.device == "cpu" and config.processes or config.device == "auto" and config.processes == 1:
        return  # nothing to count
    from dpm.base import device as devices
    from dpm.run import distributed
    try:
        distributed.n_processes(config.processes, devices.resolve(config.device, config.tf32))
    except cfg.ConfigError as error:
        yield "processes", str(error).removeprefix("processes: ")
    except RuntimeError as error:  # devices.resolve: no CUDA device
        yield "device", str(error).removeprefix("device: ")


if __name__ == "__main__":
    stages.run(main)
