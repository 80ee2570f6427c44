"""Stage ``seed_spread@DATASET`` (studies/dvc.yaml): the dataset's Table 1 model trained again
from each seed train.seed + seed_spread.seed_offsets, and evaluated as the main row.

Usage: python -m pipeline.seed_spread DATASET DATA_DIR MODELS_DIR CHECKPOINT_DIR OUT_JSON [--provenance FILE]

The seed (params.yaml's <dataset>.train.seed, overridden through dpm.base.config.load) draws the
network's initial weights and the training batches; the data, T, the network and the
evaluation are the main row's. Models go to MODELS_DIR/seed_<seed>.pt, checkpoints (an
interrupted run resumes) to CHECKPOINT_DIR/seed_<seed>. The git commit and each seed's training
time go to the ``--provenance`` file, which no stage reads.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dpm.base import device as devices, registry
from dpm.core import experiment as experiments
from dpm import studies
from dpm.base import stages
from pipeline import train as train_stage
from dpm.core import trained as trained_model


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=registry.NAMES)
    for name in ("data_dir", "models_dir", "checkpoint_dir", "out_json"):
        parser.add_argument(name, type=Path)
    stages.provenance_option(parser)
    args = parser.parse_args(argv)
    config = stages.load_config()
    device = devices.resolve(config.device, config.tf32)
    main_seed = config.section(args.dataset).train.seed
    rows, seconds = [], {}
    for offset in studies.load(stages.PARAMS, config).seed_spread.seed_offsets:
        seed = main_seed + offset
        seeded = stages.load_config({f"{args.dataset}.train.seed": seed})
        model_file = args.models_dir / f"seed_{seed}.pt"
        history = train_stage.train_model(args.dataset, args.data_dir, seeded, device,
                                          args.checkpoint_dir / f"seed_{seed}", model_file)
        trained = trained_model.load(args.dataset, args.data_dir, model_file, seeded)
        experiment = experiments.load(trained)
        result = experiments.evaluate_on(experiment, trained.split.holdout)
        rows.append({"seed": seed, **experiments.metrics(experiment, result, len(trained.split.holdout))})
        seconds[f"train_seconds_seed_{seed}"] = history[-1]["seconds"] if history else 0.0
    stages.write_json(args.out_json, {"dataset": args.dataset, "profile": config.profile, "main_seed": main_seed,
                                      "seeds": rows, **stages.computed_on(device)})
    stages.write_provenance(args.provenance, **seconds)


if __name__ == "__main__":
    stages.run(main)
