"""Typed, frozen configuration mirroring ``params.yaml``.

``params.yaml`` holds every value; this module holds the types and ranges of the sections every
model shares, and ``load()``, which builds one frozen dataclass per section and rejects, before any
stage does work, anything it cannot use, naming the key's full path: a YAML syntax error (with its
line), a duplicate key, an unknown or missing key, a wrong type, a number that is not finite or out
of range, and values that do not fit together (each section's ``problems()``). The sections of the
datasets themselves are declared in ``dpm/registry.py``, beside the rest of what each dataset is.

Profiles: params.yaml holds the values a run uses, composed by Hydra (as ``dvc exp run`` does it)
from ``conf/config.yaml`` and one of ``conf/profile/{smoke,quick,paper}.yaml``; ``compose`` and
``load_profile`` do the same in memory, without Hydra (importing the library needs only torch,
numpy, PyYAML and what a CUDA image has; tests/test_config.py checks the two compositions agree).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml

PROFILES = ("smoke", "quick", "paper")
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
"""Where params.yaml is composed from: config.yaml and profile/<name>.yaml (Hydra's layout)."""
DEVICES = ("auto", "cpu", "cuda")
# the choices params.yaml offers; the modules that implement them check against these
SCHEDULES = ("fixed", "learned")
GAUSSIAN_PARAMETERISATIONS = ("paper", "kernel", "x0", "v")
BINOMIAL_PARAMETERISATIONS = ("kernel", "x0")
ACTIVATIONS = ("leaky_relu", "paper")
MLP_INITS = ("glorot_sigmoid", "pytorch")
T_SAMPLINGS = ("uniform", "importance")
DEQUANTISATIONS = ("level", "authors", "none")
# every integer in params.yaml is a count, a size or a seed: larger values are typing errors
# (and would overflow the C integers of torch and numpy)
INT_MAX = 2 ** 31 - 1


class ConfigError(ValueError):
    """A params.yaml that cannot be used; the message names the key's path."""


def spec(low: float | None = None, high: float | None = None, *, open_low: bool = False,
         open_high: bool = False, choices: tuple[str, ...] | None = None) -> Any:
    """Field metadata: the allowed range (``open_*`` excludes the bound) or the allowed choices."""
    return field(metadata={"low": low, "high": high, "open_low": open_low, "open_high": open_high,
                           "choices": choices})


class Section:
    """A params.yaml section; ``problems`` names values that do not fit together."""

    def problems(self) -> Iterator[tuple[str, str]]:
        """(key relative to the section, what is wrong) for each rule that involves several values."""
        return iter(())


@dataclass(frozen=True)
class DiffusionConfig(Section):
    """Forward process: T, β_1 and the schedule (Paper: §2.4.1); how the reverse step reads the
    network's coefficients (``p_params`` of dpm/diffusion.py)."""
    n_steps: int = spec(2)
    beta_1: float = spec(0.0, 1.0, open_low=True, open_high=True)
    schedule: str = spec(choices=SCHEDULES)
    parameterisation: str = spec(choices=GAUSSIAN_PARAMETERISATIONS)


@dataclass(frozen=True)
class RBFConfig(Section):
    """Normalised radial-basis-function network (Paper: App. D.1.1)."""
    n_hidden: int = spec(1)
    local_linear: bool = spec()


@dataclass(frozen=True)
class MLPConfig(Section):
    """Sigmoid multilayer perceptron (Paper: App. D.1.2); ``init`` of its hidden layers:
    ``glorot_sigmoid`` (Glorot-uniform × 4, our deviation) or ``pytorch`` (PyTorch's default)."""
    n_hidden: int = spec(1)
    n_layers: int = spec(1)
    init: str = spec(choices=MLP_INITS)


@dataclass(frozen=True)
class TrainConfig(Section):
    """Optimisation: Adam on −K (nats), learning rate decayed stepwise; what is logged."""
    n_iterations: int = spec(1)
    batch_size: int = spec(1)
    learning_rate: float = spec(0.0, open_low=True)
    lr_decay: float = spec(0.0, 1.0, open_low=True)
    lr_decay_every: int = spec(1)
    checkpoint_every: int = spec(1)
    log_every: int = spec(1)
    n_log_examples: int = spec(1)
    n_log_samples: int = spec(1)
    seed: int = spec(0)


@dataclass(frozen=True)
class ImageTrainConfig(TrainConfig):
    """Training of an image model: one random t per example, drawn ``uniform`` (the authors'
    code) or by ``importance`` (P(t) ∝ 1/t, dpm/bound.py); bfloat16 autocast of the network on
    a GPU (``amp``; the bound itself is computed in float32)."""
    t_sampling: str = spec(choices=T_SAMPLINGS)
    amp: bool = spec()


@dataclass(frozen=True)
class ImageNetConfig(Section):
    """The image network of App. D.2.1: multi-scale convolution (``conv_layers`` = 0: none),
    a dense pathway (``dense_out`` = 0: none; ``dense_out`` outputs per pixel), 1×1 layers,
    J = ``n_bumps`` bump functions of width ``bump_width`` × their spacing."""
    conv_layers: int = spec(0)
    conv_channels: int = spec(1)
    n_scales: int = spec(1, 8)
    kernel_size: int = spec(1)
    dense_layers: int = spec(0)
    dense_width: int = spec(1)
    dense_out: int = spec(0)
    upper_layers: int = spec(0)
    upper_channels: int = spec(1)
    n_bumps: int = spec(1)
    bump_width: float = spec(0.0, open_low=True)
    activation: str = spec(choices=ACTIVATIONS)
    readout_init: float = spec(0.0)

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.conv_layers == 0 and self.dense_out == 0:
            yield "conv_layers", "needs a convolutional (conv_layers > 0) or a dense (dense_out > 0) pathway"
        if self.kernel_size % 2 == 0:
            yield "kernel_size", f"must be odd, got {self.kernel_size}"

    def coarsest_scale(self) -> int:
        """Image sides must be multiples of this: 2^(n_scales − 1) with a conv pathway, else 1."""
        return 2 ** (self.n_scales - 1) if self.conv_layers else 1


@dataclass(frozen=True)
class EvalConfig(Section):
    """Holdout evaluation of K and the samples drawn for figures."""
    n_repeats: int = spec(1)
    batch_size: int = spec(1)
    n_samples: int = spec(1)
    seed: int = spec(0)


@dataclass(frozen=True)
class LikelihoodConfig(Section):
    """The importance-weighted log-likelihood L_k (Paper: Eq. 9; dpm/likelihood.py) on a seeded
    subset of the holdout, and the per-t terms of K on another: L_k for k = 1, 10, …, ``max_k``
    (powers of ten) from a pool of ``n_trajectories`` forward trajectories per example, split into
    disjoint groups of k; K on the same subset from ``n_repeats`` draws per example. The subset
    comes from ``subset_seed``, the estimators' noise from ``seed``."""
    max_k: int = spec(1)
    n_trajectories: int = spec(1)
    n_examples: int = spec(1)
    n_repeats: int = spec(1)
    batch_size: int = spec(1)
    kl_examples: int = spec(1)
    kl_repeats: int = spec(1)
    subset_seed: int = spec(0)
    seed: int = spec(0)

    def problems(self) -> Iterator[tuple[str, str]]:
        if 10 ** round(math.log10(self.max_k)) != self.max_k:
            yield "max_k", f"must be a power of ten (1, 10, 100, …), got {self.max_k}"
        elif self.n_trajectories % self.max_k:
            yield "n_trajectories", f"must be a multiple of max_k ({self.max_k}), got {self.n_trajectories}"

    def ks(self) -> tuple[int, ...]:
        """k = 1, 10, …, max_k."""
        return tuple(10 ** i for i in range(round(math.log10(self.max_k)) + 1))


@dataclass(frozen=True)
class GaussianLimitConfig(Section):
    """The best K of Gaussian reverse steps with exact moments (dpm/limits.py): Monte Carlo over a
    seeded subset of ``n_examples`` holdout points (``subset_seed``), ``n_repeats`` x_t per t and
    point (``seed``), the posterior over the data by quadrature on ``n_nodes`` nodes."""
    n_examples: int = spec(1)
    n_repeats: int = spec(1)
    n_nodes: int = spec(2)
    batch_size: int = spec(1)
    subset_seed: int = spec(0)
    seed: int = spec(0)


@dataclass(frozen=True)
class BinomialLimitConfig(Section):
    """The best K of factorised (per-bit) reverse steps (dpm/limits.py): exact posterior over the
    data's distinct sequences, Monte Carlo over ``n_repeats`` x_t per t and sequence (``seed``)."""
    n_repeats: int = spec(1)
    seed: int = spec(0)


@dataclass(frozen=True)
class TF32Config(Section):
    """TensorFloat-32 on a CUDA device (``dpm.device.set_tf32``) for float32 matrix products
    (``matmul``) and cuDNN convolutions (``conv``); false: full float32. No effect on the CPU."""
    matmul: bool = spec()
    conv: bool = spec()


@dataclass(frozen=True)
class Request(Section):
    """What one stage asks of a cluster scheduler."""
    mem_mb: int = spec(1)
    runtime: int = spec(1)  # minutes
    gpus: int = spec(0)


@dataclass(frozen=True)
class Resources(Section):
    """Requests by kind of stage: ``train``, ``sample`` (from a trained model), ``default``."""
    default: Request
    train: Request
    sample: Request


VARIANT_NAME = re.compile(r"[a-z][a-z0-9_]*")  # a DVC stage key, a file name and a Snakemake rule name


@dataclass(frozen=True)
class Variant(Section):
    """One ablation variant (``ablations.variants.<name>``): the model of ``dataset`` with the
    dotted keys of ``set`` changed (``{"diffusion.beta_1": 1.0e-5}``); ``ablation``: the names of
    the comparisons it is a row of; ``baseline``: the configuration they compare against."""
    ablation: tuple[str, ...]
    baseline: bool
    dataset: str
    set: dict[str, Any]

    @classmethod
    def from_raw(cls, raw: Any, path: str) -> "Variant":
        from dpm import registry
        _keys(raw, ("ablation", "baseline", "dataset", "set"), path)
        names = [raw["ablation"]] if isinstance(raw["ablation"], str) else raw["ablation"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"{path}.ablation: expected a name or a list of names, got {raw['ablation']!r}")
        _check(raw["dataset"], str, {"choices": registry.NAMES}, f"{path}.dataset")
        return cls(tuple(names), _check(raw["baseline"], bool, {}, f"{path}.baseline"), raw["dataset"],
                   _dotted(raw["set"], f"{path}.set"))


@dataclass(frozen=True)
class Ablations(Section):
    """The ablation study (studies/dvc.yaml): ``budget`` maps a dataset to the dotted keys every
    variant of it changes first (a shorter training); ``variants`` maps a name to its Variant."""
    budget: dict[str, dict[str, Any]]
    variants: dict[str, Variant]

    @classmethod
    def from_raw(cls, raw: Any, path: str) -> "Ablations":
        from dpm import registry
        _keys(raw, ("budget", "variants"), path)
        for name, entries in (("budget", raw["budget"]), ("variants", raw["variants"])):
            if not isinstance(entries, dict):
                raise ConfigError(f"{path}.{name}: expected a mapping, got {entries!r}")
        for dataset in raw["budget"]:
            _check(dataset, str, {"choices": registry.NAMES}, f"{path}.budget.{dataset}")
        for name in raw["variants"]:
            if not isinstance(name, str) or not VARIANT_NAME.fullmatch(name):
                raise ConfigError(f"{path}.variants.{name}: a variant's name must match {VARIANT_NAME.pattern}")
        built = cls({d: _dotted(keys, f"{path}.budget.{d}") for d, keys in raw["budget"].items()},
                    {name: Variant.from_raw(v, f"{path}.variants.{name}") for name, v in raw["variants"].items()})
        for key, problem in built.problems():
            raise ConfigError(f"{path}.{key}: {problem}")
        return built

    def problems(self) -> Iterator[tuple[str, str]]:
        for group in dict.fromkeys(a for v in self.variants.values() for a in v.ablation):
            rows = {name: v for name, v in self.variants.items() if group in v.ablation}
            baselines = [name for name, v in rows.items() if v.baseline]
            if len(baselines) != 1:
                yield "variants", f"ablation {group!r} needs one baseline variant, has {baselines or 'none'}"
            elif len({v.dataset for v in rows.values()}) > 1:
                yield "variants", f"ablation {group!r} mixes datasets: its rows must compare one model"

    def rows(self, group: str) -> list[str]:
        """The variants of ablation ``group``, its baseline first."""
        names = [name for name, v in self.variants.items() if group in v.ablation]
        return sorted(names, key=lambda name: not self.variants[name].baseline)


def with_overrides(section: Section, overrides: dict[str, Any], path: str) -> Section:
    """``section`` with the dotted keys of ``overrides`` replaced, validated as in params.yaml;
    ConfigError names the key as ``<path>.<dotted key>``."""
    raw = dataclasses.asdict(section)
    for key, value in overrides.items():
        try:
            _set_dotted(raw, key, value)
        except ConfigError as error:
            raise ConfigError(f"{path}.{error}") from None
    return _build(type(section), raw, path)


def _keys(raw: Any, names: tuple[str, ...], path: str) -> None:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping, got {raw!r}")
    for key in sorted(set(raw) - set(names), key=str):
        raise ConfigError(f"{path}.{key}: unknown key (allowed: {', '.join(names)})")
    for key in names:
        if key not in raw:
            raise ConfigError(f"{path}.{key}: missing")


def _dotted(raw: Any, path: str) -> dict[str, Any]:
    """A mapping of dotted keys (``train.n_iterations``) to values, checked against the section later."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(key, str) for key in raw):
        raise ConfigError(f"{path}: expected a mapping of dotted keys to values, got {raw!r}")
    return dict(raw)


@dataclass(frozen=True)
class SeedSpreadConfig(Section):
    """The seed-spread study (studies/dvc.yaml, issue 13 item 7): every dataset's model trained
    again from seed train.seed + each of ``seed_offsets`` (the network's initial weights and the
    training batches), evaluated as its Table 1 row."""
    seed_offsets: tuple[int, ...] = spec(1)

    def problems(self) -> Iterator[tuple[str, str]]:
        if len(set(self.seed_offsets)) != len(self.seed_offsets):
            yield "seed_offsets", f"repeats an offset: {list(self.seed_offsets)}"


@dataclass(frozen=True)
class ParzenStudyConfig(Section):
    """The MNIST Parzen study (studies/dvc.yaml, issue 13 item 5): the model trained for each of
    ``n_iterations`` (mnist.train otherwise), beside the main model; ``n_samples`` samples of
    each as the Parzen centres, the final reverse step sampled and replaced by its mean."""
    n_iterations: tuple[int, ...] = spec(1)
    n_samples: int = spec(1)

    def problems(self) -> Iterator[tuple[str, str]]:
        if list(self.n_iterations) != sorted(set(self.n_iterations)):
            yield "n_iterations", f"expected increasing lengths, got {list(self.n_iterations)}"


@dataclass(frozen=True)
class Config(Section):
    """The whole of params.yaml: ``profile``, ``device``, ``threads``, ``processes`` (training
    processes, data-parallel; 0: one per visible GPU; checked against the GPUs where a train stage
    starts, ``dpm.distributed.n_processes``, not here), ``compile`` (torch.compile the networks
    for training), ``tf32`` (float32 precision on CUDA), ``resources``, the studies'
    ``ablations``, ``seed_spread`` and ``parzen_study``, and one section per dataset of
    ``dpm.registry`` (the class ``load`` returns adds those fields)."""
    profile: str = spec(choices=PROFILES)
    device: str = spec(choices=DEVICES)
    threads: int = spec(1, 1024)
    processes: int = spec(0, 1024)
    compile: bool = spec()
    tf32: TF32Config
    resources: Resources
    ablations: Ablations
    seed_spread: SeedSpreadConfig
    parzen_study: ParzenStudyConfig

    def section(self, name: str):
        """The params.yaml section of dataset ``name``."""
        return getattr(self, name)

    def ablation_section(self, variant: str):
        """The section ablation ``variant`` trains and evaluates: its dataset's, then the dataset's
        ablation budget, then the variant's own ``set`` (ConfigError naming the key if it does not fit)."""
        v = self.ablations.variants[variant]
        budgeted = with_overrides(self.section(v.dataset), self.ablations.budget.get(v.dataset, {}),
                                  f"ablations.budget.{v.dataset}")
        return with_overrides(budgeted, v.set, f"ablations.variants.{variant}.set")

    def problems(self) -> Iterator[tuple[str, str]]:
        for kind in ("default", "train", "sample"):
            gpus = getattr(self.resources, kind).gpus
            if gpus and self.device != "cuda":
                yield "device", (f"resources.{kind}.gpus is {gpus}: a job given a GPU must use it, so device "
                                 f"must be cuda (got {self.device!r}; auto would fall back to the CPU)")
        for variant in self.ablations.variants:
            self.ablation_section(variant)  # raises ConfigError naming the key


@functools.cache
def config_class() -> type:
    """``Config`` with one field per registered dataset, typed by its section class."""
    from dpm import registry  # the registry declares its sections with this module's classes
    fields = [(d.name, d.section) for d in registry.DATASETS.values()]
    return dataclasses.make_dataclass("Config", fields, bases=(Config,), frozen=True)


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (YAML says it is an error;
    PyYAML silently keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden by design
                continue
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            try:
                twice = key in seen
            except TypeError:
                raise ConfigError(f"line {line}: a key must be a plain value, got {key!r}") from None
            if twice:
                raise ConfigError(f"line {line}: key {key!r} appears twice in one mapping (first on line {seen[key]})")
            seen[key] = line
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path, loader: type = _StrictLoader) -> Any:
    """The YAML file at ``path``; ConfigError (one line, with the line number) if it cannot be read."""
    try:
        return yaml.load(Path(path).read_text(), Loader=loader)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{path}: not valid YAML: {where}{error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error}") from None


def load(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate params.yaml.

    Args:
        path: the YAML file.
        overrides: dotted keys replacing values after reading (``{"device": "cpu"}``);
            an unknown key is an error, as in the file.

    Raises:
        ConfigError: naming the key's path, for any value that cannot be used (module docstring).
    """
    raw = read_yaml(path)
    if raw is None:
        raise ConfigError(f"{path}: empty; compose it from conf/ with `python -m pipeline.params profile=<profile>`")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value)
    return _build(config_class(), raw, "")


class _ConfLoader(_StrictLoader):
    """How Hydra (OmegaConf) reads conf/ and override values: YAML 1.1 as PyYAML reads it, but
    ``1e-5`` is a number (YAML 1.2's floats) and a date stays a string."""


_ConfLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"""^(?:
     [-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X), list("-+0123456789."))
_ConfLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _ConfLoader.yaml_implicit_resolvers.items()}
GLOBAL_PACKAGE = re.compile(r"^#\s*@package\s+_global_\s*$", re.M)


def compose(overrides: Sequence[str] = (), conf_dir: str | Path | None = None) -> dict[str, Any]:
    """params.yaml as ``dvc exp run`` composes it, without Hydra: conf/config.yaml less its
    ``defaults``, conf/profile/<profile>.yaml merged onto it (mappings key by key, anything else
    replaced), then ``overrides``: ``profile=<name>`` picks the profile (default: the one the
    defaults list names), ``dotted.key=value`` replaces an existing value, read as YAML (as Hydra
    reads ``1e-5``, ``true``, ``null``, ``[1, 2]``). This is Hydra's composition of conf/'s layout,
    ``defaults: [_self_, profile: <name>]`` with every profile file in the global package
    (``# @package _global_``); tests/test_config.py checks it against DVC's own.

    Raises:
        ConfigError: an unknown profile or key, an override that is not ``key=value``, or conf
            files that are not valid YAML or not in that layout.
    """
    conf = Path(conf_dir or CONF_DIR)
    where = f"conf/: cannot compose with {list(overrides)}"
    composed = _read_conf(conf / "config.yaml", where)
    profile, values = _default_profile(composed.pop("defaults", None), where), []
    for override in overrides:
        key, equals, text = override.partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z_][\w.]*", key):
            raise ConfigError(f"{where}: {override!r} is not key=value (a dotted key of conf/config.yaml)")
        if key == "profile":
            profile = text
        else:
            values.append((key, _read_value(text, override, where)))
    path = conf / "profile" / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (conf / "profile").glob("*.yaml"))
        raise ConfigError(f"{where}: no profile {profile!r} in {conf / 'profile'} (there are: {', '.join(known)})")
    if not GLOBAL_PACKAGE.search(path.read_text()):
        raise ConfigError(f"{where}: {path} must start with '# @package _global_' (its values are top-level keys)")
    composed = _merge(composed, _read_conf(path, where))
    for key, value in values:
        try:
            _set_dotted(composed, key, value)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
    return composed


def _read_conf(path: Path, where: str) -> dict[str, Any]:
    """A conf/ file as Hydra reads it: a mapping (an empty file is an empty one)."""
    try:
        raw = read_yaml(path, _ConfLoader)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{where}: {path}: expected a mapping at the top level")
    return raw or {}


def _default_profile(defaults: Any, where: str) -> str:
    """The profile of config.yaml's ``defaults: [_self_, profile: <name>]``."""
    if not (isinstance(defaults, list) and len(defaults) == 2 and defaults[0] == "_self_"
            and isinstance(defaults[1], dict) and list(defaults[1]) == ["profile"]):
        raise ConfigError(f"{where}: conf/config.yaml's defaults must be [_self_, profile: <name>], got {defaults!r}")
    return defaults[1]["profile"]


def _read_value(text: str, override: str, where: str) -> Any:
    """An override's value as Hydra reads it: YAML, and ``key=`` the empty string."""
    try:
        return yaml.load(text, Loader=_ConfLoader) if text else ""
    except yaml.YAMLError:
        raise ConfigError(f"{where}: {override!r}: the value is not valid YAML") from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged onto ``base``: mappings key by key, anything else replaced (OmegaConf.merge)."""
    merged = dict(base)
    for key, value in over.items():
        both = isinstance(merged.get(key), dict) and isinstance(value, dict)
        merged[key] = _merge(merged[key], value) if both else value
    return merged


def load_profile(profile: str, overrides: Sequence[str] = (), conf_dir: str | Path | None = None) -> Config:
    """The validated values of ``profile`` (with ``overrides``), composed as params.yaml would be."""
    return _build(config_class(), compose([f"profile={profile}", *overrides], conf_dir), "")


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


def _build(cls: type, raw: Any, path: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'params'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(names), key=str)
    if unknown:
        raise ConfigError(f"{_join(path, str(unknown[0]))}: unknown key (allowed: {', '.join(names)})")
    values = {}
    for f in dataclasses.fields(cls):
        key_path = _join(path, f.name)
        if f.name not in raw:
            raise ConfigError(f"{key_path}: missing")
        if hasattr(hints[f.name], "from_raw"):  # a section of named entries (ablations)
            values[f.name] = hints[f.name].from_raw(raw[f.name], key_path)
        elif dataclasses.is_dataclass(hints[f.name]):
            values[f.name] = _build(hints[f.name], raw[f.name], key_path)
        else:
            values[f.name] = _check(raw[f.name], hints[f.name], f.metadata, key_path)
    built = cls(**values)
    for key, problem in built.problems() if isinstance(built, Section) else ():
        raise ConfigError(f"{_join(path, key)}: {problem}")
    return built


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check(value: Any, kind: type, meta: typing.Mapping, path: str) -> Any:
    if isinstance(value, dict) and value and set(value) <= set(PROFILES):
        raise ConfigError(f"{path}: a per-profile value ({value}) is not read from params.yaml any more: "
                          f"put each profile's value in conf/profile/<profile>.yaml and compose "
                          f"(README \"Params\")")
    if typing.get_origin(kind) is tuple:
        return _check_items(value, typing.get_args(kind)[0], meta, path)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        if abs(value) > INT_MAX:
            raise ConfigError(f"{path}: {value} is too large (at most {INT_MAX})")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(f"{path}: {value} is too large for a number") from None
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{path}: expected one of {meta['choices']}, got {value!r}")
    low, high = meta.get("low"), meta.get("high")
    if low is not None and (value < low or (meta["open_low"] and value == low)):
        raise ConfigError(f"{path}: expected a value {'>' if meta['open_low'] else '>='} {low}, got {value!r}")
    if high is not None and (value > high or (meta["open_high"] and value == high)):
        raise ConfigError(f"{path}: expected a value {'<' if meta['open_high'] else '<='} {high}, got {value!r}")
    return value


def _check_items(value: Any, kind: type, meta: typing.Mapping, path: str) -> tuple:
    """A non-empty list whose every item is checked as ``kind`` with ``meta``'s range."""
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{path}: expected a non-empty list, got {value!r}")
    return tuple(_check(item, kind, meta, f"{path}[{i}]") for i, item in enumerate(value))
