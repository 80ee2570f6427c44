"""Dead-leaves images: the Lee–Mumford–Huang (2001) occlusion model of natural images.

The paper (Table 1, Table 2, Fig. 4) trains on the dead-leaves images of Theis, Hosseini &
Bethge (2012, "Mixtures of conditional Gaussian scale mixtures applied to multiscale image
representations"). Those images are not public, so (SPEC §5) we generate our own with the
occlusion model of Lee, Mumford & Huang, "Occlusion models for natural images: a statistical
study of a scale-invariant dead leaves model" (IJCV 2001).

Deviation: every dead-leaves number we report (the Table 1 row, the Table 2 comparison with
MCGSM, Fig. 4) is measured on this generator, not on Theis et al.'s images, so it is not
directly comparable with the paper's 1.489 bits/pixel.

The model: opaque disks ("leaves") fall one after another onto a size × size grey image.
Each disk independently has

    centre  ~ U([−½ − r_max, size − ½ + r_max]²)   (the image, pixel centres at 0..size − 1,
                                                     extended by r_max on every side, so
                                                     pixels near the border see as many disks
                                                     as interior ones),
    radius  r with density p(r) ∝ r⁻³ on [r_min, r_max]   (scale invariant between the bounds),
    grey    uniform over ``n_levels`` evenly spaced 8-bit values (all of 0..255 for 256).

A pixel shows the grey of the topmost disk that contains its centre. We generate front to
back, which has the same distribution as dropping disks back to front until nothing shows
through, and needs far fewer disks: each pixel keeps the first disk that covers it, and an
image is finished once every pixel is covered. Disks are drawn in batches; those that cannot
reach a still uncovered pixel are skipped, which changes no image.

Parameters: ``r_min`` sets the finest detail (the smallest leaf, in pixels; keep it ≳ 1 so
leaves cover pixel centres), ``r_max`` the largest leaf and hence the largest uniform regions;
``n_levels`` the number of distinct grey values.
"""

from __future__ import annotations

import numpy as np

from dpm.data.images import image_split
from dpm.data.split import Split

_COVERS_PER_ROUND = 3.0  # disks per round: each pixel is covered this many times on average
_MAX_DRAWS_PER_ROUND = 2**22  # (image, disk) pairs drawn at once: bounds memory for tiny r_min
_IMAGES_PER_CHUNK = 256  # bounds memory; also fixes the order in which rng is consumed
_UNCOVERED = -1  # label sentinel; grey indices are ≥ 0, so it cannot be confused with one


def radius_inverse_cdf(u: np.ndarray, r_min: float, r_max: float) -> np.ndarray:
    """Maps uniforms to radii with density p(r) ∝ r⁻³ on [r_min, r_max].

    The CDF is F(r) = (r_min⁻² − r⁻²) / (r_min⁻² − r_max⁻²), so its inverse is

        r = F⁻¹(u) = (r_min⁻² − u (r_min⁻² − r_max⁻²))^(−1/2),

    increasing from F⁻¹(0) = r_min to F⁻¹(1) = r_max.

    Paper: Lee, Mumford & Huang (2001), the 1/r³ size law of their scale-invariant
    dead-leaves model.

    Args:
        u: uniforms in [0, 1], any shape.
        r_min: smallest radius, pixels (> 0).
        r_max: largest radius, pixels (≥ r_min).

    Returns:
        Radii, shape of ``u``, pixels, in [r_min, r_max].
    """
    inv_sq_min, inv_sq_max = r_min**-2.0, r_max**-2.0
    return (inv_sq_min - np.asarray(u) * (inv_sq_min - inv_sq_max)) ** -0.5


def grey_levels(n_levels: int) -> np.ndarray:
    """The ``n_levels`` evenly spaced 8-bit grey values, shape (n_levels,), uint8.

    For n_levels = 256 these are 0, 1, ..., 255; for fewer, they still span 0..255.
    """
    return np.round(np.linspace(0.0, 255.0, n_levels)).astype(np.uint8)


