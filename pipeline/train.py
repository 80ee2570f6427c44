"""Stage ``train``: fit one model, resuming from its checkpoint if one of this configuration exists.

TensorBoard events go to RUNS_DIR/<run name>, one folder per run, earlier runs kept
(dpm/run/tensorboard.py). The learning curve CSV has one row per logged iteration, with the profile
and the hardware on each, and no wall-clock time: that curve (iteration, seconds, holdout K) goes
to the ``--time-curve`` file, which no stage reads (DVC's time plot draws it).

With params.yaml's ``processes`` above 1 (0: one per visible GPU) the stage runs itself again
under torchrun, that many processes data-parallel (dpm/run/distributed.py); rank 0 writes the
outputs, the model file records the number of processes and the global batch.

The model file holds what the weights depend on and nothing that differs between two runs giving
the same weights (no wall-clock time, no git commit, no fingerprint of the code): a retrain to
the same weights writes the same bytes, and DVC reruns nothing below it. The time and the commit go
to the ``--provenance`` file.

Usage: python -m pipeline.train DATASET DATA_DIR CHECKPOINT_DIR RUNS_DIR MODEL_FILE CURVE_CSV
       [--provenance FILE] [--time-curve FILE]
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dpm.base import config as cfg, device as devices, provenance, registry
from dpm.run import distributed, memory
from dpm.chain import sampling
from dpm.core import experiment as experiments
from dpm.run import tensorboard, train
from dpm.base.atomic import atomic_path, atomic_torch_save
from dpm.data import split as splits
from dpm.data.images import ImageCodec
from dpm.data.split import DataInfo
from dpm.base import stages


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=registry.NAMES)
    for name in ("data_dir", "checkpoint_dir", "runs_dir", "model_file", "curve_csv"):
        parser.add_argument(name, type=Path)
    stages.provenance_option(parser)
    parser.add_argument("--time-curve", type=Path, metavar="FILE",
                        help="where to write holdout K by wall-clock training time (no stage reads it)")
    args = parser.parse_args(argv)
    config = stages.load_config()
    device, n_processes = preflight(args.dataset, args.data_dir, config)
    if n_processes > 1 and not distributed.launched():
        failure = distributed.relaunch(n_processes, __spec__.name, sys.argv[1:] if argv is None else argv,
                                       config.threads)
        if failure:
            raise stages.StageError(failure)
        return
    device = distributed.setup(device)
    lead = distributed.rank() == 0  # writes every output (known before train_model ends the process group)
    history = train_model(args.dataset, args.data_dir, config, device, args.checkpoint_dir, args.model_file,
                          args.runs_dir)
    if not lead:
        return
    with atomic_path(args.curve_csv) as tmp:
        pd.DataFrame([train.untimed(row) for row in history]).assign(
            profile=config.profile, hardware=devices.describe(device)).to_csv(tmp, index=False)
    stages.write_provenance(args.provenance, train_seconds=history[-1]["seconds"] if history else 0.0)
    if args.time_curve is not None:
        with atomic_path(args.time_curve) as tmp:
            pd.DataFrame(history)[["iteration", "seconds", "holdout_K_bits"]].to_csv(tmp, index=False)


def train_model(dataset: str, data_dir: Path, config, device: torch.device, checkpoint_dir: Path, model_file: Path,
                runs_dir: Path | None = None) -> list[dict]:
    """Train ``dataset``'s model of ``config`` on ``device``, resuming a checkpoint of the same
    configuration from ``checkpoint_dir``, and save it to ``model_file`` (rank 0): the train
    stage's run, and the studies' (seed spread, Parzen study: one process, ``runs_dir`` None, no
    TensorBoard). Returns the learning curve (rank 0; empty on the others)."""
    lead = distributed.rank() == 0  # writes every output
    section = config.section(dataset)
    split = splits.load(data_dir)
    experiment = experiments.build(dataset, registry.get(dataset).model, section, split.info, device, split.train,
                                   config.compile)
    hardware = devices.describe(device)
    run = train.Run(
        checkpoint_dir=checkpoint_dir,
        fingerprint=train.run_fingerprint(dataset, section, provenance.file_digest(data_dir / "data.npz"),
                                          distributed.world_size()),
        progress=lead and runs_dir is not None)
    if runs_dir is not None:
        run.name = tensorboard.run_name(runs_dir)
        run.open_writer = functools.partial(tensorboard.open_writer, runs_dir,
                                            _hparams(dataset, config, section, hardware))
        run.log_samples = _sample_logger(split.info, section.train.n_log_samples, device)
    try:
        history = train.fit_experiment(experiment, split, run)
    except RuntimeError as error:
        if not memory.is_out_of_memory(error):
            raise
        raise stages.StageError(f"{dataset}.train.batch_size: {section.train.batch_size} ran out of memory "
                                f"during training ({str(error).splitlines()[0]}); the checkpoints saved are "
                                f"kept") from None
    n_processes = distributed.world_size()
    distributed.finish()
    if lead:
        atomic_torch_save(train.model_record(experiment, history, config.profile, n_processes), model_file)
    return history


def preflight(dataset: str, data_dir: Path, config) -> tuple[torch.device, int]:
    """The device and the number of training processes, checked before anything is read or written
    (the stage replaces its outputs only when it succeeds, dvc.yaml ``persist``): CUDA where asked
    for, processes against the visible GPUs (``distributed.n_processes``), and, in the stage
    itself (not again in each torchrun worker), the memory one training step needs against what
    the device has free (``check_memory``). Raises ConfigError or RuntimeError naming the key."""
    device = devices.resolve(config.device, config.tf32)
    n_processes = distributed.n_processes(config.processes, device)
    if not distributed.launched() and not config.compile:  # compiled nets may save less: no bound
        check_memory(dataset, config.section(dataset), splits.load_info(data_dir), device, n_processes)
    return device, n_processes


def check_memory(dataset: str, section, info: DataInfo, device: torch.device, n_processes: int) -> None:
    """Refuse ``<dataset>.train.batch_size`` if a lower bound on one training step's memory
    (``memory.training_step_bytes``, on the meta device) exceeds what ``device`` has free: each
    process on its own GPU, or all of them in the CPU's memory."""
    free = memory.free_bytes(device)
    if free is None:
        return
    on_meta = experiments.build(dataset, registry.get(dataset).model, section, info, memory.META)
    half = getattr(section.train, "amp", False) and device.type == "cuda"  # bfloat16 activations
    need = memory.training_step_bytes(on_meta.model, on_meta.objective, section.train.batch_size,
                                      info.n_dims, activation_scale=0.5 if half else 1.0)
    need *= n_processes if device.type == "cpu" else 1
    if need > free:
        raise cfg.ConfigError(
            f"{dataset}.train.batch_size: {section.train.batch_size} needs at least {memory.gib(need)} for one "
            f"training step{f' of {n_processes} processes' if device.type == 'cpu' and n_processes > 1 else ''}, "
            f"but {devices.describe(device) if device.type == 'cuda' else 'this machine'} has {memory.gib(free)} "
            f"free: lower it")


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
    stages.run(main)
