"""Posteriors (§2.5) on N(0, I) data, where the exact reverse process is the forward kernel.

A zero-output net with the ``kernel`` form makes p(x_{t−1}|x_t) = N(x_t√(1−β_t), β_t), the exact
reverse of the forward chain for N(0, I) data, so every posterior below has a closed form.
"""

import functools

import pytest
import torch

from dpm.core.diffusion import BinomialDiffusion, GaussianDiffusion
from dpm.core.model import DiffusionModel
from dpm.chain.posterior import (BernoulliEvidence, Denoise, Gradient, Inpaint, Unconditioned, posterior_sample,
                           posterior_trajectory)
from dpm.core.schedules import FixedSchedule

N_SAMPLES, N_DIMS, N_STEPS = 20000, 3, 20
Y = torch.tensor([1.5, -0.5, 2.0])


class ZeroNet(torch.nn.Module):
    def __init__(self, n_outputs: int):
        super().__init__()
        self.n_outputs = n_outputs

    def forward(self, x, t):
        return tuple(torch.zeros_like(x) for _ in range(self.n_outputs))


def gaussian_model(n_steps=N_STEPS):
    make = functools.partial(GaussianDiffusion, parameterisation="kernel")
    return DiffusionModel(FixedSchedule(n_steps, 0.01), ZeroNet(2), make)


def draw(condition, model=None, seed=0, shape=(N_SAMPLES, N_DIMS)):
    model = model or gaussian_model()
    return posterior_sample(model, condition, shape, torch.Generator().manual_seed(seed)).double()


def assert_moments(x, mean, var, n_se=5.0):
    """Per-dimension sample mean and variance within n_se standard errors of the targets."""
    n = x.shape[0]
    mean, var = torch.as_tensor(mean, dtype=x.dtype), torch.as_tensor(var, dtype=x.dtype)
    assert torch.all((x.mean(0) - mean).abs() < n_se * (var / n).sqrt()), (x.mean(0), mean)
    assert torch.all((x.var(0) - var).abs() < n_se * var * (2.0 / n) ** 0.5), (x.var(0), var)


def paper_chain_moments(beta, var_d):
    """Mean (as a multiple of y) and variance of x_0 under the per-step product of Eq. 21–22,
    by the linear-Gaussian recursion through every step x_{t−1} ~ N(a x_t, β_t)·N(y; ·, σ_d²)."""
    coef, var = 1.0 / (1.0 + var_d), var_d / (1.0 + var_d)  # p̃(x_T) = π r
    for b in beta.double().clamp(max=1 - 1e-7).flip(0).tolist():
        a, v = (1.0 - b) ** 0.5, 1.0 / (1.0 / b + 1.0 / var_d)
        coef, var = v * (a * coef / b + 1.0 / var_d), (v * a / b) ** 2 * var + v
    return coef, var


@pytest.mark.pipeline
def test_denoising_matches_the_closed_form_of_the_per_step_product():
    x = draw(Denoise(Y, 1.0, form="paper"))
    coef, var = paper_chain_moments(FixedSchedule(N_STEPS, 0.01)(), 1.0)
    assert_moments(x, coef * Y.double(), torch.full((N_DIMS,), var))


@pytest.mark.xfail(strict=True, reason="Eq. 19–21 drop x_t-dependent normalisers (App. C): the chain tends to "
                                       "π r², mean y/(1 + σ²/2) ≈ 0.66 y here, not π r (0.5 y)")
@pytest.mark.pipeline
def test_the_papers_per_step_product_gives_the_true_posterior_mean_y_over_1_plus_sigma2():
    x = draw(Denoise(Y, 1.0, form="paper"))
    assert_moments(x, Y.double() / 2.0, torch.full((N_DIMS,), 0.5))


@pytest.mark.pipeline
def test_denoising_gives_the_true_posterior_mean_y_over_1_plus_sigma2_and_variance_sigma2_over_1_plus_sigma2():
    # √r per step (form="balanced") reaches π r as the steps shrink: T = 200 here
    for var_d in (1.0, 4.0):
        x = draw(Denoise(Y, var_d ** 0.5), model=gaussian_model(200))
        assert_moments(x, Y.double() / (1.0 + var_d), torch.full((N_DIMS,), var_d / (1.0 + var_d)))


@pytest.mark.pipeline
def test_inpainting_keeps_known_values_and_gives_standard_normal_elsewhere():
    mask = torch.tensor([True, False, True])
    known = torch.tensor([0.7, 0.0, -1.2])
    trajectory = list(posterior_trajectory(gaussian_model(), Inpaint(mask, known), (N_SAMPLES, N_DIMS),
                                           torch.Generator().manual_seed(1)))
    assert [t for t, _ in trajectory] == list(range(N_STEPS, -1, -1))
    for _, x in trajectory:  # clamped at the start, after every step and at the end
        assert torch.equal(x[:, mask], known[mask].expand(N_SAMPLES, 2))
    assert_moments(trajectory[-1][1][:, ~mask].double(), [0.0], [1.0])


@pytest.mark.parametrize("condition", [Denoise(Y, 1.0), Inpaint(torch.tensor([True, False, False]), Y),
                                       Gradient(lambda x: -((x - Y) ** 2).sum(-1) / 2.0)])
def test_a_fixed_seed_gives_identical_samples(condition):
    a, b = draw(condition, seed=3, shape=(50, N_DIMS)), draw(condition, seed=3, shape=(50, N_DIMS))
    assert torch.equal(a, b)
    assert not torch.equal(a, draw(condition, seed=4, shape=(50, N_DIMS)))


