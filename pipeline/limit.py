"""Stage ``limit``: the best K any reverse kernel of the model's family can reach at the model's T
and schedule (dpm/estimate/limits.py), beside the model's K.

Usage: python -m pipeline.limit DATASET DATA_DIR MODEL_FILE METRICS_JSON [--provenance FILE]

Swiss roll (Gaussian diffusion; the β schedule is the trained model's, learned): diagonal Gaussian
steps with the exact moments of q(x_{t−1}|x_t) under the true roll (the posterior over θ by
quadrature), K* by Monte Carlo over a seeded subset of the holdout. Heartbeat (binomial): factorised
steps with each bit's exact marginal posterior over the distinct sequences, K* averaged over the
data's distribution (each sequence's true probability), Monte Carlo over x_t. The last step is tied
to the forward kernel, as in the model. The JSON also holds the best steps' E KL_t for t = 2..T
(``kl_bits_by_t``), which the per-t KL figure draws beside the model's. Bits per reporting unit. On
the CPU, in float64, whatever params.yaml's ``device``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from dpm.base import registry
from dpm.core.bound import to_bits
from dpm.core.evaluate import Estimate
from dpm.estimate.likelihood import holdout_subset, k_draws, prepared_holdout
from dpm.estimate.limits import BernoulliMixtureReverse, GaussianMixtureReverse, curve_mixture
from dpm.core.model import Trained
from dpm.base import stages
from dpm.core import trained as trained_model


def swiss_roll_limit(trained: Trained, x: torch.Tensor, generator: torch.Generator) -> dict:
    """K* of the roll's Gaussian steps on the seeded subset, with the true log-likelihood there."""
    c, data = trained.section.limit, trained.section.data
    roll, scaling = registry.get(trained.name).data_module(), trained.info.scaling
    centres, log_w = curve_mixture(lambda theta: torch.from_numpy(scaling.apply(np.stack(roll.curve(theta.numpy()), 1))),
                                   roll.THETA_MIN, roll.THETA_MAX, c.n_nodes)
    reverse = GaussianMixtureReverse(centres, log_w, (data.noise / scaling.scale) ** 2)
    index = holdout_subset(len(x), c.n_examples, c.subset_seed)
    x0, process = x[index].double(), trained.model.process()
    batches = [k_draws(process, reverse, x0[start:start + c.batch_size], c.n_repeats, generator,
                       x0[start:start + c.batch_size].numel()) for start in range(0, len(x0), c.batch_size)]
    draws, kl = (torch.cat(parts, dim=-1) for parts in zip(*batches))
    true_ll = torch.from_numpy(trained.split.true_log_likelihood_nats[index.numpy()])
    estimate, gap = Estimate.of(draws.mean(0)), Estimate.of(true_ll - draws.mean(0))
    return {"K_limit_T": estimate.mean_bits, "K_limit_T_se": estimate.se_bits, "K_limit_T_over": "holdout subset",
            "true_log_likelihood": Estimate.of(true_ll).mean_bits, "true_minus_K_limit_T": gap.mean_bits,
            "true_minus_K_limit_T_se": gap.se_bits, "n_examples": len(index), "n_nodes": c.n_nodes,
            "n_repeats": c.n_repeats, "subset_seed": c.subset_seed, "seed": c.seed,
            "family": "diagonal Gaussian p(x_{t-1}|x_t), exact moments of q(x_{t-1}|x_t)",
            "kl_bits_by_t": to_bits(kl.mean((0, 2))).tolist()}


def heartbeat_limit(trained: Trained, x: torch.Tensor, generator: torch.Generator) -> dict:
    """K* of factorised steps over the data's distinct sequences, each at its probability 1/period."""
    c, heartbeat, period = trained.section.limit, registry.get(trained.name).data_module(), trained.info.period
    sequences = torch.unique(x, dim=0).double()
    if len(sequences) != period:
        raise stages.StageError(f"the holdout holds {len(sequences)} distinct sequences, not the data's {period}: "
                                "the limit needs every sequence of the data")
    log_p = torch.full((period,), heartbeat.true_log_likelihood_nats(period), dtype=torch.float64)
    reverse = BernoulliMixtureReverse(sequences, log_p)
    draws, kl = k_draws(trained.model.process(), reverse, sequences.repeat(c.n_repeats, 1), 1, generator, 2 ** 20)
    draws = draws.reshape(c.n_repeats, len(sequences))  # (R, S)
    weights = log_p.exp()
    kl_by_t_nats = (kl.reshape(kl.shape[1], c.n_repeats, len(sequences)).mean(1) * weights).sum(1)  # (T − 1,)
    mean = (weights * draws.mean(0)).sum()
    se = (weights ** 2 * draws.var(0) / c.n_repeats).sum().sqrt()
    true_ll = to_bits(float((weights * log_p).sum()))
    return {"K_limit_T": to_bits(mean.item()), "K_limit_T_se": to_bits(se.item()),
            "K_limit_T_over": "the data's distribution (each distinct sequence at its true probability)",
            "true_log_likelihood": true_ll, "true_minus_K_limit_T": true_ll - to_bits(mean.item()),
            "true_minus_K_limit_T_se": to_bits(se.item()), "n_distinct": len(sequences),
            "n_repeats": c.n_repeats, "seed": c.seed,
            "family": "factorised (per-bit Bernoulli) p(x_{t-1}|x_t), each bit's exact marginal posterior",
            "kl_bits_by_t": to_bits(kl_by_t_nats).tolist()}


LIMITS = {"rbf": swiss_roll_limit, "sigmoid_mlp": heartbeat_limit}


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=[d.name for d in registry.DATASETS.values() if d.limit])
    for name in ("data_dir", "model_file", "metrics_json"):
        parser.add_argument(name, type=Path)
    stages.provenance_option(parser)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    config = stages.load_config()
    trained = trained_model.load(args.dataset, args.data_dir, args.model_file, config, device="cpu")
    generator = torch.Generator().manual_seed(trained.section.limit.seed)
    with torch.no_grad():
        result = LIMITS[registry.get(args.dataset).model](trained, prepared_holdout(trained), generator)
    stages.write_json(args.metrics_json, {
        "dataset": args.dataset, "label": trained.info.label, "profile": config.profile,
        "unit": trained.info.unit, **result, "T": trained.section.diffusion.n_steps,
        "beta_1": trained.section.diffusion.beta_1, "schedule": trained.section.diffusion.schedule,
        **stages.computed_on(trained.device),
    })
    stages.write_provenance(args.provenance, seconds=time.perf_counter() - start)


if __name__ == "__main__":
    stages.run(main)
