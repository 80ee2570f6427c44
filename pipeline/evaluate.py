"""Stage ``evaluate``: K on the holdout, L_null, and the true log-likelihood where it is known.

Usage: python -m pipeline.evaluate DATASET DATA_DIR MODEL_FILE METRICS_JSON HEADLINE_JSON [--provenance FILE]

K as the objective estimates it (dpm/objective.py): toys exactly over t = 2..T; images by one t
per example and repeat drawn with P(t) ∝ 1/t, holdout images dequantised once with a fixed seed,
in bits per pixel (a pixel counting all its colours). Both also by uniform t, as a check.
METRICS_JSON is the full record (Table 1 reads it); HEADLINE_JSON holds K and K − L_null alone,
under the dataset's name: the metrics DVC shows (`dvc exp show`, `dvc metrics diff`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from dpm import registry
from dpm.evaluate import Estimate, evaluate
from pipeline import common, trained as trained_model


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=registry.NAMES)
    for name in ("data_dir", "model_file", "metrics_json", "headline_json"):
        parser.add_argument(name, type=Path)
    common.provenance_option(parser)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    config = common.load_config()
    trained = trained_model.load(args.dataset, args.data_dir, args.model_file, config)
    section, split, objective = trained.section, trained.split, trained.objective
    noise = torch.Generator(device=trained.device).manual_seed(section.eval.seed)
    x = objective.prepare(torch.from_numpy(split.holdout).to(trained.device), noise)
    result = evaluate(trained.model, objective, x, section.eval)
    known = len(split.true_log_likelihood_nats) > 0
    true_ll = Estimate.of(torch.from_numpy(split.true_log_likelihood_nats)).mean_bits if known else None
    common.write_json(args.metrics_json, {
        "dataset": args.dataset, "label": split.info.label, "profile": config.profile,
        "unit": split.info.unit, "K": result.k.mean_bits, "K_se": result.k.se_bits,
        "K_mc": result.k_uniform_t.mean_bits, "K_mc_se": result.k_uniform_t.se_bits,
        "K_over_t": "importance-sampled t" if objective.n_t else "exact",
        "L_null": result.l_null.mean_bits, "K_minus_L_null": result.gain.mean_bits,
        "K_minus_L_null_se": result.gain.se_bits,
        "true_log_likelihood": true_ll, "gap_to_true": None if true_ll is None else true_ll - result.k.mean_bits,
        "terms": result.terms_bits,
        "T": section.diffusion.n_steps, "beta_1": section.diffusion.beta_1,
        "schedule": section.diffusion.schedule, "parameterisation": section.diffusion.parameterisation,
        "beta_T": result.beta_T, "dequantisation": split.info.dequantisation,
        "n_holdout": len(x), "n_repeats": section.eval.n_repeats, "n_iterations": section.train.n_iterations,
        "n_parameters": sum(p.numel() for p in trained.model.parameters()),
        "train_device": trained.saved["device"], **common.computed_on(trained.device),
    })
    common.write_json(args.headline_json, {args.dataset: {"K": result.k.mean_bits,
                                                          "K_minus_L_null": result.gain.mean_bits}})
    common.write_provenance(args.provenance, seconds=time.perf_counter() - start)


if __name__ == "__main__":
    common.run(main)
