"""The best reverse kernels of dpm/estimate/limits.py against cases with a known answer: Gaussian data and
independent bits (the exact reverse is in the family, so K* is the true log-likelihood), a mixture
against quadrature, a single sequence (every KL term vanishes), and the swiss roll's curve mixture
against its exact density."""

import itertools
import math

import numpy as np
import torch

from dpm.core.bound import bound_terms
from dpm.datasets import swiss_roll
from dpm.core.diffusion import BinomialDiffusion, GaussianDiffusion
from dpm.estimate.likelihood import kl_by_t, log_weights
from dpm.estimate.limits import BernoulliMixtureReverse, GaussianMixtureReverse, curve_mixture
from tests.test_likelihood import (BETA, MU, N_STEPS, P_PI, RHO, VAR, BitReverse, LinearGaussianReverse,
                                   binomial_data, gaussian_data, generator)

ALL_BITS = torch.tensor(list(itertools.product([0.0, 1.0], repeat=len(RHO))), dtype=torch.float64)  # (8, 3)


def gaussian_reverse():
    """Gaussian data N(μ, diag σ²) as a mixture of one component."""
    return GaussianMixtureReverse(MU[None], torch.zeros(1), VAR)


def independent_bits_reverse():
    """Independent Bernoulli(ρ) bits as a mixture of all 8 sequences, each at its probability."""
    log_p = (ALL_BITS * torch.log(RHO) + (1 - ALL_BITS) * torch.log(1 - RHO)).sum(-1)
    return BernoulliMixtureReverse(ALL_BITS, log_p)


def random_states(shape, seed, binary=False):
    x = torch.randn(shape, generator=generator(seed), dtype=torch.float64)
    return (x > 0.3).double() if binary else 2 * x


def test_for_gaussian_data_the_best_gaussian_step_is_the_exact_reverse():
    process, exact, best = GaussianDiffusion(BETA), LinearGaussianReverse(MU, VAR), gaussian_reverse()
    xt = random_states((N_STEPS, 7, 2), seed=1)
    t = torch.arange(1, N_STEPS + 1)
    for got, want in zip(best(process, xt, t), exact(process, xt, t)):
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)


def test_for_independent_bits_the_best_factorised_step_is_the_exact_reverse():
    process, exact, best = BinomialDiffusion(BETA, P_PI), BitReverse(RHO), independent_bits_reverse()
    xt = random_states((N_STEPS, 7, 3), seed=2, binary=True)
    t = torch.arange(1, N_STEPS + 1)
    assert torch.allclose(best(process, xt, t), exact(process, xt, t), rtol=1e-9, atol=1e-9)


def test_with_the_exact_reverse_in_the_family_k_star_is_the_true_log_likelihood():
    """Every log-weight is log p_data(x_0), so K* = E log p_data (with the best step at t = 1 too)."""
    cases = [(GaussianDiffusion(BETA), gaussian_reverse(), gaussian_data(30, seed=3),
              lambda x: (-0.5 * ((x - MU) ** 2 / VAR + torch.log(2 * math.pi * VAR))).sum(-1)),
             (BinomialDiffusion(BETA, P_PI), independent_bits_reverse(), binomial_data(30, seed=3),
              lambda x: (x * torch.log(RHO) + (1 - x) * torch.log(1 - RHO)).sum(-1))]
    for process, reverse, x0, log_density in cases:
        log_w = log_weights(process, reverse, x0, n_k=3, generator=generator(4), tied_edge=False)
        assert torch.allclose(log_w, log_density(x0).expand(3, 30), rtol=0, atol=1e-9)


def test_the_mixture_step_has_the_moments_of_the_true_reverse_by_quadrature():
    """Two 1-D components: E and Var of x_{t−1}|x_t from q(x_{t−1}) q(x_t|x_{t−1}) on a fine grid."""
    centres, log_w, tau2 = torch.tensor([[-1.5], [0.7]], dtype=torch.float64), torch.log(torch.tensor([0.3, 0.7])), 0.05
    process, reverse = GaussianDiffusion(BETA), GaussianMixtureReverse(centres, log_w, tau2)
    grid = torch.linspace(-6, 6, 200001, dtype=torch.float64)
    alpha_bar = torch.cat([torch.ones(1, dtype=torch.float64), process.alpha_bar])
    for t, xt in [(2, -1.4), (5, 0.2), (12, 0.9), (N_STEPS, -0.3)]:
        a = alpha_bar[t - 1]
        var_prev = a * tau2 + 1 - a  # q(x_{t−1}) = Σ w_j N(√ᾱ c_j, ᾱτ² + 1 − ᾱ)
        log_prior = torch.logsumexp(log_w.double()[:, None] - 0.5 * (grid - a.sqrt() * centres) ** 2 / var_prev, 0)
        log_like = -0.5 * (xt - (1 - BETA[t - 1]).sqrt() * grid) ** 2 / BETA[t - 1]
        density = torch.softmax(log_prior + log_like, 0)
        mean = (density * grid).sum()
        var = (density * (grid - mean) ** 2).sum()
        got_mean, got_var = reverse(process, torch.tensor([[xt]], dtype=torch.float64), torch.tensor([t]))
        assert abs(got_mean.item() - mean.item()) < 1e-6 and abs(got_var.item() / var.item() - 1) < 1e-5, t


def test_for_a_single_sequence_every_kl_term_vanishes_and_k_star_is_closed_form():
    """One sequence: the exact posterior q(x_{t−1}|x_t, x_0) is factorised and is the best step."""
    process = BinomialDiffusion(BETA, P_PI)
    sequence = torch.tensor([[1.0, 0.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    reverse = BernoulliMixtureReverse(sequence, torch.zeros(1))
    x0 = sequence.expand(40, 5)
    assert kl_by_t(process, reverse, x0, 2, generator(5)).abs().max() < 1e-12
    terms = bound_terms(process, reverse, x0, generator(6))
    t_1, t_T = torch.ones(40, dtype=torch.long), torch.full((40,), N_STEPS)
    closed = (process.entropy(x0, t_T) - process.entropy(x0, t_1) + process.expected_log_prior(x0, t_T)
              + process.log_prior(x0) - process.expected_log_prior(x0, t_1))
    assert torch.allclose(terms.k.double(), closed.double(), atol=1e-9)


def test_the_curve_mixture_holds_the_swiss_rolls_exact_density():
    noise, n_nodes = 0.05, 16384
    x = swiss_roll.sample(50, noise, np.random.default_rng(7))
    centres, log_w = curve_mixture(lambda theta: torch.from_numpy(np.stack(swiss_roll.curve(theta.numpy()), 1)),
                                   swiss_roll.THETA_MIN, swiss_roll.THETA_MAX, n_nodes)
    d2 = ((torch.from_numpy(x)[:, None] - centres) ** 2).sum(-1)
    mixture = torch.logsumexp(log_w - 0.5 * d2 / noise ** 2, 1) - math.log(2 * math.pi * noise ** 2)
    assert np.allclose(mixture.numpy(), swiss_roll.log_density(x, noise), rtol=0, atol=1e-4)
