"""Stage ``parzen_samples@shardK``: one shard of the MNIST model samples that are Table 2's
Parzen centres, mapped back to [0, 1] pixel space.

Usage: python -m pipeline.parzen_samples SHARD N_SHARDS DATA_DIR MODEL_FILE OUT_NPZ RESUME_DIR [--provenance FILE]

The set of mnist.parzen.n_samples samples is drawn batch_size at a time, batch b from its own
seed (dpm.chain.sampling.sample_batch); shard k of n draws the batches b with b mod n = k, so the
shards run side by side (``snakemake --cores 2``), shard k on GPU k mod (visible GPUs) on CUDA,
and their union does not depend on n. Each
finished batch is kept in RESUME_DIR (persist: an interrupted run resumes where it stopped,
as long as the model, the params and the device are the same); OUT_NPZ appears whole at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dpm.base import provenance
from dpm.chain import sampling
from dpm.base.atomic import atomic_path, atomic_write_text
from dpm.base import stages
from dpm.core import trained as trained_model

DATASET = "mnist"


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("shard", type=int)
    parser.add_argument("n_shards", type=int)
    for name in ("data_dir", "model_file", "out_npz", "resume_dir"):
        parser.add_argument(name, type=Path)
    stages.provenance_option(parser)
    args = parser.parse_args(argv)
    if not 0 <= args.shard < args.n_shards:
        raise stages.StageError(f"shard {args.shard} of {args.n_shards}: expected 0 <= shard < n_shards")
    config = stages.load_config()
    trained = trained_model.load(DATASET, args.data_dir, args.model_file, config)
    c, codec = trained.section.parzen, trained.objective.codec
    device = sampling.shard_device(trained.device, args.shard)
    model = trained.model.to(device)
    batches = list(range(args.shard, c.n_batches(), args.n_shards))
    key = provenance.fingerprint(c, trained.section.diffusion, trained.section.net, device.type, config.tf32,
                                 provenance.file_digest(args.model_file))
    done = _resume_dir(args.resume_dir, key)
    n_dims = trained.info.n_dims
    start, drawn = time.perf_counter(), 0
    for b in tqdm(batches, desc=f"samples {args.shard + 1}/{args.n_shards}", unit="batch"):
        path = done / f"batch_{b:06d}.npy"
        if path.exists():
            continue
        x = sampling.sample_batch(model, b, c.n_samples, c.batch_size, n_dims, c.seed, device)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, codec.decode(x).reshape(len(x), n_dims).astype(np.float32))
        drawn += 1
    pixels = [np.load(done / f"batch_{b:06d}.npy", allow_pickle=False) for b in batches]
    record = {"dataset": DATASET, "profile": config.profile, "shard": args.shard, "n_shards": args.n_shards,
              "batches": batches, "n_samples": c.n_samples, "batch_size": c.batch_size, "seed": c.seed,
              "T": trained.section.diffusion.n_steps, **stages.computed_on(device)}
    write_shard(args.out_npz, np.concatenate(pixels) if pixels else np.zeros((0, n_dims), np.float32), batches,
                record)
    stages.write_provenance(args.provenance, seconds=time.perf_counter() - start, batches_drawn=drawn)


def write_shard(path: Path, pixels: np.ndarray, batches: list[int], record: dict) -> None:
    """One .npz, atomically: ``pixels`` (rows of the batches, in order), ``batches``, and the
    ``record`` as JSON (the parzen stage checks it against params.yaml)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, pixels=pixels, batches=np.asarray(batches, dtype=np.int64), record=np.asarray(json.dumps(record)))


def _resume_dir(resume_dir: Path, key: str) -> Path:
    """The folder of finished batches for ``key``; batches drawn under another key are removed."""
    stamp = resume_dir / "fingerprint"
    if resume_dir.exists() and (not stamp.exists() or stamp.read_text().strip() != key):
        shutil.rmtree(resume_dir)
    resume_dir.mkdir(parents=True, exist_ok=True)
    if not stamp.exists():
        atomic_write_text(stamp, key + "\n")
    return resume_dir


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    stages.run(main)
