"""Stage ``evaluate``: K on the holdout, L_null, and the true log-likelihood where it is known.

Usage: python -m pipeline.evaluate DATASET DATA_DIR MODEL_FILE METRICS_JSON

Toys: K summed exactly over t = 2..T, and by Monte Carlo over uniform t as a check. Images: K by
Monte Carlo over t, one t per example and repeat drawn with P(t) ∝ 1/t (importance sampling,
dpm/bound.py), and as a check with uniform t (the authors' estimator); holdout images are
dequantised once with a fixed seed; bits per pixel, a pixel counting all its colours.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from dpm import config as cfg, datasets, device as devices, model as models
from dpm.bound import inverse_t_proposal, to_bits
from dpm.data import images
from dpm.data.scaling import Scaling
from dpm.evaluate import Estimate, holdout_terms
from pipeline import common


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=cfg.DATASETS)
    for name in ("data_dir", "model_file", "metrics_json"):
        parser.add_argument(name, type=Path)
    args = parser.parse_args(argv)
    config = common.load_config()
    device = devices.resolve(config.device)
    section = getattr(config, args.dataset)
    split = datasets.load(args.data_dir)
    model = models.load(models.build(args.dataset, config, split.meta), args.model_file).to(device)
    saved = torch.load(args.model_file, map_location="cpu", weights_only=False)
    c = section.eval
    x = torch.from_numpy(split.holdout).to(device)
    is_image = args.dataset in cfg.IMAGE_DATASETS
    if is_image:
        generator = torch.Generator(device=device).manual_seed(c.seed)
        x = images.dequantise(x, Scaling(**split.meta["scaling"]), split.meta["dequantisation"], generator)
    # the check: one t per example and repeat, drawn uniformly (the authors' estimator)
    monte_carlo = holdout_terms(model, x, c.n_repeats, c.batch_size, c.seed + 1, n_t=1)
    if is_image:  # importance-sampled t: the same K, a far smaller standard error
        proposal = inverse_t_proposal(section.diffusion.n_steps, device=device)
        exact = holdout_terms(model, x, c.n_repeats, c.batch_size, c.seed, n_t=1, proposal=proposal)
    else:
        exact = holdout_terms(model, x, c.n_repeats, c.batch_size, c.seed)
    process = model.process()
    l_null = process.log_prior(x)
    per = split.meta.get("n_pixels", 1)
    bits = lambda nats: Estimate.of(nats / per)  # noqa: E731  (per example, or per pixel)
    k, k_mc, gain = bits(exact.k), bits(monte_carlo.k), bits(exact.k - l_null)
    known = len(split.true_log_likelihood_nats) > 0
    true_ll = bits(torch.from_numpy(split.true_log_likelihood_nats)).mean_bits if known else None
    common.write_json(args.metrics_json, {
        "dataset": args.dataset, "label": split.meta.get("label", args.dataset), "profile": config.profile,
        "unit": split.meta["unit"], "K": k.mean_bits, "K_se": k.se_bits, "K_mc": k_mc.mean_bits,
        "K_mc_se": k_mc.se_bits, "K_over_t": "importance-sampled t" if is_image else "exact",
        "L_null": bits(l_null).mean_bits, "K_minus_L_null": gain.mean_bits, "K_minus_L_null_se": gain.se_bits,
        "true_log_likelihood": true_ll, "gap_to_true": None if true_ll is None else true_ll - k.mean_bits,
        "terms": {name: to_bits(term.mean().item()) / per for name, term in exact._asdict().items()},
        "T": section.diffusion.n_steps, "beta_1": section.diffusion.beta_1,
        "schedule": section.diffusion.schedule, "parameterisation": section.diffusion.parameterisation,
        "beta_T": process.beta[-1].item(), "dequantisation": split.meta.get("dequantisation"),
        "n_holdout": len(x), "n_repeats": c.n_repeats, "n_iterations": section.train.n_iterations,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": saved["history"][-1]["seconds"], "train_device": saved["device"],
        "device": devices.describe(device), "git_commit": common.git_commit(),
    })


if __name__ == "__main__":
    common.run(main)
