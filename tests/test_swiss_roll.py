"""Tests for the swiss roll generator, its exact density, and the global constant scaling.

The density is checked against an independent adaptive quadrature (scipy.integrate.quad), a
2-D quadrature of its normalisation, a histogram of samples, and the small-noise entropy.
"""

import dataclasses

import numpy as np
import pytest
from scipy import integrate, stats

from dpm.datasets import swiss_roll
from dpm.data.scaling import Scaling

SMALL_NOISE = 0.0226  # the calibrated noise: sharp ridges, the hard case for the quadrature
BROAD_NOISE = 0.5  # broad enough that a 2-D grid resolves the density cheaply
CELL = 0.2  # 2-D grid cell for BROAD_NOISE, raw units; 2.5 cells per noise std


def _quad_log_density(x: np.ndarray, noise: float) -> float:
    """Reference log p(x), nats, by adaptive quadrature with a breakpoint at the peak."""
    theta = np.linspace(swiss_roll.THETA_MIN, swiss_roll.THETA_MAX, 200_001)
    gx, gy = swiss_roll.curve(theta)
    dist2 = (x[0] - gx) ** 2 + (x[1] - gy) ** 2
    dist2_min, theta_peak = dist2.min(), theta[dist2.argmin()]

    def integrand(t: float) -> float:  # divided by the peak value, so it cannot underflow
        cx, cy = swiss_roll.curve(t)
        return np.exp(-((x[0] - cx) ** 2 + (x[1] - cy) ** 2 - dist2_min) / (2 * noise**2))

    peak_width = 60 * noise / np.hypot(1.0, theta_peak)
    breaks = [theta_peak - peak_width, theta_peak, theta_peak + peak_width]
    breaks = [b for b in breaks if swiss_roll.THETA_MIN < b < swiss_roll.THETA_MAX]
    integral, _ = integrate.quad(
        integrand, swiss_roll.THETA_MIN, swiss_roll.THETA_MAX,
        points=breaks, epsabs=0.0, epsrel=1e-13, limit=2000,
    )
    return (np.log(integral) - dist2_min / (2 * noise**2)
            - np.log(2 * np.pi * noise**2) - np.log(swiss_roll.THETA_MAX - swiss_roll.THETA_MIN))


def _cell_centred_grid(lo: float, hi: float, cell: float) -> np.ndarray:
    """Centres of the square cells tiling [lo, hi]², shape (n_cells, 2)."""
    centres = np.arange(lo + cell / 2, hi, cell)
    gx, gy = np.meshgrid(centres, centres, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


@pytest.fixture(scope="module")
def broad_grid() -> tuple[np.ndarray, np.ndarray]:
    """Cell centres covering the roll ± 8 noise std, and log p there, for BROAD_NOISE."""
    x = _cell_centred_grid(-15.0, 19.0, CELL)  # roll spans [−9.5, 12.6] × [−11.1, 14.2]
    return x, swiss_roll.log_density(x, BROAD_NOISE)


def test_sample_lies_on_the_roll():
    x = swiss_roll.sample(1000, 1e-9, np.random.default_rng(0))
    assert x.shape == (1000, 2) and x.dtype == np.float64
    theta = np.hypot(x[:, 0], x[:, 1])  # |γ(θ)| = θ
    assert theta.min() >= swiss_roll.THETA_MIN - 1e-6
    assert theta.max() <= swiss_roll.THETA_MAX + 1e-6
    np.testing.assert_allclose(np.stack(swiss_roll.curve(theta), axis=1), x, atol=1e-6)


@pytest.mark.parametrize("noise", [SMALL_NOISE, BROAD_NOISE])
def test_log_density_matches_adaptive_quadrature(noise):
    ends = np.stack(swiss_roll.curve(np.array([swiss_roll.THETA_MIN, swiss_roll.THETA_MAX])), 1)
    x = np.concatenate([
        swiss_roll.sample(6, noise, np.random.default_rng(1)),
        ends,  # the integrand is cut off at its peak here
        ends + noise * np.array([[1.3, 0.2], [0.3, -0.7]]),
        [[0.0, 0.0], [-2.5, 0.05], [3.0, -1.0], [-9.0, 2.0], [20.0, 20.0]],  # inside, far
    ])
    expected = np.array([_quad_log_density(point, noise) for point in x])
    np.testing.assert_allclose(swiss_roll.log_density(x, noise), expected, rtol=0, atol=1e-7)


def test_log_density_does_not_depend_on_chunking():
    x = swiss_roll.sample(300, SMALL_NOISE, np.random.default_rng(7))
    np.testing.assert_allclose(  # one interval per chunk: each on its own (finer) nodes
        swiss_roll.log_density(x, SMALL_NOISE, max_chunk_elements=1),
        swiss_roll.log_density(x, SMALL_NOISE), rtol=0, atol=1e-7,
    )


def test_log_density_integrates_to_one(broad_grid):
    _, log_p = broad_grid
    total = np.exp(log_p).sum() * CELL**2
    assert total == pytest.approx(1.0, abs=1e-6)


def test_samples_follow_density_histogram(broad_grid):
    """Pearson χ² of sample counts in 1×1 bins against the density's bin probabilities."""
    x_grid, log_p = broad_grid
    bin_edges = np.arange(-15.0, 19.0 + 0.5, 1.0)
    expected, _, _ = np.histogram2d(
        x_grid[:, 0], x_grid[:, 1], bins=[bin_edges, bin_edges], weights=np.exp(log_p) * CELL**2
    )
    n = 20_000
    x = swiss_roll.sample(n, BROAD_NOISE, np.random.default_rng(2))
    observed, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[bin_edges, bin_edges])
    expected = n * expected.ravel()
    observed = observed.ravel()
    big = expected >= 5  # pool the sparse bins into one, as χ² needs
    expected = np.append(expected[big], expected[~big].sum())
    observed = np.append(observed[big], observed[~big].sum())
    chi2 = np.sum((observed - expected) ** 2 / expected)
    assert stats.chi2.sf(chi2, df=len(expected) - 1) > 1e-3


