"""Grey texture images: the paper's bark set, and the offline mirror's stand-in for it.

The paper's bark images are classes T01–T04 of the UIUC texture database (Lazebnik, Schmid &
Ponce 2005): 40 grey 640×480 JPEGs per class (public loaders name them bark1–bark3 and wood1),
published by the Ponce group in five zips; the first, ``T01-T05.zip``, holds T01–T05. Its
original address is http://www-cvr.ai.uiuc.edu/ponce_grp/data/texture_database/T01-T05.zip;
`BARK` uses the Wayback Machine snapshot of it that google-deepmind/dm_nevis downloads (neither
could be reached from the machine this was written on). Lazebnik also offers all 25 classes in
one zip, http://slazebni.cs.illinois.edu/research/uiuc_texture_dataset.zip.

No sha256 of it is published anywhere we could find, and we will not record one we have not
checked, so `fetch_bark` refuses (`MissingDataError`) until one is. Published weaker checksums
of ``T01-T05.zip`` to check a downloaded copy against before recording its sha256 in `BARK`:
md5 e622e4708e336d51b3bbd45503618af1 (dm_nevis, ``datasets_storage/handlers/uiuc_texture.py``)
and sha1 c0761b76080a9a9200b4a6894e05fabaca1fb280 (a public ``UIUCTex`` loader).

Deviation: until then, runs use `STAND_IN`, three 512×512 grey texture photographs (CC0, from
scikit-image) held by the offline mirror; their results must carry `STAND_IN_LABEL`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from dpm.data.fetch import (
    FROM_ENV,
    Mirror,
    MissingDataError,
    RemoteFile,
    fetch,
    resolve_mirror,
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

BARK = RemoteFile(
    "T01-T05.zip",
    None,  # no published sha256: see the module docstring
    "https://web.archive.org/web/20070829035029/"
    "http://www-cvr.ai.uiuc.edu/ponce_grp/data/texture_database/T01-T05.zip",
    "textures/T01-T05.zip",
)

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


def fetch_bark(dest_dir: str | Path, mirror: Mirror = FROM_ENV) -> Path:
    """Fetches ``T01-T05.zip``, the UIUC zip holding the bark classes T01–T04.

    Args:
        dest_dir: the raw-data folder.
        mirror: mirror root; `FROM_ENV` reads ``$DPM_DATA_MIRROR``, None means none.

    Returns:
        The verified zip (once `BARK` records a sha256).

    Raises:
        MissingDataError: always for now: no sha256 is recorded for the zip.
    """
    mirror = resolve_mirror(mirror)
    if BARK.sha256 is None:
        raise MissingDataError(
            BARK, Path(dest_dir) / BARK.filename, mirror,
            "no sha256 of it is published, so no copy can be verified; download it, check it "
            "against the published md5 e622e4708e336d51b3bbd45503618af1 or sha1 "
            "c0761b76080a9a9200b4a6894e05fabaca1fb280, and record its sha256 in "
            "dpm.data.textures.BARK")
    return fetch(BARK, dest_dir, mirror)
