"""Stage ``parzen_study_train`` (studies/dvc.yaml): the MNIST model trained for each of
parzen_study.n_iterations, otherwise as the main model (mnist.train, the same seed).

Usage: python -m pipeline.parzen_study_train DATA_DIR MODELS_DIR CHECKPOINT_DIR

With the same seed and learning-rate schedule, the run of n iterations is the first n iterations
of the main model's run. Models go to MODELS_DIR/mnist_<n>.pt, checkpoints (an interrupted run
resumes) to CHECKPOINT_DIR/mnist_<n>.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dpm.base import device as devices
from dpm import studies
from dpm.base import stages
from pipeline import train as train_stage

DATASET = "mnist"


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("data_dir", "models_dir", "checkpoint_dir"):
        parser.add_argument(name, type=Path)
    args = parser.parse_args(argv)
    config = stages.load_config()
    device = devices.resolve(config.device, config.tf32)
    for n in studies.load(stages.PARAMS, config).parzen_study.n_iterations:
        train_stage.train_model(DATASET, args.data_dir, stages.load_config({f"{DATASET}.train.n_iterations": n}),
                                device, args.checkpoint_dir / f"{DATASET}_{n}", args.models_dir / f"{DATASET}_{n}.pt")


if __name__ == "__main__":
    stages.run(main)
