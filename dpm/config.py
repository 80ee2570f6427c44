"""Typed, frozen configuration mirroring ``params.yaml``.

``params.yaml`` holds every value; this module holds their types and ranges. ``load()`` builds
one frozen dataclass per section and rejects, before any stage does work, an unknown key, a
missing key, a wrong type or an out-of-range value, naming the key's full path.

Profiles: a leaf written as a mapping keyed by exactly the profile names
(``{smoke: 200, quick: 20000, paper: 500000}``) takes the value of the selected ``profile``;
any other leaf is the same in every profile.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROFILES = ("smoke", "quick", "paper")


class ConfigError(ValueError):
    """A params.yaml that cannot be used; the message names the key's path."""


def _range(low: float | None = None, high: float | None = None, *, open_low: bool = False,
           choices: tuple[str, ...] | None = None) -> Any:
    """Field metadata: allowed range (``open_low`` excludes ``low``) or allowed choices."""
    return field(metadata={"low": low, "high": high, "open_low": open_low, "choices": choices})


@dataclass(frozen=True)
class SwissRollData:
    """2-D swiss roll (SPEC §5): sizes, generator noise (raw units) and seed."""
    n_train: int = _range(2)
    n_holdout: int = _range(2)
    noise: float = _range(0.0, open_low=True)
    seed: int = _range(0)


@dataclass(frozen=True)
class HeartbeatData:
    """Binary heartbeat sequences (SPEC §3): sizes, sequence length, pulse period and seed."""
    n_train: int = _range(1)
    n_holdout: int = _range(2)
    n_bits: int = _range(1)
    period: int = _range(1)
    seed: int = _range(0)


@dataclass(frozen=True)
class DiffusionConfig:
    """Forward process: T, β_1 and the schedule (Paper: §2.4.1); how the reverse step reads the
    network's coefficients (``p_params`` of dpm/diffusion.py)."""
    n_steps: int = _range(2)
    beta_1: float = _range(0.0, 1.0, open_low=True)
    schedule: str = _range(choices=("fixed", "learned"))
    parameterisation: str = _range(choices=("paper", "kernel", "x0", "v"))


@dataclass(frozen=True)
class RBFConfig:
    """Normalised radial-basis-function network (Paper: App. D.1.1)."""
    n_hidden: int = _range(1)
    local_linear: bool = _range()


