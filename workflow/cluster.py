"""What a stage asks of a cluster scheduler: params.yaml's ``resources`` as Snakemake resources.

The Snakefile gives every generated rule ``resources: **cluster.resources(stage.resources, params)``,
the stage's kind read from its ``meta`` in the pipeline spec;
Snakemake's SLURM executor (profiles/slurm) turns ``mem_mb`` into ``--mem``, ``runtime``
(minutes) into ``--time`` and ``gpu`` into ``--gpus``. Local runs ignore them. A train stage that
asks for GPUs asks for one per training process (params.yaml ``processes``; with 0, one per
visible GPU, the job gets ``resources.train.gpus`` and uses them all).

The section's types are here (``Resources``), where it is read: the Snakefile and the params
check (pipeline/check_params.py, the gate) alone depend on this module; dpm/base/config.py's ``load``
requires the key and leaves its value to ``load_resources``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Iterator

from dpm.base.params import ConfigError, Section, build, spec


@dataclass(frozen=True)
class Request(Section):
    """What one stage asks of a cluster scheduler."""
    mem_mb: int = spec(1)
    runtime: int = spec(1)  # minutes
    gpus: int = spec(0)


@dataclass(frozen=True)
class Resources(Section):
    """Requests by kind of stage: ``train``, ``sample`` (from a trained model), ``default``."""
    default: Request
    train: Request
    sample: Request

    def problems_with(self, device: str) -> Iterator[tuple[str, str]]:
        """(key, what is wrong) where the requests do not fit params.yaml's ``device``."""
        for kind in (field.name for field in fields(self)):
            gpus = getattr(self, kind).gpus
            if gpus and device != "cuda":
                yield "device", (f"resources.{kind}.gpus is {gpus}: a job given a GPU must use it, so device "
                                 f"must be cuda (got {device!r}; auto would fall back to the CPU)")


def load_resources(params: dict[str, Any], device: str) -> Resources:
    """params.yaml's ``resources`` from its raw mapping (``dpm.base.config.read``), checked against
    its ``device``; ConfigError naming the key."""
    built = build(Resources, params["resources"], "resources")
    for key, problem in built.problems_with(device):
        raise ConfigError(f"{key}: {problem}")
    return built


KINDS = tuple(field.name for field in fields(Resources))
"""A stage's kind, its ``meta: {resources: <kind>}`` in the pipeline spec (``default`` without it;
:attr:`workflow.dvc_bridge.StageSpec.resources`): ``train`` fits a model, ``sample`` runs one."""


def resources(kind: str, params: dict[str, Any]) -> dict[str, int]:
    """Snakemake resources of a stage of ``kind`` (:data:`KINDS`) from the parsed params.yaml
    (validated by check_params).

    Returns:
        ``mem_mb`` (MB) and ``runtime`` (minutes), plus ``gpu`` (the SLURM executor's GPU count)
        only when the entry asks for GPUs: a job asks for none rather than for zero.
    """
    if kind not in KINDS:
        raise ValueError(f"meta: {{resources: {kind}}}: expected one of {', '.join(KINDS)}")
    if "resources" not in params:  # a pipeline without the section (tests/test_dvc_bridge.py's)
        return {}
    request = params["resources"][kind]
    asked = {"mem_mb": int(request["mem_mb"]), "runtime": int(request["runtime"])}
    if request["gpus"]:
        asked["gpu"] = int(request["gpus"])
        if kind == "train" and params.get("processes", 0) > 0:
            asked["gpu"] = int(params["processes"])
    return asked


def threads(kind: str, params: dict[str, Any]) -> int:
    """Cores a stage of ``kind`` occupies (Snakemake's ``threads``): params.yaml's ``threads``, times the
    training processes of a train stage (each runs with ``threads``; 0 means one per GPU, one on
    a machine without)."""
    per_process = int(params.get("threads", 1))
    if kind == "train" and int(params.get("processes", 1)) > 1:
        return per_process * int(params["processes"])
    return per_process
