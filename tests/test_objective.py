"""The objective as the configuration asks for it: how t is drawn, what the model sees of the
data, and that its estimators agree with the exact sum over t."""

import math

import numpy as np
import pytest
import torch

from dpm.core import bound, objective as objectives
from dpm.base import registry, sections
from dpm.core.bound import bound_terms, inverse_t_proposal
from dpm.data import images
from dpm.data.split import DataInfo
from dpm.core.evaluate import Estimate, evaluate, holdout_terms, repeated_terms
from dpm.core.objective import Objective
from dpm.core.schedules import FixedSchedule
from tests.test_bound import gaussian_model

N_STEPS = 50
TOY_INFO = DataInfo(label="swiss roll", unit="bits", n_dims=2)
LEVELS = np.random.default_rng(0).integers(0, 256, size=(40, 1, 4, 4), dtype=np.uint8)
IMAGES = images.image_split(LEVELS, LEVELS[:4], "level", "test images")  # stored levels, (40, 16)
IMAGE_INFO = IMAGES.info


def train_config(t_sampling: str) -> sections.ImageTrainConfig:
    return sections.ImageTrainConfig(n_iterations=1, batch_size=1, learning_rate=0.001, lr_decay=1.0, lr_decay_every=1,
                                checkpoint_every=1, log_every=1, n_log_examples=1, n_log_samples=1, seed=0,
                                t_sampling=t_sampling, amp=False)


def image_section(t_sampling: str):
    diffusion = sections.DiffusionConfig(n_steps=N_STEPS, beta_1=0.002, schedule="fixed", parameterisation="v")
    return registry.DeadLeavesConfig(data=registry.DeadLeavesData(40, 4, 4, 1.0, 4.0, "level", 0),
                                     diffusion=diffusion, net=None, train=train_config(t_sampling), eval=None)


def toy_section():
    diffusion = sections.DiffusionConfig(n_steps=N_STEPS, beta_1=1e-4, schedule="fixed", parameterisation="x0")
    return registry.SwissRollConfig(data=registry.SwissRollData(2, 2, 0.1, 0), diffusion=diffusion,
                                    net=sections.RBFConfig(4, True), train=None, eval=None)


def test_a_toy_sums_over_every_t_and_sees_its_data_as_stored():
    objective = Objective.of(toy_section(), TOY_INFO)
    assert objective.n_t is None and objective.codec is None
    assert objective.train_proposal is None and objective.importance is None
    assert objective.n_units == 1
    x = torch.randn(5, 2)
    assert torch.equal(objective.prepare(x, torch.Generator().manual_seed(0)), x)


def test_images_draw_one_t_by_importance_when_asked():
    objective = Objective.of(image_section("importance"), IMAGE_INFO)
    assert objective.n_t == 1 and objective.n_units == 16
    assert torch.equal(objective.train_proposal, inverse_t_proposal(N_STEPS))
    assert torch.equal(objective.importance, inverse_t_proposal(N_STEPS))
    assert objective.codec == images.ImageCodec.of(IMAGE_INFO)


def test_images_drawn_uniformly_in_training_are_still_evaluated_by_importance():
    objective = Objective.of(image_section("uniform"), IMAGE_INFO)
    assert objective.n_t == 1 and objective.train_proposal is None
    assert torch.equal(objective.importance, inverse_t_proposal(N_STEPS))


def test_images_are_dequantised_within_one_level_with_fresh_noise():
    objective = Objective.of(image_section("importance"), IMAGE_INFO)
    levels = torch.from_numpy(IMAGES.train)
    centre = images.dequantise(levels, IMAGE_INFO.scaling, "none")
    one_level = images.noise_width(IMAGE_INFO.scaling, "level")
    generator = torch.Generator().manual_seed(0)
    first, second = objective.prepare(levels, generator), objective.prepare(levels, generator)
    for z in (first, second):
        assert z.dtype == torch.float32 and z.shape == levels.shape
        assert (z - centre).abs().max().item() <= one_level / 2 + 1e-6
    assert (first - centre).abs().max().item() > one_level / 4  # the noise spans the level
    assert not torch.equal(first, second)  # fresh noise each time an image is used


