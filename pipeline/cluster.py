"""What a stage asks of a cluster scheduler: params.yaml's ``resources`` as Snakemake resources.

The Snakefile gives every generated rule ``resources: **cluster.resources(stage, params)``;
Snakemake's SLURM executor (profiles/slurm) turns ``mem_mb`` into ``--mem``, ``runtime``
(minutes) into ``--time`` and ``gpu`` into ``--gpus``. Local runs ignore them.
"""

from __future__ import annotations

from typing import Any

TRAIN_STAGES = frozenset({"train"})
"""Stages that fit a model: ``resources.train``."""
SAMPLE_STAGES = frozenset({"evaluate", "parzen_samples", "toy_figure", "image_figure", "posterior_figure",
                           "figure5_full"})
"""Stages that run a trained model (they depend on ``models/<dataset>.pt``): ``resources.sample``.
tests/test_slurm.py checks this set against dvc.yaml."""


def kind(stage: str) -> str:
    """The ``resources`` entry of DVC stage ``stage`` (``train@mnist``, ``parzen_samples@shard0``,
    ``table1``): ``train``, ``sample`` or ``default``."""
    group = stage.split("@", 1)[0]
    if group in TRAIN_STAGES:
        return "train"
    if group in SAMPLE_STAGES:
        return "sample"
    return "default"


def resources(stage: str, params: dict[str, Any]) -> dict[str, int]:
    """Snakemake resources of ``stage`` from the parsed params.yaml (validated by check_params).

    Returns:
        ``mem_mb`` (MB) and ``runtime`` (minutes), plus ``gpu`` (the SLURM executor's GPU count)
        only when the entry asks for GPUs: a job asks for none rather than for zero.
    """
    if "resources" not in params:  # a pipeline without the section (tests/test_dvc_bridge.py's)
        return {}
    request = params["resources"][kind(stage)]
    asked = {"mem_mb": int(request["mem_mb"]), "runtime": int(request["runtime"])}
    if request["gpus"]:
        asked["gpu"] = int(request["gpus"])
    return asked
