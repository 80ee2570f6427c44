"""What the figure stages share: the trained model a figure is drawn from, evenly spread
examples, grids of images, and an atomic PNG write."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from dpm import figures, registry
from dpm.atomic import atomic_path
from dpm.model import Trained, load_trained
from pipeline import common


def load(figure: str, data_dir: Path, model_file: Path) -> tuple[Trained, registry.Figure]:
    """The trained model ``figure`` is drawn from (on the configured device), and the figure's entry."""
    dataset, entry = registry.figure(figure)
    return load_trained(dataset.name, data_dir, model_file, common.load_config()), entry


def spread(data: np.ndarray, n: int) -> np.ndarray:
    """n rows spread evenly over ``data`` (splits are ordered, e.g. photograph by photograph)."""
    return data[np.linspace(0, len(data) - 1, n).round().astype(int)]


def generator(trained: Trained) -> torch.Generator:
    """The figure's random stream, seeded from the eval section."""
    return torch.Generator(device=trained.device).manual_seed(trained.section.eval.seed)


def grid(pixels: np.ndarray) -> np.ndarray:
    """Images (n, C, H, W) in [0, 1] → one square-ish grid."""
    return figures.image_grid(pixels, math.ceil(math.sqrt(len(pixels))))


def title(trained: Trained, note: str) -> str:
    return f"{trained.info.label}, {trained.config.profile} profile: {note}"


def save(fig, out_png: Path) -> None:
    """Write a matplotlib figure as PNG, atomically."""
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
