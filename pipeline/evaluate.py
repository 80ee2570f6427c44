"""Stage ``evaluate``: K on the holdout, L_null, and the true log-likelihood where it is known.

Usage: python -m pipeline.evaluate DATASET DATA_DIR MODEL_FILE METRICS_JSON HEADLINE_JSON [--provenance FILE]

K as the objective estimates it (dpm/core/objective.py): toys exactly over t = 2..T; images by one t
per example and repeat drawn with P(t) ∝ 1/t, holdout images dequantised once with a fixed seed,
in bits per pixel (a pixel counting all its colours). Both also by uniform t, as a check.
METRICS_JSON is the full record (Table 1 reads it); HEADLINE_JSON holds K and K − L_null alone,
under the dataset's name: the metrics DVC shows (`dvc exp show`, `dvc metrics diff`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dpm.core import experiment as experiments
from dpm.base import registry
from dpm.base import stages
from dpm.core import trained as trained_model


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=registry.NAMES)
    for name in ("data_dir", "model_file", "metrics_json", "headline_json"):
        parser.add_argument(name, type=Path)
    stages.provenance_option(parser)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    config = stages.load_config()
    trained = trained_model.load(args.dataset, args.data_dir, args.model_file, config)
    experiment, split = experiments.load(trained), trained.split
    result = experiments.evaluate_on(experiment, split.holdout)
    true_ll = experiments.true_log_likelihood(split)
    stages.write_json(args.metrics_json, {
        **experiments.metrics(experiment, result, len(split.holdout)), "profile": config.profile,
        "true_log_likelihood": true_ll, "gap_to_true": None if true_ll is None else true_ll - result.k.mean_bits,
        "terms": result.terms_bits, "dequantisation": split.info.dequantisation,
        "train_device": trained.saved["device"],
    })
    stages.write_json(args.headline_json, {args.dataset: {"K": result.k.mean_bits,
                                                          "K_minus_L_null": result.gain.mean_bits}})
    stages.write_provenance(args.provenance, seconds=time.perf_counter() - start)


if __name__ == "__main__":
    stages.run(main)
