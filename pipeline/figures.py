"""Stages ``figure1`` (swiss roll) and ``figure2`` (heartbeat): the paper's Figures 1 and 2 from a trained model.

Usage: python -m pipeline.figures {figure1,figure2} DATA_DIR MODEL_FILE OUT_PNG
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from dpm import datasets, figures, model as models
from dpm.atomic import atomic_path
from dpm.sampling import reverse_trajectory
from pipeline import common

DATASET = {"figure1": "swiss_roll", "figure2": "heartbeat"}


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("figure", choices=sorted(DATASET))
    for name in ("data_dir", "model_file", "out_png"):
        parser.add_argument(name, type=Path)
    args = parser.parse_args(argv)
    config = common.load_config()
    dataset = DATASET[args.figure]
    split = datasets.load(args.data_dir)
    model = models.load(models.build(dataset, config, split.meta), args.model_file)
    c = getattr(config, dataset).eval
    title = f"{dataset} ({config.profile} profile)"
    draw = figure1 if args.figure == "figure1" else figure2
    fig = draw(model, split, c.n_samples, torch.Generator().manual_seed(c.seed), title)
    with atomic_path(args.out_png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")


@torch.no_grad()
def figure1(model, split, n_samples: int, generator: torch.Generator, title: str):
    """Forward and reverse slices at t = 0, T/4, T/2, T and the drift of the reverse step there
    (at t = 2 for the first column: the step from t = 1 is the tied forward kernel)."""
    process = model.process()
    times = (0, process.n_steps // 4, process.n_steps // 2, process.n_steps)
    x0 = torch.from_numpy(split.holdout[:n_samples])
    forward = {0: x0.numpy()}
    for t in times[1:]:
        t_batch = torch.full((len(x0),), t)
        forward[t] = process.q_sample(x0, t_batch, torch.randn(x0.shape, generator=generator)).numpy()
    reverse = {t: x.numpy() for t, x in reverse_trajectory(model, (n_samples, 2), generator) if t in times}
    return figures.swiss_roll_figure(forward, reverse, {t: _drift(model, max(t, 2)) for t in times}, title)


@torch.no_grad()
def _drift(model, t: int, n_grid: int = 17) -> tuple[int, np.ndarray, np.ndarray]:
    """f_μ(x, t) − x on a grid, for the reverse step from x_t (t ≥ 2)."""
    axis = torch.linspace(-2.2, 2.2, n_grid)
    grid = torch.cartesian_prod(axis, axis)
    mean, _ = model.reverse(model.process(), grid, torch.full((len(grid),), t))
    return t, grid.numpy(), (mean - grid).numpy()


def figure2(model, split, n_samples: int, generator: torch.Generator, title: str):
    """Generated sequences, pulses aligned to the first column, beside their starting noise."""
    n_bits = split.meta["n_dims"]
    n_rows = min(n_samples, 30)
    trajectory = dict(reverse_trajectory(model, (n_rows, n_bits), generator))
    period = round(1.0 / split.meta["p_pi"])
    samples = figures.align_pulses(trajectory[0].numpy(), period)
    return figures.heartbeat_figure(samples, trajectory[model.process().n_steps].numpy(), title)


if __name__ == "__main__":
    common.run(main)
