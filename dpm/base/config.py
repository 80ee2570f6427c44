"""params.yaml as a whole: its top-level values and one section per dataset, validated; and its
composition from conf/.

``load()`` reads params.yaml and builds one frozen dataclass per section, rejecting, before any
stage does work, anything it cannot use, naming the key's full path (dpm/base/params.py says how). The
sections are declared where they are read: every model's in dpm/base/sections.py, each dataset's in
dpm/base/registry.py. The studies' sections (dpm/studies.py) and the cluster's ``resources``
(workflow/cluster.py) are read by few stages: ``load`` requires their keys (``ELSEWHERE``) and
leaves their values to those modules, which the params check (pipeline/check_params.py, the gate
every stage waits for) runs on the whole file; so editing them reruns only the stages that read them.

Profiles: params.yaml holds the values a run uses, composed by Hydra (as ``dvc exp run`` does it)
from ``conf/config.yaml`` and one of ``conf/profile/{smoke,quick,paper}.yaml``; ``compose`` and
``load_profile`` do the same in memory, without Hydra (importing the library needs only torch,
numpy, PyYAML and what a CUDA image has; tests/test_config.py checks the two compositions agree).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from dpm.base import registry
from dpm.base.params import PROFILES, ConfigError, Section, StrictLoader, build, read_yaml, set_dotted, spec
from dpm.base.sections import TF32Config

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
"""Where params.yaml is composed from: config.yaml and profile/<name>.yaml (Hydra's layout)."""
DEVICES = ("auto", "cpu", "cuda")
ELSEWHERE = ("resources", "ablations", "seed_spread", "parzen_study")
"""Top-level keys typed where they are read: ``resources`` in workflow/cluster.py, the studies'
in dpm/studies.py (tests/test_config.py checks the two agree with this)."""


@dataclass(frozen=True)
class Config(Section):
    """params.yaml less ``ELSEWHERE``: ``profile``, ``device``, ``threads``, ``processes``
    (training processes, data-parallel; 0: one per visible GPU; checked against the GPUs where a
    train stage starts, ``dpm.run.distributed.n_processes``, not here), ``compile`` (torch.compile the
    networks for training), ``tf32`` (float32 precision on CUDA), and one section per dataset of
    ``dpm.base.registry`` (the class ``load`` returns adds those fields)."""
    profile: str = spec(choices=PROFILES)
    device: str = spec(choices=DEVICES)
    threads: int = spec(1, 1024)
    processes: int = spec(0, 1024)
    compile: bool = spec()
    tf32: TF32Config

    def section(self, name: str):
        """The params.yaml section of dataset ``name``."""
        return getattr(self, name)


@functools.cache
def config_class() -> type:
    """``Config`` with one field per registered dataset, typed by its section class."""
    fields = [(d.name, d.section) for d in registry.DATASETS.values()]
    return dataclasses.make_dataclass("Config", fields, bases=(Config,), frozen=True)


def read(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """params.yaml's mapping as written (YAML checked, ``overrides`` set), not yet validated."""
    raw = read_yaml(path)
    if raw is None:
        raise ConfigError(f"{path}: empty; compose it from conf/ with `python -m workflow.params profile=<profile>`")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for key, value in (overrides or {}).items():
        set_dotted(raw, key, value)
    return raw


def build_config(raw: dict[str, Any]) -> Config:
    """The validated Config of params.yaml's mapping; the keys of ``ELSEWHERE`` must be there,
    and their values are left to the modules that type them."""
    names = [f.name for f in dataclasses.fields(config_class())] + list(ELSEWHERE)
    for key in sorted(set(raw) - set(names), key=str):
        raise ConfigError(f"{key}: unknown key (allowed: {', '.join(names)})")
    for key in ELSEWHERE:
        if key not in raw:
            raise ConfigError(f"{key}: missing")
    return build(config_class(), {key: value for key, value in raw.items() if key not in ELSEWHERE}, "")


def load(path: str | Path = "params.yaml", overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate params.yaml (less ``ELSEWHERE``'s values).

    Args:
        path: the YAML file.
        overrides: dotted keys replacing values after reading (``{"device": "cpu"}``);
            an unknown key is an error, as in the file.

    Raises:
        ConfigError: naming the key's path, for any value that cannot be used (dpm/base/params.py).
    """
    return build_config(read(path, overrides))


class _ConfLoader(StrictLoader):
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
            set_dotted(composed, key, value)
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
    return build_config(compose([f"profile={profile}", *overrides], conf_dir))
