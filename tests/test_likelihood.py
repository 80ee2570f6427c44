"""The importance-weighted log-likelihood L_k (Eq. 9) against closed forms and against K.

Linear-Gaussian chains (every reverse mean affine in x_t, variance fixed) and per-bit binomial
chains (every reverse rate a function of the bit's own x_t) have a model marginal p(x_0) in closed
form, found by running the reverse chain's moments (resp. rates) from π down to t = 0.
"""

import functools
import math

import numpy as np
import pytest
import torch

from dpm.base import registry, sections
from dpm.core.bound import bound_terms, inverse_t_proposal, kl_sum, to_bits
from dpm.datasets import heartbeat
from dpm.data.split import DataInfo
from dpm.core.diffusion import BinomialDiffusion, GaussianDiffusion
from dpm.core.evaluate import Estimate
from dpm.estimate.likelihood import (distinct, grouped, holdout_log_likelihood, holdout_subset, k_draws,
                            kl_by_t, log_likelihood, log_weights, mean_and_variance, subset_estimates, weighted_mean)
from dpm.core.model import DiffusionModel, build
from dpm.core.schedules import FixedSchedule
from pipeline.kl_per_t import importance_spread
from tests.test_bound import ConstantNet

N_STEPS = 20
BETA = FixedSchedule(N_STEPS, 0.01)()
MU, VAR = torch.tensor([0.8, -1.5], dtype=torch.float64), torch.tensor([0.3, 2.0], dtype=torch.float64)
RHO = torch.tensor([0.05, 0.5, 0.9], dtype=torch.float64)  # binomial data: independent bits, P(1) = ρ
P_PI = 0.2


def generator(seed):
    return torch.Generator().manual_seed(seed)


def at(table, t, x):
    """table[t] of a (T + 1, D) table indexed by t = 0..T, shaped to broadcast against x
    (t's shape a prefix of x's, as ``bound.py`` and ``likelihood.py`` call a reverse)."""
    return table[t].reshape(t.shape + (1,) * (x.ndim - t.ndim - 1) + table.shape[1:])


class LinearGaussianReverse:
    """p(x_{t−1}|x_t) = N(A_t x_t + c_t, V_t), t = 1..T, per dimension: the exact reverse of q for
    data N(μ, σ²) (Bayes' rule on q's Gaussian marginals), shifted by ``shift``·√V_t and its
    variance scaled by ``scale`` (a slightly wrong model whose p(x_0) is still known)."""

    def __init__(self, mu, var, shift=0.0, scale=1.0):
        alpha_bar = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - BETA, 0)])[:, None]
        m, v = alpha_bar.sqrt() * mu, alpha_bar * var + 1 - alpha_bar  # q(x_t) = N(m_t, v_t), t = 0..T
        a, b = (1 - BETA).sqrt()[:, None], BETA[:, None]  # q(x_t|x_{t−1}) = N(a x_{t−1}, b), row t − 1
        var_post = 1 / (1 / v[:-1] + a ** 2 / b)  # row t − 1: Var(x_{t−1}|x_t)
        pad = torch.zeros(1, len(mu), dtype=torch.float64)  # row 0 (t = 0) unused
        self.A = torch.cat([pad, var_post * a / b])
        self.c = torch.cat([pad, var_post * m[:-1] / v[:-1] + shift * var_post.sqrt()])
        self.V = torch.cat([pad + 1, var_post * scale])

    def __call__(self, process, xt, t):
        return at(self.A, t, xt) * xt + at(self.c, t, xt), at(self.V, t, xt)

    def log_p0(self, x0, tied_edge):
        """log p(x_0) of the model: N(0, 1) at t = T pushed through every reverse step."""
        m, v = torch.zeros_like(MU), torch.ones_like(MU)
        for t in range(N_STEPS, 0, -1):
            A, c, V = self.A[t], self.c[t], self.V[t]
            if t == 1 and tied_edge:  # T_π(x_0|x_1; β_1) = N(x_1√(1 − β_1), β_1)
                A, c, V = (1 - BETA[0]).sqrt(), 0.0, BETA[0]
            m, v = A * m + c, A ** 2 * v + V
        return (-0.5 * ((x0 - m) ** 2 / v + torch.log(2 * math.pi * v))).sum(-1)