def test_mean_log_density_matches_small_noise_entropy():
    """For noise ≪ curvature radius, H ≈ log(3π) + E log|γ'(θ)| + ½ log(2πe noise²)."""
    n = 5000
    log_p = swiss_roll.log_density(
        swiss_roll.sample(n, SMALL_NOISE, np.random.default_rng(3)), SMALL_NOISE
    )
    theta = np.linspace(swiss_roll.THETA_MIN, swiss_roll.THETA_MAX, 100_001)
    entropy = (np.log(swiss_roll.THETA_MAX - swiss_roll.THETA_MIN)
               + np.mean(0.5 * np.log1p(theta**2))
               + 0.5 * np.log(2 * np.pi * np.e * SMALL_NOISE**2))
    assert log_p.mean() == pytest.approx(-entropy, abs=4 * log_p.std() / np.sqrt(n))


@pytest.mark.parametrize("ratio", [0.8, 1.25])
def test_true_noise_maximises_expected_log_likelihood(ratio):
    """Gibbs' inequality: E_p log p > E_p log q; a mis-normalised density breaks it."""
    x = swiss_roll.sample(2000, SMALL_NOISE, np.random.default_rng(4))
    log_p = swiss_roll.log_density(x, SMALL_NOISE)
    log_q = swiss_roll.log_density(x, SMALL_NOISE * ratio)
    assert (log_p - log_q).mean() > 0.02  # KL ≈ 0.04–0.06 nats, paired std error ≈ 0.006


def test_scaling_is_one_global_constant():
    x_train = swiss_roll.sample(3000, SMALL_NOISE, np.random.default_rng(5))
    scaling = Scaling.fit(x_train)
    z = scaling.apply(x_train)
    assert z.mean() == pytest.approx(0.0, abs=1e-12)
    assert z.var() == pytest.approx(1.0, abs=1e-12)
    assert np.abs(z.mean(axis=0)).max() > 0.05  # not per-dimension: the roll's axes differ
    np.testing.assert_allclose(scaling.invert(z), x_train, rtol=0, atol=1e-12)
    with pytest.raises(dataclasses.FrozenInstanceError):
        scaling.scale = 1.0


def test_scaled_density_integrates_to_one():
    """log p_scaled(z) = log p_raw(x) + 2 log(scale) must be a density in z."""
    scaling = Scaling.fit(swiss_roll.sample(3000, BROAD_NOISE, np.random.default_rng(6)))
    assert scaling.log_abs_det_jacobian_nats(2) == pytest.approx(2 * np.log(scaling.scale))
    z_cell = 0.04
    z = _cell_centred_grid(-3.0, 3.0, z_cell)  # the roll ± 8 noise std, in scaled units
    log_p_scaled = (swiss_roll.log_density(scaling.invert(z), BROAD_NOISE)
                    + scaling.log_abs_det_jacobian_nats(2))
    assert np.exp(log_p_scaled).sum() * z_cell**2 == pytest.approx(1.0, abs=1e-4)