def sample(
    n_images: int,
    size: int,
    r_min: float,
    r_max: float,
    rng: np.random.Generator,
    n_levels: int = 256,
    *,
    max_disks: int = 10**6,
) -> np.ndarray:
    """Draws dead-leaves images (see the module docstring for the model).

    The output is a deterministic function of the arguments and the state of ``rng``. Images
    are generated in chunks of 256, one chunk after another, so the first 256·j images are the
    same for every n_images ≥ 256·j.

    Args:
        n_images: number of images.
        size: side length, pixels.
        r_min: smallest disk radius, pixels (> 0).
        r_max: largest disk radius, pixels (≥ r_min).
        rng: source of randomness; advanced by the call.
        n_levels: number of distinct grey values, 1..256.
        max_disks: most disks drawn for one image before giving up (guards against r_min so
            small that pixel centres are almost never covered).

    Returns:
        Grey images, shape (n_images, size, size), uint8.

    Raises:
        ValueError: on invalid arguments.
        RuntimeError: if an image is still not fully covered after ``max_disks`` disks.
    """
    _check_args(n_images, size, r_min, r_max, n_levels)
    levels = grey_levels(n_levels)
    chunks = [
        _fill_chunk(min(_IMAGES_PER_CHUNK, n_images - start), size, r_min, r_max,
                    len(levels), rng, max_disks)
        for start in range(0, n_images, _IMAGES_PER_CHUNK)
    ]
    labels = np.concatenate(chunks) if chunks else np.empty((0, size * size), np.int16)
    if (labels == _UNCOVERED).any():
        raise AssertionError("internal error: an uncovered pixel survived")
    return levels[labels].reshape(n_images, size, size)


def _check_args(n_images: int, size: int, r_min: float, r_max: float, n_levels: int) -> None:
    """Raises ValueError unless the arguments of `sample` describe a valid model."""
    if n_images < 0 or size < 1:
        raise ValueError(f"need n_images ≥ 0 and size ≥ 1, got {n_images}, {size}")
    if not 0 < r_min <= r_max < np.inf:
        raise ValueError(f"need 0 < r_min ≤ r_max < ∞, got r_min={r_min}, r_max={r_max}")
    if not 1 <= n_levels <= 256:
        raise ValueError(f"n_levels must be in 1..256, got {n_levels}")


def mean_disk_area(r_min: float, r_max: float) -> float:
    """E[π r²] under p(r) ∝ r⁻³ on [r_min, r_max], pixels².

    E[r²] = ∫ r² r⁻³ dr / ∫ r⁻³ dr = 2 ln(r_max / r_min) / (r_min⁻² − r_max⁻²), and r_min² when
    r_min = r_max.
    """
    if r_max == r_min:
        return np.pi * r_min**2
    return np.pi * 2.0 * np.log(r_max / r_min) / (r_min**-2.0 - r_max**-2.0)


