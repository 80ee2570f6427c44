"""The forward process and the reverse step's form against closed forms, Bayes' rule and Monte Carlo."""

import math

import pytest
import torch

from dpm.core.diffusion import BinomialDiffusion, GaussianDiffusion
from dpm.core.schedules import erase_fraction_betas

N_STEPS = 10


@pytest.fixture
def gaussian():
    return GaussianDiffusion(erase_fraction_betas(N_STEPS, 0.02))


@pytest.fixture
def binomial():
    return BinomialDiffusion(erase_fraction_betas(N_STEPS, 0.02), p_pi=0.2)


def test_gaussian_kl_of_a_distribution_with_itself_is_zero():
    mean, var = torch.randn(5, 3), torch.rand(5, 3) + 0.1
    assert torch.allclose(GaussianDiffusion.kl((mean, var), (mean, var)), torch.zeros(5), atol=1e-6)
    assert (GaussianDiffusion.kl((mean, var), (mean + 0.1, var)) > 0).all()


def test_binomial_kl_of_a_distribution_with_itself_is_zero():
    rate = torch.rand(5, 3).clamp(0.01, 0.99)
    assert torch.allclose(BinomialDiffusion.kl(rate, torch.logit(rate)), torch.zeros(5), atol=1e-6)
    assert (BinomialDiffusion.kl(rate, torch.logit(rate) + 0.3) > 0).all()


@pytest.mark.parametrize("t", [1, 4, N_STEPS - 1])
def test_gaussian_marginal_is_the_kernel_applied_t_times(gaussian, t):
    torch.manual_seed(0)
    n = 200_000
    x0 = torch.full((n, 1), 1.5, dtype=torch.float64)
    x = x0
    for s in range(1, t + 1):
        x = gaussian.q_step(x, torch.full((n,), s), torch.randn_like(x))
    direct = gaussian.q_sample(x0, torch.full((n,), t), torch.randn_like(x0))
    alpha_bar = gaussian.alpha_bar[t - 1]
    se_mean = math.sqrt(1 / n)
    assert abs(x.mean() - 1.5 * alpha_bar.sqrt()) < 5 * se_mean
    assert abs(x.var() - (1 - alpha_bar)) < 0.01
    assert abs(direct.mean() - x.mean()) < 7 * se_mean
    assert abs(direct.var() - x.var()) < 0.015


@pytest.mark.parametrize("t", [1, 4, N_STEPS - 1])
def test_binomial_marginal_is_the_kernel_applied_t_times(binomial, t):
    torch.manual_seed(0)
    n = 200_000
    x0 = torch.ones(n, 2, dtype=torch.float64)
    x0[:, 1] = 0
    x = x0
    for s in range(1, t + 1):
        x = binomial.q_step(x, torch.full((n,), s), torch.rand_like(x))
    expected = binomial.marginal_rate(x0[:1], torch.tensor([t]))[0]
    assert torch.allclose(x.mean(0), expected, atol=5 * 0.5 / math.sqrt(n))


@pytest.mark.parametrize("t", [2, 5, N_STEPS])
def test_gaussian_posterior_is_bayes_rule_on_a_grid(gaussian, t):
    x0, xt = torch.tensor([[0.7]], dtype=torch.float64), torch.tensor([[-0.4]], dtype=torch.float64)
    grid = torch.linspace(-6, 6, 20001, dtype=torch.float64)
    beta, alpha_bar_prev = gaussian.beta[t - 1], gaussian.alpha_bar[t - 2]
    log_like = -0.5 * (xt[0, 0] - (1 - beta).sqrt() * grid) ** 2 / beta if beta < 1 else 0 * grid
    log_prior = -0.5 * (grid - alpha_bar_prev.sqrt() * x0[0, 0]) ** 2 / (1 - alpha_bar_prev)
    weight = torch.softmax(log_like + log_prior, 0)
    mean_grid = (weight * grid).sum()
    var_grid = (weight * (grid - mean_grid) ** 2).sum()
    mean, var = gaussian.q_posterior(x0, xt, torch.tensor([t]))
    assert torch.allclose(mean[0, 0], mean_grid, atol=1e-6)
    assert torch.allclose(var[0, 0], var_grid, atol=1e-6)


@pytest.mark.parametrize("t", [2, 5, N_STEPS])
def test_binomial_posterior_is_bayes_rule(binomial, t):
    beta = binomial.beta[t - 1].item()
    for x0 in (0.0, 1.0):
        for xt in (0.0, 1.0):
            prior_1 = binomial.marginal_rate(torch.tensor([[x0]], dtype=torch.float64), torch.tensor([t - 1])).item()
            step = {prev: prev * (1 - beta) + 0.2 * beta for prev in (0.0, 1.0)}  # q(x_t = 1 | x_{t−1})
            like = {prev: step[prev] if xt == 1 else 1 - step[prev] for prev in (0.0, 1.0)}
            joint_1, joint_0 = prior_1 * like[1.0], (1 - prior_1) * like[0.0]
            expected = joint_1 / (joint_1 + joint_0)
            got = binomial.q_posterior(torch.tensor([[x0]], dtype=torch.float64),
                                       torch.tensor([[xt]], dtype=torch.float64), torch.tensor([t])).item()
            assert got == pytest.approx(expected, abs=1e-9)


def test_gaussian_entropy_and_expected_log_prior_match_monte_carlo(gaussian):
    torch.manual_seed(1)
    x0 = torch.tensor([[0.3, -1.2]], dtype=torch.float64)
    t = torch.tensor([4])
    xt = gaussian.q_sample(x0.expand(400_000, 2), t.expand(400_000), torch.randn(400_000, 2, dtype=torch.float64))
    assert gaussian.expected_log_prior(x0, t).item() == pytest.approx(gaussian.log_prior(xt).mean().item(), abs=0.01)
    var = 1 - gaussian.alpha_bar[3]
    log_q = (-0.5 * (xt - gaussian.alpha_bar[3].sqrt() * x0) ** 2 / var - 0.5 * torch.log(2 * math.pi * var)).sum(-1)
    assert gaussian.entropy(x0, t).item() == pytest.approx(-log_q.mean().item(), abs=0.01)


def test_forward_kernel_reverse_parameters_at_zero_coefficients(gaussian):
    xt, t = torch.randn(4, 3, dtype=torch.float64), torch.full((4,), 3)
    mean, var = gaussian.p_params(xt, t, torch.zeros_like(xt), torch.zeros_like(xt))
    assert torch.allclose(mean, (1 - gaussian.beta[2]).sqrt() * xt)
    assert torch.allclose(var, gaussian.beta[2].expand_as(var))
