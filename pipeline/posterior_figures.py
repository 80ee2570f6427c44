"""Stages ``figure3_denoise``, ``figure5``, ``figure_mnist_inpaint``, ``figure5_full``: posterior
samples p̃(x_0) ∝ p(x_0) r(x_0) (§2.5).

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
from pathlib import Path

import numpy as np
import torch

from dpm.report import figures, paper_figures
from dpm.chain import sampling
from dpm.chain.posterior import Denoise, Inpaint, posterior_sample
from dpm.base import stages
from pipeline import image_stage

SIGMA_D = 1.0  # SNR 1 on unit-variance data (SPEC §3)
MAX_PHOTOGRAPHS = 4  # figure5_full: rows, spread over the photographs (the bark set has 160)


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    kinds = ("denoise", "inpaint", "inpaint_full")
    parser.add_argument("figure", choices=paper_figures.of_kinds(*kinds))
    for name in ("data_dir", "model_file", "out_png"):
        parser.add_argument(name, type=Path)
    parser.add_argument("--raw", type=Path, help="figure5_full: the folder of the fetched photographs")
    args = parser.parse_args(argv)
    trained, entry, profile = image_stage.load(args.figure, args.data_dir, args.model_file)
    torch.set_grad_enabled(False)
    if entry.kind == "inpaint_full":
        if args.raw is None:
            raise stages.StageError(f"{args.figure}: needs --raw, the folder of the fetched photographs")
        fig = full_size_inpainting(trained, profile, args.raw)
    else:
        generator = image_stage.generator(trained)
        levels = image_stage.spread(trained.split.holdout, trained.section.eval.n_samples)
        clean = trained.objective.prepare(torch.from_numpy(levels).to(trained.device), generator)
        draw = denoise if entry.kind == "denoise" else inpaint
        panels, note = draw(trained, clean, entry.region, generator)
        tiles = [(name, image_stage.grid(trained.objective.codec.decode(x))) for name, x in panels]
        fig = figures.image_panels_figure(tiles, image_stage.title(trained, profile, note),
                                          letters=tuple(entry.letters) or None)
    image_stage.save(fig, args.out_png)


def denoise(trained, clean, region, generator):
    """Noisy observations y = x + N(0, σ_d²) and samples of p̃(x_0) ∝ p(x_0) N(y; x_0, σ_d²)."""
    noisy = clean + SIGMA_D * torch.randn(clean.shape, generator=generator, device=trained.device)
    denoised = posterior_sample(trained.model, Denoise(noisy, SIGMA_D), tuple(clean.shape), generator, trained.device)
    mse = lambda x: ((x - clean) ** 2).mean().item()  # noqa: E731
    note = f"MSE noisy {mse(noisy):.3f}, denoised {mse(denoised):.3f}"
    return [("holdout", clean), (f"noisy, SNR 1 (σ = {SIGMA_D:g})", noisy), ("denoised", denoised)], note


def known_mask(image_shape: tuple[int, int, int], region: str, device) -> torch.Tensor:
    """(C·H·W,) True where pixels are kept: all but the right half, or all but the central
    square of half the side."""
    n_colours, height, width = image_shape
    known = torch.ones(n_colours, height, width, dtype=torch.bool, device=device)
    if region == "right_half":
        known[:, :, width // 2:] = False
    else:
        known[:, height // 4:height - height // 4, width // 4:width - width // 4] = False
    return known.reshape(-1)


def inpaint(trained, clean, region, generator):
    """The masked region replaced by noise, then filled with samples of p̃ ∝ p·r, r a delta on the rest."""
    mask = known_mask(trained.info.image_shape, region, trained.device)
    shown = torch.where(mask, clean, torch.randn(clean.shape, generator=generator, device=trained.device))
    filled = posterior_sample(trained.model, Inpaint(mask, clean), tuple(clean.shape), generator, trained.device)
    note = "right half inpainted" if region == "right_half" else "central square inpainted"
    return [("holdout", clean), ("region replaced by noise", shown), ("inpainted", filled)], note


def full_size_inpainting(trained, profile: str, raw_dir: Path):
    """Figure 5 at the photographs' holdout size: see the module's docstring."""
    from dpm.data import images  # only this figure reads the photographs themselves
    from dpm.datasets import textures
    c, device = trained.section, trained.device
    paths, photos = textures.photograph_paths(c.data, raw_dir), textures.photographs(c.data, raw_dir)
    chosen = image_stage.spread(np.arange(len(paths)), min(len(paths), MAX_PHOTOGRAPHS))
    paths = [paths[i] for i in chosen]
    strips = [textures.holdout_strip(c.data, photos[i]) for i in chosen]
    multiple = c.net.coarsest_scale()
    side = min(min(strip.shape) for strip in strips) // multiple * multiple
    squares = [strip[len(strip) - side:, (strip.shape[1] - side) // 2:][:, :side] for strip in strips]
    trained.model.net.image_shape = (1, side, side)  # fully convolutional: the same net at the larger size
    generator = image_stage.generator(trained)
    levels = torch.from_numpy(np.stack(squares).reshape(len(squares), -1)).to(device)
    clean = trained.objective.prepare(levels, generator)
    mask = known_mask((1, side, side), "centre", device)
    shown = torch.where(mask, clean, torch.randn(clean.shape, generator=generator, device=device))
    filled = posterior_sample(trained.model, Inpaint(mask, clean), tuple(clean.shape), generator, device)
    free = sampling.sample(trained.model, tuple(clean.shape), generator, device)
    mse = lambda x: ((x - clean)[:, ~mask] ** 2).mean().item()  # noqa: E731
    columns = {"holdout": clean, "central square replaced by noise": shown, "inpainted": filled,
               "unconditioned sample": free}
    scaling = trained.objective.codec.scaling  # the codec's image shape is the patch's, not the square's
    pixels = {name: images.to_pixels(x, scaling).reshape(-1, side, side) for name, x in columns.items()}
    rows = [[pixels[name][i] for name in columns] for i in range(len(squares))]
    note = (f"{side}×{side} holdout squares, central {side // 2}×{side // 2} inpainted; "
            f"MSE in the square: inpainted {mse(filled):.3f}, unconditioned sample {mse(free):.3f}")
    title = image_stage.title(trained, profile, note)
    return figures.inpainting_grid_figure(rows, list(columns), title, row_names=[p.stem for p in paths])


if __name__ == "__main__":
    stages.run(main)
