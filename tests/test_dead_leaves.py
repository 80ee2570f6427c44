"""Tests for the dead-leaves generator (Lee, Mumford & Huang 2001 occlusion model).

The radius law is checked against its closed-form CDF (Kolmogorov–Smirnov), the rasteriser
and the front-to-back painter against brute-force distance tests, and whole images against a
brute-force reference generator that paints every disk of the stream, front to back.
"""

import numpy as np
import pytest
from scipy import stats

from dpm.datasets import dead_leaves


def _radius_cdf(r: np.ndarray, r_min: float, r_max: float) -> np.ndarray:
    """Closed-form CDF of p(r) ∝ r⁻³ on [r_min, r_max]."""
    r = np.clip(r, r_min, r_max)
    return (r_min**-2.0 - r**-2.0) / (r_min**-2.0 - r_max**-2.0)


def _equal_right_neighbour(images: np.ndarray) -> np.ndarray:
    """Whether each pixel equals its right neighbour, shape (n, size, size − 1)."""
    return images[:, :, 1:] == images[:, :, :-1]


def _brute_force_sample(
    n_images: int, size: int, r_min: float, r_max: float, rng: np.random.Generator
) -> np.ndarray:
    """Reference generator: every disk of the stream tested against every pixel."""
    py, px = np.divmod(np.arange(size * size), size)
    images = np.empty((n_images, size * size), dtype=np.int64)
    for i in range(n_images):
        label = np.full(size * size, -1)
        while (label < 0).any():
            cy, cx = rng.uniform(-0.5 - r_max, size - 0.5 + r_max, size=(2, 64, 1))
            r = dead_leaves.radius_inverse_cdf(rng.uniform(size=(64, 1)), r_min, r_max)
            grey = rng.integers(0, 256, size=64)
            covers = (py - cy) ** 2 + (px - cx) ** 2 <= r**2  # (disks, pixels), front first
            first = covers.argmax(axis=0)
            new = (label < 0) & covers.any(axis=0)
            label[new] = grey[first[new]]
        images[i] = label
    return images.reshape(n_images, size, size)


