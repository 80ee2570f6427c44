"""Device bugs caught without a GPU: every model of every profile driven on the ``meta`` device.

A tensor on the ``meta`` device has a shape and a dtype but no data, and torch refuses to mix it
with a tensor of another device exactly as it refuses to mix a CUDA tensor with a CPU one. So a
table built on the CPU behind the model's back (the bug that crashed the heartbeat's ``x0`` model
on any GPU) fails here as it would on CUDA. Each model goes through the forward process, the
training loss and its backward, a reverse step, a sampling step, a posterior step and a
likelihood step.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from dpm.base import config as cfg, registry
from dpm.estimate import likelihood
from dpm.chain import posterior, sampling
from dpm.core import model as models
from dpm import synthetic
from dpm.core.objective import Objective

META = torch.device("meta")
BATCH = 3
CASES = list(itertools.product(cfg.PROFILES, registry.NAMES))


@pytest.fixture(scope="module")
def profiles() -> dict[str, cfg.Config]:
    return {profile: cfg.load_profile(profile) for profile in cfg.PROFILES}


def test_every_model_of_every_profile_is_driven():
    assert len(CASES) == 18


@pytest.mark.parametrize("profile, name", CASES)
def test_model_runs_on_meta(profiles, profile, name):
    section = profiles[profile].section(name)
    info = synthetic.data_info(name, section)
    model = models.build(registry.get(name).model, section, info, seed=0).to(META)
    objective = Objective.of(section, info, META)
    batch = torch.zeros((BATCH, info.n_dims), device=META)
    process = model.process()
    t = torch.full((BATCH,), process.n_steps, dtype=torch.long, device=META)

    xt = process.q_sample(batch, t, process.noise_like(batch))  # forward process
    assert xt.device == META
    loss = objective.loss(model, batch)  # training loss ...
    loss.backward()  # ... and its backward
    assert all(p.grad is None or p.grad.device == META for p in model.parameters())
    step = process.p_sample(model.reverse(process, xt, t), process.noise_like(xt))  # reverse step
    assert step.device == META

    trajectory = sampling.reverse_trajectory(model, (BATCH, info.n_dims), device=META)
    for _ in range(2):  # x_T, then one sampling step
        assert next(trajectory)[1].device == META
    condition = posterior.Inpaint(torch.zeros(info.n_dims, dtype=torch.bool, device=META), batch[0])
    chain = posterior.posterior_trajectory(model, condition, (BATCH, info.n_dims), device=META)
    for _ in range(2):  # the start, then one posterior step
        assert next(chain)[1].device == META
    with torch.no_grad():  # one step of an importance weight's log p(x_{t−1}|x_t) − log q(x_t|x_{t−1})
        log_p = likelihood.log_p_step(process, model.reverse(process, xt, t), step)
        log_q = likelihood.log_q_step(process, step, t, xt)
    assert (log_p - log_q).device == META
