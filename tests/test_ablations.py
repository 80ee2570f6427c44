"""The ablation study: its params section is validated as params.yaml is, a variant's section is its
dataset's with the budget and then its own changes, the table groups rows by ablation; and the
stage trains and evaluates a variant as the pipeline does its own model (the whole study at the
smoke profile runs in tests/test_pipeline.py)."""

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch
import yaml

from dpm.base import config as cfg
from dpm.core import nets
from dpm import studies
from pipeline import ablation_table
from pipeline import ablations as stage

SMOKE = cfg.compose(["profile=smoke"])


def load(tmp_path, edit=lambda raw: None) -> tuple[cfg.Config, studies.Studies]:
    raw = copy.deepcopy(SMOKE)
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    config = cfg.load(path)
    return config, studies.load(path, config)


def variants(raw: dict) -> dict:
    return raw["ablations"]["variants"]


def test_a_variant_is_its_dataset_section_with_the_budget_then_its_own_changes(tmp_path):
    def edit(raw):
        raw["ablations"]["budget"]["swiss_roll"] = {"train.n_iterations": 7, "diffusion.beta_1": 1e-3}
        variants(raw)["swiss_roll_beta1_1e_5"]["set"] = {"diffusion.beta_1": 1e-5, "net.n_hidden": 3}
    config, s = load(tmp_path, edit)
    own, base = config.swiss_roll, s.ablation_section(config, "swiss_roll_base")
    changed = s.ablation_section(config, "swiss_roll_beta1_1e_5")
    assert base.train.n_iterations == changed.train.n_iterations == 7
    assert base.diffusion.beta_1 == 1e-3 and changed.diffusion.beta_1 == 1e-5  # the variant's own value wins
    assert changed.net.n_hidden == 3 and base.net == own.net
    assert base.data == changed.data == own.data and base.eval == own.eval
    assert type(changed) is type(own)


BAD = [
    (lambda raw: variants(raw)["swiss_roll_kernel"]["set"].update({"train.n_iterationz": 5}),
     "ablations.variants.swiss_roll_kernel.set.train.n_iterationz: unknown key"),
    (lambda raw: variants(raw)["swiss_roll_kernel"]["set"].update({"trian.n_iterations": 5}),
     "ablations.variants.swiss_roll_kernel.set.trian: unknown section"),
    (lambda raw: variants(raw)["swiss_roll_kernel"]["set"].update({"diffusion.beta_1": "small"}),
     "ablations.variants.swiss_roll_kernel.set.diffusion.beta_1: expected a number"),
    (lambda raw: variants(raw)["swiss_roll_kernel"]["set"].update({"diffusion.beta_1": 1.5}),
     "ablations.variants.swiss_roll_kernel.set.diffusion.beta_1: expected a value < 1.0"),
    (lambda raw: variants(raw)["heartbeat_kernel"]["set"].update({"diffusion.parameterisation": "v"}),
     "ablations.variants.heartbeat_kernel.set.diffusion.parameterisation: binomial diffusion takes"),
    (lambda raw: raw["ablations"]["budget"]["cifar10"].update({"train.t_sampling": "sometimes"}),
     "ablations.budget.cifar10.train.t_sampling: expected one of"),
    (lambda raw: variants(raw)["cifar10_x0"].update({"dataset": "imagenet"}),
     "ablations.variants.cifar10_x0.dataset: expected one of"),
    (lambda raw: variants(raw)["cifar10_x0"].update({"seed": 3}), "ablations.variants.cifar10_x0.seed: unknown key"),
    (lambda raw: variants(raw)["cifar10_x0"].pop("baseline"), "ablations.variants.cifar10_x0.baseline: missing"),
    (lambda raw: variants(raw)["cifar10_x0"].update({"baseline": "no"}),
     "ablations.variants.cifar10_x0.baseline: expected true or false"),
    (lambda raw: variants(raw)["cifar10_x0"].update({"ablation": []}),
     "ablations.variants.cifar10_x0.ablation: expected a name or a list of names"),
    (lambda raw: raw["ablations"]["budget"].update({"imagenet": {}}), "ablations.budget.imagenet: expected one of"),
    (lambda raw: variants(raw).update({"Bad-name": variants(raw)["cifar10_x0"]}),
     "ablations.variants.Bad-name: a variant's name must match"),
    (lambda raw: variants(raw)["dead_leaves_r_min_1"].update({"baseline": True}),
     "ablations.variants: ablation 'dead-leaves r_min' needs one baseline variant, has ['dead_leaves_base', "
     "'dead_leaves_r_min_1']"),
    (lambda raw: variants(raw)["heartbeat_kernel"].update({"ablation": "swiss-roll β_1"}),
     "ablations.variants: ablation 'swiss-roll β_1' mixes datasets"),
]


