"""Reproducibility: a net built from a seed is the same in any process, and training it is too.

Every initial weight comes from the generator handed to the net, never from torch's global one
(whose state depends on what the process did before, and whose start is seeded at random by this
torch build), and building a net leaves the global state untouched.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from dpm.base import sections
from dpm.core.nets import ImageNet, MultiScaleConv, RBFNet, SigmoidMLP

ROOT = Path(__file__).resolve().parents[1]


def net_config(**changes):
    values = dict(conv_layers=1, conv_channels=4, n_scales=2, kernel_size=3, dense_layers=1, dense_width=8,
                  dense_out=2, upper_layers=1, upper_channels=4, n_bumps=5, bump_width=0.5,
                  activation="leaky_relu", readout_init=0.1)
    return sections.ImageNetConfig(**{**values, **changes})


IMAGE_NETS = {  # (C, H, W), changes: the pathways of the MNIST, CIFAR-10 and dead-leaves nets
    "dense_only": ((1, 8, 8), dict(conv_layers=0, n_scales=1, upper_layers=2)),
    "conv_and_dense": ((3, 8, 8), dict(activation="paper")),
    "conv_only": ((1, 8, 8), dict(dense_out=0, conv_layers=2)),
}

OTHER_NETS = {
    "rbf": lambda generator: RBFNet(10, 2, 8, local_linear=True, generator=generator),
    "sigmoid_mlp": lambda generator: SigmoidMLP(10, 6, 5, 3, generator),
}


def image_net(kind: str, seed: int) -> ImageNet:
    image_shape, changes = IMAGE_NETS[kind]
    return ImageNet(20, image_shape, net_config(**changes), torch.Generator().manual_seed(seed))


def assert_bit_identical(a: nn.Module, b: nn.Module) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    for name in state_a:
        assert torch.equal(state_a[name], state_b[name]), name
        assert state_a[name].stride() == state_b[name].stride(), name


def build_twice(make, seed: int = 0):
    """Two builds from ``seed``, the global generator moved on between them; and whether each
    build left the global state as it found it."""
    before = torch.get_rng_state()
    first = make(seed)
    untouched = torch.equal(before, torch.get_rng_state())
    torch.rand(100)
    before = torch.get_rng_state()
    second = make(seed)
    return first, second, untouched and torch.equal(before, torch.get_rng_state())


@pytest.mark.parametrize("kind", IMAGE_NETS)
def test_image_net_from_a_seed_is_bit_identical_and_leaves_the_global_generator_alone(kind):
    first, second, untouched = build_twice(lambda seed: image_net(kind, seed))
    assert_bit_identical(first, second)
    assert untouched
    other = image_net(kind, 1)
    assert not torch.equal(first.coefficients.weight, other.coefficients.weight)
    assert not torch.equal(first.upper[0].weight, other.upper[0].weight)


@pytest.mark.parametrize("kind", OTHER_NETS)
def test_toy_nets_from_a_seed_are_bit_identical_and_leave_the_global_generator_alone(kind):
    first, second, untouched = build_twice(lambda seed: OTHER_NETS[kind](torch.Generator().manual_seed(seed)))
    assert_bit_identical(first, second)
    assert untouched


def test_layers_keep_pytorchs_default_initial_distribution():
    # the same draws as PyTorch's own constructors, from the generator instead of the global one
    seed = 3
    torch.manual_seed(seed)
    expected = nn.Linear(64, 8)
    net = image_net("dense_only", seed)  # its first layer drawn is dense[0]
    assert torch.equal(net.dense[0].weight, expected.weight) and torch.equal(net.dense[0].bias, expected.bias)
    torch.manual_seed(seed)
    expected = [nn.Conv2d(2, 3, 5, padding=2, bias=s == 0) for s in range(2)]
    layer = MultiScaleConv(2, 3, n_scales=2, kernel_size=5, generator=torch.Generator().manual_seed(seed))
    for conv, reference in zip(layer.convs, expected):
        assert torch.equal(conv.weight, reference.weight)
        assert (conv.bias is None) == (reference.bias is None)
        assert conv.bias is None or torch.equal(conv.bias, reference.bias)


TINY_STEPS = 20


def tiny_net() -> ImageNet:
    return ImageNet(TINY_STEPS, (1, 8, 8), net_config(), torch.Generator().manual_seed(0))


def train_tiny(out: str, disturb: bool) -> None:
    """10 Adam steps of a tiny image net (every kind of layer) on −K with one importance-sampled t
    per example, as image training runs; saves the weights and whether the global generator
    was touched. ``disturb``: another process state first (global generator moved on, freed
    heap memory kept and filled with NaN)."""
    from dpm.core.bound import bound_terms, inverse_t_proposal
    from dpm.base.device import keep_freed_memory
    from dpm.core.diffusion import GaussianDiffusion
    from dpm.core.schedules import make_schedule
    torch.set_num_threads(1)
    if disturb:
        keep_freed_memory()
        torch.rand(1000)
        poison = [torch.full((n,), float("nan")) for n in (10, 1000, 100_000, 1 << 20)]
        del poison
    before = torch.get_rng_state()
    net = tiny_net()
    schedule = make_schedule("fixed", TINY_STEPS, 0.002)
    proposal = inverse_t_proposal(TINY_STEPS)
    optimiser = torch.optim.Adam(net.parameters(), lr=0.002)
    generator = torch.Generator().manual_seed(0)
    x_train = torch.randn(64, 64, generator=generator)
    for _ in range(10):
        batch = x_train[torch.randint(len(x_train), (8,), generator=generator)]
        process = GaussianDiffusion(schedule(), parameterisation="v")
        loss = -bound_terms(process, lambda p, xt, t: p.p_params(xt, t, *net(xt, t)), batch, generator, 1,
                            proposal).k.mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    torch.save({"state": net.state_dict(), "global_untouched": torch.equal(before, torch.get_rng_state())}, out)


@pytest.mark.pipeline
def test_training_in_two_fresh_processes_gives_bit_identical_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    runs = {}
    for name, disturb in (("plain", False), ("disturbed", True)):
        out = tmp_path / f"{name}.pt"
        code = f"from tests.test_determinism import train_tiny; train_tiny({str(out)!r}, {disturb})"
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env, timeout=300)
        runs[name] = torch.load(out, weights_only=True)
    plain, disturbed = runs["plain"], runs["disturbed"]
    assert plain["global_untouched"] and disturbed["global_untouched"]
    initial = tiny_net()
    for name, value in plain["state"].items():
        assert torch.equal(value, disturbed["state"][name]), name
        assert torch.isfinite(value).all(), name
    assert not torch.equal(plain["state"]["coefficients.weight"], initial.coefficients.weight)  # it trained
