"""Stage ``ablation``: train one ablation variant at its budget and evaluate it on the holdout.

Usage: python -m pipeline.ablations VARIANT DATA_DIR METRICS_JSON

VARIANT names an entry of params.yaml's ``ablations.variants``; its section is its dataset's with
the dataset's ablation budget and the variant's ``set`` applied
(``dpm.studies.Studies.ablation_section``).
DATA_DIR is the dataset's split as the pipeline made it; a variant that changes ``data`` values
makes its own split, in memory, with the dataset's module (generated datasets only). K and
K − L_null in bits per example (per pixel for images) with their standard errors, the authors'
uniform-t estimate as a check, the learning curve, the full effective section and the commit go
to METRICS_JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from dpm import ablations, device as devices, registry, studies as study_sections
from dpm.data import split as splits
from pipeline import common


def variant_split(config, studies: study_sections.Studies, variant: str, data_dir: Path) -> splits.Split:
    """The data the variant trains and is evaluated on: DATA_DIR, or its own split if it changes ``data``."""
    dataset = studies.ablations.variants[variant].dataset
    data = studies.ablation_section(config, variant).data
    if data == config.section(dataset).data:
        return splits.load(data_dir)
    if registry.get(dataset).fetched:
        raise common.StageError(f"ablation {variant}: changes {dataset}'s data, which only a generated dataset's "
                                f"variant may (its split is made in memory)")
    return registry.get(dataset).data_module().make_split(data, None)


def record(config, studies: study_sections.Studies, variant: str, split: splits.Split, result: ablations.Result,
           device) -> dict:
    """The metrics JSON of a variant."""
    v, e = studies.ablations.variants[variant], result.evaluation
    section = studies.ablation_section(config, variant)
    return {
        "variant": variant, "ablation": list(v.ablation), "baseline": v.baseline, "dataset": v.dataset,
        "label": split.info.label, "profile": config.profile, "unit": split.info.unit, "set": v.set,
        "budget": studies.ablations.budget.get(v.dataset, {}),
        "n_iterations": section.train.n_iterations, "train_seed": section.train.seed, "eval_seed": section.eval.seed,
        "K": e.k.mean_bits, "K_se": e.k.se_bits,
        "K_minus_L_null": e.gain.mean_bits, "K_minus_L_null_se": e.gain.se_bits,
        "L_null": e.l_null.mean_bits, "K_uniform_t": e.k_uniform_t.mean_bits, "K_uniform_t_se": e.k_uniform_t.se_bits,
        "K_over_t": "importance-sampled t" if split.info.is_image else "exact",
        "neighbours_differ": (ablations.neighbours_differ(split.train, split.info.image_shape)
                              if split.info.is_image else None),
        "n_holdout": len(split.holdout), "n_repeats": section.eval.n_repeats, "n_parameters": result.n_parameters,
        "train_seconds": result.train_seconds, "seconds": result.seconds, "history": result.history,
        "section": dataclasses.asdict(section), **common.provenance(device),
    }


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("metrics_json", type=Path)
    args = parser.parse_args(argv)
    config = common.load_config()
    studies = study_sections.load(common.PARAMS, config)
    if args.variant not in studies.ablations.variants:
        raise common.StageError(f"unknown ablation variant {args.variant!r}; params.yaml's ablations.variants has "
                                f"{', '.join(studies.ablations.variants)}")
    device = devices.resolve(config.device, config.tf32)
    dataset = studies.ablations.variants[args.variant].dataset
    section = studies.ablation_section(config, args.variant)
    split = variant_split(config, studies, args.variant, args.data_dir)
    result = ablations.run_variant(registry.get(dataset).model, section, split, device,
                                   common.fingerprint(args.variant, section.data, section.diffusion, section.net,
                                                      section.train))
    common.write_json(args.metrics_json, record(config, studies, args.variant, split, result, device))


if __name__ == "__main__":
    common.run(main)