@dataclass(frozen=True)
class MLPConfig:
    """Sigmoid multilayer perceptron (Paper: App. D.1.2)."""
    n_hidden: int = _range(1)
    n_layers: int = _range(1)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation: Adam on −K (nats), learning rate decayed stepwise; what is logged."""
    n_iterations: int = _range(1)
    batch_size: int = _range(1)
    learning_rate: float = _range(0.0, open_low=True)
    lr_decay: float = _range(0.0, 1.0, open_low=True)
    lr_decay_every: int = _range(1)
    checkpoint_every: int = _range(1)
    log_every: int = _range(1)
    n_log_examples: int = _range(1)
    n_log_samples: int = _range(1)
    seed: int = _range(0)


@dataclass(frozen=True)
class ImageTrainConfig(TrainConfig):
    """Training of an image model: one random t per example, drawn ``uniform`` (the authors'
    code) or by ``importance`` (P(t) ∝ 1/t, dpm/bound.py); bfloat16 autocast of the network on
    a GPU (``amp``; the bound itself is computed in float32)."""
    t_sampling: str = _range(choices=("uniform", "importance"))
    amp: bool = _range()


DEQUANTISATIONS = ("level", "authors", "none")


@dataclass(frozen=True)
class MnistData:
    """MNIST (the four official idx files): the first n_train training images, the first
    n_holdout test images; 8-bit values dequantised as SPEC §2 says (``dequantisation``)."""
    n_train: int = _range(2, 60000)
    n_holdout: int = _range(2, 10000)
    dequantisation: str = _range(choices=DEQUANTISATIONS)


@dataclass(frozen=True)
class Cifar10Data:
    """CIFAR-10: ``subset`` is images 0–3999 of data_batch_1 (the offline mirror's), split
    n_train / n_holdout in order; ``full`` is the official archive's 50,000 / 10,000 split."""
    source: str = _range(choices=("subset", "full"))
    n_train: int = _range(2, 50000)
    n_holdout: int = _range(2, 10000)
    dequantisation: str = _range(choices=DEQUANTISATIONS)


@dataclass(frozen=True)
class DeadLeavesData:
    """Seeded dead-leaves images (SPEC §5): disks with radius density ∝ r⁻³ on [r_min, r_max]
    pixels, uniform 8-bit grey levels, square images of ``image_size`` pixels."""
    n_train: int = _range(2)
    n_holdout: int = _range(2)
    image_size: int = _range(4)
    r_min: float = _range(0.0, open_low=True)
    r_max: float = _range(0.0, open_low=True)
    dequantisation: str = _range(choices=DEQUANTISATIONS)
    seed: int = _range(0)


@dataclass(frozen=True)
class BarkData:
    """Bark (UIUC textures T01–T04) or, where those are not at hand, the mirror's texture
    photographs (``stand_in``): square patches of ``patch_size`` pixels cut on a grid with
    ``stride``, the bottom ``holdout_fraction`` of every photograph kept for the holdout."""
    source: str = _range(choices=("bark", "stand_in"))
    patch_size: int = _range(4)
    stride: int = _range(1)
    holdout_fraction: float = _range(0.0, 1.0, open_low=True)
    dequantisation: str = _range(choices=DEQUANTISATIONS)


@dataclass(frozen=True)
class ImageNetConfig:
    """The image network of App. D.2.1: multi-scale convolution (``conv_layers`` = 0: none),
    a dense pathway (``dense_out`` = 0: none; ``dense_out`` outputs per pixel), 1×1 layers,
    J = ``n_bumps`` bump functions of width ``bump_width`` × their spacing."""
    conv_layers: int = _range(0)
    conv_channels: int = _range(1)
    n_scales: int = _range(1)
    kernel_size: int = _range(1)
    dense_layers: int = _range(0)
    dense_width: int = _range(1)
    dense_out: int = _range(0)
    upper_layers: int = _range(0)
    upper_channels: int = _range(1)
    n_bumps: int = _range(1)
    bump_width: float = _range(0.0, open_low=True)
    activation: str = _range(choices=("leaky_relu", "paper"))
    readout_init: float = _range(0.0)


@dataclass(frozen=True)
class EvalConfig:
    """Holdout evaluation of K and the samples drawn for figures."""
    n_repeats: int = _range(1)
    batch_size: int = _range(1)
    n_samples: int = _range(1)
    seed: int = _range(0)


@dataclass(frozen=True)
class ParzenConfig:
    """The Parzen-window estimate of Table 2 (SPEC §2, Goodfellow et al. 2014): n_samples model
    samples as centres, σ chosen on training images validation_start.. + n_validation, the
    holdout (the test images) scored. The "perfect model" row uses the first n_centres
    training images as centres. Samples are drawn batch_size at a time, batch b from its own
    seed (seed, b), so the set does not depend on how many processes share the batches."""
    n_samples: int = _range(1)
    batch_size: int = _range(1)
    seed: int = _range(0)
    n_centres: int = _range(1)
    validation_start: int = _range(0)
    n_validation: int = _range(1)


@dataclass(frozen=True)
class SwissRollConfig:
    data: SwissRollData
    diffusion: DiffusionConfig
    net: RBFConfig
    train: TrainConfig
    eval: EvalConfig


@dataclass(frozen=True)
class HeartbeatConfig:
    data: HeartbeatData
    diffusion: DiffusionConfig
    net: MLPConfig
    train: TrainConfig
    eval: EvalConfig


@dataclass(frozen=True)
class MnistConfig:
    data: MnistData
    diffusion: DiffusionConfig
    net: ImageNetConfig
    train: ImageTrainConfig
    eval: EvalConfig
    parzen: ParzenConfig


@dataclass(frozen=True)
class Cifar10Config:
    data: Cifar10Data
    diffusion: DiffusionConfig
    net: ImageNetConfig
    train: ImageTrainConfig
    eval: EvalConfig


@dataclass(frozen=True)
class DeadLeavesConfig:
    data: DeadLeavesData
    diffusion: DiffusionConfig
    net: ImageNetConfig
    train: ImageTrainConfig
    eval: EvalConfig


@dataclass(frozen=True)
class BarkConfig:
    data: BarkData
    diffusion: DiffusionConfig
    net: ImageNetConfig
    train: ImageTrainConfig
    eval: EvalConfig


IMAGE_DATASETS = ("mnist", "cifar10", "dead_leaves", "bark")
DATASETS = ("swiss_roll", "heartbeat") + IMAGE_DATASETS


@dataclass(frozen=True)
class Config:
    """The whole of params.yaml, resolved for one profile."""
    profile: str = _range(choices=PROFILES)
    device: str = _range(choices=("auto", "cpu", "cuda"))
    swiss_roll: SwissRollConfig
    heartbeat: HeartbeatConfig
    mnist: MnistConfig
    cifar10: Cifar10Config
    dead_leaves: DeadLeavesConfig
    bark: BarkConfig


def load(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> Config:
    """Read, resolve and validate params.yaml.

    Args:
        path: the YAML file.
        overrides: dotted keys replacing values after reading (``{"profile": "smoke"}``);
            an unknown key is an error, as in the file.

    Raises:
        ConfigError: naming the key's path, for any unknown, missing, mistyped or
            out-of-range value, and for a file that is not valid YAML.
    """
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    profile = raw.get("profile")
    if profile not in PROFILES:
        raise ConfigError(f"profile: expected one of {PROFILES}, got {profile!r}")
    config = _build(Config, raw, "", profile)
    _check_combinations(config)
    return config


def _check_combinations(config: Config) -> None:
    """Rules that involve more than one value."""
    if config.heartbeat.diffusion.parameterisation not in ("kernel", "x0"):
        raise ConfigError("heartbeat.diffusion.parameterisation: binomial diffusion takes kernel or x0, "
                          f"got {config.heartbeat.diffusion.parameterisation!r}")
    for name in IMAGE_DATASETS:
        section = getattr(config, name)
        if section.net.conv_layers == 0 and section.net.dense_out == 0:
            raise ConfigError(f"{name}.net: needs a convolutional (conv_layers > 0) or a dense (dense_out > 0) "
                              "pathway")
        if section.net.kernel_size % 2 == 0:
            raise ConfigError(f"{name}.net.kernel_size: must be odd, got {section.net.kernel_size}")
    mnist, parzen = config.mnist.data, config.mnist.parzen
    if parzen.validation_start + parzen.n_validation > mnist.n_train:
        raise ConfigError(f"mnist.parzen: validation images {parzen.validation_start}.."
                          f"{parzen.validation_start + parzen.n_validation - 1} are past mnist.data.n_train "
                          f"({mnist.n_train})")
    if parzen.n_centres > mnist.n_train:
        raise ConfigError(f"mnist.parzen.n_centres: {parzen.n_centres} is more than mnist.data.n_train "
                          f"({mnist.n_train})")
    dead_leaves = config.dead_leaves.data
    if dead_leaves.r_max < dead_leaves.r_min:
        raise ConfigError(f"dead_leaves.data.r_max: must be >= r_min ({dead_leaves.r_min}), got {dead_leaves.r_max}")


def _set_dotted(raw: dict, key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = raw
    for i, part in enumerate(parents):
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"{'.'.join(parents[:i + 1])}: unknown section")
        node = node[part]
    if leaf not in node:
        raise ConfigError(f"{key}: unknown key")
    node[leaf] = value


def _build(cls: type, raw: Any, path: str, profile: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'params'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ConfigError(f"{_join(path, unknown[0])}: unknown key (allowed: {', '.join(names)})")
    values = {}
    for f in dataclasses.fields(cls):
        key_path = _join(path, f.name)
        if f.name not in raw:
            raise ConfigError(f"{key_path}: missing")
        if dataclasses.is_dataclass(hints[f.name]):
            values[f.name] = _build(hints[f.name], raw[f.name], key_path, profile)
        else:
            value = _pick_profile(raw[f.name], key_path, profile)
            values[f.name] = _check(value, hints[f.name], f.metadata, key_path)
    return cls(**values)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _pick_profile(value: Any, path: str, profile: str) -> Any:
    if not isinstance(value, dict):
        return value
    if set(value) != set(PROFILES):
        raise ConfigError(f"{path}: a per-profile value needs exactly the keys {PROFILES}, "
                          f"got {sorted(value)}")
    return value[profile]


def _check(value: Any, kind: type, meta: typing.Mapping, path: str) -> Any:
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        value = float(value)
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{path}: expected one of {meta['choices']}, got {value!r}")
    low, high = meta.get("low"), meta.get("high")
    if low is not None and (value < low or (meta["open_low"] and value == low)):
        bound = ">" if meta["open_low"] else ">="
        raise ConfigError(f"{path}: expected a value {bound} {low}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{path}: expected a value <= {high}, got {value!r}")
    return value