@pytest.mark.parametrize("edit, message", BAD, ids=[b[1].split(":")[0] + ":" + b[1].split(": ")[1][:20] for b in BAD])
def test_each_bad_ablation_entry_is_an_error_naming_its_key(tmp_path, edit, message):
    with pytest.raises(cfg.ConfigError) as error:
        load(tmp_path, edit)
    assert str(error.value).startswith(message), str(error.value)


def test_the_shipped_ablations_compare_one_model_per_ablation_at_one_budget():
    for profile in cfg.PROFILES:
        config = cfg.load_profile(profile)
        s = studies.of(cfg.compose([f"profile={profile}"]), config)
        groups = {a for v in s.ablations.variants.values() for a in v.ablation}
        for group in groups:
            rows = s.ablations.rows(group)
            assert s.ablations.variants[rows[0]].baseline and len(rows) >= 2, (profile, group)
            sections = [s.ablation_section(config, name) for name in rows]
            assert len({s.train.n_iterations for s in sections}) == 1, (profile, group)  # one budget
            assert len({s.train.seed for s in sections}) == 1, (profile, group)



def test_a_variant_without_the_budget_trains_as_its_dataset_s_own_section_in_every_profile():
    """``budget: false``: the swiss-roll network's rows at the profile's own training are the
    swiss_roll section itself (changed by the variant's ``set`` alone), with no training value
    repeated in the profiles."""
    for profile in cfg.PROFILES:
        config = cfg.load_profile(profile)
        s = studies.of(cfg.compose([f"profile={profile}"]), config)
        assert not s.ablations.variants["swiss_roll_quick_training"].budget
        assert s.ablation_section(config, "swiss_roll_quick_training") == config.swiss_roll, profile
        kernel = s.ablation_section(config, "swiss_roll_kernel_quick_training")
        assert kernel.train == config.swiss_roll.train and kernel.diffusion.parameterisation == "kernel"
        assert s.ablation_section(config, "swiss_roll_base").train != config.swiss_roll.train  # the budget

def test_neighbours_differ_counts_adjacent_pairs_across_and_down():
    # a 2×3 grey image: 4 pairs across, 3 down
    image = np.array([[0, 0, 1], [5, 5, 7]], dtype=np.uint8)
    across = [0 != 0, 0 != 1, 5 != 5, 5 != 7]
    down = [0 != 5, 0 != 5, 1 != 7]
    expected = (sum(across) + sum(down)) / (len(across) + len(down))
    assert stage.neighbours_differ(image.reshape(1, -1), (1, 2, 3)) == pytest.approx(expected)
    # colours count together: a pair differs if any colour does
    colour = np.zeros((1, 3, 1, 2), dtype=np.uint8)
    colour[0, 2, 0, 1] = 9
    assert stage.neighbours_differ(colour.reshape(1, -1), (3, 1, 2)) == 1.0
    assert stage.neighbours_differ(np.zeros((2, 16), dtype=np.uint8), (1, 4, 4)) == 0.0


def test_the_pytorch_initialisation_is_pytorch_s_and_ours_the_default():
    default = nets.SigmoidMLP(5, 20, 50, 3, torch.Generator().manual_seed(0))
    ours = nets.SigmoidMLP(5, 20, 50, 3, torch.Generator().manual_seed(0), init="glorot_sigmoid")
    theirs = nets.SigmoidMLP(5, 20, 50, 3, torch.Generator().manual_seed(0), init="pytorch")
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), ours.state_dict().values()))
    first = theirs.hidden[0]
    # PyTorch's default: weights and biases U(−1/√fan_in, 1/√fan_in); ours: U(±4√(6/(fan_in + fan_out))), bias 0
    assert first.weight.abs().max() <= 1 / 20 ** 0.5 and first.bias.abs().max() > 0
    assert ours.hidden[0].weight.abs().max() > 1 / 20 ** 0.5 and not ours.hidden[0].bias.any()
    with pytest.raises(ValueError, match="unknown initialisation"):
        nets.SigmoidMLP(5, 20, 50, 3, init="zeros")


