"""The studies' sections of params.yaml (studies/dvc.yaml): ``ablations``, ``seed_spread`` and
``parzen_study``.

Only the studies' stages and the params check (pipeline/check_params.py, the gate every stage
waits for) read these, so only they depend on this module: dpm/base/config.py's ``load`` requires the
keys and leaves their values to ``load`` here.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from dpm.base import config as cfg, registry
from dpm.base.params import ConfigError, Section, build, check_keys, check_value, dotted, spec, with_overrides


VARIANT_NAME = re.compile(r"[a-z][a-z0-9_]*")  # a DVC stage key, a file name and a Snakemake rule name


@dataclass(frozen=True)
class Variant(Section):
    """One ablation variant (``ablations.variants.<name>``): the model of ``dataset`` with the
    dotted keys of ``set`` changed (``{"diffusion.beta_1": 1.0e-5}``); ``ablation``: the names of
    the comparisons it is a row of; ``baseline``: the configuration they compare against;
    ``budget`` (optional, true by default): whether the dataset's ablation budget applies first,
    false for a variant trained as the dataset's own section says (its row beside Table 1's)."""
    ablation: tuple[str, ...]
    baseline: bool
    dataset: str
    set: dict[str, Any]
    budget: bool = True

    @classmethod
    def from_raw(cls, raw: Any, path: str) -> "Variant":
        raw = {"budget": True, **raw} if isinstance(raw, dict) else raw
        check_keys(raw, ("ablation", "baseline", "dataset", "set", "budget"), path)
        names = [raw["ablation"]] if isinstance(raw["ablation"], str) else raw["ablation"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"{path}.ablation: expected a name or a list of names, got {raw['ablation']!r}")
        check_value(raw["dataset"], str, {"choices": registry.NAMES}, f"{path}.dataset")
        return cls(tuple(names), check_value(raw["baseline"], bool, {}, f"{path}.baseline"), raw["dataset"],
                   dotted(raw["set"], f"{path}.set"), check_value(raw["budget"], bool, {}, f"{path}.budget"))


@dataclass(frozen=True)
class Ablations(Section):
    """The ablation study (studies/dvc.yaml): ``budget`` maps a dataset to the dotted keys every
    variant of it changes first (a shorter training); ``variants`` maps a name to its Variant."""
    budget: dict[str, dict[str, Any]]
    variants: dict[str, Variant]

    @classmethod
    def from_raw(cls, raw: Any, path: str) -> "Ablations":
        check_keys(raw, ("budget", "variants"), path)
        for name, entries in (("budget", raw["budget"]), ("variants", raw["variants"])):
            if not isinstance(entries, dict):
                raise ConfigError(f"{path}.{name}: expected a mapping, got {entries!r}")
        for dataset in raw["budget"]:
            check_value(dataset, str, {"choices": registry.NAMES}, f"{path}.budget.{dataset}")
        for name in raw["variants"]:
            if not isinstance(name, str) or not VARIANT_NAME.fullmatch(name):
                raise ConfigError(f"{path}.variants.{name}: a variant's name must match {VARIANT_NAME.pattern}")
        built = cls({d: dotted(keys, f"{path}.budget.{d}") for d, keys in raw["budget"].items()},
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
class Studies(Section):
    """The studies' sections of params.yaml (in ``ELSEWHERE`` of dpm/base/config.py)."""
    ablations: Ablations
    seed_spread: SeedSpreadConfig
    parzen_study: ParzenStudyConfig

    def ablation_section(self, config: cfg.Config, variant: str):
        """The section ablation ``variant`` trains and evaluates: its dataset's, then the dataset's
        ablation budget (unless the variant's ``budget`` is false), then the variant's own ``set``
        (ConfigError naming the key if it does not fit)."""
        v = self.ablations.variants[variant]
        budget = self.ablations.budget.get(v.dataset, {}) if v.budget else {}
        budgeted = with_overrides(config.section(v.dataset), budget, f"ablations.budget.{v.dataset}")
        return with_overrides(budgeted, v.set, f"ablations.variants.{variant}.set")


def of(raw: dict[str, Any], config: cfg.Config) -> Studies:
    """The studies' sections of params.yaml's ``raw`` mapping (``dpm.base.config.read``), each
    ablation variant's section checked against ``config``; ConfigError naming the key."""
    studies = build(Studies, {f.name: raw[f.name] for f in dataclasses.fields(Studies)}, "")
    for variant in studies.ablations.variants:
        studies.ablation_section(config, variant)  # raises ConfigError naming the key
    return studies


def load(path: str | Path, config: cfg.Config) -> Studies:
    """The studies' sections of the params.yaml at ``path``, whose ``config`` (``dpm.base.config.load``)
    a stage has read."""
    return of(cfg.read(path), config)