def test_same_seed_same_images_and_different_seed_different_images():
    a = dead_leaves.sample(20, 16, 1.0, 16.0, np.random.default_rng(5))
    b = dead_leaves.sample(20, 16, 1.0, 16.0, np.random.default_rng(5))
    c = dead_leaves.sample(20, 16, 1.0, 16.0, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.5


def test_images_come_in_chunks_independent_of_the_total():
    first = dead_leaves.sample(256, 8, 1.0, 8.0, np.random.default_rng(0))
    more = dead_leaves.sample(300, 8, 1.0, 8.0, np.random.default_rng(0))
    np.testing.assert_array_equal(first, more[:256])


def test_shape_dtype_and_grey_values():
    images = dead_leaves.sample(30, 24, 1.0, 24.0, np.random.default_rng(0), n_levels=4)
    assert images.shape == (30, 24, 24) and images.dtype == np.uint8
    assert set(np.unique(images)) == {0, 85, 170, 255}
    np.testing.assert_array_equal(dead_leaves.grey_levels(256), np.arange(256))
    assert dead_leaves.sample(0, 8, 1.0, 8.0, np.random.default_rng(0)).shape == (0, 8, 8)


def test_every_pixel_is_covered():
    labels = dead_leaves._fill_chunk(50, 32, 1.0, 32.0, 256, np.random.default_rng(0), 10**6)
    assert labels.shape == (50, 32 * 32)
    assert (labels != dead_leaves._UNCOVERED).all()
    assert labels.min() >= 0 and labels.max() <= 255


def test_disk_cap_raises_a_clear_error():
    with pytest.raises(RuntimeError, match="not covered after 10 disks"):
        dead_leaves.sample(1, 32, 1.0, 32.0, np.random.default_rng(0), max_disks=10)


@pytest.mark.parametrize("bad", [{"r_min": 0.0}, {"r_max": 0.5}, {"n_levels": 257}])
def test_invalid_arguments_are_rejected(bad):
    args = {"n_images": 1, "size": 8, "r_min": 1.0, "r_max": 8.0, "n_levels": 256} | bad
    with pytest.raises(ValueError):
        dead_leaves.sample(rng=np.random.default_rng(0), **args)


def test_radius_inverse_cdf_endpoints_and_closed_form():
    r_min, r_max = 1.5, 40.0
    u = np.linspace(0.0, 1.0, 101)
    r = dead_leaves.radius_inverse_cdf(u, r_min, r_max)
    assert r[0] == pytest.approx(r_min) and r[-1] == pytest.approx(r_max)
    assert np.all(np.diff(r) > 0)
    np.testing.assert_allclose(_radius_cdf(r, r_min, r_max), u, atol=1e-12)
    np.testing.assert_allclose(dead_leaves.radius_inverse_cdf(u, 3.0, 3.0), 3.0)


def test_drawn_radii_follow_the_inverse_cube_law():
    r_min, r_max = 1.0, 32.0
    disks = dead_leaves._draw_disks(40, 500, 32, r_min, r_max, np.random.default_rng(1))
    radii = disks[2].ravel()
    def cdf(r):
        return _radius_cdf(r, r_min, r_max)

    assert stats.kstest(radii, cdf).pvalue > 1e-3
    # The test has power: an r⁻² law on the same range is rejected.
    inverse_square = 1.0 / (1.0 / r_min - np.random.default_rng(2).uniform(size=20_000)
                            * (1.0 / r_min - 1.0 / r_max))
    assert stats.kstest(inverse_square, cdf).pvalue < 1e-6


def test_drawn_centres_are_uniform_over_the_extended_image():
    size, r_max = 16, 8.0
    cy, cx, _ = dead_leaves._draw_disks(40, 500, size, 1.0, r_max, np.random.default_rng(3))
    lo, width = -0.5 - r_max, size + 2 * r_max
    for c in (cy.ravel(), cx.ravel()):
        assert stats.kstest(c, stats.uniform(lo, width).cdf).pvalue > 1e-3


def test_mean_disk_area_matches_monte_carlo():
    r = dead_leaves.radius_inverse_cdf(np.random.default_rng(4).uniform(size=400_000), 1.0, 32.0)
    assert dead_leaves.mean_disk_area(1.0, 32.0) == pytest.approx(np.pi * np.mean(r**2), rel=0.01)
    assert dead_leaves.mean_disk_area(2.0, 2.0) == pytest.approx(4 * np.pi)


def test_rasterised_pixels_are_exactly_the_covered_centres():
    size, rng = 12, np.random.default_rng(7)
    n = 300
    disks = np.stack([rng.uniform(-6, 18, n), rng.uniform(-6, 18, n), rng.uniform(0.3, 9, n)])
    disks[:, 0] = [4.0, 4.0, 3.0]  # grid centres and integer radii put pixel centres exactly
    disks[:, 1] = [0.0, 11.0, 5.0]  # on the boundary, where the disk must still cover them
    disk, pixel = dead_leaves._covered_pixels(disks, size)
    py, px = np.divmod(np.arange(size * size), size)
    cy, cx, r = disks[:, :, None]
    expected = np.nonzero((py - cy) ** 2 + (px - cx) ** 2 <= r**2)
    got = np.lexsort((pixel, disk))
    np.testing.assert_array_equal(disk[got], expected[0])
    np.testing.assert_array_equal(pixel[got], expected[1])


def test_paint_gives_each_open_pixel_its_first_covering_disk():
    size, n_images, n_disks, n_levels = 10, 3, 80, 30_000  # many levels: greys identify disks
    rng = np.random.default_rng(8)
    labels = np.where(rng.uniform(size=(n_images, size * size)) < 0.5, 7, -1).astype(np.int16)
    image = np.sort(rng.integers(0, n_images, n_disks))
    disks = np.stack([rng.uniform(-3, 13, n_disks), rng.uniform(-3, 13, n_disks),
                      rng.uniform(0.5, 4, n_disks)])
    painted = dead_leaves._paint(labels, image, disks, size, n_levels, np.random.default_rng(9))
    greys = np.random.default_rng(9).integers(0, n_levels, size=n_disks, dtype=np.int16)
    py, px = np.divmod(np.arange(size * size), size)
    for i in range(n_images):
        cy, cx, r = disks[:, image == i, None]
        covers = (py - cy) ** 2 + (px - cx) ** 2 <= r**2
        first = np.where(covers.any(axis=0), greys[image == i][covers.argmax(axis=0)], -1)
        np.testing.assert_array_equal(painted[i], np.where(labels[i] >= 0, 7, first))


def test_filter_keeps_every_disk_that_can_cover_an_open_pixel_in_order():
    size, rng = 16, np.random.default_rng(10)
    open_ = np.zeros((2, size, size), dtype=bool)
    open_[0, 3, 4] = open_[0, 9, 12] = open_[1, 15, 0] = True
    disks = dead_leaves._draw_disks(2, 400, size, 1.0, 16.0, rng)
    image, kept = dead_leaves._reaching_open_box(disks, open_)
    assert np.all(np.diff(image) >= 0)
    for i in range(2):
        oy, ox = np.nonzero(open_[i])
        cy, cx, r = disks[:, i, :, None]
        useful = ((oy - cy) ** 2 + (ox - cx) ** 2 <= r**2).any(axis=1)
        kept_i = kept[:, image == i]
        assert 0 < useful.sum() <= kept_i.shape[1] < 400
        position = [np.nonzero((disks[:, i] == k[:, None]).all(axis=0))[0][0] for k in kept_i.T]
        assert np.all(np.diff(position) > 0)  # kept disks stay front first
        assert set(np.nonzero(useful)[0]) <= set(position)


def test_images_are_piecewise_constant():
    images = dead_leaves.sample(200, 32, 2.0, 32.0, np.random.default_rng(11))
    assert _equal_right_neighbour(images).mean() > 0.7
    assert (images[:, 1:] == images[:, :-1]).mean() > 0.7


def test_border_pixels_are_like_interior_ones():
    images = dead_leaves.sample(3000, 16, 1.0, 16.0, np.random.default_rng(12))
    equal = _equal_right_neighbour(images)
    border = np.concatenate([equal[:, :, 0], equal[:, :, -1]]).mean()
    interior = equal[:, :, 6:9].mean()
    assert border == pytest.approx(interior, abs=0.015)  # ~0.03 apart if centres stay inside


def test_grey_levels_are_uniform():
    images = dead_leaves.sample(4000, 8, 1.0, 8.0, np.random.default_rng(13))
    grey = images[:, 4, 3].astype(int)  # one pixel per image: independent draws
    counts = np.bincount(grey // 16, minlength=16)
    assert stats.chisquare(counts).pvalue > 1e-3
    assert grey.mean() == pytest.approx(127.5, abs=4 * 73.9 / np.sqrt(len(grey)))


def test_matches_a_brute_force_generator_in_distribution():
    size, r_min, r_max, n = 16, 1.0, 16.0, 300
    ours = dead_leaves.sample(n, size, r_min, r_max, np.random.default_rng(14))
    reference = _brute_force_sample(n, size, r_min, r_max, np.random.default_rng(15))
    for axis in (1, 2):
        equal_ours = (np.diff(ours.astype(int), axis=axis) == 0).mean()
        equal_ref = (np.diff(reference, axis=axis) == 0).mean()
        assert equal_ours == pytest.approx(equal_ref, abs=0.03)
    regions_ours = np.mean([len(np.unique(im)) for im in ours])
    regions_ref = np.mean([len(np.unique(im)) for im in reference])
    assert regions_ours == pytest.approx(regions_ref, rel=0.08)
