"""Stage ``ablation``: train one ablation variant at its budget and evaluate it on the holdout.

Usage: python -m pipeline.ablations VARIANT DATA_DIR METRICS_JSON [--provenance FILE]

VARIANT names an entry of params.yaml's ``ablations.variants``; its section is its dataset's with
the dataset's ablation budget and the variant's ``set`` applied
(``dpm.studies.Studies.ablation_section``).
DATA_DIR is the dataset's split as the pipeline made it; a variant that changes ``data`` values
makes its own split, in memory, with the dataset's module (generated datasets only). K and
K − L_null in bits per example (per pixel for images) with their standard errors, the authors'
uniform-t estimate as a check, the learning curve by iteration and the full effective section go
to METRICS_JSON; the git commit and the times to the ``--provenance`` file, which no stage reads,
so an identical rerun writes the same record and the table below it does not change.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from dpm.base import device as devices, registry
from dpm.core import experiment as experiments
from dpm.run import train
from dpm import studies as study_sections
from dpm.data import split as splits
from dpm.base import stages


def variant_split(config, studies: study_sections.Studies, variant: str, data_dir: Path) -> splits.Split:
    """The data the variant trains and is evaluated on: DATA_DIR, or its own split if it changes ``data``."""
    dataset = studies.ablations.variants[variant].dataset
    data = studies.ablation_section(config, variant).data
    if data == config.section(dataset).data:
        return splits.load(data_dir)
    if registry.get(dataset).fetched:
        raise stages.StageError(f"ablation {variant}: changes {dataset}'s data, which only a generated dataset's "
                                f"variant may (its split is made in memory)")
    return registry.get(dataset).data_module().make_split(data, None)


def record(config, studies: study_sections.Studies, variant: str, split: splits.Split, metrics: dict,
           history: list[dict]) -> dict:
    """The metrics JSON of a variant: the metrics of every evaluated model (dpm/core/experiment.py) with
    what the variant is, its learning curve (by iteration) and its full section."""
    v, section = studies.ablations.variants[variant], studies.ablation_section(config, variant)
    return {
        "variant": variant, "ablation": list(v.ablation), "baseline": v.baseline, **metrics,
        "profile": config.profile, "set": v.set,
        "budget": studies.ablations.budget.get(v.dataset, {}) if v.budget else {},
        "neighbours_differ": (neighbours_differ(split.train, split.info.image_shape)
                              if split.info.is_image else None),
        "history": [train.untimed(row) for row in history], "section": dataclasses.asdict(section),
    }


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("metrics_json", type=Path)
    stages.provenance_option(parser)
    args = parser.parse_args(argv)
    config = stages.load_config()
    studies = study_sections.load(stages.PARAMS, config)
    if args.variant not in studies.ablations.variants:
        raise stages.StageError(f"unknown ablation variant {args.variant!r}; params.yaml's ablations.variants has "
                                f"{', '.join(studies.ablations.variants)}")
    start = time.perf_counter()
    device = devices.resolve(config.device, config.tf32)
    dataset = studies.ablations.variants[args.variant].dataset
    section = studies.ablation_section(config, args.variant)
    split = variant_split(config, studies, args.variant, args.data_dir)
    experiment = experiments.build(dataset, registry.get(dataset).model, section, split.info, device, split.train)
    history = train.fit_in_memory(experiment, split, args.variant)
    result = experiments.evaluate_on(experiment, split.holdout)
    stages.write_json(args.metrics_json, record(
        config, studies, args.variant, split, experiments.metrics(experiment, result, len(split.holdout)), history))
    stages.write_provenance(args.provenance, train_seconds=history[-1]["seconds"], seconds=time.perf_counter() - start)


def neighbours_differ(levels: np.ndarray, shape: tuple[int, int, int]) -> float:
    """The fraction of horizontally or vertically adjacent pixel pairs whose 8-bit levels differ.

    Args:
        levels: (N, C·H·W) images as stored; shape: (C, H, W). A pixel's colours count together:
            a pair differs if any colour does.
    """
    images = levels.reshape(len(levels), *shape)  # (N, C, H, W)
    across = (images[..., :, 1:] != images[..., :, :-1]).any(axis=1)  # (N, H, W − 1)
    down = (images[..., 1:, :] != images[..., :-1, :]).any(axis=1)  # (N, H − 1, W)
    return float((across.sum() + down.sum()) / (across.size + down.size))


if __name__ == "__main__":
    stages.run(main)
