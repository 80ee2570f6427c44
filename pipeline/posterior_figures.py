"""Stages ``figure3_denoise``, ``figure5``, ``figure_mnist_inpaint``: posterior samples p̃(x_0) ∝ p(x_0) r(x_0).

Usage: python -m pipeline.posterior_figures FIGURE DATA_DIR MODEL_FILE OUT_PNG

figure3_denoise (Fig. 3b, c): CIFAR-10 holdout images, the same with Gaussian noise at SNR 1
(σ_d = 1 on unit-variance data), and denoised posterior samples; the title gives the mean squared
error of the noisy and of the denoised images against the clean ones (model units). figure5:
texture (or bark) holdout patches, the same with the central square (half the side, as the
paper's 100×100 of its images) replaced by noise, and the inpainted posterior samples.
figure_mnist_inpaint: MNIST holdout digits, their left half kept, the right half inpainted.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from dpm import figures
from dpm.data import images
from dpm.data.scaling import Scaling
from dpm.posterior import Denoise, Inpaint, posterior_sample
from pipeline import common, image_stage

FIGURES = {"figure3_denoise": "cifar10", "figure5": "bark", "figure_mnist_inpaint": "mnist"}
SIGMA_D = 1.0  # SNR 1 on unit-variance data (SPEC §3)


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("figure", choices=sorted(FIGURES))
    for name in ("data_dir", "model_file", "out_png"):
        parser.add_argument(name, type=Path)
    args = parser.parse_args(argv)
    dataset = FIGURES[args.figure]
    config, split, model, device = image_stage.load(dataset, args.data_dir, args.model_file)
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


if __name__ == "__main__":
    common.run(main)
