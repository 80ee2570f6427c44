"""What the image-figure stages share: a trained image model with its data, evenly spread
examples, and an atomic PNG write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dpm import config as cfg, datasets, device as devices, model as models
from dpm.atomic import atomic_path
from pipeline import common


def load(dataset: str, data_dir: Path, model_file: Path):
    """(config, split, model on the configured device, that device)."""
    config = common.load_config()
    split = datasets.load(data_dir)
    device = devices.resolve(config.device)
    model = models.load(models.build(dataset, config, split.meta), model_file).to(device)
    return config, split, model, device


def spread(data: np.ndarray, n: int) -> np.ndarray:
    """n rows spread evenly over ``data`` (splits are ordered, e.g. photograph by photograph)."""
    return data[np.linspace(0, len(data) - 1, n).round().astype(int)]


def generator(c: cfg.EvalConfig, device: torch.device) -> torch.Generator:
    """The figure's random stream, seeded from the eval section."""
    return torch.Generator(device=device).manual_seed(c.seed)


def save(fig, out_png: Path) -> None:
    """Write a matplotlib figure as PNG, atomically."""
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
