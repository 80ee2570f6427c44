"""The toy datasets as train/holdout splits, scaled, with the true log-likelihood where known.

Continuous data is scaled by one global mean and one global constant fit on the training split
(SPEC §2), and the true log-likelihood of each holdout example is carried in the scaled units,
so it can be set beside K (which is measured on the scaled data).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dpm import config as cfg
from dpm.atomic import atomic_path, atomic_write_text
from dpm.data import heartbeat, swiss_roll
from dpm.data.scaling import Scaling


@dataclass(frozen=True)
class Split:
    """A dataset ready for training.

    Attributes:
        train: (N, D) float32; holdout: (M, D) float32, both in model units.
        true_log_likelihood_nats: (M,) log p_data of each holdout example in model units.
        meta: JSON-able facts (scaling constants, π's rate, units).
    """
    train: np.ndarray
    holdout: np.ndarray
    true_log_likelihood_nats: np.ndarray
    meta: dict


def make_swiss_roll(c: cfg.SwissRollData) -> Split:
    """2-D swiss roll, scaled to unit variance; exact density via a 1-D integral."""
    rng = np.random.default_rng(c.seed)
    raw_train = swiss_roll.sample(c.n_train, c.noise, rng)
    raw_holdout = swiss_roll.sample(c.n_holdout, c.noise, rng)
    scaling = Scaling.fit(raw_train)
    n_dims = raw_holdout.shape[1]
    true_ll = swiss_roll.log_density(raw_holdout, c.noise) + scaling.log_abs_det_jacobian_nats(n_dims)
    meta = {"scaling": asdict(scaling), "unit": "bits", "n_dims": n_dims}
    return Split(scaling.apply(raw_train).astype(np.float32), scaling.apply(raw_holdout).astype(np.float32),
                 true_ll, meta)


def make_heartbeat(c: cfg.HeartbeatData) -> Split:
    """Binary heartbeat sequences; every sequence has probability 1/period."""
    rng = np.random.default_rng(c.seed)
    train = heartbeat.sample(c.n_train, c.n_bits, c.period, rng)
    holdout = heartbeat.sample(c.n_holdout, c.n_bits, c.period, rng)
    true_ll = np.full(c.n_holdout, heartbeat.true_log_likelihood_nats(c.period))
    meta = {"p_pi": heartbeat.mean_activity(c.n_bits, c.period), "unit": "bits/seq", "n_dims": c.n_bits}
    return Split(train, holdout, true_ll, meta)


def make(name: str, config: cfg.Config) -> Split:
    """The split named ``swiss_roll`` or ``heartbeat`` from its params.yaml section."""
    makers = {"swiss_roll": make_swiss_roll, "heartbeat": make_heartbeat}
    return makers[name](getattr(config, name).data)


def save(split: Split, folder: str | Path) -> None:
    """Write ``split`` as ``data.npz`` + ``meta.json`` in ``folder``, each atomically."""
    folder = Path(folder)
    with atomic_path(folder / "data.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, train=split.train, holdout=split.holdout,
                     true_log_likelihood_nats=split.true_log_likelihood_nats)
    atomic_write_text(folder / "meta.json", json.dumps(split.meta, indent=2) + "\n")


def load(folder: str | Path) -> Split:
    """Read a split written by ``save``."""
    folder = Path(folder)
    with np.load(folder / "data.npz") as arrays:
        parts = {key: arrays[key] for key in arrays.files}
    return Split(meta=json.loads((folder / "meta.json").read_text()), **parts)
