"""Strict reading of params.yaml's sections: the machinery, knowing no section.

A section is a frozen dataclass (``Section``) whose fields carry their range or choices
(``spec``); ``build`` makes one from the YAML's mapping and rejects, naming the key's full path,
an unknown or missing key, a wrong type, a number that is not finite or out of range, and values
that do not fit together (the section's ``problems()``). ``read_yaml`` refuses a YAML syntax
error (with its line) and a key written twice. The sections themselves are declared where they
are read: dpm/base/sections.py (every model's), dpm/base/registry.py (each dataset's), dpm/studies.py (the
studies'), workflow/cluster.py (the cluster's); dpm/base/config.py assembles params.yaml from them.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, Iterator

import yaml

PROFILES = ("smoke", "quick", "paper")
"""The profiles params.yaml is composed from (conf/profile/<name>.yaml; dpm/base/config.py)."""
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


def with_overrides(section: Section, overrides: dict[str, Any], path: str) -> Section:
    """``section`` with the dotted keys of ``overrides`` replaced, validated as in params.yaml;
    ConfigError names the key as ``<path>.<dotted key>``."""
    raw = dataclasses.asdict(section)
    for key, value in overrides.items():
        try:
            set_dotted(raw, key, value)
        except ConfigError as error:
            raise ConfigError(f"{path}.{error}") from None
    return build(type(section), raw, path)


def check_keys(raw: Any, names: tuple[str, ...], path: str) -> None:
    """``raw`` is a mapping with exactly the keys ``names``."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping, got {raw!r}")
    for key in sorted(set(raw) - set(names), key=str):
        raise ConfigError(f"{path}.{key}: unknown key (allowed: {', '.join(names)})")
    for key in names:
        if key not in raw:
            raise ConfigError(f"{path}.{key}: missing")


def dotted(raw: Any, path: str) -> dict[str, Any]:
    """A mapping of dotted keys (``train.n_iterations``) to values, checked against the section later."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(key, str) for key in raw):
        raise ConfigError(f"{path}: expected a mapping of dotted keys to values, got {raw!r}")
    return dict(raw)


class StrictLoader(yaml.SafeLoader):
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


def read_yaml(path: str | Path, loader: type = StrictLoader) -> Any:
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


def set_dotted(raw: dict, key: str, value: Any) -> None:
    """Replace the value of an existing dotted key (``train.n_iterations``) in a raw mapping."""
    *parents, leaf = key.split(".")
    node = raw
    for i, part in enumerate(parents):
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"{'.'.join(parents[:i + 1])}: unknown section")
        node = node[part]
    if leaf not in node:
        raise ConfigError(f"{key}: unknown key")
    node[leaf] = value


def build(cls: type, raw: Any, path: str) -> Any:
    """Section class ``cls`` from its raw mapping at ``path`` (ConfigError naming the key); a field
    whose type has ``from_raw`` (a section of named entries) is built by it."""
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
            values[f.name] = build(hints[f.name], raw[f.name], key_path)
        else:
            values[f.name] = check_value(raw[f.name], hints[f.name], f.metadata, key_path)
    built = cls(**values)
    for key, problem in built.problems() if isinstance(built, Section) else ():
        raise ConfigError(f"{_join(path, key)}: {problem}")
    return built


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check_value(value: Any, kind: type, meta: typing.Mapping, path: str) -> Any:
    """``value`` checked as ``kind`` (int, float, bool, str or a tuple of one) with ``meta``'s range
    or choices (``spec``); floats come back as float."""
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
    return tuple(check_value(item, kind, meta, f"{path}[{i}]") for i, item in enumerate(value))
