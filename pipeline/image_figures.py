"""Stages ``figure3``, ``figure4``, ``figure_app1``, ``figure_bark``: data beside model samples.

Usage: python -m pipeline.image_figures FIGURE DATA_DIR MODEL_FILE OUT_PNG

figure3: CIFAR-10 holdout images (Fig. 3a) beside samples (Fig. 3d). figure4: a dead-leaves
training image beside a sample of the same size. The data shown are spread evenly over the
split (the bark holdout is ordered photograph by photograph). figure_app1: MNIST samples (Fig. App.1).
figure_bark: bark (or texture stand-in) holdout patches beside samples. Samples are true
samples of p(x_0), ending with the tied step T_π(x_0|x_1; β_1), not reverse-chain means.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from dpm import figures, sampling
from dpm.data import images
from dpm.data.scaling import Scaling
from pipeline import common, image_stage

# figure → (dataset, which data to show beside the samples, its caption)
FIGURES = {
    "figure3": ("cifar10", "holdout", "holdout images"),
    "figure4": ("dead_leaves", "train", "a training image"),
    "figure_app1": ("mnist", "holdout", "holdout images"),
    "figure_bark": ("bark", "holdout", "holdout patches"),
}


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("figure", choices=sorted(FIGURES))
    for name in ("data_dir", "model_file", "out_png"):
        parser.add_argument(name, type=Path)
    args = parser.parse_args(argv)
    dataset, part, caption = FIGURES[args.figure]
    config, split, model, device = image_stage.load(dataset, args.data_dir, args.model_file)
    c = getattr(config, dataset).eval
    shape = tuple(split.meta["image_shape"])
    shown = image_stage.spread(getattr(split, part), c.n_samples).reshape(-1, *shape) / (images.N_LEVELS - 1)
    samples = draw_samples(model, c.n_samples, split.meta, image_stage.generator(c, device), device)
    n_cols = math.ceil(math.sqrt(c.n_samples))
    panels = [(caption, figures.image_grid(shown, n_cols)), ("samples", figures.image_grid(samples, n_cols))]
    title = f"{split.meta['label']}, {config.profile} profile, T = {model.process().n_steps}"
    image_stage.save(figures.image_panels_figure(panels, title), args.out_png)

@torch.no_grad()
def draw_samples(model, n_samples: int, meta: dict, generator: torch.Generator,
                 device: torch.device | str = "cpu") -> np.ndarray:
    """(n, C, H, W) samples of p(x_0) as pixel values in [0, 1], drawn on ``device``."""
    x = sampling.sample(model, (n_samples, meta["n_dims"]), generator, device)
    return images.to_pixels(x, Scaling(**meta["scaling"])).reshape(n_samples, *meta["image_shape"])


if __name__ == "__main__":
    common.run(main)
