"""Stage ``train``: fit one toy model, resuming from its checkpoint if one of this configuration exists.

Usage: python -m pipeline.train DATASET DATA_DIR CHECKPOINT_DIR RUNS_DIR MODEL_FILE CURVE_CSV
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd
import torch

from dpm import datasets, device as devices, figures, model as models, sampling, train
from dpm.atomic import atomic_path, atomic_torch_save
from pipeline import common


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=["swiss_roll", "heartbeat"])
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
        log_figures=_sample_plotter(args.dataset, section.train.n_log_samples, split.meta["n_dims"], device))
    run.writer = _writer(args.runs_dir, train.resume_iteration(run.checkpoint, run.fingerprint))
    x_train = x_train.to(device)
    x_holdout = torch.from_numpy(split.holdout[:section.train.n_log_examples]).to(device)
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


PLOTS = {"swiss_roll": figures.scatter_figure, "heartbeat": figures.binary_image_figure}


def _sample_plotter(dataset: str, n_samples: int, n_dims: int, device: torch.device):
    """Logs a plot of model samples to TensorBoard at each checkpoint."""
    def log_samples(model, writer, iteration: int) -> None:
        generator = torch.Generator(device=device).manual_seed(iteration)
        x = sampling.sample(model, (n_samples, n_dims), generator, device).cpu().numpy()
        writer.add_figure("samples", PLOTS[dataset](x, f"samples, iteration {iteration}"), iteration)
    return log_samples


if __name__ == "__main__":
    common.run(main)