def step_logit(x_prev, t):
    """logit q(x_t = 1|x_{t−1}) for t = 1..T."""
    rate = x_prev * (1 - BETA[t - 1]) + P_PI * BETA[t - 1]
    return torch.logit(rate)


class BitReverse:
    """p(x_{t−1} = 1|x_t) per bit: the exact reverse of q for independent Bernoulli(ρ) bits (Bayes'
    rule on q's marginal rates), its logit shifted by ``shift``."""

    def __init__(self, rho, shift=0.0):
        alpha_bar = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - BETA, 0)])[:, None]
        rate = alpha_bar * rho + (1 - alpha_bar) * P_PI  # q(x_t = 1), t = 0..T
        t = torch.arange(1, N_STEPS + 1)[:, None]
        ones, zeros = torch.ones_like(rho), torch.zeros_like(rho)
        # logit of p(x_{t−1} = 1|x_t = x), x = 0, 1; row t (row 0 unused)
        log_like = lambda x, v: torch.log(torch.where(  # noqa: E731  log q(x_t = x|x_{t−1} = v)
            torch.tensor(x == 1), torch.sigmoid(step_logit(v, t)), torch.sigmoid(-step_logit(v, t))))
        logits = [torch.logit(rate[:-1]) + log_like(x, ones) - log_like(x, zeros) + shift for x in (0, 1)]
        pad = torch.zeros(1, len(rho), dtype=torch.float64)
        self.logit = [torch.cat([pad, logit]) for logit in logits]

    def __call__(self, process, xt, t):
        return torch.where(xt > 0.5, at(self.logit[1], t, xt), at(self.logit[0], t, xt))

    def log_p0(self, x0, tied_edge):
        """log p(x_0) of the model: π at t = T pushed through every reverse step, per bit."""
        p1 = torch.full_like(RHO, P_PI)
        for t in range(N_STEPS, 0, -1):
            f0, f1 = torch.sigmoid(self.logit[0][t]), torch.sigmoid(self.logit[1][t])
            if t == 1 and tied_edge:  # T_π(x_0|x_1; β_1) = q(x_1|x_0; β_1)
                f0, f1 = (torch.sigmoid(step_logit(torch.tensor(v, dtype=torch.float64), 1)) for v in (0.0, 1.0))
            p1 = p1 * f1 + (1 - p1) * f0
        return (x0 * torch.log(p1) + (1 - x0) * torch.log(1 - p1)).sum(-1)


def gaussian_data(n, seed):
    return MU + VAR.sqrt() * torch.randn(n, 2, generator=generator(seed), dtype=torch.float64)


def binomial_data(n, seed):
    return (torch.rand(n, 3, generator=generator(seed), dtype=torch.float64) < RHO).double()


CASES = {  # process, exact reverse, data, its true log-likelihood
    "gaussian": (GaussianDiffusion(BETA), LinearGaussianReverse(MU, VAR), gaussian_data,
                 lambda x: (-0.5 * ((x - MU) ** 2 / VAR + torch.log(2 * math.pi * VAR))).sum(-1)),
    "binomial": (BinomialDiffusion(BETA, P_PI), BitReverse(RHO), binomial_data,
                 lambda x: (x * torch.log(RHO) + (1 - x) * torch.log(1 - RHO)).sum(-1)),
}


