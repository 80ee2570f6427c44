"""8-bit images in model units: one global scaling; dequantisation spanning one level."""

import numpy as np
import pytest
import torch

from dpm.data import images


@pytest.fixture
def levels():
    return np.random.default_rng(0).integers(0, 256, size=(50, 3, 4, 4), dtype=np.uint8)


def test_scaling_is_one_global_mean_and_constant(levels):
    scaling = images.fit_scaling(levels)
    z = images.dequantise(torch.from_numpy(levels), scaling, "none")
    assert z.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert z.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)
    # the same constants for every colour: colour means differ once scaled
    assert isinstance(scaling.mean, float) and isinstance(scaling.scale, float)


def test_dequantisation_noise_spans_exactly_one_quantisation_level_by_default(levels):
    scaling = images.fit_scaling(levels)
    level = torch.full((200_000,), 100, dtype=torch.uint8)
    z = images.dequantise(level, scaling, "level", torch.Generator().manual_seed(0))
    one_level = (images.dequantise(torch.tensor([101]), scaling, "none")
                 - images.dequantise(torch.tensor([100]), scaling, "none")).item()
    centre = images.dequantise(torch.tensor([100]), scaling, "none").item()
    assert images.noise_width(scaling, "level") == pytest.approx(one_level, rel=1e-5)
    assert z.min().item() >= centre - one_level / 2 - 1e-6 and z.max().item() <= centre + one_level / 2 + 1e-6
    assert z.max().item() - z.min().item() == pytest.approx(one_level, rel=1e-3)
    assert z.mean().item() == pytest.approx(centre, abs=one_level / 100)


def test_the_authors_width_is_narrower_by_scl_squared(levels):
    scaling = images.fit_scaling(levels)
    scl = 1.0 / scaling.scale
    assert images.noise_width(scaling, "authors") == pytest.approx(images.noise_width(scaling, "level") / scl ** 2)
    assert images.noise_width(scaling, "none") == 0.0


def test_to_pixels_inverts_the_scaling(levels):
    scaling = images.fit_scaling(levels)
    z = images.dequantise(torch.from_numpy(levels), scaling, "none")
    assert np.allclose(images.to_pixels(z, scaling) * 255, levels, atol=1e-3)


def test_image_split_flattens_levels_in_colour_height_width_order_and_fits_on_train_only(levels):
    holdout = np.full((5, 3, 4, 4), 255, dtype=np.uint8)  # far from train: would move a scaling fitted on it
    split = images.image_split(levels, holdout, "level", "test images")
    assert split.train.dtype == np.uint8 and split.train.shape == (50, 3 * 4 * 4)
    assert np.array_equal(split.train[7].reshape(3, 4, 4), levels[7])
    assert np.array_equal(split.holdout, holdout.reshape(5, -1))
    info = split.info
    assert (info.label, info.unit, info.n_dims, info.n_units) == ("test images", "bits/pixel", 48, 16)
    assert info.image_shape == (3, 4, 4) and info.dequantisation == "level" and info.is_image
    assert info.scaling == images.fit_scaling(levels)
    assert len(split.true_log_likelihood_nats) == 0  # unknown for images


def test_the_codec_encodes_as_dequantise_and_decodes_to_pixel_images(levels):
    split = images.image_split(levels, levels[:2], "level", "test images")
    codec = images.ImageCodec.of(split.info)
    assert codec.image_shape == (3, 4, 4) and codec.scaling == split.info.scaling
    assert codec.noise_width == images.noise_width(split.info.scaling, "level")
    x = torch.from_numpy(split.train)
    z = codec.encode(x, torch.Generator().manual_seed(0))
    assert torch.equal(z, images.dequantise(x, codec.scaling, "level", torch.Generator().manual_seed(0)))
    pixels = codec.decode(z)
    assert pixels.shape == (50, 3, 4, 4) and pixels.min() >= 0.0 and pixels.max() <= 1.0
    # back to the levels within half a level (the dequantisation noise), colours and sides in place
    assert np.abs(pixels * 255 - levels).max() <= 0.5 + 1e-3
