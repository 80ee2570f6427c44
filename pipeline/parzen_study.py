"""Stage ``parzen_study`` (studies/dvc.yaml): Table 2's MNIST Parzen estimate against training
length, with the final reverse step sampled (the protocol) and replaced by its mean.

Usage: python -m pipeline.parzen_study DATA_DIR MAIN_MODEL STUDY_MODELS_DIR TABLE2_JSON OUT_CSV OUT_MD
       [--provenance FILE]

Every model (the study's, STUDY_MODELS_DIR/mnist_<n>.pt for n in parzen_study.n_iterations, and
the main one) gives parzen_study.n_samples centres, drawn as Table 2's set is (mnist.parzen's
seed and batch size, batch b from its own seed): the protocol's centres are the first
n_samples of Table 2's set for the main model (exactly, when n_samples is a multiple of the
batch size). From the same x_1, the final step x_0 ~ N(x_1√(1−β_1), β_1 I) is also replaced by
its mean. σ, the validation and the test images are Table 2's (dpm.estimate.parzen.estimate, SPEC §2).
The "perfect model" at n_samples centres (the first training images) and Table 2's own two rows
(TABLE2_JSON, the parzen stage's) are shown beside, so the reduction's own effect is visible.
The time to draw each model's two sets (one reverse chain for both) and the git commit go to the
``--provenance`` file, which no stage reads.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dpm.base import device as devices
from dpm.estimate import parzen
from dpm.chain import sampling
from dpm.core import seeds
from dpm import studies
from dpm.base.atomic import atomic_path, atomic_write_text
from dpm.data import images, split as splits
from dpm.base.registry import ParzenConfig
from dpm.base import stages
from dpm.core import trained as trained_model

DATASET = "mnist"
COLUMNS = ["row", "model", "n_iterations", "final_step", "n_centres", "sigma", "nats", "nats_se", "bits", "bits_se",
           "profile"]


def draw(model, c: ParzenConfig, n_samples: int, n_dims: int, device: torch.device) -> dict[str, torch.Tensor]:
    """The first ``n_samples`` of the sample set Table 2 draws with ``c`` (model units), the final
    step sampled (``sampled``) and, from the same x_1, replaced by its mean (``mean``)."""
    process, out = model.process(), {"sampled": [], "mean": []}
    for b in range(-(-n_samples // c.batch_size)):
        rows = min(c.batch_size, n_samples - b * c.batch_size)
        generator = torch.Generator(device=device).manual_seed(seeds.mixed_seed(c.seed, b))
        for t, x in sampling.reverse_trajectory(model, (rows, n_dims), generator, device):
            if t == 1:
                x1 = x
        out["sampled"].append(x)
        out["mean"].append(sampling.final_step(process, x1, mean=True))
    return {name: torch.cat(xs) for name, xs in out.items()}


def model_rows(trained, n_samples: int, test: np.ndarray, validation: np.ndarray, device) -> tuple[list[dict], float]:
    """The two rows of one model (its centres with the final step sampled and with its mean) and
    the seconds they took to draw."""
    c, codec, n_dims = trained.section.parzen, trained.objective.codec, trained.info.n_dims
    start = time.perf_counter()
    with torch.no_grad():
        centres = draw(trained.model, c, n_samples, n_dims, trained.device)
    seconds = time.perf_counter() - start
    n_iterations = trained.saved["history"][-1]["iteration"]  # the model's own training (the study's, or the main one's)
    rows = []
    for final, x in centres.items():
        result = parzen.estimate(test, validation, codec.decode(x).reshape(len(x), n_dims), device=device)
        rows.append(_row(f"{n_iterations} iterations, final step {final}", "diffusion", n_iterations, final, result))
    return rows, seconds


def _row(label: str, model: str, n_iterations, final: str | None, result) -> dict:
    """One row of the table from a ParzenResult or its JSON record."""
    r = result if isinstance(result, dict) else asdict(result)
    return {"row": label, "model": model, "n_iterations": n_iterations, "final_step": final,
            "n_centres": r["n_centres"], "sigma": r["sigma"], "nats": r["mean_nats"], "nats_se": r["se_nats"],
            "bits": r["mean_bits"], "bits_se": r["se_bits"]}


def table2_rows(table2: dict, n_iterations: int) -> list[dict]:
    """Table 2's own rows (the parzen stage's JSON): the protocol at its full size."""
    return [_row(f"Table 2: {n_iterations} iterations, final step sampled", "diffusion", n_iterations, "sampled",
                 table2["diffusion"]),
            _row("Table 2: perfect model", "perfect", None, None, table2["perfect"])]


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("data_dir", "main_model", "study_models_dir", "table2_json", "out_csv", "out_md"):
        parser.add_argument(name, type=Path)
    stages.provenance_option(parser)
    args = parser.parse_args(argv)
    config = stages.load_config()
    study = studies.load(stages.PARAMS, config).parzen_study
    n_samples, c = study.n_samples, config.mnist.parzen
    table2 = json.loads(args.table2_json.read_text())
    if table2["profile"] != config.profile:
        raise stages.StageError(f"{args.table2_json}: of profile {table2['profile']}, params.yaml has {config.profile}")
    device = devices.resolve(config.device, config.tf32)
    split = splits.load(args.data_dir)
    to_unit = 1.0 / (images.N_LEVELS - 1)
    test = split.holdout * to_unit
    validation = split.train[c.validation_start:c.validation_start + c.n_validation] * to_unit
    rows, seconds = [], {}
    for model_file in [*(args.study_models_dir / f"{DATASET}_{n}.pt" for n in study.n_iterations),
                       args.main_model]:
        trained = trained_model.load(DATASET, args.data_dir, model_file, config)
        drawn, seconds[f"sampling_seconds_{model_file.stem}"] = model_rows(trained, n_samples, test, validation, device)
        rows += drawn
    perfect = parzen.estimate(test, validation, split.train[:n_samples] * to_unit, device=device)
    rows.append(_row(f"perfect model, {n_samples} training images", "perfect", None, None, perfect))
    rows += table2_rows(table2, config.mnist.train.n_iterations)
    frame = pd.DataFrame(rows, columns=COLUMNS).assign(profile=config.profile)
    with atomic_path(args.out_csv) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    shown = frame[["row", "n_centres", "sigma", "nats", "nats_se", "bits", "bits_se"]]
    shown = shown.astype(object).where(shown.notna(), None)  # an empty cell where there is no value
    atomic_write_text(args.out_md, "# MNIST Parzen estimate against training length and the final step\n\n"
                      + shown.to_markdown(index=False, floatfmt=".4g", missingval="") + "\n")
    stages.write_provenance(args.provenance, **seconds)


if __name__ == "__main__":
    stages.run(main)
