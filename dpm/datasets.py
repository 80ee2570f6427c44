"""Every dataset as a train/holdout split, with the true log-likelihood where it is known.

Continuous data is scaled by one global mean and one global constant fit on the training split
(SPEC §2), and the true log-likelihood of each holdout example is carried in the scaled units,
so it can be set beside K (which is measured on the scaled data). Images are kept as their
8-bit levels, flattened to (N, C·H·W); the model sees them dequantised and scaled
(dpm/data/images.py), with the constants in ``meta``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dpm import config as cfg
from dpm.atomic import atomic_path, atomic_write_text
from dpm.data import cifar10, dead_leaves, heartbeat, images, mnist, swiss_roll, textures
from dpm.data.scaling import Scaling


@dataclass(frozen=True)
class Split:
    """A dataset ready for training.

    Attributes:
        train: (N, D) float32; holdout: (M, D) float32, both in model units; for images
            uint8 levels, (N, C·H·W).
        true_log_likelihood_nats: (M,) log p_data of each holdout example in model units;
            empty where the true density is unknown (every image dataset).
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


def _image_split(train: np.ndarray, holdout: np.ndarray, dequantisation: str, label: str) -> Split:
    """Levels (N, C, H, W) → a Split of flattened levels, with the scaling fitted on train."""
    scaling = images.fit_scaling(train)
    n_colours, height, width = train.shape[1:]
    meta = {"scaling": asdict(scaling), "dequantisation": dequantisation,
            "noise_width": images.noise_width(scaling, dequantisation), "image_shape": [n_colours, height, width],
            "n_dims": n_colours * height * width, "n_pixels": height * width, "unit": "bits/pixel",
            "label": label}
    flat = lambda x: np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.uint8)  # noqa: E731
    return Split(flat(train), flat(holdout), np.zeros(0), meta)


def make_mnist(c: cfg.MnistData, raw_dir: Path) -> Split:
    """The first n_train MNIST training images; the first n_holdout test images."""
    train, _, test, _ = mnist.load(raw_dir)
    return _image_split(train[:c.n_train, None], test[:c.n_holdout, None], c.dequantisation, "MNIST")


def make_cifar10(c: cfg.Cifar10Data, raw_dir: Path) -> Split:
    """CIFAR-10: the mirror's subset split in order, or the official train/test split."""
    if c.source == "subset":
        x, _ = cifar10.load_subset(raw_dir / cifar10.SUBSET.filename)
        if c.n_train + c.n_holdout > len(x):
            raise cfg.ConfigError(f"cifar10.data: n_train + n_holdout = {c.n_train + c.n_holdout} exceeds the "
                             f"{len(x)} images of the subset")
        train, holdout = x[:c.n_train], x[c.n_train:c.n_train + c.n_holdout]
        label = f"CIFAR-10 ({len(x)}-image subset)"
    else:
        train, _, holdout, _ = cifar10.load_full(raw_dir / cifar10.ARCHIVE.filename)
        train, holdout = train[:c.n_train], holdout[:c.n_holdout]
        label = "CIFAR-10"
    nchw = lambda x: x.transpose(0, 3, 1, 2)  # noqa: E731  (NHWC → colours first)
    return _image_split(nchw(train), nchw(holdout), c.dequantisation, label)


def make_dead_leaves(c: cfg.DeadLeavesData) -> Split:
    """Seeded dead-leaves images (dpm/data/dead_leaves.py); train and holdout independent."""
    rng = np.random.default_rng(c.seed)
    train = dead_leaves.sample(c.n_train, c.image_size, c.r_min, c.r_max, rng)
    holdout = dead_leaves.sample(c.n_holdout, c.image_size, c.r_min, c.r_max, rng)
    return _image_split(train[:, None], holdout[:, None], c.dequantisation, "dead leaves (our generator)")


def texture_patches(photo: np.ndarray, patch_size: int, stride: int) -> np.ndarray:
    """Every patch_size × patch_size patch of a grey photograph on a grid of ``stride``:
    (n, patch_size, patch_size)."""
    windows = np.lib.stride_tricks.sliding_window_view(photo, (patch_size, patch_size))
    return windows[::stride, ::stride].reshape(-1, patch_size, patch_size)


def make_bark(c: cfg.BarkData, raw_dir: Path) -> Split:
    """Patches of bark photographs (or the texture stand-in); the bottom ``holdout_fraction``
    of every photograph is the holdout, so no holdout pixel is seen in training."""
    paths = sorted(raw_dir.iterdir())
    photos = textures.load_grey([p for p in paths if p.suffix.lower() in (".png", ".jpg", ".jpeg")])
    train, holdout = [], []
    for photo in photos:
        split_row = int(round(photo.shape[0] * (1 - c.holdout_fraction)))
        train.append(texture_patches(photo[:split_row], c.patch_size, c.stride))
        holdout.append(texture_patches(photo[split_row:], c.patch_size, c.patch_size))
    label = textures.BARK_LABEL if c.source == "bark" else textures.STAND_IN_LABEL
    return _image_split(np.concatenate(train)[:, None], np.concatenate(holdout)[:, None], c.dequantisation, label)


def make(name: str, config: cfg.Config, raw_dir: str | Path | None = None) -> Split:
    """The split of dataset ``name`` from its params.yaml section (and its fetched raw files)."""
    c = getattr(config, name).data
    if name in ("mnist", "cifar10", "bark"):
        if raw_dir is None:
            raise ValueError(f"{name}: needs the folder of its fetched raw files")
        makers = {"mnist": make_mnist, "cifar10": make_cifar10, "bark": make_bark}
        return makers[name](c, Path(raw_dir))
    makers = {"swiss_roll": make_swiss_roll, "heartbeat": make_heartbeat, "dead_leaves": make_dead_leaves}
    return makers[name](c)


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
