"""Each choice params.yaml offers is written once (dpm/base/sections.py) and implemented exactly once."""

from dpm.core import nets, schedules
from dpm.base import sections
from dpm.data import images
from dpm.data.scaling import Scaling
from dpm.core.diffusion import BinomialDiffusion, GaussianDiffusion


def test_every_choice_of_the_config_is_implemented_and_nothing_else():
    assert GaussianDiffusion.PARAMETERISATIONS == sections.GAUSSIAN_PARAMETERISATIONS
    assert BinomialDiffusion.PARAMETERISATIONS == sections.BINOMIAL_PARAMETERISATIONS
    assert set(nets.ACTIVATIONS) == set(sections.ACTIVATIONS)
    for kind in sections.SCHEDULES:
        assert schedules.make_schedule(kind, 10, 0.01)().shape == (10,)
    for mode in sections.DEQUANTISATIONS:
        assert images.noise_width(Scaling(0.5, 0.25), mode) >= 0
