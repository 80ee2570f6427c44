"""Stage ``train``: fit one model, resuming from its checkpoint if one of this configuration exists.

TensorBoard events go to RUNS_DIR/<run name>, one folder per run, earlier runs kept
(dpm/tensorboard.py). The learning curve CSV has one row per logged iteration, with the profile
and the hardware on each.

With params.yaml's ``processes`` above 1 (0: one per visible GPU) the stage runs itself again
under torchrun, that many processes data-parallel (dpm/distributed.py); rank 0 writes the
outputs, the model file records the number of processes and the global batch.

Usage: python -m pipeline.train DATASET DATA_DIR CHECKPOINT_DIR RUNS_DIR MODEL_FILE CURVE_CSV
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dpm import device as devices, distributed, model as models, registry, sampling, tensorboard, train
from dpm.atomic import atomic_path, atomic_torch_save
from dpm.data import split as splits
from dpm.data.images import ImageCodec
from dpm.data.split import DataInfo
from dpm.objective import Objective
from pipeline import common


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=registry.NAMES)
    for name in ("data_dir", "checkpoint_dir", "runs_dir", "model_file", "curve_csv"):
        parser.add_argument(name, type=Path)
    args = parser.parse_args(argv)
    config = common.load_config()
    device = devices.resolve(config.device, config.tf32)
    n_processes = distributed.n_processes(config.processes, device)
    if n_processes > 1 and not distributed.launched():
        status = distributed.relaunch(n_processes, __spec__.name, sys.argv[1:] if argv is None else argv,
                                      config.threads)
        if status:
            raise common.StageError(f"training with {n_processes} processes failed (exit status {status})")
        return
    device = distributed.setup(device)
    lead = distributed.rank() == 0  # writes every output
    section = config.section(args.dataset)
    split = splits.load(args.data_dir)
    x_train = torch.from_numpy(split.train)
    model = models.build(args.dataset, section, split.info, x_train, section.train.seed).to(device)
    if config.compile:
        model.net.compile()  # in place: the state dict keeps its keys
    objective = Objective.of(section, split.info, device)
    hardware = devices.describe(device)
    run = train.Run(
        checkpoint_dir=args.checkpoint_dir,
        fingerprint=common.fingerprint(args.dataset, section.data, section.diffusion, section.net, section.train,
                                       common.file_digest(args.data_dir / "data.npz"),
                                       train.source_digest(train.training_modules())),
        name=tensorboard.run_name(args.runs_dir),
        open_writer=functools.partial(tensorboard.open_writer, args.runs_dir,
                                      _hparams(args.dataset, config, section, hardware)),
        log_samples=_sample_logger(split.info, section.train.n_log_samples, device), progress=lead)
    curve_noise = torch.Generator(device=device).manual_seed(section.eval.seed)
    x_curve = objective.prepare(torch.from_numpy(split.holdout[:section.train.n_log_examples]).to(device), curve_noise)
    history = train.fit(model, objective, x_train.to(device), x_curve, section.train, run)
    n_processes = distributed.world_size()
    distributed.finish()
    if not lead:
        return
    atomic_torch_save({"model": model.state_dict(), "dataset": args.dataset, "profile": config.profile,
                       "fingerprint": run.fingerprint, **common.provenance(device), "history": history,
                       "processes": n_processes, "batch_size": section.train.batch_size,
                       "global_batch_size": n_processes * section.train.batch_size}, args.model_file)
    with atomic_path(args.curve_csv) as tmp:
        pd.DataFrame(history).assign(profile=config.profile, hardware=hardware).to_csv(tmp, index=False)


def _hparams(dataset: str, config, section, hardware: str) -> dict:
    """What TensorBoard's HParams view shows of the run: the sections training reads, flattened
    (``train.learning_rate``), the profile, the device asked for and the hardware it ran on."""
    sections = {"data": section.data, "diffusion": section.diffusion, "net": section.net, "train": section.train}
    return tensorboard.flat_params(sections, dataset=dataset, profile=config.profile, device=config.device,
                                   hardware=hardware, processes=distributed.world_size())


def _sample_logger(info: DataInfo, n_samples: int, device: torch.device):
    """Logs model samples to TensorBoard at each checkpoint as an image: image grids; binary
    sequences one per row; 2-D points as their density on [−2.5, 2.5]²."""
    @torch.no_grad()
    def log_samples(model, writer, iteration: int) -> None:
        generator = torch.Generator(device=device).manual_seed(iteration)
        x = sampling.sample(model, (n_samples, info.n_dims), generator, device).cpu()
        if info.is_image:
            writer.add_images("samples", ImageCodec.of(info).decode(x), iteration)
        elif info.p_pi is not None:
            writer.add_image("samples", x.numpy()[None], iteration)  # (1, sample, bin)
        else:
            writer.add_image("samples", _density(x.numpy()), iteration)
    return log_samples


def _density(points: np.ndarray, n_bins: int = 128, extent: float = 2.5) -> np.ndarray:
    """(1, n_bins, n_bins) histogram of 2-D points, y up, scaled to [0, 1]."""
    edges = np.linspace(-extent, extent, n_bins + 1)
    counts, _, _ = np.histogram2d(points[:, 1], points[:, 0], bins=(edges, edges))
    return (counts[::-1] / max(counts.max(), 1))[None]


if __name__ == "__main__":
    common.run(main)