@pytest.mark.pipeline
def test_gradient_perturbation_approximates_the_exact_gaussian_product():
    # The mean shift Σ∇log r = Σ(y − μ)/σ² is the exact product's Σ(y − μ)/(Σ + σ²) to first
    # order in Σ/σ², and the variance is left at Σ instead of Σσ²/(Σ + σ²); with σ² = 4 and
    # Σ = β_t ≤ 1/2 after the first step, the two chains' moments differ by ~5% (measured), so the
    # tolerance is relative (0.15) rather than statistical.
    var_d = 4.0
    exact = draw(Denoise(Y, var_d ** 0.5), seed=5)
    perturbed = draw(Gradient(lambda x: -((x - Y) ** 2).sum(-1) / (2 * var_d)), seed=6)
    assert torch.allclose(perturbed.mean(0), exact.mean(0), rtol=0.15, atol=0.03)
    assert torch.allclose(perturbed.var(0), exact.var(0), rtol=0.15)
    assert torch.all(perturbed.mean(0) * Y.double() > 0)  # pulled towards y, away from π's 0


def binomial_model():
    make = functools.partial(BinomialDiffusion, p_pi=0.2, parameterisation="kernel")
    return DiffusionModel(FixedSchedule(N_STEPS, 0.01), ZeroNet(1), make)


def test_binomial_clamp_keeps_known_bits_and_leaves_the_rest_at_pi():
    mask = torch.tensor([True, True, False, False])
    known = torch.tensor([1.0, 0.0, 0.0, 0.0])
    for _, x in posterior_trajectory(binomial_model(), Inpaint(mask, known), (N_SAMPLES, 4),
                                     torch.Generator().manual_seed(7)):
        assert torch.equal(x[:, mask], known[mask].expand(N_SAMPLES, 2))
    free = x[:, ~mask].double()  # independent bits: the posterior of a free bit is π = B(0.2)
    assert torch.all((free.mean(0) - 0.2).abs() < 5 * (0.2 * 0.8 / N_SAMPLES) ** 0.5)


def test_bernoulli_evidence_raises_the_rate_where_r_favours_ones():
    rate = torch.tensor([0.9, 0.5, 0.1])
    x = posterior_sample(binomial_model(), BernoulliEvidence(rate), (N_SAMPLES, 3), torch.Generator().manual_seed(8))
    p = x.double().mean(0)
    se = (0.25 / N_SAMPLES) ** 0.5
    assert p[0] > 0.2 + 5 * se and p[2] < 0.2 - 5 * se  # towards r's 1s (resp. 0s)
    assert abs(p[1] - 0.2) < 5 * se  # d = 1/2 is no evidence: the bit stays at π


D = torch.tensor([0.9, 0.5, 0.1, 0.7], dtype=torch.float64)  # r(x = 1) per bit


def bit_chain_rate(n_steps, beta_1, form):
    """P(x_0 = 1) of ``BernoulliEvidence``'s chain per bit, exactly: with the zero net each bit is
    its own two-state chain, p(x_{t−1} = 1|x_t) the equilibrium reverse, tilted by r or √r."""
    process = BinomialDiffusion(FixedSchedule(n_steps, beta_1)(), 0.2)
    power, logit_d = {"paper": 1.0, "balanced": 0.5}[form], torch.logit(D)
    p1 = torch.sigmoid(torch.logit(torch.tensor(0.2, dtype=torch.float64)) + logit_d)  # start: π r
    bits = torch.tensor([[0.0], [1.0]], dtype=torch.float64).expand(2, len(D))
    for t in range(n_steps, 0, -1):  # t = 1 is the tied step T_π(x_0|x_1; β_1), the same zero-net form
        f0, f1 = torch.sigmoid(process.p_params(bits, torch.full((2,), t), torch.zeros_like(bits)) + power * logit_d)
        p1 = p1 * f1 + (1 - p1) * f0
    return p1


def test_bernoulli_evidence_samples_follow_the_exact_per_bit_chain_in_both_forms():
    for form in ("paper", "balanced"):
        x = posterior_sample(binomial_model(), BernoulliEvidence(D.float(), form), (N_SAMPLES, 4),
                             torch.Generator().manual_seed(9)).double()
        rate = bit_chain_rate(N_STEPS, 0.01, form)
        assert torch.all((x.mean(0) - rate).abs() < 5 * (rate * (1 - rate) / N_SAMPLES).sqrt() + 1e-3), form


@pytest.mark.pipeline
def test_bernoulli_evidence_reaches_pi_r_with_root_r_per_step_and_pi_r_squared_with_the_papers_r():
    # the heartbeat's schedule: T = 2000, β_1 = 1/T; the true posterior of a bit is π r
    pi_r = 0.2 * D / (0.2 * D + 0.8 * (1 - D))
    pi_r2 = 0.2 * D ** 2 / (0.2 * D ** 2 + 0.8 * (1 - D) ** 2)
    assert torch.allclose(bit_chain_rate(2000, 1 / 2000, "balanced"), pi_r, atol=2e-3)
    assert torch.allclose(bit_chain_rate(2000, 1 / 2000, "paper"), pi_r2, atol=2e-3)
    assert (bit_chain_rate(2000, 1 / 2000, "paper") - pi_r).abs().max() > 0.2  # the bias is large


def test_only_the_unconditional_chain_ends_at_the_final_steps_mean():
    model, shape = gaussian_model(4), (5, N_DIMS)
    assert posterior_sample(model, Unconditioned(), shape, final_mean=True).shape == shape
    with pytest.raises(ValueError, match=r"the final step's mean is the unconditional chain's \(r ≡ 1\) alone"):
        posterior_sample(model, Inpaint(torch.ones(N_DIMS, dtype=torch.bool), Y), shape, final_mean=True)