def test_with_the_exact_reverse_every_importance_weight_is_the_data_density():
    for name, (process, reverse, data, log_density) in CASES.items():
        x0 = data(50, seed=1)
        log_w = log_weights(process, reverse, x0, n_k=4, generator=generator(2), tied_edge=False)
        assert torch.allclose(log_w, log_density(x0).expand(4, 50), rtol=0, atol=1e-9), name
        assert torch.allclose(log_likelihood(process, reverse, x0, 7, generator(3), tied_edge=False),
                              log_density(x0), rtol=0, atol=1e-9), name


def test_the_closed_form_model_marginal_of_the_tests_is_the_data_density_for_the_exact_reverse():
    for name, (process, reverse, data, log_density) in CASES.items():
        x0 = data(20, seed=4)
        assert torch.allclose(reverse.log_p0(x0, tied_edge=False), log_density(x0), atol=1e-9), name


def test_with_data_from_pi_and_the_forward_kernel_every_weight_is_log_pi_with_the_tied_edge():
    gaussian = DiffusionModel(FixedSchedule(N_STEPS, 0.01), ConstantNet(2), GaussianDiffusion)
    binomial = DiffusionModel(FixedSchedule(N_STEPS, 0.01), ConstantNet(1),
                              functools.partial(BinomialDiffusion, p_pi=P_PI))
    for model, x0 in [(gaussian, torch.randn(50, 3, generator=generator(5))),
                      (binomial, (torch.rand(50, 4, generator=generator(5)) < P_PI).float())]:
        process = model.process()
        log_w = log_weights(process, model.reverse, x0, n_k=3, generator=generator(6))
        # float32 chain; the kernel form clamps β_T = 1 to 1 − 1e−7
        assert torch.allclose(log_w, process.log_prior(x0.double()).expand(3, 50), rtol=0, atol=1e-4)


def test_passes_of_trajectories_combine_to_the_one_logsumexp():
    process, reverse, data, _ = CASES["gaussian"]
    x0 = data(10, seed=7)
    reverse = LinearGaussianReverse(MU, VAR, shift=0.5, scale=1.5)
    one_per_pass = log_likelihood(process, reverse, x0, 6, generator(8), max_elements=x0.numel())
    g = generator(8)
    log_w = torch.cat([log_weights(process, reverse, x0, 1, g) for _ in range(6)])
    assert torch.allclose(one_per_pass, torch.logsumexp(log_w, 0) - math.log(6), rtol=0, atol=1e-12)
    assert torch.equal(holdout_log_likelihood(process, reverse, x0, 6, 4, seed=9),
                       holdout_log_likelihood(process, reverse, x0, 6, 4, seed=9))


def paired(a, b):
    """(mean, standard error) of a − b over examples, nats."""
    d = (a - b).double()
    return d.mean().item(), d.std(unbiased=False).item() / math.sqrt(len(d))


def assert_l1_matches_k(process, reverse, x0, seed):
    l1 = holdout_log_likelihood(process, reverse, x0, n_k=1, batch_size=len(x0), seed=seed)
    k = bound_terms(process, reverse, x0, generator(seed + 1)).k.double()
    mean, se = paired(l1, k)
    assert abs(mean) < 4 * se, (mean, se)
    return l1, k, se


def test_the_mean_of_l1_is_k_for_a_wrong_gaussian_reverse():
    model = DiffusionModel(FixedSchedule(N_STEPS, 0.01), ConstantNet(2, 0.3), GaussianDiffusion)
    x0 = gaussian_data(4000, seed=10).float()
    l1, k, se = assert_l1_matches_k(model.process(), model.reverse, x0, seed=11)
    log_density = CASES["gaussian"][3]
    assert se < 0.05 and k.mean() < log_density(x0.double()).mean() - 0.5  # power: K is far from the truth


