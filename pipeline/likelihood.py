"""Stage ``likelihood``: the importance-weighted log-likelihood L_k (Eq. 9) beside K, on one
seeded subset of the holdout.

Usage: python -m pipeline.likelihood DATASET DATA_DIR MODEL_FILE METRICS_JSON [--provenance FILE]

L_k for k = 1, 10, …, likelihood.max_k from one pool of forward trajectories per example (every
trajectory runs the full chain, t = 1..T), K on the same subset exactly over t (every t at its own
x_t: for images a pass per t, as a trajectory, but no heavy tail from importance-sampled t), both
in bits per reporting unit. Repeated examples
(the heartbeat's 5 sequences) are computed once and weighted by their counts. The holdout is
prepared as the evaluate stage prepares it; the subset comes from likelihood.subset_seed, the
estimators' noise from likelihood.seed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from dpm.base import registry
from dpm.core.bound import to_bits
from dpm.estimate.likelihood import distinct, holdout_subset, k_draws, prepared_holdout, subset_estimates
from dpm.base import stages
from dpm.core import trained as trained_model

# values per pass through the network for K's terms (images: a few hundred images at once)
MAX_ELEMENTS = 2 ** 20
SE_MEANS = ("standard error of the subset's mean as an estimate of the data's mean: the spread of the per-example "
            "estimates over the subset, Monte Carlo noise included; for repeated examples computed once, plus the "
            "part of that estimate's Monte Carlo noise the spread does not show")


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=registry.NAMES)
    for name in ("data_dir", "model_file", "metrics_json"):
        parser.add_argument(name, type=Path)
    stages.provenance_option(parser)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    config = stages.load_config()
    trained = trained_model.load(args.dataset, args.data_dir, args.model_file, config)
    c, objective, model = trained.section.likelihood, trained.objective, trained.model
    x = prepared_holdout(trained)
    index = holdout_subset(len(x), c.n_examples, c.subset_seed).to(x.device)
    rows, counts = distinct(x[index])
    process = model.process()
    generator = torch.Generator(device=trained.device).manual_seed(c.seed)
    bound = torch.cat([k_draws(process, model.reverse, rows[start:start + c.batch_size], c.n_repeats, generator,
                               MAX_ELEMENTS)[0] for start in range(0, len(rows), c.batch_size)], dim=1)
    estimates = subset_estimates(process, model.reverse, rows, counts, bound, c.ks(), c.n_trajectories,
                                 c.batch_size, generator)
    bits = {name: to_bits(value).item() / objective.n_units for name, (value, _) in estimates.items()}
    bits.update({f"{name}_se": to_bits(se).item() / objective.n_units for name, (_, se) in estimates.items()})
    true_ll = trained.split.true_log_likelihood_nats
    stages.write_json(args.metrics_json, {
        "dataset": args.dataset, "label": trained.info.label, "profile": config.profile,
        "unit": trained.info.unit, "ks": list(c.ks()), **bits,
        "true_log_likelihood": to_bits(float(true_ll[index.cpu().numpy()].mean())) / objective.n_units
        if len(true_ll) else None,
        "K_over_t": "exact (every t at its own x_t)",
        "n_examples": len(index), "n_distinct": len(rows), "n_holdout": len(x), "subset_seed": c.subset_seed,
        "seed": c.seed, "n_trajectories": c.n_trajectories, "n_repeats": c.n_repeats, "se": SE_MEANS,
        "T": process.n_steps, **stages.computed_on(trained.device),
    })
    stages.write_provenance(args.provenance, seconds=time.perf_counter() - start)


if __name__ == "__main__":
    stages.run(main)