def metrics(variant: str, groups: list[str], baseline: bool, k: float, changes: dict) -> dict:
    return {"variant": variant, "ablation": groups, "baseline": baseline, "dataset": "swiss_roll", "set": changes,
            "n_iterations": 30, "train_seed": 0, "K": k, "K_se": 0.01, "K_minus_L_null": k + 4, "K_minus_L_null_se": 0.02,
            "K_uniform_t": k, "K_uniform_t_se": 0.1, "unit": "bits", "neighbours_differ": None,
            "profile": "smoke"}


def test_the_table_has_a_row_per_ablation_and_variant_baseline_first():
    rows = [metrics("wide", ["network"], False, 1.0, {"net.n_hidden": 128}),
            metrics("base", ["beta", "network"], True, 0.5, {}),
            metrics("beta", ["beta"], False, 0.2, {"diffusion.beta_1": 1e-5})]
    frame = ablation_table.table(rows)
    assert list(zip(frame["ablation"], frame["variant"])) == [
        ("network", "base"), ("network", "wide"), ("beta", "base"), ("beta", "beta")]
    assert list(frame["changes"]) == ["baseline", "net.n_hidden = 128", "baseline", "diffusion.beta_1 = 1e-05"]
    text = ablation_table.markdown(frame)
    network, beta = text.split("## network")[1].split("## beta")
    assert "base (baseline)" in network and "wide" in network and "0.500 ± 0.010" in network
    assert "4.500 ± 0.020" in network and "K, uniform t" not in text  # toys: K is exact, no check column
    assert "base (baseline)" in beta and "diffusion.beta_1 = 1e-05" in beta


def test_a_variant_that_changes_a_fetched_dataset_s_data_is_refused(tmp_path):
    config, s = load(tmp_path, lambda raw: variants(raw)["cifar10_x0"]["set"].update({"data.n_holdout": 40}))
    with pytest.raises(stage.stages.StageError, match="changes cifar10's data"):
        stage.variant_split(config, s, "cifar10_x0", tmp_path / "unused")


def test_a_variant_that_changes_generated_data_makes_its_own_split(tmp_path):
    config, s = load(tmp_path)
    split = stage.variant_split(config, s, "dead_leaves_r_min_1", tmp_path / "unused")  # nothing read from there
    section = s.ablation_section(config, "dead_leaves_r_min_1")
    assert section.data.r_min == 1.0 != config.dead_leaves.data.r_min
    assert split.train.shape == (section.data.n_train, section.data.image_size ** 2)


def test_the_stage_trains_and_evaluates_one_variant_as_the_pipeline_would(tmp_path, monkeypatch):
    """The dead-leaves variant makes its own split, so the stage runs here without any data folder."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(SMOKE, sort_keys=False, allow_unicode=True))
    monkeypatch.chdir(tmp_path)
    torch_threads = torch.get_num_threads()
    try:
        stage.main(["dead_leaves_r_min_1", str(tmp_path / "unused"), str(tmp_path / "out.json"),
                    "--provenance", str(tmp_path / "provenance.json")])
    finally:
        torch.set_num_threads(torch_threads)
    record = json.loads((tmp_path / "out.json").read_text())
    config = cfg.load(params)
    section = studies.load(params, config).ablation_section(config, "dead_leaves_r_min_1")
    assert record["section"] == json.loads(json.dumps(dataclasses.asdict(section)))
    assert record["n_iterations"] == config.dead_leaves.train.n_iterations == record["history"][-1]["iteration"]
    assert record["set"] == {"data.r_min": 1.0} and record["unit"] == "bits/pixel"
    assert abs(record["K_minus_L_null"] - (record["K"] - record["L_null"])) < 1e-9
    assert record["K_se"] > 0 and record["K_minus_L_null_se"] > 0 and 0 < record["neighbours_differ"] < 1
    # what two identical runs differ in is kept out of the record: the commit and the times, the curve by iteration
    assert not {"seconds", "train_seconds", "git_commit"} & set(record)
    assert all("seconds" not in row for row in record["history"])
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["git_commit"] and provenance["seconds"] >= provenance["train_seconds"] > 0