def test_evaluation_terms_are_exact_for_toys_and_importance_sampled_for_images(monkeypatch):
    calls = []
    real = objectives.bound_terms

    def spy(process, reverse, x0, generator=None, n_t=None, proposal=None):
        calls.append((n_t, proposal))
        return real(process, reverse, x0, generator, n_t, proposal)

    monkeypatch.setattr(objectives, "bound_terms", spy)
    model = gaussian_model(FixedSchedule(N_STEPS, 0.002), 0.3, parameterisation="v")
    x0 = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    process = model.process()
    toy, image = Objective.of(toy_section(), TOY_INFO), Objective.of(image_section("uniform"), IMAGE_INFO)
    toy.terms(process, model.reverse, x0, torch.Generator().manual_seed(0))
    image.terms(process, model.reverse, x0, torch.Generator().manual_seed(0))
    image.terms(process, model.reverse, x0, torch.Generator().manual_seed(0), uniform=True)
    toy.terms(process, model.reverse, x0, torch.Generator().manual_seed(0), uniform=True)
    assert calls[0] == (None, None)
    assert calls[1][0] == 1 and torch.equal(calls[1][1], inverse_t_proposal(N_STEPS))
    assert calls[2] == (1, None) and calls[3] == (1, None)  # uniform: one t, drawn uniformly
    # the exact sum is the library's, draw for draw
    exact = toy.terms(process, model.reverse, x0, torch.Generator().manual_seed(0))
    assert torch.equal(exact.k, bound_terms(process, model.reverse, x0, torch.Generator().manual_seed(0)).k)


def test_one_uniform_t_agrees_with_the_exact_sum():
    x0 = torch.randn(4000, 2, generator=torch.Generator().manual_seed(2))
    model = gaussian_model(FixedSchedule(20, 0.01), 0.3)
    objective = Objective.of(image_section("importance"), IMAGE_INFO)
    process = model.process()
    exact = Estimate.of(holdout_terms(model, x0, 2, 1000, seed=0).k)
    uniform = Estimate.of(repeated_terms(lambda x, g: objective.terms(process, model.reverse, x, g, uniform=True),
                                         x0, 2, 1000, seed=1).k)
    assert abs(exact.mean_bits - uniform.mean_bits) < 4 * math.hypot(exact.se_bits, uniform.se_bits)
    assert uniform.se_bits > exact.se_bits  # one t per example, not every t


@pytest.mark.parametrize("t_sampling", ["importance", "uniform"])
def test_the_training_loss_is_minus_k_of_the_prepared_batch_by_the_training_draw(t_sampling):
    model = gaussian_model(FixedSchedule(N_STEPS, 0.002), 0.3, parameterisation="v")
    objective = Objective.of(image_section(t_sampling), IMAGE_INFO)
    batch = torch.from_numpy(IMAGES.train)
    loss = objective.loss(model, batch, torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)
    x0 = objective.codec.encode(batch, generator)
    terms = bound_terms(model.process(), model.reverse, x0, generator, 1, objective.train_proposal)
    assert torch.equal(loss, -terms.k.mean())


def test_evaluation_reports_per_pixel_and_checks_with_uniform_t():
    # the forward kernel on standard normal images: K = L_null whichever way t is drawn
    model = gaussian_model(FixedSchedule(N_STEPS, 0.002), 0.0, parameterisation="v")
    objective = Objective.of(image_section("importance"), IMAGE_INFO)
    x0 = torch.randn(2000, 16, generator=torch.Generator().manual_seed(4))
    result = evaluate(model, objective, x0, sections.EvalConfig(n_repeats=2, batch_size=500, n_samples=1, seed=0))
    assert abs(result.gain.mean_bits) < 4 * result.gain.se_bits + 1e-6
    assert result.gain.se_bits < 0.1  # the check above has power (one importance-sampled t per repeat)
    assert abs(result.k.mean_bits - result.k_uniform_t.mean_bits) < 4 * math.hypot(result.k.se_bits,
                                                                                   result.k_uniform_t.se_bits)
    l_null = Estimate.of(model.process().log_prior(x0) / 16)  # bits per pixel: 16 pixels an image
    assert result.l_null.mean_bits == pytest.approx(l_null.mean_bits)
    assert tuple(result.terms_bits) == bound.BoundTerms._fields
    assert result.beta_T == pytest.approx(model.process().beta[-1].item())
