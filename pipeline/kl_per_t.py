"""Stage ``kl_per_t``: where the bound loses: each term E KL(q(x_{t−1}|x_t, x_0) ‖ p(x_{t−1}|x_t)) of
K against t = 2..T, with its running sum, on a seeded subset of the holdout.

Usage: python -m pipeline.kl_per_t DATASET DATA_DIR MODEL_FILE OUT_CSV OUT_JSON [--provenance FILE]

The CSV has one row per t (t, kl_bits, kl_se_bits, cumulative_bits; bits per reporting unit); the
JSON the rest of K on the same subset (H_q(X_T|X_0), H_q(X_1|X_0), E log π(x_T), the tied edge),
so that K = −cumulative_bits[T] + entropy_T − entropy_1 + log_prior_T + edge. Every t is computed
at likelihood.kl_repeats draws of x_t per example, on the first likelihood.kl_examples examples of
the likelihood stage's seeded subset (the same permutation), the holdout prepared as the evaluate
stage prepares it.
For the image models the JSON also says how evenly the evaluate stage's one-t estimator weights
these terms (``importance_spread``): the check that its standard error can be trusted.

A stage of its own (not part of ``likelihood``): it is cheap (one network evaluation per t and
example, against T per trajectory), so the figure does not wait for L_k, and editing one
stage's params does not rerun the other.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dpm.base import registry
from dpm.base.atomic import atomic_path
from dpm.core.bound import bound_terms, to_bits
from dpm.estimate.likelihood import distinct, holdout_subset, kl_by_t, mean_and_variance, prepared_holdout, weighted_mean
from dpm.base import stages
from dpm.core import trained as trained_model

# values per pass through the network (images: a few hundred images at once)
MAX_ELEMENTS = 2 ** 20


def importance_spread(kl: torch.Tensor, proposal: torch.Tensor) -> dict[str, float]:
    """How far the one-t estimate KL_t / P(t) of Σ_t KL_t can stray, per example and draw of x_t.

    The largest weighted term, KL_t / (P(t) Σ_t KL_t), is 1 at every t when KL_t ∝ P(t) and grows
    where P(t) misses a term; a largest weight of a few means the estimator has no heavy tail, so
    the sample standard error of K over the holdout is trustworthy. The relative sd is that of one
    draw of t, √(Σ_t KL_t² / P(t) − (Σ_t KL_t)²) / Σ_t KL_t.

    Args:
        kl: (R, T − 1, S) nats, each term at R draws of x_t for S examples (``kl_by_t``).
        proposal: (T − 1,) P(t) of t = 2..T.
    """
    p = proposal.to(kl)[None, :, None]
    total = kl.sum(1)  # (R, S)
    largest = (kl / p).amax(1) / total
    relative_sd = ((kl ** 2 / p).sum(1) - total ** 2).clamp_min(0).sqrt() / total
    return {"largest_weight_max": largest.max().item(), "largest_weight_median": largest.median().item(),
            "relative_sd_median": relative_sd.median().item(), "relative_sd_max": relative_sd.max().item()}


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=registry.NAMES)
    for name in ("data_dir", "model_file", "out_csv", "out_json"):
        parser.add_argument(name, type=Path)
    stages.provenance_option(parser)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    config = stages.load_config()
    trained = trained_model.load(args.dataset, args.data_dir, args.model_file, config)
    c, model, n_units = trained.section.likelihood, trained.model, trained.objective.n_units
    x = prepared_holdout(trained)
    rows, counts = distinct(x[holdout_subset(len(x), c.kl_examples, c.subset_seed).to(x.device)])
    process = model.process()
    generator = torch.Generator(device=trained.device).manual_seed(c.seed)
    kl = kl_by_t(process, model.reverse, rows, c.kl_repeats, generator, MAX_ELEMENTS)  # (R, T − 1, S)
    mean, se = weighted_mean(*(v.T for v in mean_and_variance(kl)), counts)  # (T − 1,) nats
    kl_bits = to_bits(mean).cpu().numpy() / n_units
    frame = pd.DataFrame({"t": np.arange(2, process.n_steps + 1), "kl_bits": kl_bits,
                          "kl_se_bits": to_bits(se).cpu().numpy() / n_units, "cumulative_bits": np.cumsum(kl_bits)})
    with atomic_path(args.out_csv) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    weights = counts.double() / counts.sum()
    rest = {name: to_bits((weights * term.double()).sum()).item() / n_units
            for name, term in bound_terms(process, model.reverse, rows, generator, n_t=1)._asdict().items()
            if name != "kl"}
    stages.write_json(args.out_json, {
        "dataset": args.dataset, "label": trained.info.label, "profile": config.profile,
        "unit": trained.info.unit, "kl_sum": float(kl_bits.sum()), **rest,
        "K": -float(kl_bits.sum()) + rest["entropy_T"] - rest["entropy_1"] + rest["log_prior_T"] + rest["edge"],
        "n_examples": int(counts.sum()), "n_distinct": len(rows), "n_holdout": len(x), "kl_repeats": c.kl_repeats,
        "subset_seed": c.subset_seed, "seed": c.seed, "T": process.n_steps,
        **({} if trained.objective.importance is None else
           {"importance_t": importance_spread(kl, trained.objective.importance)}),
        **stages.computed_on(trained.device),
    })
    stages.write_provenance(args.provenance, seconds=time.perf_counter() - start)


if __name__ == "__main__":
    stages.run(main)
