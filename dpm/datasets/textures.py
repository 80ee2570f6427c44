"""Grey texture images: the paper's bark set, and the offline mirror's stand-in for it.

The paper's bark images are classes T01–T04 of the UIUC texture database (Lazebnik, Schmid &
Ponce 2005): 40 grey 640×480 JPEGs per class (public loaders name them bark1–bark3 and wood1),
published by the Ponce group in five zips; the first, ``T01-T05.zip``, holds T01–T05. Its
original address is http://www-cvr.ai.uiuc.edu/ponce_grp/data/texture_database/T01-T05.zip;
`BARK` uses the Wayback Machine snapshot of it that google-deepmind/dm_nevis downloads (neither
could be reached from the machine this was written on). Lazebnik also offers all 25 classes in
one zip, http://slazebni.cs.illinois.edu/research/uiuc_texture_dataset.zip.

No sha256 of the zip is published anywhere we could find, so `BARK` records the published md5,
e622e4708e336d51b3bbd45503618af1 (dm_nevis, ``datasets_storage/handlers/uiuc_texture.py``); a
public ``UIUCTex`` loader publishes its sha1, c0761b76080a9a9200b4a6894e05fabaca1fb280.
`fetch_bark` verifies the zip against the md5, keeps only the JPEGs of T01–T04, flat in the
raw-data folder (``T01_01.jpg`` … ``T04_40.jpg``), and deletes the zip.

Zip layout (not seen by us; inferred from public loaders): one folder per class holding
``T<class>_<nn>.jpg``; the ``UIUCTex`` loader reads ``T01_bark1/T01_01.jpg`` and dm_nevis takes
each image's folder as its class. `extract_bark` therefore takes a member's class from its file
name, or else from the nearest folder named ``T01``–``T04`` (``T01``, ``T01_bark1``, …), and
checks that exactly 40 images per class were found.

Deviation: the zip is checked by md5, not sha256, because md5 is all that is published; it
still catches a corrupt or wrong file. Runs configured with the stand-in use `STAND_IN`, three
512×512 grey texture photographs (CC0, from scikit-image) held by the offline mirror; their
results must carry `STAND_IN_LABEL`.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from dpm.base.atomic import atomic_path
from dpm.data.images import image_split
from dpm.data.split import Split
from dpm.base.registry import BarkData
from dpm.datasets.fetch import (
    CHUNK_BYTES,
    FROM_ENV,
    Mirror,
    RemoteFile,
    UnsafeArchiveError,
    check_member_name,
    fetch,
)

STAND_IN_LABEL = "texture stand-in"
BARK_LABEL = "bark (UIUC T01–T04)"

STAND_IN = (
    RemoteFile("brick.png", "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
               None, "textures/brick.png"),
    RemoteFile("grass.png", "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
               None, "textures/grass.png"),
    RemoteFile("gravel.png", "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
               None, "textures/gravel.png"),
)

# No sha256 is published; md5 from dm_nevis, and sha1 c0761b76080a9a9200b4a6894e05fabaca1fb280
# from a public UIUCTex loader (see the module docstring).
BARK = RemoteFile(
    "T01-T05.zip",
    None,
    "https://web.archive.org/web/20070829035029/"
    "http://www-cvr.ai.uiuc.edu/ponce_grp/data/texture_database/T01-T05.zip",
    "textures/T01-T05.zip",
    md5="e622e4708e336d51b3bbd45503618af1",
)
BARK_CLASSES = ("T01", "T02", "T03", "T04")
N_PER_CLASS = 40

# A UIUC class at the start of an image's name ("T01_01.jpg"), or as a whole folder name ("T01",
# "T01_bark1"; not "T01-T05").
_CLASS_IN_NAME = re.compile(r"(T[0-9]{2})(?![0-9])", re.IGNORECASE)
_CLASS_FOLDER = re.compile(r"(T[0-9]{2})(?:_[a-z0-9]+)?", re.IGNORECASE)
_JPEG_SUFFIXES = (".jpg", ".jpeg")

# Colour modes PIL converts to 8-bit grey with its ITU-R 601-2 luma transform.
_GREY_CONVERTIBLE = {"1", "L", "LA", "P", "RGB", "RGBA"}


def fetch_stand_in(dest_dir: str | Path, mirror: Mirror = FROM_ENV) -> list[Path]:
    """Fetches and verifies the three stand-in textures (mirror only).

    Args:
        dest_dir: the raw-data folder.
        mirror: mirror root; `FROM_ENV` reads ``$DPM_DATA_MIRROR``, None means none.

    Returns:
        The verified PNG files, in `STAND_IN` order.
    """
    return [fetch(remote, dest_dir, mirror) for remote in STAND_IN]


def load_grey(paths: list[Path]) -> list[np.ndarray]:
    """Decodes images as 8-bit grey.

    The stand-in PNGs are already 8-bit grey (PIL mode ``"L"``) and the UIUC JPEGs are grey;
    colour images are converted with PIL's luma transform.

    Args:
        paths: image files PIL can read.

    Returns:
        One uint8 array (H, W) per path, 0 black to 255 white.

    Raises:
        ValueError: an image's mode (e.g. 16-bit) has no lossless-enough conversion; names it.
    """
    images = []
    for path in paths:
        with Image.open(path) as image:
            if image.mode not in _GREY_CONVERTIBLE:
                raise ValueError(f"{path}: cannot convert PIL mode {image.mode!r} to 8-bit grey")
            images.append(np.asarray(image.convert("L"), dtype=np.uint8))
    return images


def _bark_name(name: str) -> str | None:
    """The flat file name a zip member's JPEG gets (``T01_01.jpg``), or None if it is no bark
    image: not a JPEG, hidden or macOS metadata, or with no T01–T04 in its name or folders."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or not parts[-1].lower().endswith(_JPEG_SUFFIXES):
        return None
    if any(part.startswith((".", "__MACOSX")) for part in parts):
        return None
    basename = parts[-1]
    if named := _CLASS_IN_NAME.match(basename):
        return basename if named.group(1).upper() in BARK_CLASSES else None
    folders = (_CLASS_FOLDER.fullmatch(part) for part in reversed(parts[:-1]))
    folder = next((m for m in folders if m), None)  # the nearest class folder
    if folder is None or folder.group(1).upper() not in BARK_CLASSES:
        return None
    return f"{folder.group(1).upper()}_{basename}"


