"""Each choice params.yaml offers is written once (dpm/config.py) and implemented exactly once."""

from dpm import config as cfg, nets, schedules
from dpm.data import images
from dpm.data.scaling import Scaling
from dpm.diffusion import BinomialDiffusion, GaussianDiffusion


def test_every_choice_of_the_config_is_implemented_and_nothing_else():
    assert GaussianDiffusion.PARAMETERISATIONS == cfg.GAUSSIAN_PARAMETERISATIONS
    assert BinomialDiffusion.PARAMETERISATIONS == cfg.BINOMIAL_PARAMETERISATIONS
    assert set(nets.ACTIVATIONS) == set(cfg.ACTIVATIONS)
    for kind in cfg.SCHEDULES:
        assert schedules.make_schedule(kind, 10, 0.01)().shape == (10,)
    for mode in cfg.DEQUANTISATIONS:
        assert images.noise_width(Scaling(0.5, 0.25), mode) >= 0