def test_the_mean_of_l1_is_k_for_an_untrained_heartbeat_model():
    c = registry.HeartbeatConfig(
        data=registry.HeartbeatData(100, 500, 20, 5, 0),
        diffusion=sections.DiffusionConfig(40, 0.01, "fixed", "kernel"),
        net=sections.MLPConfig(20, 2, "glorot_sigmoid"), train=None, eval=None)
    model = build("sigmoid_mlp", c, DataInfo(label="heartbeat", unit="bits/seq", n_dims=20, p_pi=0.2), seed=0)
    x0 = torch.from_numpy(heartbeat.sample(1000, 20, 5, np.random.default_rng(0))).float()
    _, k, se = assert_l1_matches_k(model.process(), model.reverse, x0, seed=12)
    assert se < 0.2 and k.mean() < heartbeat.true_log_likelihood_nats(5) - 1.0


@pytest.mark.pipeline
def test_lk_rises_with_k_towards_the_log_likelihood_of_a_slightly_wrong_model():
    wrong = {"gaussian": LinearGaussianReverse(MU, VAR, shift=0.3, scale=1.5), "binomial": BitReverse(RHO, shift=0.7)}
    for name, (process, _, data, _) in CASES.items():
        reverse, x0 = wrong[name], data(200, seed=13)
        truth = reverse.log_p0(x0, tied_edge=True)
        gaps = [paired(truth, holdout_log_likelihood(process, reverse, x0, n_k, 200, seed=14 + n_k))
                for n_k in (1, 10, 100)]
        (gap_1, se_1), (gap_10, se_10), (gap_100, se_100) = gaps
        assert gap_1 > 5 * se_1, (name, gaps)  # the bound is visibly loose at k = 1
        assert gap_10 < gap_1 + 3 * math.hypot(se_1, se_10) and gap_100 < gap_10 + 3 * math.hypot(se_10, se_100)
        assert -3 * se_100 < gap_100 < gap_1 / 3, (name, gaps)  # below the truth, most of the gap closed


def test_groups_of_a_pool_are_the_logsumexp_of_k_log_weights():
    log_w = torch.randn(12, 3, generator=generator(20), dtype=torch.float64)
    groups = grouped(log_w, 4)
    assert groups.shape == (3, 3)
    assert torch.allclose(groups[1], torch.logsumexp(log_w[4:8], 0) - math.log(4))
    assert torch.equal(grouped(log_w, 1), log_w)


def test_the_weighted_mean_of_distinct_examples_is_the_mean_over_the_set_with_an_honest_standard_error():
    values = torch.randn(50, generator=generator(21), dtype=torch.float64)
    mean, se = weighted_mean(*mean_and_variance(values[None]), torch.ones(50, dtype=torch.long))
    estimate = Estimate.of(values)  # every example distinct: the usual std/√n
    assert math.isclose(to_bits(mean.item()), estimate.mean_bits) and math.isclose(to_bits(se.item()), estimate.se_bits)
    # 5 distinct examples in a set of 400 drawn from them, each computed once by R noisy draws:
    # the standard error must match the spread of the estimate over repeated experiments
    mu, sigma, n_draws = torch.tensor([-2.0, -2.5, -1.8, -2.2, -3.0]), torch.tensor([0.5, 1.0, 2.0, 0.3, 1.5]), 4
    g, estimates, ses = generator(22), [], []
    for _ in range(3000):
        counts = torch.bincount(torch.randint(0, 5, (400,), generator=g), minlength=5)
        draws = mu + sigma * torch.randn(n_draws, 5, generator=g, dtype=torch.float64)
        mean, se = weighted_mean(*mean_and_variance(draws), counts)
        estimates.append(mean.item())
        ses.append(se.item())
    spread = np.std(estimates)
    assert abs(np.mean(estimates) - mu.mean().item()) < 4 * spread / math.sqrt(3000)
    assert 0.9 < np.sqrt(np.mean(np.square(ses))) / spread < 1.1


def test_a_repeated_example_computed_from_one_draw_is_refused():
    with pytest.raises(ValueError, match="2 Monte Carlo draws"):
        weighted_mean(*mean_and_variance(torch.zeros(1, 2)), torch.tensor([3, 1]))


