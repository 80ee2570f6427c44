"""CIFAR-10: the official python archive, and the offline mirror's exact 4000-image subset.

The full set is the official ``cifar-10-python.tar.gz``; its batches are pickles, so they are
unpickled only after the whole archive's sha256 matched (the checksum covers every member), and
only from the very bytes that were hashed: the archive is read into memory once, and the batches
are taken out of those bytes, never out of the file again.
The offline mirror holds only images 0–3999 of ``data_batch_1`` as an npz file (`SUBSET`); a run
on it trains on that subset, and must say so next to its numbers.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from dpm.data.images import image_split
from dpm.data.split import Split, read_arrays
from dpm.base.registry import Cifar10Data
from dpm.datasets.fetch import (
    FROM_ENV,
    Mirror,
    MissingDataError,
    RemoteFile,
    fetch,
    read_verified,
    resolve_mirror,
    tar_member_bytes,
    write_verified,
)

# The sha256 is the one keras records (file_hash in keras.datasets.cifar10.load_data, also in
# tf.keras); the CIFAR page and torchvision (CIFAR10.tgz_md5) publish md5
# c58f30108f718f92721af3b95e74349a.
ARCHIVE = RemoteFile(
    "cifar-10-python.tar.gz",
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar10/cifar-10-python.tar.gz",
)
SUBSET = RemoteFile(
    "cifar10_data_batch_1_first4000_nhwc.npz",
    "0836cfd52738e36989292d4899fac21bb548f3c8d09e948c8f19273ec3f4a8ae",
    None,
    "cifar10/cifar10_data_batch_1_first4000_nhwc.npz",
)

N_SUBSET = Cifar10Data.SUBSET_SIZE
IMAGE_SHAPE = (32, 32, 3)  # height, width, colours
BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"


def fetch_full(dest_dir: str | Path, mirror: Mirror = FROM_ENV) -> Path:
    """Fetches and verifies the official archive; mirror path ``cifar10/cifar-10-python.tar.gz``."""
    return fetch(ARCHIVE, dest_dir, mirror)


def _rows_to_nhwc(rows: np.ndarray) -> np.ndarray:
    """Official rows (N, 3072), each R, G, B planes of 32×32, to images (N, 32, 32, 3)."""
    n = rows.shape[0]
    chw = rows.reshape(n, 3, 32, 32)  # batch, colours, height, width
    return np.ascontiguousarray(chw.transpose(0, 2, 3, 1))


def _decode_batch(name: str, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Unpickles one official batch; only call it on bytes out of a verified archive."""
    batch = pickle.loads(data, encoding="bytes")
    rows = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], dtype=np.uint8)
    if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{name}: expected uint8 rows of 3072 values, "
                         f"got {rows.dtype} {rows.shape}")
    if labels.shape != (rows.shape[0],):
        raise ValueError(f"{name}: {rows.shape[0]} images but {labels.shape} labels")
    return _rows_to_nhwc(rows), labels


def _read_batches(archive_path: Path, names: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Reads the archive once, verifies those bytes, then decodes the named batches out of them
    (in that order); the file is never reopened, so one swapped after the check is not read."""
    archive = read_verified(archive_path, ARCHIVE.sha256)
    members = tar_member_bytes(archive, [f"{BATCH_DIR}/{name}" for name in names])
    return [_decode_batch(name, data) for name, data in zip(names, members)]


def load_full(archive_path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decodes the official archive after checking its sha256.

    Args:
        archive_path: ``cifar-10-python.tar.gz``, as placed by `fetch_full`.

    Returns:
        train_images uint8 (50000, 32, 32, 3), train_labels uint8 (50000,),
        test_images uint8 (10000, 32, 32, 3), test_labels uint8 (10000,); NHWC, RGB,
        pixels in 0..255, labels in 0..9, in the official order.

    Raises:
        ChecksumError: the archive is not the official one; nothing was unpickled.
        UnsafeArchiveError: a batch member is not a plain file or has an unsafe path.
    """
    batches = _read_batches(Path(archive_path), [*TRAIN_BATCHES, TEST_BATCH])
    train_images = np.concatenate([images for images, _ in batches[:-1]])
    train_labels = np.concatenate([labels for _, labels in batches[:-1]])
    test_images, test_labels = batches[-1]
    return train_images, train_labels, test_images, test_labels


def _write_subset(archive_path: Path, dest: Path) -> Path:
    """Cuts images 0–3999 of ``data_batch_1`` into `SUBSET`'s npz format at ``dest``, verified."""
    [(images, labels)] = _read_batches(archive_path, [TRAIN_BATCHES[0]])

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, x_train=images[:N_SUBSET], y_train=labels[:N_SUBSET])

    return write_verified(dest, SUBSET.sha256, write, f"{dest.name} cut from {archive_path}")


