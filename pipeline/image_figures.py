"""Stages ``figure3``, ``figure4``, ``figure_app1``, ``figure_bark``: data beside model samples.

Usage: python -m pipeline.image_figures FIGURE DATA_DIR MODEL_FILE OUT_PNG

figure3: CIFAR-10 holdout images (Fig. 3a) beside samples (Fig. 3d). figure4: a dead-leaves
training image beside a sample of the same size. figure_app1: MNIST samples (Fig. App.1).
figure_bark: bark (or texture stand-in) holdout patches beside samples. The data shown are spread
evenly over the split (the bark holdout is ordered photograph by photograph). Samples are true
samples of p(x_0), ending with the tied step T_π(x_0|x_1; β_1), not reverse-chain means.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from dpm.report import figures, paper_figures
from dpm.chain import sampling
from dpm.base import stages
from pipeline import image_stage


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("figure", choices=paper_figures.of_kinds("samples"))
    for name in ("data_dir", "model_file", "out_png"):
        parser.add_argument(name, type=Path)
    args = parser.parse_args(argv)
    trained, entry, profile = image_stage.load(args.figure, args.data_dir, args.model_file)
    n, codec = trained.section.eval.n_samples, trained.objective.codec
    generator = image_stage.generator(trained)
    shown = image_stage.spread(getattr(trained.split, entry.shown), n)
    with torch.no_grad():
        samples = sampling.sample(trained.model, (n, trained.info.n_dims), generator, trained.device)
    plural = "s" if n > 1 else ""
    panels = [(f"{'holdout' if entry.shown == 'holdout' else 'training'} image{plural}",
               image_stage.grid(shown.reshape(-1, *codec.image_shape) / 255.0)),
              (f"sample{plural}", image_stage.grid(codec.decode(samples)))]
    title = image_stage.title(trained, profile, f"T = {trained.section.diffusion.n_steps}")
    fig = figures.image_panels_figure(panels, title, letters=tuple(entry.letters) or None)
    image_stage.save(fig, args.out_png)


if __name__ == "__main__":
    stages.run(main)