@pytest.mark.pipeline
def test_the_kl_terms_by_t_are_the_terms_of_k():
    process, _, data, _ = CASES["gaussian"]
    reverse, x0 = LinearGaussianReverse(MU, VAR, shift=0.5, scale=1.5), data(30, seed=23)
    by_t = kl_by_t(process, reverse, x0, 1, generator(24))
    assert by_t.shape == (1, N_STEPS - 1, 30)
    assert torch.allclose(by_t[0].sum(0), kl_sum(process, reverse, x0, generator(24)).double(), rtol=1e-12)
    # in blocks of t, with repeats: the same expectation
    blocks = kl_by_t(process, reverse, x0, 200, generator(25), max_elements=3 * x0.numel())
    assert torch.allclose(blocks.mean(0).mean(1), by_t[0].mean(1), rtol=0.2)


def test_k_exactly_over_t_is_the_bounds_k_term_for_term():
    process, _, data, _ = CASES["gaussian"]
    reverse, x0 = LinearGaussianReverse(MU, VAR, shift=0.5, scale=1.5), data(30, seed=29)
    k, kl = k_draws(process, reverse, x0, 1, generator(30))
    assert kl.shape == (1, N_STEPS - 1, 30)
    assert torch.allclose(k[0], bound_terms(process, reverse, x0, generator(30)).k.double(), rtol=0, atol=1e-9)


def test_subset_estimates_of_repeated_examples_from_pi_give_log_pi_for_every_k():
    model = DiffusionModel(FixedSchedule(N_STEPS, 0.01), ConstantNet(1), functools.partial(BinomialDiffusion, p_pi=P_PI))
    process = model.process()
    x = (torch.rand(300, 4, generator=generator(26)) < P_PI).float()
    rows, counts = distinct(x)
    assert counts.sum() == 300 and len(rows) < 300
    bound = k_draws(process, model.reverse, rows, 8, generator(27))[0]
    estimates = subset_estimates(process, model.reverse, rows, counts, bound, (1, 10), 20, 7, generator(28))
    log_pi = (counts * process.log_prior(rows.double())).sum() / 300
    for n_k in (1, 10):  # every weight is log π(x_0): L_k is exact
        assert abs(estimates[f"L_{n_k}"][0] - log_pi) < 1e-4
        gain, se = estimates[f"L_{n_k}_minus_K"]
        assert abs(gain) < 4 * se
    assert abs(estimates["K"][0] - log_pi) < 4 * estimates["K"][1]


def test_the_subset_is_seeded_and_nested():
    small, large = holdout_subset(100, 10, seed=3), holdout_subset(100, 40, seed=3)
    assert torch.equal(small, large[:10]) and len(set(large.tolist())) == 40
    assert not torch.equal(small, holdout_subset(100, 10, seed=4))
    assert len(holdout_subset(5, 10, seed=3)) == 5


def test_importance_spread_is_one_and_zero_when_the_terms_follow_the_proposal_and_matches_sampling():
    proposal = inverse_t_proposal(50)
    even = importance_spread(3.0 * proposal[None, :, None].expand(2, -1, 4), proposal)
    assert even["largest_weight_max"] == pytest.approx(1.0) and even["relative_sd_max"] == pytest.approx(0.0, abs=1e-6)
    # terms that do not follow P(t): the relative sd is that of KL_t / P(t) with t ~ P(t)
    generator = torch.Generator().manual_seed(0)
    kl = torch.rand(1, 49, 1, generator=generator, dtype=torch.float64)
    spread = importance_spread(kl, proposal)
    t = torch.multinomial(proposal, 400_000, replacement=True, generator=generator)
    draws = kl[0, t, 0] / proposal[t]
    assert draws.mean().item() == pytest.approx(kl.sum().item(), rel=0.01)
    assert spread["relative_sd_max"] == pytest.approx((draws.std() / kl.sum()).item(), rel=0.01)
    assert spread["largest_weight_max"] == pytest.approx((kl[0, :, 0] / proposal).max().item() / kl.sum().item())
