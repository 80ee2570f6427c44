"""The image network's parts: multi-scale convolution, bump functions, the temporal readout."""

import math

import pytest
import torch
import torch.nn.functional as F

from dpm.base import sections
from dpm.core.nets import ImageNet, MultiScaleConv
from dpm.core.temporal import Bumps, readout


def test_multi_scale_convolution_is_pool_conv_upsample_sum():
    torch.manual_seed(0)
    layer = MultiScaleConv(2, 3, n_scales=3, kernel_size=3)
    x = torch.randn(2, 2, 8, 8)
    expected = torch.zeros(2, 3, 8, 8)
    for s, conv in enumerate(layer.convs):
        factor = 2 ** s
        pooled = x.reshape(2, 2, 8 // factor, factor, 8 // factor, factor).mean((3, 5))  # explicit mean pool
        y = F.conv2d(pooled, conv.weight, conv.bias, padding=1)
        expected += y.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)  # explicit upsample
    assert torch.allclose(layer(x), expected, atol=1e-5)


def test_one_scale_is_a_plain_convolution():
    torch.manual_seed(0)
    layer = MultiScaleConv(3, 4, n_scales=1, kernel_size=5)
    x = torch.randn(2, 3, 6, 6)
    conv = layer.convs[0]
    assert torch.allclose(layer(x), F.conv2d(x, conv.weight, conv.bias, padding=2), atol=1e-6)


@pytest.mark.parametrize("n_steps,n_bumps", [(1000, 10), (500, 10), (50, 3)])
def test_bumps_sum_to_one_at_every_t_and_peak_at_their_centres(n_steps, n_bumps):
    bumps = Bumps(n_steps, n_bumps)
    t = torch.arange(1, n_steps + 1)
    g = bumps(t)
    assert g.shape == (n_steps, n_bumps)
    assert torch.allclose(g.sum(-1), torch.ones(n_steps), atol=1e-6)
    assert (g >= 0).all()
    centres = bumps.centres.round().long().clamp(1, n_steps)
    assert (g[centres - 1].argmax(-1) == torch.arange(n_bumps)).all()


def test_readout_mixes_coefficients_by_the_bumps():
    y = torch.randn(2, 3, 4, 5)  # batch, J, height, width
    g = torch.softmax(torch.randn(2, 3), -1)
    expected = torch.stack([sum(g[b, j] * y[b, j] for j in range(3)) for b in range(2)])
    assert torch.allclose(readout(y, g), expected, atol=1e-6)


def net_config(**changes):
    values = dict(conv_layers=2, conv_channels=4, n_scales=2, kernel_size=3, dense_layers=1, dense_width=8,
                  dense_out=2, upper_layers=1, upper_channels=4, n_bumps=5, bump_width=0.5,
                  activation="leaky_relu", readout_init=0.1)
    return sections.ImageNetConfig(**{**values, **changes})


@pytest.mark.parametrize("image_shape", [(1, 8, 8), (3, 8, 8)])
@pytest.mark.parametrize("activation", ["leaky_relu", "paper"])
def test_readout_shapes_for_grey_and_colour_images(image_shape, activation):
    net = ImageNet(100, image_shape, net_config(activation=activation))
    n_dims = math.prod(image_shape)
    x = torch.randn(5, n_dims)
    z_mu, z_sigma = net(x, torch.randint(1, 101, (5,)))
    assert z_mu.shape == z_sigma.shape == (5, n_dims)
    # leading dimensions of the Monte Carlo draw (n_t, B, D) pass through
    z_mu, _ = net(x.expand(2, 5, n_dims), torch.randint(1, 101, (2, 5)))
    assert z_mu.shape == (2, 5, n_dims)


def test_a_fully_convolutional_net_samples_larger_images_with_the_same_weights():
    net = ImageNet(100, (1, 8, 8), net_config(dense_out=0))
    net.image_shape = (1, 16, 16)
    z_mu, _ = net(torch.randn(3, 256), torch.full((3,), 7))
    assert z_mu.shape == (3, 256)


def test_time_enters_only_through_the_bumps():
    net = ImageNet(100, (1, 8, 8), net_config())
    x = torch.randn(1, 64)
    near = [net(x, torch.tensor([t]))[0] for t in (50, 51)]
    far = net(x, torch.tensor([5]))[0]
    assert not torch.allclose(near[0], far)
    assert (near[0] - near[1]).abs().max() < (near[0] - far).abs().max()
