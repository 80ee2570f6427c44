"""What the figure stages share: the trained model a figure is drawn from, evenly spread
examples, grids of images, and an atomic PNG write."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from dpm.report import figures, paper_figures
from dpm.base.atomic import atomic_path
from dpm.core.model import Trained
from dpm.base import stages
from dpm.core import trained as trained_model


def load(figure: str, data_dir: Path, model_file: Path) -> tuple[Trained, paper_figures.Figure, str]:
    """The trained model ``figure`` is drawn from (on the configured device), the figure's entry,
    and params.yaml's profile (for the title)."""
    entry = paper_figures.get(figure)
    config = stages.load_config()
    return trained_model.load(entry.dataset, data_dir, model_file, config), entry, config.profile


def spread(data: np.ndarray, n: int) -> np.ndarray:
    """n rows spread evenly over ``data`` (splits are ordered, e.g. photograph by photograph)."""
    return data[np.linspace(0, len(data) - 1, n).round().astype(int)]


def generator(trained: Trained) -> torch.Generator:
    """The figure's random stream, seeded from the eval section."""
    return torch.Generator(device=trained.device).manual_seed(trained.section.eval.seed)


def grid(pixels: np.ndarray) -> np.ndarray:
    """Images (n, C, H, W) in [0, 1] → one square-ish grid."""
    return figures.image_grid(pixels, math.ceil(math.sqrt(len(pixels))))


def title(trained: Trained, profile: str, note: str) -> str:
    return f"{trained.info.label}, {profile} profile: {note}"


def save(fig, out_png: Path) -> None:
    """Write a matplotlib figure as PNG, atomically."""
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