def _select_bark(zf: zipfile.ZipFile, root: Path) -> list[tuple[zipfile.ZipInfo, str]]:
    """Checks every member's path, then picks the bark JPEGs with their flat names.

    Raises:
        UnsafeArchiveError: any member could land outside ``root``, or a chosen one is a link.
        ValueError: two members get the same flat name, or a class has not `N_PER_CLASS` images.
    """
    chosen, seen = [], {}
    for info in zf.infolist():
        check_member_name(info.filename, root)
        flat = None if info.is_dir() else _bark_name(info.filename)
        if flat is None:
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeArchiveError(
                f"refusing archive member {info.filename!r}: it is a symbolic link")
        check_member_name(flat, root)  # e.g. a symlink already at dest_dir/flat pointing out
        if flat in seen:
            raise ValueError(f"archive members {seen[flat]!r} and {info.filename!r} would both "
                             f"be extracted as {flat}")
        seen[flat] = info.filename
        chosen.append((info, flat))
    counts = {c: sum(flat[:3].upper() == c for _, flat in chosen) for c in BARK_CLASSES}
    if any(n != N_PER_CLASS for n in counts.values()):
        found = ", ".join(f"{c}: {n}" for c, n in counts.items())
        raise ValueError(f"expected {N_PER_CLASS} JPEGs in each of classes "
                         f"{', '.join(BARK_CLASSES)}, found {found}")
    return chosen


def extract_bark(archive: str | Path, dest_dir: str | Path) -> list[Path]:
    """Extracts the JPEGs of classes T01–T04 from a UIUC zip, flat, into ``dest_dir``.

    Every member's path is checked before anything is written (absolute paths, ``..``, paths
    resolving outside ``dest_dir`` are refused, whether chosen or not). Each image goes to a
    temporary name and is renamed once whole; if any fails, those already written are removed.
    Members of other classes (T05) and other files are skipped. Call it only on a verified zip.

    Args:
        archive: ``T01-T05.zip`` (or a zip laid out like it: see the module docstring).
        dest_dir: the raw-data folder (created if needed).

    Returns:
        The extracted images, ``dest_dir/T01_01.jpg`` style, sorted by name.

    Raises:
        UnsafeArchiveError: a member is unsafe (named in the message); nothing is written.
        ValueError: not exactly `N_PER_CLASS` images per class (counts in the message), or
            two members would share a name; nothing is written.
    """
    root = Path(dest_dir)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    written = []
    with zipfile.ZipFile(archive) as zf:
        chosen = sorted(_select_bark(zf, root), key=lambda pair: pair[1])
        try:
            for info, flat in chosen:
                with zf.open(info) as source, atomic_path(root / flat) as tmp, \
                        open(tmp, "wb") as out:
                    shutil.copyfileobj(source, out, CHUNK_BYTES)
                written.append(root / flat)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
    return written