def fetch_subset(dest_dir: str | Path, mirror: Mirror = FROM_ENV) -> Path:
    """Fetches the 4000-image subset from the mirror, or cuts it from the official archive.

    Deviation: the cut file is checked against the mirror's sha256 too. That works because
    numpy's ``savez_compressed`` writes fixed zip timestamps, so the same arrays give the same
    bytes; a zlib that compresses differently would raise `ChecksumError` although the arrays
    are right (then use `load_full` and take the first 4000 training images).

    Args:
        dest_dir: the raw-data folder; the official archive is fetched there if needed.
        mirror: mirror root; `FROM_ENV` reads ``$DPM_DATA_MIRROR``, None means none.

    Returns:
        The verified ``cifar10_data_batch_1_first4000_nhwc.npz`` in ``dest_dir``.

    Raises:
        MissingDataError: neither the subset nor the archive can be had (the archive's error,
            raised while handling the subset's).
    """
    mirror = resolve_mirror(mirror)
    try:
        return fetch(SUBSET, dest_dir, mirror)
    except MissingDataError:
        archive = fetch_full(dest_dir, mirror)
    return _write_subset(archive, Path(dest_dir) / SUBSET.filename)


def load_subset(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Loads an npz in `SUBSET`'s format.

    Args:
        path: the npz file, with arrays ``x_train`` and ``y_train``.

    Returns:
        images uint8 (N, 32, 32, 3) NHWC RGB in 0..255, labels uint8 (N,) in 0..9
        (N = 4000 for `SUBSET`).
    """
    arrays = read_arrays(path, ("x_train", "y_train"))
    images, labels = arrays["x_train"], arrays["y_train"]
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{path}: expected uint8 images (N, 32, 32, 3), "
                         f"got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise ValueError(f"{path}: expected {images.shape[0]} uint8 labels, "
                         f"got {labels.dtype} {labels.shape}")
    return images, labels


def fetch_raw(c: Cifar10Data, dest_dir: str | Path) -> None:
    """The fetch stage: the subset or the official archive, as ``c.source`` says, verified."""
    (fetch_subset if c.source == "subset" else fetch_full)(dest_dir)


def make_split(c: Cifar10Data, raw_dir: str | Path) -> Split:
    """The mirror's subset split in order, or the official train/test split."""
    raw_dir = Path(raw_dir)
    if c.source == "subset":
        x, _ = load_subset(raw_dir / SUBSET.filename)
        train, holdout = x[:c.n_train], x[c.n_train:c.n_train + c.n_holdout]
        label = f"CIFAR-10 ({len(x)}-image subset)"
    else:
        train, _, holdout, _ = load_full(raw_dir / ARCHIVE.filename)
        train, holdout = train[:c.n_train], holdout[:c.n_holdout]
        label = "CIFAR-10"
    nchw = lambda x: x.transpose(0, 3, 1, 2)  # noqa: E731  (NHWC → colours first)
    return image_split(nchw(train), nchw(holdout), c.dequantisation, label)
