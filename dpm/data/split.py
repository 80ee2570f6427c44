"""A dataset as the pipeline stores it: a train/holdout split and the facts needed to read it.

Continuous data is scaled by one global mean and one global constant fitted on the training split
(SPEC §2); the true log-likelihood of each holdout example, where it is known, is carried in the
scaled units so that it can be set beside K. Images are kept as their 8-bit levels, flattened to
(N, C·H·W); the model sees them through their codec (dpm/data/images.py).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dpm.base.atomic import atomic_path, atomic_write_text
from dpm.data.scaling import Scaling


@dataclass(frozen=True)
class DataInfo:
    """What ``meta.json`` records of a split: how to read its values and how to report K on it.

    Attributes:
        label: the data's name in tables and figure titles ("MNIST", "texture stand-in", …).
        unit: the reporting unit of K: "bits" (per point), "bits/seq" or "bits/pixel".
        n_dims: D, values per example.
        n_units: K per example is divided by this when reported (pixels per image, else 1).
        scaling: continuous data: the global scaling from raw units (images: from [0, 1] pixels).
        image_shape: images: (colours, height, width).
        dequantisation: images: the width of the uniform noise added to each level (SPEC §2).
        p_pi: binary data: π's rate, the data's mean activity.
        period: heartbeat: the pulse period (the number of distinct sequences).
    """
    label: str
    unit: str
    n_dims: int
    n_units: int = 1
    scaling: Scaling | None = None
    image_shape: tuple[int, int, int] | None = None
    dequantisation: str | None = None
    p_pi: float | None = None
    period: int | None = None

    @property
    def is_image(self) -> bool:
        return self.image_shape is not None

    def to_json(self) -> dict:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, data: dict) -> "DataInfo":
        values = dict(data)
        if "scaling" in values:
            values["scaling"] = Scaling(**values["scaling"])
        if "image_shape" in values:
            values["image_shape"] = tuple(values["image_shape"])
        return cls(**values)


@dataclass(frozen=True)
class Split:
    """A dataset ready for training.

    Attributes:
        train: (N, D) float32 in model units; images: uint8 levels (N, C·H·W).
        holdout: (M, D), as ``train``.
        info: how to read and report them.
        true_log_likelihood_nats: (M,) log p_data of each holdout example in model units;
            empty where the true density is unknown.
    """
    train: np.ndarray
    holdout: np.ndarray
    info: DataInfo
    true_log_likelihood_nats: np.ndarray = field(default_factory=lambda: np.zeros(0))


def save(split: Split, folder: str | Path) -> None:
    """Write ``split`` as ``data.npz`` + ``meta.json`` in ``folder``, each atomically."""
    folder = Path(folder)
    with atomic_path(folder / "data.npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, train=split.train, holdout=split.holdout,
                 true_log_likelihood_nats=split.true_log_likelihood_nats)
    atomic_write_text(folder / "meta.json", json.dumps(split.info.to_json(), indent=2) + "\n")


def load(folder: str | Path) -> Split:
    """Read a split written by ``save`` (plain arrays only: nothing is unpickled)."""
    folder = Path(folder)
    parts = read_arrays(folder / "data.npz", ("train", "holdout", "true_log_likelihood_nats"))
    return Split(info=DataInfo.from_json(json.loads((folder / "meta.json").read_text())), **parts)


def read_arrays(path: str | Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the npz file ``path``, plain arrays only: an array of Python objects
    (which only unpickling could read, and so could run code) is refused, never loaded.

    Raises:
        ValueError: one line naming the file: an object array, a missing array, not an npz file.
    """
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return {key: arrays[key] for key in keys}
    except ValueError as error:
        if "allow_pickle" not in str(error):
            raise ValueError(f"{path}: {error}") from None
        raise ValueError(f"{path}: holds an array of Python objects, which only unpickling could read (and so "
                         f"could run code): refused; remake the file with the stage that writes it") from None
    except KeyError as error:
        raise ValueError(f"{path}: no array {error.args[0].split()[0]!r} in it; remake the "
                         f"file with the stage that writes it") from None
    except (zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{path}: not an npz file this library can read ({error}); remake it") from None


def load_info(folder: str | Path) -> DataInfo:
    """Only ``meta.json`` of a split: enough to build or load its model."""
    return DataInfo.from_json(json.loads((Path(folder) / "meta.json").read_text()))
