"""The dataset registry agrees with params.yaml, dvc.yaml and the dataset modules, and importing
it imports no dataset module."""

import dataclasses
import math
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml

from dpm.base import config as cfg, registry
from dpm.report import paper_figures, paper_table1
from dpm.datasets import fetch as fetch_module

ROOT = Path(__file__).resolve().parents[1]
FETCHED = {d.name for d in registry.DATASETS.values() if d.fetched}
GENERATED = set(registry.NAMES) - FETCHED


@pytest.fixture(scope="module")
def stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.fixture(scope="module")
def declared() -> dict:
    """The lists of datasets both specs iterate (datasets.yaml, in their ``vars``)."""
    return yaml.safe_load((ROOT / "datasets.yaml").read_text())


def foreach(stages: dict, stage: str):
    """The ``foreach`` of a stage: a list of names, or a mapping of name → item."""
    return stages[stage]["foreach"]


def test_datasets_yaml_is_what_the_registry_makes(monkeypatch):
    """Written by `python -m workflow.params` (README: adding a dataset); a generated dataset whose
    module is not named after it is refused (the data and limit stages name it so)."""
    from workflow import params
    assert (ROOT / "datasets.yaml").read_text() == params.datasets_text()
    roll = registry.DATASETS["swiss_roll"]
    monkeypatch.setitem(registry.DATASETS, "swiss_roll", dataclasses.replace(roll, module="dpm.datasets.roll"))
    with pytest.raises(cfg.ConfigError, match="swiss_roll: a generated dataset's module must be"):
        params.datasets_text()


def test_both_specs_read_the_declared_lists():
    assert "datasets.yaml" in yaml.safe_load((ROOT / "dvc.yaml").read_text())["vars"]
    studies = yaml.safe_load((ROOT / "studies" / "dvc.yaml").read_text())
    assert "../datasets.yaml" in studies["vars"]
    assert foreach(studies["stages"], "seed_spread") == "${datasets}"


def test_every_dataset_is_trained_and_evaluated_in_table_1_order(stages, declared):
    assert declared["datasets"] == list(registry.NAMES)
    for stage in ("train", "curves", "evaluate", "likelihood", "kl_per_t"):
        assert foreach(stages, stage) == "${datasets}", stage


def test_fetched_datasets_are_fetched_and_split_from_raw_files_by_their_own_module(stages, declared):
    assert FETCHED and GENERATED
    for stage in ("fetch", "data_from_raw"):
        assert foreach(stages, stage) == "${fetched}", stage
    assert set(declared["fetched"]) == FETCHED
    for name, item in declared["fetched"].items():
        assert f"dpm.datasets.{item['module']}" == registry.get(name).module, name
    assert foreach(stages, "data") == "${generated}"
    assert sorted(declared["generated"]) == sorted(GENERATED)


FIGURE_STAGES = {"toy_figure": {"swiss_roll", "heartbeat"}, "image_figure": {"samples"},
                 "posterior_figure": {"denoise", "inpaint"}}


def test_every_figure_has_its_stage_and_is_drawn_from_its_dataset(stages):
    keys = []
    for stage, kinds in FIGURE_STAGES.items():
        for key, item in foreach(stages, stage).items():
            figure = paper_figures.get(key)
            assert item["dataset"] == figure.dataset, key
            assert figure.kind in kinds, (stage, key, figure.kind)  # the stage draws that kind of figure
            keys.append(key)
    figure = paper_figures.get("figure5_full")
    assert figure.kind == "inpaint_full" and f"data/{figure.dataset}" in stages["figure5_full"]["deps"]
    keys.append("figure5_full")
    assert sorted(keys) == sorted(paper_figures.NAMES)
    assert {f.dataset for f in paper_figures.FIGURES.values()} <= set(registry.NAMES)


def test_table_1_of_the_paper_has_a_row_per_dataset_of_the_paper():
    """The paper's six (MNIST's without values: it is in Table 2); a dataset added since has none."""
    assert list(paper_table1.TABLE_1) == ["swiss_roll", "heartbeat", "bark", "dead_leaves", "cifar10", "mnist"]
    assert set(paper_table1.TABLE_1) <= set(registry.NAMES)


def test_unknown_names_are_errors_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; expected one of swiss_roll"):
        registry.get("imagenet")
    with pytest.raises(ValueError, match="unknown figure 'figure9'"):
        paper_figures.get("figure9")


def test_the_config_has_one_section_per_dataset_typed_by_its_entry():
    hints = typing.get_type_hints(cfg.config_class())
    assert {name: hints[name] for name in registry.NAMES} == {d.name: d.section for d in registry.DATASETS.values()}


@pytest.mark.parametrize("name", registry.NAMES)
def test_every_dataset_module_makes_its_split_and_fetched_ones_fetch(name):
    entry = registry.get(name)
    module = entry.data_module()
    assert module.__name__ == entry.module
    assert callable(module.make_split)
    assert callable(getattr(module, "fetch_raw", None)) == entry.fetched


def test_importing_the_registry_imports_no_dataset_module():
    code = ("import dpm.base.registry, dpm.base.config; import sys; "
            "print(sorted(m for m in sys.modules if m.startswith('dpm.datasets')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_math_and_the_model_import_no_catalogue():
    """The model is built from its kind and section: the math imports neither params.yaml's
    assembly (dpm.base.config), the datasets (dpm.base.registry), the studies' sections nor the paper's values."""
    catalogues = ["dpm.base.config", "dpm.base.registry", "dpm.studies", "dpm.report.paper_table1", "dpm.report.paper_table2",
                  "dpm.report.paper_figures"]
    code = ("import sys, dpm.core.model, dpm.chain.sampling, dpm.chain.posterior, dpm.estimate.likelihood, dpm.estimate.limits, dpm.core.evaluate, "
            f"dpm.run.train, dpm.estimate.parzen; print(sorted(m for m in sys.modules if m in {catalogues!r}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def data_section(name: str):
    return typing.get_type_hints(registry.get(name).section)["data"]


@pytest.mark.parametrize("name", registry.NAMES)
def test_image_datasets_and_only_they_give_an_image_shape(name):
    assert hasattr(data_section(name), "image_shape") == registry.get(name).is_image


@pytest.fixture(scope="module")
def smoke() -> cfg.Config:
    return cfg.load_profile("smoke")


@pytest.mark.parametrize("name", [n for n in registry.NAMES if registry.get(n).is_image])
def test_the_image_shape_a_section_gives_is_the_one_its_module_makes(smoke, tmp_path, name):
    entry, c = registry.get(name), smoke.section(name).data
    module = entry.data_module()
    if entry.fetched:
        if fetch_module.mirror_root() is None:
            pytest.fail(f"no offline mirror (${fetch_module.MIRROR_ENV}) to fetch {name} from")
        module.fetch_raw(c, tmp_path)
    split = module.make_split(c, tmp_path if entry.fetched else None)
    assert split.info.image_shape == c.image_shape()
    assert split.train.shape[1:] == split.holdout.shape[1:] == (math.prod(c.image_shape()),)
    assert split.info.n_units == c.image_shape()[1] * c.image_shape()[2]


def test_the_limit_of_k_is_computed_for_every_toy_by_its_own_module(stages, declared):
    assert foreach(stages, "limit") == "${limits}"
    assert set(declared["limits"]) == {d.name for d in registry.DATASETS.values() if d.limit} == {"swiss_roll", "heartbeat"}
    for name in declared["limits"]:  # the stage's dep dpm/datasets/<name>.py
        assert f"dpm.datasets.{name}" == registry.get(name).module, name