def _fill_chunk(
    n_images: int, size: int, r_min: float, r_max: float, n_levels: int,
    rng: np.random.Generator, max_disks: int,
) -> np.ndarray:
    """Covers n_images images with disks, front to back, until no pixel is uncovered.

    Each round draws the same number of disks for every unfinished image, enough to cover
    each pixel `_COVERS_PER_ROUND` times on average (fewer if that would exceed
    `_MAX_DRAWS_PER_ROUND`); most images finish in a few rounds.

    Args:
        n_images, size, r_min, r_max, rng, max_disks: as for `sample`.
        n_levels: number of grey levels; the labels index them.

    Returns:
        Grey-level indices, shape (n_images, size²), int16, in 0..n_levels − 1.
    """
    labels = np.full((n_images, size * size), _UNCOVERED, dtype=np.int16)
    centre_area = (size + 2.0 * r_max) ** 2
    n_per_round = int(np.ceil(_COVERS_PER_ROUND * centre_area / mean_disk_area(r_min, r_max)))
    n_drawn = 0  # disks drawn so far for each image still unfinished
    active = np.arange(n_images)
    while active.size:
        n_disks = min(n_per_round, _MAX_DRAWS_PER_ROUND // len(active), max_disks - n_drawn)
        if n_disks <= 0:
            raise RuntimeError(
                f"a {size}×{size} dead-leaves image is still not covered after {max_disks} "
                f"disks (r_min={r_min}, r_max={r_max}); increase r_min or max_disks")
        disks = _draw_disks(len(active), n_disks, size, r_min, r_max, rng)
        open_ = (labels[active] == _UNCOVERED).reshape(-1, size, size)
        image, disks = _reaching_open_box(disks, open_)
        labels[active] = _paint(labels[active], image, disks, size, n_levels, rng)
        n_drawn += n_disks
        active = active[(labels[active] == _UNCOVERED).any(axis=1)]
    return labels


def _draw_disks(
    n_images: int, n_disks: int, size: int, r_min: float, r_max: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Centres and radii of n_disks disks per image, front first.

    Returns:
        (cy, cx, r) stacked, shape (3, n_images, n_disks), float64, pixels (pixel centres at
        integer coordinates 0..size − 1).
    """
    lo, hi = -0.5 - r_max, size - 0.5 + r_max
    centres = rng.uniform(lo, hi, size=(2, n_images, n_disks))
    radii = radius_inverse_cdf(rng.uniform(size=(1, n_images, n_disks)), r_min, r_max)
    return np.concatenate([centres, radii])


def _reaching_open_box(disks: np.ndarray, open_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keeps the disks that reach the bounding box of their image's uncovered pixels.

    The others cannot cover an uncovered pixel, so dropping them changes no image.

    Args:
        disks: (cy, cx, r), shape (3, n_images, n_disks), front first, pixels.
        open_: uncovered pixels, shape (n_images, size, size), bool; each image has one.

    Returns:
        image: index of each kept disk's image, shape (n_kept,), ascending.
        disks: (cy, cx, r) of the kept disks, shape (3, n_kept), front first within an image.
    """
    size = open_.shape[1]
    rows, cols = open_.any(axis=2), open_.any(axis=1)  # (n_images, size) each
    y_lo, y_hi = rows.argmax(axis=1), size - 1 - rows[:, ::-1].argmax(axis=1)
    x_lo, x_hi = cols.argmax(axis=1), size - 1 - cols[:, ::-1].argmax(axis=1)
    cy, cx, r = disks
    gap_y = np.maximum(np.maximum(y_lo[:, None] - cy, cy - y_hi[:, None]), 0.0)
    gap_x = np.maximum(np.maximum(x_lo[:, None] - cx, cx - x_hi[:, None]), 0.0)
    image, order = np.nonzero(gap_y**2 + gap_x**2 <= r**2)  # row-major: order kept
    return image, disks[:, image, order]


def _ragged_arange(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated 0..counts[i] − 1 for every i, and the i each element belongs to."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return np.arange(len(owner)) - starts[owner], owner


def _covered_pixels(disks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (disk, pixel) pair with the pixel centre inside the closed disk.

    Rasterises each disk row by row: row y is covered for |x − cx| ≤ sqrt(r² − (y − cy)²).

    Args:
        disks: (cy, cx, r), shape (3, n_disks), pixels.
        size: side length, pixels.

    Returns:
        disk: index into disks, shape (n_pairs,), ascending.
        pixel: flat pixel index y · size + x, shape (n_pairs,).
    """
    cy, cx, r = disks
    y_lo = np.maximum(np.ceil(cy - r), 0).astype(np.int64)
    y_hi = np.minimum(np.floor(cy + r), size - 1).astype(np.int64)
    dy, row_disk = _ragged_arange(np.maximum(y_hi - y_lo + 1, 0))
    y = y_lo[row_disk] + dy
    half = np.sqrt(np.maximum(r[row_disk] ** 2 - (y - cy[row_disk]) ** 2, 0.0))
    x_lo = np.maximum(np.ceil(cx[row_disk] - half), 0).astype(np.int64)
    x_hi = np.minimum(np.floor(cx[row_disk] + half), size - 1).astype(np.int64)
    dx, pixel_row = _ragged_arange(np.maximum(x_hi - x_lo + 1, 0))
    return row_disk[pixel_row], y[pixel_row] * size + x_lo[pixel_row] + dx


def _paint(
    labels: np.ndarray, image: np.ndarray, disks: np.ndarray, size: int, n_levels: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Gives each uncovered pixel the grey of the first of ``disks`` that contains its centre.

    Args:
        labels: grey-level indices, shape (n_images, size²), int16, `_UNCOVERED` where open.
        image: index into labels of each disk's image, shape (n_disks,), ascending.
        disks: (cy, cx, r), shape (3, n_disks), front first within an image, pixels.
        size: side length, pixels.
        n_levels: number of grey levels; one is drawn per disk.
        rng: source of the grey levels.

    Returns:
        The updated labels (a new array), shape (n_images, size²).
    """
    greys = rng.integers(0, n_levels, size=len(image), dtype=np.int16)
    disk, pixel = _covered_pixels(disks, size)
    flat = image[disk] * size * size + pixel  # index into labels.ravel()
    labels = labels.ravel().copy()
    is_open = labels[flat] == _UNCOVERED
    first = np.full(labels.shape, len(image), dtype=np.int64)
    np.minimum.at(first, flat[is_open], disk[is_open])  # disks are front first
    newly = first < len(image)
    labels[newly] = greys[first[newly]]
    return labels.reshape(-1, size * size)


def make_split(c, raw_dir=None) -> Split:
    """The split of params.yaml's dead_leaves.data section ``c``: train and holdout independent."""
    rng = np.random.default_rng(c.seed)
    train = sample(c.n_train, c.image_size, c.r_min, c.r_max, rng)
    holdout = sample(c.n_holdout, c.image_size, c.r_min, c.r_max, rng)
    return image_split(train[:, None], holdout[:, None], c.dequantisation, "dead leaves (our generator)")