def fetch_bark(dest_dir: str | Path, mirror: Mirror = FROM_ENV) -> list[Path]:
    """Fetches ``T01-T05.zip``, verifies its md5, and leaves only the bark JPEGs in ``dest_dir``.

    The zip comes from ``dest_dir`` itself if a verified copy is there, else from the mirror
    (``textures/T01-T05.zip``), else from `BARK`'s URL. Its T01–T04 images are extracted by
    `extract_bark` and the zip is then deleted, since the data stage reads every image in
    ``dest_dir`` (which should hold nothing else). If extraction fails, the verified zip is kept.

    Args:
        dest_dir: the raw-data folder.
        mirror: mirror root; `FROM_ENV` reads ``$DPM_DATA_MIRROR``, None means none.

    Returns:
        The 160 images, ``dest_dir/T01_01.jpg`` … ``dest_dir/T04_40.jpg``, sorted by name.

    Raises:
        MissingDataError: the zip is in neither the mirror nor at its URL (the message says
            its URL, md5 and where to put it).
        ChecksumError: the mirror copy or the download has another md5; nothing is left behind.
        UnsafeArchiveError, ValueError: as `extract_bark`; nothing is extracted.
    """
    archive = fetch(BARK, dest_dir, mirror)
    images = extract_bark(archive, dest_dir)
    archive.unlink()
    return images


def fetch_raw(c: BarkData, dest_dir: str | Path) -> None:
    """The fetch stage: the bark zip's JPEGs, or the stand-in photographs, as ``c.source`` says."""
    (fetch_bark if c.source == "bark" else fetch_stand_in)(dest_dir)


def photograph_paths(c: BarkData, raw_dir: str | Path) -> list[Path]:
    """The photographs of ``c.source`` in ``raw_dir``, by their exact names, sorted: nothing else
    in the folder (a leftover temporary file, a stray image) is read as data.

    Raises:
        FileNotFoundError: a photograph is missing (names it; rerun the fetch stage).
    """
    raw_dir = Path(raw_dir)
    if c.source == "stand_in":
        names = [remote.filename for remote in STAND_IN]
    else:
        names = [f"{cls}_{i:02d}.jpg" for cls in BARK_CLASSES for i in range(1, N_PER_CLASS + 1)]
    missing = [name for name in names if not (raw_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{raw_dir}: missing {', '.join(missing[:3])}{'…' if len(missing) > 3 else ''}; "
                                "rerun the fetch stage")
    return sorted(raw_dir / name for name in names)


def photographs(c: BarkData, raw_dir: str | Path) -> list[np.ndarray]:
    """The photographs of ``c.source``, grey (H, W) uint8, each checked against the size the
    configuration was validated for (``BarkData.PHOTO_SHAPES``)."""
    photos, paths = [], photograph_paths(c, raw_dir)
    for path, photo in zip(paths, load_grey(paths)):
        if photo.shape != BarkData.PHOTO_SHAPES[c.source]:
            raise ValueError(f"{path}: expected a {BarkData.PHOTO_SHAPES[c.source]} photograph, got {photo.shape}")
        photos.append(photo)
    return photos


def holdout_strip(c: BarkData, photo: np.ndarray) -> np.ndarray:
    """The bottom rows of a photograph that no training patch sees (``c.holdout_fraction``)."""
    return photo[photo.shape[0] - c.holdout_rows():]


def texture_patches(photo: np.ndarray, patch_size: int, stride: int) -> np.ndarray:
    """Every patch_size × patch_size patch of a grey photograph on a grid of ``stride``:
    (n, patch_size, patch_size)."""
    windows = np.lib.stride_tricks.sliding_window_view(photo, (patch_size, patch_size))
    return windows[::stride, ::stride].reshape(-1, patch_size, patch_size)


def make_split(c: BarkData, raw_dir: str | Path) -> Split:
    """Patches of the photographs: training patches on a grid of ``c.stride`` above the holdout
    strip, non-overlapping holdout patches inside it, so no holdout pixel is seen in training."""
    train, holdout = [], []
    for photo in photographs(c, raw_dir):
        strip = holdout_strip(c, photo)
        train.append(texture_patches(photo[:len(photo) - len(strip)], c.patch_size, c.stride))
        holdout.append(texture_patches(strip, c.patch_size, c.patch_size))
    label = BARK_LABEL if c.source == "bark" else STAND_IN_LABEL
    return image_split(np.concatenate(train)[:, None], np.concatenate(holdout)[:, None], c.dequantisation, label)
