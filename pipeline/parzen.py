"""Stage ``parzen``: the Parzen-window MNIST estimates of Table 2 (SPEC §2).

Usage: python -m pipeline.parzen DATA_DIR OUT_JSON SAMPLES_NPZ... [--provenance FILE]

Two rows, by the same code (dpm.estimate.parzen.estimate): our diffusion model, with the samples of
the ``parzen_samples`` shards as the centres, and the "perfect model", with the first
mnist.parzen.n_centres training images as the centres. For both, σ is chosen from
logspace(−1, 0, 10) on training images validation_start .. + n_validation, and the test
images (the holdout) are scored: mean log-likelihood ± std/√N, in nats and in bits.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from dpm.base import device as devices
from dpm.estimate import parzen
from dpm.data import images, split as splits
from dpm.base import stages

DATASET = "mnist"


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("out_json", type=Path)
    parser.add_argument("samples", type=Path, nargs="+", help="the shards' .npz files, any order")
    stages.provenance_option(parser)
    args = parser.parse_args(argv)
    config = stages.load_config()
    c = config.mnist.parzen
    split = splits.load(args.data_dir)
    samples, shards = gather(args.samples, c)
    device = devices.resolve(config.device)
    to_unit = 1.0 / (images.N_LEVELS - 1)
    test = split.holdout * to_unit
    validation = split.train[c.validation_start:c.validation_start + c.n_validation] * to_unit
    rows, seconds = {}, {}
    for name, centres in (("diffusion", samples), ("perfect", split.train[:c.n_centres] * to_unit)):
        start = time.perf_counter()
        rows[name] = asdict(parzen.estimate(test, validation, centres, device=device))
        seconds[f"{name}_seconds"] = time.perf_counter() - start
    stages.write_json(args.out_json, {
        "dataset": DATASET, "label": split.info.label, "profile": config.profile,
        "diffusion": rows["diffusion"], "perfect": rows["perfect"],
        "n_validation": c.n_validation, "validation_start": c.validation_start,
        "sampling": {"n_samples": len(samples), "seed": c.seed, "batch_size": c.batch_size, "T": shards[0]["T"],
                     "n_shards": len(shards), "device": shards[0]["device"],
                     "environment": shards[0].get("environment")},
        **stages.computed_on(device),
    })
    stages.write_provenance(args.provenance, **seconds)


def gather(paths: list[Path], c) -> tuple[np.ndarray, list[dict]]:
    """The shards' samples in batch order and their records; a clear error if any shard is
    missing, repeated or drawn with other params."""
    shards, by_batch = [], {}
    for path in paths:
        if not path.exists():
            raise stages.StageError(f"{path}: missing; run the parzen_samples stage that writes it")
        arrays = splits.read_arrays(path, ("record", "pixels", "batches"))
        record, pixels, batches = json.loads(str(arrays["record"])), arrays["pixels"], arrays["batches"].tolist()
        drawn_with = (record["n_samples"], record["batch_size"], record["seed"])
        if drawn_with != (c.n_samples, c.batch_size, c.seed):
            raise stages.StageError(f"{path}: drawn with n_samples, batch_size, seed = {drawn_with}, params.yaml "
                                    f"has {(c.n_samples, c.batch_size, c.seed)}; rerun its parzen_samples stage")
        start = 0
        for b in batches:
            if b in by_batch:
                raise stages.StageError(f"{path}: batch {b} is also in another shard")
            rows = c.batch_rows(b)
            by_batch[b] = pixels[start:start + rows]
            start += rows
        if start != len(pixels):
            raise stages.StageError(f"{path}: {len(pixels)} samples for its {len(batches)} batches, which hold {start}; "
                                    "rerun its parzen_samples stage")
        shards.append(record)
    missing = sorted(set(range(c.n_batches())) - set(by_batch))
    if missing:
        raise stages.StageError(f"samples: batches {missing[:5]}{'…' if len(missing) > 5 else ''} are in no shard "
                                f"({len(paths)} shard files given)")
    return np.concatenate([by_batch[b] for b in sorted(by_batch)]), shards


if __name__ == "__main__":
    stages.run(main)
