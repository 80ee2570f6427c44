"""MNIST: the four original gzip'd idx files, fetched with checksums and decoded with numpy.

The sha256s are those of the verified offline mirror (``mnist/SHA256SUMS``); the files are
byte-identical to the originals, whose published md5s (f68b3c2d…, d53e105e…, 9fb629c4…,
ec29112d…, as recorded in torchvision's ``MNIST.resources``) they match.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from dpm.datasets.fetch import FROM_ENV, Mirror, RemoteFile, fetch
from dpm.data.images import image_split
from dpm.data.split import Split

# torchvision's mirror of the original files. The original location,
# http://yann.lecun.com/exdb/mnist/, is often unavailable (HTTP 403); torchvision tries it first.
BASE_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"


def _remote(filename: str, sha256: str) -> RemoteFile:
    return RemoteFile(filename, sha256, BASE_URL + filename, f"mnist/{filename}")


FILES = {
    "train_images": _remote("train-images-idx3-ubyte.gz",
                            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train_labels": _remote("train-labels-idx1-ubyte.gz",
                            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "test_images": _remote("t10k-images-idx3-ubyte.gz",
                           "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "test_labels": _remote("t10k-labels-idx1-ubyte.gz",
                           "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}

IMAGE_SHAPE = (28, 28)  # height, width
N_TRAIN, N_TEST = 60_000, 10_000

# idx type codes (third magic byte) and the big-endian numpy types they denote.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _parse_idx(data: bytes) -> np.ndarray:
    """Decodes the bytes of an idx file; raises ValueError (without the file name) if malformed."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError("not an idx file (the magic number must start with two zero bytes)")
    type_code, n_dims = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"unknown idx type code 0x{type_code:02x}")
    header_bytes = 4 + 4 * n_dims
    if n_dims == 0 or len(data) < header_bytes:
        raise ValueError(f"bad header ({n_dims} dimensions, {len(data)} bytes in all)")
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", count=n_dims, offset=4))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected_bytes = header_bytes + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected_bytes:
        raise ValueError(f"shape {shape} needs {expected_bytes} bytes, the file has {len(data)}")
    values = np.frombuffer(data, dtype, offset=header_bytes).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """Reads a gzip-compressed idx file (the MNIST format).

    Args:
        path: the ``.gz`` file.

    Returns:
        The array, with the shape and element type its header declares (uint8 for MNIST),
        in native byte order.

    Raises:
        ValueError: the file is not valid gzip, or not a well-formed idx file; names ``path``.
    """
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
        return _parse_idx(data)
    except (OSError, EOFError, zlib.error, ValueError) as err:
        raise ValueError(f"{path}: malformed idx.gz file: {err}") from err


def fetch_all(dest_dir: str | Path, mirror: Mirror = FROM_ENV) -> dict[str, Path]:
    """Fetches and verifies the four MNIST files (see `dpm.datasets.fetch.fetch`).

    Args:
        dest_dir: the raw-data folder.
        mirror: mirror root; `FROM_ENV` reads ``$DPM_DATA_MIRROR``, None means none.

    Returns:
        The verified file for each key of `FILES`.
    """
    return {key: fetch(remote, dest_dir, mirror) for key, remote in FILES.items()}


def _read_split(raw_dir: Path, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Reads one split's images and labels, checking their shapes and types."""
    images_path = raw_dir / FILES[f"{split}_images"].filename
    labels_path = raw_dir / FILES[f"{split}_labels"].filename
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.shape != (n, *IMAGE_SHAPE) or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images of shape {(n, *IMAGE_SHAPE)}, "
                         f"got {images.dtype} {images.shape}")
    if labels.shape != (n,) or labels.dtype != np.uint8 or labels.max(initial=0) > 9:
        raise ValueError(f"{labels_path}: expected {n} uint8 labels in 0..9, "
                         f"got {labels.dtype} {labels.shape}")
    return images, labels


def load(raw_dir: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decodes the four MNIST files in ``raw_dir`` (as placed there by `fetch_all`).

    Args:
        raw_dir: folder holding the four files of `FILES` under their original names.

    Returns:
        train_images uint8 (60000, 28, 28), train_labels uint8 (60000,),
        test_images uint8 (10000, 28, 28), test_labels uint8 (10000,); pixels in 0..255,
        labels in 0..9.
    """
    raw_dir = Path(raw_dir)
    train_images, train_labels = _read_split(raw_dir, "train", N_TRAIN)
    test_images, test_labels = _read_split(raw_dir, "test", N_TEST)
    return train_images, train_labels, test_images, test_labels


def fetch_raw(c, dest_dir: str | Path) -> None:
    """The fetch stage: the four files, from ``$DPM_DATA_MIRROR`` or their address, verified."""
    fetch_all(dest_dir)


def make_split(c, raw_dir: str | Path) -> Split:
    """The first n_train MNIST training images; the first n_holdout test images."""
    train, _, test, _ = load(raw_dir)
    return image_split(train[:c.n_train, None], test[:c.n_holdout, None], c.dequantisation, "MNIST")
