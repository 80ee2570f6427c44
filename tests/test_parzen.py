import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from dpm.estimate import parzen


def _direct(x, centres, sigma):
    """The mixture density by a double loop over test points and centres (float64)."""
    n_dims = x.shape[1]
    out = []
    for xn in x:
        log_terms = [-np.sum((xn - c) ** 2) / (2 * sigma ** 2) - 0.5 * n_dims * math.log(2 * math.pi * sigma ** 2)
                     for c in centres]
        out.append(logsumexp(log_terms) - math.log(len(centres)))
    return np.array(out)


def _gaussian_ll(x, s):
    """log N(x; 0, s² I) per row."""
    return -np.sum(x ** 2, axis=1) / (2 * s ** 2) - 0.5 * x.shape[1] * math.log(2 * math.pi * s ** 2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_equals_double_loop(dtype):
    rng = np.random.default_rng(0)
    x, centres = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    for sigma in (0.3, 1.0, 2.5):
        got = parzen.log_likelihood(x, centres, sigma, batch_x=3, batch_c=2, dtype=dtype).numpy()
        atol = 1e-6 if dtype == torch.float64 else 1e-4
        np.testing.assert_allclose(got, _direct(x, centres, sigma), rtol=0, atol=atol)


@pytest.mark.pipeline
def test_batching_does_not_change_result():
    rng = np.random.default_rng(1)
    x, centres = rng.uniform(size=(53, 20)), rng.uniform(size=(71, 20))
    sigmas = [0.1, 0.3, 1.0]
    ref = parzen.log_likelihoods(x, centres, sigmas, batch_x=1000, batch_c=1000, dtype=torch.float64)
    for bx, bc in [(1, 1), (7, 5), (53, 70), (10, 71)]:
        got = parzen.log_likelihoods(x, centres, sigmas, batch_x=bx, batch_c=bc, dtype=torch.float64)
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-9)


@pytest.mark.pipeline
def test_float32_matches_float64_on_mnist_like_data():
    # near-duplicates of sparse [0,1] images: large ‖x‖², small distances, the worst case for
    # the ‖x‖² − 2x·c + ‖c‖² cancellation
    rng = np.random.default_rng(2)
    base = (rng.uniform(size=(20, 784)) < 0.2) * rng.uniform(0.5, 1.0, size=(20, 784))
    centres = np.clip(np.repeat(base, 20, axis=0) + rng.normal(0, 0.05, size=(400, 784)), 0, 1)
    x = np.clip(base[rng.integers(0, 20, 100)] + rng.normal(0, 0.05, size=(100, 784)), 0, 1)
    sigmas = list(parzen.SIGMAS)
    ll64 = parzen.log_likelihoods(x, centres, sigmas, batch_x=32, batch_c=128, dtype=torch.float64)
    ll32 = parzen.log_likelihoods(x, centres, sigmas, batch_x=32, batch_c=128, dtype=torch.float32)
    # values reach ~10³ nats at σ = 0.1; float32 is off by ≤ 2e-3 there (measured)
    torch.testing.assert_close(ll32, ll64, rtol=1e-5, atol=1e-2)


def test_select_sigma_picks_known_best():
    # well-separated centres, each validation point its centre plus N(0, τ² I) noise in D = 100:
    # the mean log-likelihood is maximised near σ = τ, here exactly the 6th grid value
    rng = np.random.default_rng(3)
    tau = parzen.SIGMAS[5]
    centres = rng.normal(0, 10, size=(50, 100))
    validation = centres[rng.integers(0, 50, 500)] + rng.normal(0, tau, size=(500, 100))
    best, mean_ll = parzen.select_sigma(validation, centres)
    assert best == tau
    assert mean_ll.shape == (10,) and np.argmax(mean_ll) == 5


@pytest.mark.pipeline
def test_approaches_true_gaussian_log_likelihood():
    # x ~ N(0, I) in 2-D. The KDE with bandwidth σ has expectation N(0, (1+σ²) I), whose mean
    # log-likelihood falls short of the truth by log(1+σ²) + 1/(1+σ²) − 1 ≈ σ⁴/2 (< 0.002 for
    # σ ≤ 0.25), plus a variance term ∝ 1/(M σ²) (~0.01 for M = 20,000). Comparing on the same test
    # points removes most of their sampling noise (paired difference: std ≈ 0.5, se ≈ 0.011), so
    # 0.03 ≈ bias + 2 se. With M = 50 the selected σ is ~0.6 and the gap ~0.12 nats.
    rng = np.random.default_rng(4)
    test, validation = rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2))
    sigmas = np.logspace(-1.5, 0, 16)
    true_ll = _gaussian_ll(test, 1.0)
    gaps = {}
    for n_centres in (20_000, 50):
        centres = rng.normal(size=(n_centres, 2))
        result = parzen.estimate(test, validation, centres, sigmas=sigmas, dtype=torch.float64)
        ll = parzen.log_likelihood(test, centres, result.sigma, dtype=torch.float64).numpy()
        gaps[n_centres] = abs(float(np.mean(ll - true_ll)))
    assert gaps[20_000] < 0.03
    assert gaps[50] > 3 * gaps[20_000]


def test_estimate_reports_mean_and_standard_error():
    rng = np.random.default_rng(5)
    test, validation, centres = (rng.uniform(size=(n, 4, 4)) for n in (30, 20, 40))
    result = parzen.estimate(test, validation, centres, dtype=torch.float64)
    ll = parzen.log_likelihood(test, centres, result.sigma, dtype=torch.float64).numpy()
    assert result.sigma in parzen.SIGMAS
    assert result.mean_nats == pytest.approx(ll.mean(), abs=1e-12)
    assert result.se_nats == pytest.approx(ll.std(ddof=0) / math.sqrt(30), abs=1e-12)
    assert result.mean_bits == pytest.approx(result.mean_nats / math.log(2))
    assert result.se_bits == pytest.approx(result.se_nats / math.log(2))
    assert (result.n_test, result.n_centres) == (30, 40)
    assert parzen.estimate(test, validation, centres, dtype=torch.float64) == result  # reproducible
