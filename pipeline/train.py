"""Stage ``train``: fit one model, resuming from its checkpoint if one of this configuration exists.

Usage: python -m pipeline.train DATASET DATA_DIR CHECKPOINT_DIR RUNS_DIR MODEL_FILE CURVE_CSV
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd
import torch

from dpm import config as cfg, datasets, device as devices, figures, model as models, sampling, train
from dpm.atomic import atomic_path, atomic_torch_save
from dpm.bound import inverse_t_proposal
from dpm.data import images
from dpm.data.scaling import Scaling
from pipeline import common


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=cfg.DATASETS)
    for name in ("data_dir", "checkpoint_dir", "runs_dir", "model_file", "curve_csv"):
        parser.add_argument(name, type=Path)
    args = parser.parse_args(argv)
    config = common.load_config()
    device = devices.resolve(config.device)
    section = getattr(config, args.dataset)
    split = datasets.load(args.data_dir)
    x_train = torch.from_numpy(split.train)
    model = models.build(args.dataset, config, split.meta, x_train, section.train.seed).to(device)
    run = train.Run(
        checkpoint=args.checkpoint_dir / "checkpoint.pt",
        fingerprint=common.fingerprint(args.dataset, section.data, section.diffusion, section.net,
                                       section.train, common.file_digest(args.data_dir / "data.npz"),
                                       common.source_digest()),
        log_figures=_sample_plotter(args.dataset, section.train.n_log_samples, split.meta, device))
    run.writer = _writer(args.runs_dir, train.resume_iteration(run.checkpoint, run.fingerprint))
    x_train = x_train.to(device)
    x_holdout = torch.from_numpy(split.holdout[:section.train.n_log_examples]).to(device)
    if args.dataset in cfg.IMAGE_DATASETS:
        x_holdout = _image_options(run, model, section, split.meta, x_holdout)
    history = train.fit(model, x_train, x_holdout, section.train, run)
    run.writer.close()
    atomic_torch_save({"model": model.state_dict(), "dataset": args.dataset, "profile": config.profile,
                       "fingerprint": run.fingerprint, "device": devices.describe(device),
                       "history": history}, args.model_file)
    with atomic_path(args.curve_csv) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)


def _writer(runs_dir: Path, resume_from: int | None):
    """A TensorBoard writer; a fresh run clears old event files, a resumed one drops events
    logged after its checkpoint."""
    from torch.utils.tensorboard import SummaryWriter
    if resume_from is None and runs_dir.exists():
        shutil.rmtree(runs_dir)
    return SummaryWriter(str(runs_dir), purge_step=None if resume_from is None else resume_from + 1)


def _image_options(run: train.Run, model: models.DiffusionModel, section, meta: dict,
                   x_holdout: torch.Tensor) -> torch.Tensor:
    """Image training: fresh dequantisation noise per batch, one random t per example (drawn as
    params.yaml says; the learning curve's always by importance), bits per pixel, autocast on a
    GPU if asked. Returns the learning curve's
    holdout images in model units (dequantised once, with a fixed seed)."""
    scaling, mode = Scaling(**meta["scaling"]), meta["dequantisation"]
    run.prepare = lambda batch, generator: images.dequantise(batch, scaling, mode, generator)
    run.n_t, run.n_units = 1, meta["n_pixels"]
    run.curve_proposal = inverse_t_proposal(section.diffusion.n_steps, device=x_holdout.device)
    if section.train.t_sampling == "importance":
        run.proposal = run.curve_proposal
    model.amp = section.train.amp
    generator = torch.Generator(device=x_holdout.device).manual_seed(section.eval.seed)
    return images.dequantise(x_holdout, scaling, mode, generator)


PLOTS = {"swiss_roll": figures.scatter_figure, "heartbeat": figures.binary_image_figure}


def _sample_plotter(dataset: str, n_samples: int, meta: dict, device: torch.device):
    """Logs model samples to TensorBoard at each checkpoint: a plot, or an image grid."""
    def log_samples(model, writer, iteration: int) -> None:
        generator = torch.Generator(device=device).manual_seed(iteration)
        x = sampling.sample(model, (n_samples, meta["n_dims"]), generator, device).cpu()
        if dataset in cfg.IMAGE_DATASETS:
            pixels = images.to_pixels(x, Scaling(**meta["scaling"])).reshape(n_samples, *meta["image_shape"])
            writer.add_images("samples", pixels, iteration)
        else:
            writer.add_figure("samples", PLOTS[dataset](x.numpy(), f"samples, iteration {iteration}"), iteration)
    return log_samples


if __name__ == "__main__":
    common.run(main)
