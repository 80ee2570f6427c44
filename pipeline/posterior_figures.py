"""Stages ``figure3_denoise``, ``figure5``, ``figure_mnist_inpaint``: posterior samples p̃(x_0) ∝ p(x_0) r(x_0).

Usage: python -m pipeline.posterior_figures FIGURE DATA_DIR MODEL_FILE OUT_PNG [--raw RAW_DIR]

figure3_denoise (Fig. 3b, c): CIFAR-10 holdout images, the same with Gaussian noise at SNR 1
(σ_d = 1 on unit-variance data), and denoised posterior samples; the title gives the mean squared
error of the noisy and of the denoised images against the clean ones (model units). figure5:
texture (or bark) holdout patches, the same with the central square (half the side, as the
paper's 100×100 of its images) replaced by noise, and the inpainted posterior samples.
figure_mnist_inpaint: MNIST holdout digits, their left half kept, the right half inpainted.
figure5_full (Fig. 5 at full size): from each photograph in RAW_DIR, the largest square of its
holdout strip (the bottom rows no training patch saw), its central square of half the side
replaced by noise and inpainted by the fully convolutional texture model run at that size; the
title gives the mean squared error inside the square of the inpainted image and, as a yardstick,
of an unconditioned model sample of the same size (model units).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from dpm import figures, sampling
from dpm.data import images, textures
from dpm.data.scaling import Scaling
from dpm.posterior import Denoise, Inpaint, posterior_sample
from pipeline import common, image_stage

FIGURES = {"figure3_denoise": "cifar10", "figure5": "bark", "figure_mnist_inpaint": "mnist", "figure5_full": "bark"}
SIGMA_D = 1.0  # SNR 1 on unit-variance data (SPEC §3)


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("figure", choices=sorted(FIGURES))
    for name in ("data_dir", "model_file", "out_png"):
        parser.add_argument(name, type=Path)
    parser.add_argument("--raw", type=Path, help="figure5_full: the folder of the fetched photographs")
    args = parser.parse_args(argv)
    dataset = FIGURES[args.figure]
    config, split, model, device = image_stage.load(dataset, args.data_dir, args.model_file)
    if args.figure == "figure5_full":
        if args.raw is None:
            raise common.StageError("figure5_full: needs --raw, the folder of the fetched photographs")
        return full_size_inpainting(config, split, model, device, args.raw, args.out_png)
    c = getattr(config, dataset).eval
    generator = image_stage.generator(c, device)
    scaling = Scaling(**split.meta["scaling"])
    clean = images.dequantise(torch.from_numpy(image_stage.spread(split.holdout, c.n_samples)).to(device),
                              scaling, split.meta["dequantisation"], generator)
    draw = denoise if args.figure == "figure3_denoise" else inpaint
    panels, note = draw(model, clean, split.meta, generator, device)
    n_cols = math.ceil(math.sqrt(c.n_samples))
    shape = split.meta["image_shape"]
    tiles = [(name, figures.image_grid(images.to_pixels(x, scaling).reshape(-1, *shape), n_cols))
             for name, x in panels]
    title = f"{split.meta['label']}, {config.profile} profile: {note}"
    image_stage.save(figures.image_panels_figure(tiles, title), args.out_png)

def denoise(model, clean, meta, generator, device):
    """Noisy observations y = x + N(0, σ_d²) and samples of p̃(x_0) ∝ p(x_0) N(y; x_0, σ_d²)."""
    noisy = clean + SIGMA_D * torch.randn(clean.shape, generator=generator, device=device)
    denoised = posterior_sample(model, Denoise(noisy, SIGMA_D), tuple(clean.shape), generator, device)
    mse = lambda x: ((x - clean) ** 2).mean().item()  # noqa: E731
    note = f"MSE noisy {mse(noisy):.3f}, denoised {mse(denoised):.3f}"
    return [("holdout", clean), (f"noisy, SNR 1 (σ = {SIGMA_D:g})", noisy), ("denoised", denoised)], note


def inpaint(model, clean, meta, generator, device):
    """The masked region replaced by noise, then filled with samples of p̃ ∝ p·r, r a delta on the rest."""
    n_colours, height, width = meta["image_shape"]
    known = torch.ones(n_colours, height, width, dtype=torch.bool, device=device)
    if meta["label"] == "MNIST":
        known[:, :, width // 2:] = False  # keep the left half of each digit
        note = "right half inpainted"
    else:
        known[:, height // 4:height - height // 4, width // 4:width - width // 4] = False  # central square
        note = "central square inpainted"
    mask = known.reshape(-1)
    noise = torch.randn(clean.shape, generator=generator, device=device)
    shown = torch.where(mask, clean, noise)
    filled = posterior_sample(model, Inpaint(mask, clean), tuple(clean.shape), generator, device)
    return [("holdout", clean), ("region replaced by noise", shown), ("inpainted", filled)], note


def full_size_inpainting(config, split, model, device, raw_dir: Path, out_png: Path) -> None:
    """Figure 5 at the photographs' holdout size: see the module's docstring."""
    c, scaling = config.bark, Scaling(**split.meta["scaling"])
    photos = textures.load_grey(sorted(p for p in raw_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")))
    if not photos:
        raise common.StageError(f"{raw_dir}: no photographs (.png, .jpg) to inpaint")
    side = min(_holdout_side(photo, c.data.holdout_fraction, 2 ** (c.net.n_scales - 1)) for photo in photos)
    squares = [_bottom_square(photo, side) for photo in photos]
    model.net.image_shape = (1, side, side)  # fully convolutional: the same net at the larger size
    generator = image_stage.generator(c.eval, device)
    levels = torch.from_numpy(np.stack(squares).reshape(len(squares), -1)).to(device)
    clean = images.dequantise(levels, scaling, split.meta["dequantisation"], generator)
    known = torch.ones(side, side, dtype=torch.bool, device=device)
    known[side // 4:side - side // 4, side // 4:side - side // 4] = False
    mask = known.reshape(-1)
    shown = torch.where(mask, clean, torch.randn(clean.shape, generator=generator, device=device))
    filled = posterior_sample(model, Inpaint(mask, clean), tuple(clean.shape), generator, device)
    free = sampling.sample(model, tuple(clean.shape), generator, device)
    mse = lambda x: ((x - clean)[:, ~mask] ** 2).mean().item()  # noqa: E731
    panels = [("holdout", clean), ("central square replaced by noise", shown), ("inpainted", filled),
              ("unconditioned sample", free)]
    tiles = [(name, figures.image_grid(images.to_pixels(x, scaling).reshape(-1, 1, side, side), len(squares)))
             for name, x in panels]
    title = (f"{split.meta['label']}, {config.profile} profile: {side}×{side} holdout squares, central "
             f"{side // 2}×{side // 2} inpainted; MSE in the square: inpainted {mse(filled):.3f}, "
             f"unconditioned sample {mse(free):.3f}")
    image_stage.save(figures.image_panels_figure(tiles, title), out_png)


def _holdout_side(photo: np.ndarray, holdout_fraction: float, multiple: int) -> int:
    """The side of the largest square in the photograph's holdout strip, a multiple of ``multiple``."""
    rows = photo.shape[0] - int(round(photo.shape[0] * (1 - holdout_fraction)))
    return min(rows, photo.shape[1]) // multiple * multiple


def _bottom_square(photo: np.ndarray, side: int) -> np.ndarray:
    """The side × side square at the bottom of the photograph, centred left to right."""
    left = (photo.shape[1] - side) // 2
    return photo[photo.shape[0] - side:, left:left + side]


if __name__ == "__main__":
    common.run(main)
