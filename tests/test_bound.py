"""The bound K (Eq. 14): exact where the reverse process is the forward kernel, never above the truth."""

import functools
import math

import numpy as np
import pytest
import torch

from dpm.base import registry, sections
from dpm.core.bound import bound_terms, inverse_t_proposal, to_bits
from dpm.datasets import heartbeat
from dpm.data.scaling import Scaling
from dpm.data.split import DataInfo
from dpm.core.diffusion import BinomialDiffusion, GaussianDiffusion
from dpm.core.evaluate import Estimate, holdout_terms
from dpm.core.model import DiffusionModel, build
from dpm.core.schedules import FixedSchedule, LearnedSchedule


class ConstantNet(torch.nn.Module):
    """Raw coefficients c·1 for every input: c = 0 is the forward kernel."""

    def __init__(self, n_outputs: int, value: float = 0.0):
        super().__init__()
        self.n_outputs, self.value = n_outputs, value

    def forward(self, x, t):
        return tuple(torch.full_like(x, self.value) for _ in range(self.n_outputs))


def gaussian_model(schedule, value=0.0, parameterisation="kernel"):
    return DiffusionModel(schedule, ConstantNet(2, value),
                          functools.partial(GaussianDiffusion, parameterisation=parameterisation))


# every form but the paper's Eq. 66, whose zero output is μ = x(1 − β_t), not x√(1 − β_t)
@pytest.mark.parametrize("parameterisation", ["kernel", "x0", "v"])
@pytest.mark.parametrize("schedule", [FixedSchedule(20, 0.01), LearnedSchedule(20, 0.01)])
def test_zero_output_is_the_forward_kernel_so_k_equals_l_null_on_standard_normal_data(schedule, parameterisation):
    # the data's seed differs from the estimate's: the same stream would make x_t's noise equal x_0
    x0 = torch.randn(2000, 3, generator=torch.Generator().manual_seed(10))
    model = gaussian_model(schedule, parameterisation=parameterisation)
    k = holdout_terms(model, x0, n_repeats=4, batch_size=500, seed=0).k
    gain = Estimate.of(k - model.process().log_prior(x0))
    assert abs(gain.mean_bits) < 4 * gain.se_bits + 1e-6
    assert gain.se_bits < 0.03  # the check above has power


@pytest.mark.parametrize("parameterisation", BinomialDiffusion.PARAMETERISATIONS)
def test_zero_output_gives_k_equal_to_l_null_for_binomial_diffusion(parameterisation):
    make = functools.partial(BinomialDiffusion, p_pi=0.2, parameterisation=parameterisation)
    model = DiffusionModel(FixedSchedule(50, 1 / 50), ConstantNet(1), make)
    x0 = (torch.rand(2000, 10, generator=torch.Generator().manual_seed(0)) < 0.2).float()
    k = holdout_terms(model, x0, n_repeats=2, batch_size=1000, seed=0).k
    gain = Estimate.of(k - model.process().log_prior(x0))
    assert abs(gain.mean_bits) < 4 * gain.se_bits + 1e-6


def test_a_wrong_reverse_process_stays_below_the_true_log_likelihood():
    x0 = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1))
    for value in (-1.0, 0.5):
        model = gaussian_model(FixedSchedule(20, 0.01), value)
        k = holdout_terms(model, x0, n_repeats=2, batch_size=1000, seed=0).k
        truth = GaussianDiffusion.log_prior(x0)  # the data's own density
        assert Estimate.of(k - truth).mean_bits < -0.1


def test_heartbeat_k_of_an_untrained_model_is_below_the_true_log_likelihood():
    c = registry.HeartbeatConfig(
        data=registry.HeartbeatData(100, 500, 20, 5, 0),
        diffusion=sections.DiffusionConfig(100, 0.01, "fixed", "kernel"),
        net=sections.MLPConfig(20, 2, "glorot_sigmoid"), train=None, eval=None)
    info = DataInfo(label="heartbeat", unit="bits/seq", n_dims=20, p_pi=0.2)
    model = build("sigmoid_mlp", c, info, seed=0)
    assert isinstance(model.process(), BinomialDiffusion) and model.process().p_pi == 0.2
    x0 = torch.from_numpy(heartbeat.sample(500, 20, 5, np.random.default_rng(0)))
    k = Estimate.of(holdout_terms(model, x0, n_repeats=1, batch_size=500, seed=0).k)
    assert k.mean_bits + 4 * k.se_bits < to_bits(heartbeat.true_log_likelihood_nats(5))


