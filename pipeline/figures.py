"""Stages ``figure1`` (swiss roll) and ``figure2`` (heartbeat): the paper's Figures 1 and 2 from a trained model.

Usage: python -m pipeline.figures {figure1,figure2} DATA_DIR MODEL_FILE OUT_PNG
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from dpm.report import figures, paper_figures
from dpm.chain.sampling import reverse_trajectory
from dpm.base import stages
from pipeline import image_stage


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    kinds = ("swiss_roll", "heartbeat")
    parser.add_argument("figure", choices=paper_figures.of_kinds(*kinds))
    for name in ("data_dir", "model_file", "out_png"):
        parser.add_argument(name, type=Path)
    args = parser.parse_args(argv)
    trained, entry, profile = image_stage.load(args.figure, args.data_dir, args.model_file)
    draw = figure1 if entry.kind == "swiss_roll" else figure2
    title = f"{trained.info.label} ({profile} profile)"
    image_stage.save(draw(trained, image_stage.generator(trained), title), args.out_png)


@torch.no_grad()
def figure1(trained, generator: torch.Generator, title: str):
    """Forward and reverse slices at t = 0, T/4, T/2, T and the drift of the reverse step there
    (at t = 2 for the first column: the step from t = 1 is the tied forward kernel)."""
    model, n_samples = trained.model, trained.section.eval.n_samples
    process = model.process()
    times = (0, process.n_steps // 4, process.n_steps // 2, process.n_steps)
    x0 = torch.from_numpy(trained.split.holdout[:n_samples]).to(trained.device)
    forward = {0: x0.cpu().numpy()}
    for t in times[1:]:
        t_batch = torch.full((len(x0),), t, device=trained.device)
        noise = torch.randn(x0.shape, generator=generator, device=trained.device)
        forward[t] = process.q_sample(x0, t_batch, noise).cpu().numpy()
    reverse = {t: x.cpu().numpy() for t, x in reverse_trajectory(model, (n_samples, 2), generator, trained.device)
               if t in times}
    drift = {t: _drift(model, max(t, 2), trained.device) for t in times}
    return figures.swiss_roll_figure(forward, reverse, drift, title)


@torch.no_grad()
def _drift(model, t: int, device, n_grid: int = 17) -> tuple[int, np.ndarray, np.ndarray]:
    """f_μ(x, t) − x on a grid, for the reverse step from x_t (t ≥ 2)."""
    axis = torch.linspace(-2.2, 2.2, n_grid, device=device)
    grid = torch.cartesian_prod(axis, axis)
    mean, _ = model.reverse(model.process(), grid, torch.full((len(grid),), t, device=device))
    return t, grid.cpu().numpy(), (mean - grid).cpu().numpy()


@torch.no_grad()
def figure2(trained, generator: torch.Generator, title: str):
    """Generated sequences as generated, beside the π noise each began as, and the same samples
    rolled so their pulses line up (the pulse period read from the data)."""
    n_rows = min(trained.section.eval.n_samples, 30)
    trajectory = dict(reverse_trajectory(trained.model, (n_rows, trained.info.n_dims), generator, trained.device))
    n_steps = trained.section.diffusion.n_steps
    return figures.heartbeat_figure(trajectory[0].cpu().numpy(), trajectory[n_steps].cpu().numpy(), title,
                                    period=trained.info.period)


if __name__ == "__main__":
    stages.run(main)
