"""Stage ``evaluate``: K on the holdout (exact over t and Monte Carlo), L_null and the true log-likelihood.

Usage: python -m pipeline.evaluate DATASET DATA_DIR MODEL_FILE METRICS_JSON
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from dpm import datasets, device as devices, model as models
from dpm.bound import to_bits
from dpm.evaluate import Estimate, holdout_terms
from pipeline import common


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=["swiss_roll", "heartbeat"])
    for name in ("data_dir", "model_file", "metrics_json"):
        parser.add_argument(name, type=Path)
    args = parser.parse_args(argv)
    config = common.load_config()
    device = devices.resolve(config.device)
    section = getattr(config, args.dataset)
    split = datasets.load(args.data_dir)
    model = models.load(models.build(args.dataset, config, split.meta), args.model_file).to(device)
    x = torch.from_numpy(split.holdout).to(device)
    c = section.eval
    exact = holdout_terms(model, x, c.n_repeats, c.batch_size, c.seed)
    monte_carlo = holdout_terms(model, x, c.n_repeats, c.batch_size, c.seed + 1, n_t=1)
    l_null = model.process().log_prior(x)
    k, k_mc = Estimate.of(exact.k), Estimate.of(monte_carlo.k)
    true_ll = Estimate.of(torch.from_numpy(split.true_log_likelihood_nats))
    saved = torch.load(args.model_file, map_location="cpu", weights_only=False)
    common.write_json(args.metrics_json, {
        "dataset": args.dataset, "profile": config.profile, "unit": split.meta["unit"],
        "K": k.mean_bits, "K_se": k.se_bits, "K_mc": k_mc.mean_bits, "K_mc_se": k_mc.se_bits,
        "L_null": Estimate.of(l_null).mean_bits, "K_minus_L_null": Estimate.of(exact.k - l_null).mean_bits,
        "K_minus_L_null_se": Estimate.of(exact.k - l_null).se_bits,
        "true_log_likelihood": true_ll.mean_bits, "gap_to_true": true_ll.mean_bits - k.mean_bits,
        "terms": {name: to_bits(term.mean().item()) for name, term in exact._asdict().items()},
        "T": section.diffusion.n_steps, "beta_1": section.diffusion.beta_1,
        "schedule": section.diffusion.schedule, "beta_T": model.process().beta[-1].item(),
        "n_holdout": len(x), "n_iterations": section.train.n_iterations,
        "train_seconds": saved["history"][-1]["seconds"], "train_device": saved["device"],
        "device": devices.describe(device), "git_commit": common.git_commit(),
    })


if __name__ == "__main__":
    common.run(main)