def test_monte_carlo_over_t_agrees_with_the_exact_sum():
    x0 = torch.randn(4000, 2, generator=torch.Generator().manual_seed(2))
    model = gaussian_model(FixedSchedule(20, 0.01), 0.3)
    exact = Estimate.of(holdout_terms(model, x0, 2, 1000, seed=0).k)
    mc = Estimate.of(holdout_terms(model, x0, 2, 1000, seed=1, n_t=1).k)
    assert abs(exact.mean_bits - mc.mean_bits) < 4 * math.hypot(exact.se_bits, mc.se_bits)


def test_importance_sampled_t_agrees_with_the_exact_sum_with_a_smaller_error():
    x0 = torch.randn(4000, 2, generator=torch.Generator().manual_seed(2))
    model = gaussian_model(FixedSchedule(50, 0.002), 0.3, parameterisation="v")
    exact = Estimate.of(holdout_terms(model, x0, 2, 1000, seed=0).k)
    proposal = inverse_t_proposal(50)
    assert proposal.sum().item() == pytest.approx(1.0) and proposal.shape == (49,)
    importance = Estimate.of(holdout_terms(model, x0, 2, 1000, seed=1, n_t=1, proposal=proposal).k)
    uniform = Estimate.of(holdout_terms(model, x0, 2, 1000, seed=1, n_t=1).k)
    assert abs(exact.mean_bits - importance.mean_bits) < 4 * math.hypot(exact.se_bits, importance.se_bits)
    assert importance.se_bits < uniform.se_bits


def image_section(name: str, data):
    """The section of image dataset ``name`` with data section ``data`` and a small network whose
    readout starts at zero."""
    net = sections.ImageNetConfig(conv_layers=1, conv_channels=4, n_scales=2, kernel_size=3, dense_layers=1,
                             dense_width=8, dense_out=1, upper_layers=1, upper_channels=4, n_bumps=3,
                             bump_width=0.5, activation="leaky_relu", readout_init=0.0)
    diffusion = sections.DiffusionConfig(n_steps=20, beta_1=0.01, schedule="fixed", parameterisation="kernel")
    return registry.get(name).section(data=data, diffusion=diffusion, net=net, train=None, eval=None)


def image_info(image_shape: tuple[int, int, int]) -> DataInfo:
    """Images already in model units (unit scaling, no dequantisation)."""
    n_colours, height, width = image_shape
    return DataInfo(label="images", unit="bits/pixel", n_dims=math.prod(image_shape), n_units=height * width,
                    scaling=Scaling(0.0, 1.0), image_shape=image_shape, dequantisation="none")


# the network takes its image shape from the data (DataInfo), not from the data section: CIFAR-10's
# section at 4×4 keeps the test small
@pytest.mark.parametrize("name, data, image_shape", [
    ("dead_leaves", registry.DeadLeavesData(2, 2, 4, 1.0, 4.0, "none", 0), (1, 4, 4)),
    ("cifar10", registry.Cifar10Data("subset", 2, 2, "none"), (3, 4, 4)),
], ids=["one_colour", "three_colours"])
def test_the_authors_form_with_zero_network_output_gives_k_equal_to_l_null_on_standard_normal_images(
        name, data, image_shape):
    model = build("image", image_section(name, data), image_info(image_shape), seed=0)
    x0 = torch.randn(2000, math.prod(image_shape), generator=torch.Generator().manual_seed(10))
    k = holdout_terms(model, x0, n_repeats=2, batch_size=500, seed=0).k
    gain = Estimate.of(k - model.process().log_prior(x0))
    assert abs(gain.mean_bits) < 4 * gain.se_bits + 1e-6
    assert gain.se_bits < 0.2  # the check above has power (0.02 bits per dimension for 3 colours)


def test_learned_schedule_gets_gradients_through_frozen_noise():
    schedule = LearnedSchedule(10, 0.01)
    model = gaussian_model(schedule, 0.2)
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(3))
    (-bound_terms(model.process(), model.reverse, x0, torch.Generator().manual_seed(0)).k.mean()).backward()
    assert schedule.logit_beta.grad is not None and schedule.logit_beta.grad.abs().sum() > 0


def test_binomial_x0_form_is_the_mixture_of_posteriors():
    process = BinomialDiffusion(FixedSchedule(30, 1 / 30)(), 0.2, parameterisation="x0")
    xt = (torch.rand(6, 5, generator=torch.Generator().manual_seed(4)) < 0.4).double()
    t, z = torch.full((6,), 7), torch.randn(6, 5, generator=torch.Generator().manual_seed(5)).double()
    s = torch.sigmoid(z + process.x0_logit[xt.long(), 6])  # P(x_0 = 1) the net predicts
    expected = s * process.q_posterior(torch.ones_like(xt), xt, t) + (1 - s) * process.q_posterior(torch.zeros_like(xt), xt, t)
    assert torch.allclose(torch.sigmoid(process.p_params(xt, t, z)), expected, atol=1e-12)
