"""params.yaml validation: each kind of bad file is an error naming the key (with its line where
the file itself is malformed), and no stage writes anything.

Every test fixes its profile (``PROFILE``): none depends on the one the working tree's params.yaml
selects.
"""

import functools
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import dataclasses

from dpm.base import config as cfg
from dpm import studies
from pipeline import check_params
from workflow import cluster

ROOT = Path(__file__).resolve().parents[1]
PROFILE = "smoke"


def params() -> dict:
    """params.yaml of ``PROFILE`` as plain data, composed from conf/ as ``dvc exp run`` does."""
    return cfg.compose([f"profile={PROFILE}"])


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def edit(data: dict, dotted: str, value) -> dict:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return data


def load_edited(tmp_path: Path, *changes: tuple[str, object]) -> cfg.Config:
    """params.yaml with the (dotted key, value) ``changes``, validated as a whole as the gate does
    it (``check_params.load``: ``cfg.load`` and the sections typed elsewhere)."""
    data = params()
    for key, value in changes:
        edit(data, key, value)
    return check_params.load(write(tmp_path, data))[0]


def raises_naming(message: str):
    """pytest.raises(ConfigError) whose message starts with ``message`` (matched literally)."""
    return pytest.raises(cfg.ConfigError, match="^" + re.escape(message))


DELETE = object()


def test_the_shipped_params_load_in_every_profile():
    for profile in cfg.PROFILES:
        c = cfg.load_profile(profile)
        assert c.profile == profile
        assert c.swiss_roll.diffusion.n_steps == 40
        assert c.section("swiss_roll") is c.swiss_roll
    assert cfg.load_profile("paper").heartbeat.diffusion.n_steps == 2000
    assert cfg.load_profile("smoke").heartbeat.diffusion.n_steps == 200
    assert cfg.load_profile("quick", ["heartbeat.diffusion.n_steps=300"]).heartbeat.diffusion.n_steps == 300


def test_params_yaml_is_conf_composed_with_its_profile(tmp_path):
    """The committed params.yaml is what `dvc exp run` composes from the committed conf/ (nobody
    edited it by hand). Both as committed: the README's steps change them in a working copy."""
    def committed(name: str) -> str:
        return subprocess.run(["git", "show", f"HEAD:{name}"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout
    for name in subprocess.run(["git", "ls-files", "conf"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.split():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(committed(name))
    shipped = yaml.safe_load(committed("params.yaml"))
    assert shipped == cfg.compose([f"profile={shipped['profile']}"], tmp_path / "conf")


def test_compose_rejects_an_unknown_profile_or_key():
    with raises_naming("conf/: cannot compose"):
        cfg.compose(["profile=huge"])
    with raises_naming("conf/: cannot compose"):
        cfg.compose(["swiss_roll.train.lr=0.1"])
    with raises_naming("conf/: cannot compose"):
        cfg.compose(["+swiss_roll.train.lr=0.1"])  # Hydra's appending syntax: not ours


@pytest.mark.parametrize("overrides", [[], *([f"profile={p}"] for p in cfg.PROFILES), [
    "profile=paper", "swiss_roll.diffusion.beta_1=1e-5", "swiss_roll.data.noise=.5", "seed_spread.seed_offsets=[3, 4]",
    "device=", "compile=TRUE", "heartbeat.net.init=null", "mnist.train.n_iterations=50"]])
def test_compose_is_what_dvc_composes(overrides, tmp_path):
    """``cfg.compose`` (no Hydra: the library imports without it) gives the values DVC's Hydra
    composition writes into params.yaml (``dvc exp run``, workflow/params.py), read back as the
    stages read it: for every profile, and overrides of every kind of value."""
    from dvc.utils.hydra import compose_and_dump
    out = tmp_path / "params.yaml"
    compose_and_dump(str(out), str(cfg.CONF_DIR), None, "config", str(tmp_path), overrides)
    as_json = functools.partial(json.dumps, sort_keys=True)  # 1, 1.0 and true differ, as they do to the stages
    assert as_json(cfg.compose(overrides)) == as_json(cfg.read_yaml(out))


def test_a_per_profile_mapping_in_params_yaml_says_where_profiles_live_now(tmp_path):
    with raises_naming("swiss_roll.train.n_iterations: a per-profile value"):
        load_edited(tmp_path, ("swiss_roll.train.n_iterations", {"smoke": 1, "quick": 2, "paper": 3}))


def test_a_gpu_request_needs_device_cuda(tmp_path):
    with raises_naming("device: resources.train.gpus is 1"):
        load_edited(tmp_path, ("resources.train.gpus", 1))
    data = edit(edit(params(), "resources.train.gpus", 1), "device", "cuda")
    assert check_params.load(write(tmp_path, data))[1].train.gpus == 1


def test_the_sections_typed_elsewhere_are_required_by_load_and_validated_by_the_gate(tmp_path):
    """``cfg.load`` (every stage) needs the keys of ``ELSEWHERE`` but not their values' types:
    those are the studies' and the cluster's, validated by the gate alone."""
    typed = [f.name for f in dataclasses.fields(studies.Studies)] + ["resources"]
    assert sorted(typed) == sorted(cfg.ELSEWHERE)
    assert {f.name for f in dataclasses.fields(cluster.Resources)} == {"default", "train", "sample"}
    path = write(tmp_path, edit(params(), "seed_spread.seed_offsets", [1, 1]))
    assert cfg.load(path).profile == PROFILE
    with raises_naming("seed_spread.seed_offsets: repeats an offset"):
        check_params.load(path)
    data = params()
    del data["parzen_study"]
    with raises_naming("parzen_study: missing"):
        cfg.load(write(tmp_path, data))


BAD = [
    ("swiss_roll.train.learning_rat", 0.1, "swiss_roll.train.learning_rat: unknown key"),
    ("swiss_roll.train.learning_rate", "fast", "swiss_roll.train.learning_rate: expected a number"),
    ("swiss_roll.train.batch_size", 12.5, "swiss_roll.train.batch_size: expected an integer"),
    ("swiss_roll.train.batch_size", True, "swiss_roll.train.batch_size: expected an integer"),
    ("swiss_roll.diffusion.beta_1", 1.5, "swiss_roll.diffusion.beta_1: expected a value < 1.0"),
    ("swiss_roll.data.noise", 0, "swiss_roll.data.noise: expected a value > 0.0"),
    ("heartbeat.diffusion.schedule", "cosine", "heartbeat.diffusion.schedule: expected one of"),
    ("heartbeat.train.n_iterations", {"smoke": 1, "quick": 2}, "heartbeat.train.n_iterations: a per-profile value"),
    ("heartbeat.net.n_layers", DELETE, "heartbeat.net.n_layers: missing"),
    ("profile", "huge", "profile: expected one of"),
    # smoke: mnist.data.n_train = 500, mnist.parzen.n_validation = 100
    ("mnist.parzen.validation_start", 59500, "mnist.parzen: validation images 59500..59599 are past mnist.data.n_train"),
    ("mnist.parzen.n_centres", 70000, "mnist.parzen.n_centres: 70000 is more than mnist.data.n_train"),
    ("mnist.parzen.n_samples", 0, "mnist.parzen.n_samples: expected a value >= 1"),
]


@pytest.mark.parametrize("key, value, message", BAD, ids=[b[0] + ":" + str(b[1])[:12] for b in BAD])
def test_each_kind_of_bad_value_is_an_error_naming_its_key(tmp_path, key, value, message):
    with raises_naming(message):
        load_edited(tmp_path, (key, value))


@pytest.mark.parametrize("key, value", [
    ("swiss_roll.train.learning_rate", math.nan),
    ("swiss_roll.train.learning_rate", math.inf),
    ("heartbeat.diffusion.beta_1", math.inf),
    ("mnist.net.readout_init", -math.inf),
], ids=["nan", "inf", "beta_inf", "minus_inf"])
def test_a_number_that_is_not_finite_is_an_error_naming_its_key(tmp_path, key, value):
    # YAML's .nan, .inf and -.inf compare false with every bound: a range check alone lets NaN through
    with raises_naming(f"{key}: expected a finite number, got"):
        load_edited(tmp_path, (key, value))


@pytest.mark.parametrize("key, value", [
    ("swiss_roll.data.seed", 2 ** 70),
    ("heartbeat.train.n_iterations", 2 ** 31),
    ("mnist.eval.seed", -2 ** 40),
])
def test_an_integer_too_large_for_torch_and_numpy_is_an_error_naming_its_key(tmp_path, key, value):
    with raises_naming(f"{key}: {value} is too large (at most {2 ** 31 - 1})"):
        load_edited(tmp_path, (key, value))
    assert load_edited(tmp_path, ("swiss_roll.data.seed", 2 ** 31 - 1)).swiss_roll.data.seed == 2 ** 31 - 1


@pytest.mark.parametrize("key", ["swiss_roll.diffusion.beta_1", "mnist.diffusion.beta_1"])
def test_beta_1_of_one_is_an_error(tmp_path, key):
    # β_1 = 1 destroys the data in one step: √(1 − β_1) = 0; the interval is open at both ends
    with raises_naming(f"{key}: expected a value < 1.0, got 1.0"):
        load_edited(tmp_path, (key, 1.0))
    with raises_naming(f"{key}: expected a value > 0.0, got 0.0"):
        load_edited(tmp_path, (key, 0.0))


def test_a_heartbeat_period_longer_than_the_sequence_is_an_error(tmp_path):
    with raises_naming("heartbeat.data.period: 100 is more than n_bits (20)"):
        load_edited(tmp_path, ("heartbeat.data.n_bits", 20), ("heartbeat.data.period", 100))
    fits = load_edited(tmp_path, ("heartbeat.data.n_bits", 20), ("heartbeat.data.period", 20))
    assert fits.heartbeat.data.period == 20


@pytest.mark.parametrize("source, holdout_rows", [("stand_in", 128), ("bark", 120)])
def test_a_bark_patch_larger_than_the_holdout_strip_is_an_error(tmp_path, source, holdout_rows):
    # a quarter of the 512-row stand-ins is 128 rows, of the 480-row UIUC photographs 120
    change = [("bark.data.source", source), ("bark.data.holdout_fraction", 0.25)]
    too_large = holdout_rows + 2  # even, so that the network's coarsest scale is not what fails
    with raises_naming(f"bark.data.patch_size: {too_large} does not fit the {source} photographs"):
        load_edited(tmp_path, *change, ("bark.data.patch_size", too_large))
    assert load_edited(tmp_path, *change, ("bark.data.patch_size", holdout_rows)).bark.data.patch_size == holdout_rows


def test_a_cifar10_subset_larger_than_the_mirror_s_4000_images_is_an_error_at_load(tmp_path, monkeypatch):
    # nothing is fetched to find out: the mirror is not even at hand
    monkeypatch.setenv("DPM_DATA_MIRROR", str(tmp_path / "no-mirror"))
    sizes = [("cifar10.data.source", "subset"), ("cifar10.data.n_holdout", 1000)]
    with raises_naming("cifar10.data.n_train: n_train + n_holdout = 4500 exceeds the 4000 images of the subset"):
        load_edited(tmp_path, *sizes, ("cifar10.data.n_train", 3500))
    assert load_edited(tmp_path, *sizes, ("cifar10.data.n_train", 3000)).cifar10.data.n_train == 3000
    full = load_edited(tmp_path, *sizes, ("cifar10.data.source", "full"), ("cifar10.data.n_train", 3500))
    assert full.cifar10.data.n_train == 3500
    assert not (tmp_path / "no-mirror").exists()


def test_an_image_side_not_divisible_by_the_coarsest_scale_is_an_error_naming_the_net_key(tmp_path):
    with raises_naming("dead_leaves.net.n_scales: 3 scales need image sides divisible by 4, got 18×18"):
        load_edited(tmp_path, ("dead_leaves.data.image_size", 18), ("dead_leaves.net.n_scales", 3))
    assert load_edited(tmp_path, ("dead_leaves.data.image_size", 20),
                       ("dead_leaves.net.n_scales", 3)).dead_leaves.data.image_size == 20
    # MNIST's 28×28 and four scales: fine without a convolutional pathway, not with one
    dense_only = [("mnist.net.n_scales", 4), ("mnist.net.conv_layers", 0), ("mnist.net.dense_out", 2)]
    assert load_edited(tmp_path, *dense_only).mnist.net.n_scales == 4
    with raises_naming("mnist.net.n_scales: 4 scales need image sides divisible by 8, got 28×28"):
        load_edited(tmp_path, *dense_only, ("mnist.net.conv_layers", 1))


def params_lines() -> list[str]:
    return yaml.safe_dump(params(), sort_keys=False).splitlines()


def test_a_key_written_twice_is_an_error_with_its_line(tmp_path):
    lines = params_lines()
    noise = lines.index("    noise: 0.0226")  # swiss_roll.data.noise
    lines.insert(noise + 1, "    noise: 0.5")
    path = tmp_path / "params.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(cfg.ConfigError, match=re.escape(
            f"line {noise + 2}: key 'noise' appears twice in one mapping (first on line {noise + 1})")):
        cfg.load(path)
    # at the top level, too
    path.write_text("\n".join(params_lines()) + "\nprofile: paper\n")
    twice = "key 'profile' appears twice in one mapping (first on line 1)"
    with pytest.raises(cfg.ConfigError, match=re.escape(twice)):
        cfg.load(path)


def test_a_yaml_syntax_error_is_one_line_with_its_line_number(tmp_path):
    lines = params_lines()
    noise = lines.index("    noise: 0.0226")
    lines[noise] = "    noise: 0.0226: 1"
    path = tmp_path / "params.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(cfg.ConfigError) as error:
        cfg.load(path)
    message = str(error.value)
    assert message.startswith(f"{path}: not valid YAML: line {noise + 1}, column ")
    assert "\n" not in message


@pytest.mark.parametrize("text, message", [
    ("? [a, b]\n: 1\n", "line 1: a key must be a plain value"),
    ("x: {a: 1, a: 2}\n", "line 1: key 'a' appears twice"),
])
def test_odd_keys_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(cfg.ConfigError, match=re.escape(message)):
        cfg.load(path)


def test_a_merge_key_may_be_overridden_as_yaml_allows(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("a: &base {b: 1, c: 2}\nd:\n  <<: *base\n  b: 3\n")
    assert cfg.read_yaml(path) == {"a": {"b": 1, "c": 2}, "d": {"b": 3, "c": 2}}


def test_a_number_too_large_for_a_float_is_an_error_naming_its_key(tmp_path):
    data = params()
    data["swiss_roll"]["train"]["learning_rate"] = 10 ** 400
    with raises_naming("swiss_roll.train.learning_rate: 1000"):
        cfg.load(write(tmp_path, data))


def test_a_file_that_is_not_yaml_is_an_error(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile: [quick\n")
    with pytest.raises(cfg.ConfigError, match="not valid YAML"):
        cfg.load(path)


@pytest.mark.parametrize("mapping, extra, message", [
    ("", {"imagenet": {"data": {}}}, "imagenet: unknown key"),
    ("swiss_roll.net", {"n_hiden": 16}, "swiss_roll.net.n_hiden: unknown key"),
    ("mnist.parzen", {"n_sample": 16}, "mnist.parzen.n_sample: unknown key"),
    ("bark.train", {"extra": {"deeper": 1}}, "bark.train.extra: unknown key"),
    # keys YAML reads as a number or null sort beside strings: the error still names the first
    ("cifar10.train", {1: 2, None: 3, "zz": 4}, "cifar10.train.1: unknown key"),
    ("resources.train", {"gpu": 1}, "resources.train.gpu: unknown key"),
], ids=["top", "net", "parzen", "nested", "non_string", "resources"])
def test_an_unknown_key_anywhere_is_an_error_naming_it(tmp_path, mapping, extra, message):
    data = params()
    node = data
    for part in mapping.split(".") if mapping else []:
        node = node[part]
    node.update(extra)
    with raises_naming(message):
        check_params.load(write(tmp_path, data))


def test_an_unknown_override_is_an_error(tmp_path):
    with raises_naming("swiss_roll.train.lr: unknown key"):
        cfg.load(write(tmp_path, params()), {"swiss_roll.train.lr": 0.1})


def stage_tree(tmp_path: Path, data: dict) -> Path:
    """A copy of the library and the stages in ``tmp_path``, with ``data`` as its params.yaml."""
    shutil.copytree(ROOT / "dpm", tmp_path / "dpm")
    shutil.copytree(ROOT / "pipeline", tmp_path / "pipeline")
    write(tmp_path, data)
    return tmp_path


def run_stage(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.pipeline
def test_a_stage_with_bad_params_exits_non_zero_and_writes_nothing(tmp_path):
    stage_tree(tmp_path, edit(params(), "swiss_roll.data.n_train", -5))
    result = run_stage(tmp_path, "pipeline.data", "swiss_roll", "data/swiss_roll")
    assert result.returncode == 1
    assert "error: swiss_roll.data.n_train: expected a value >= 2, got -5" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_check_params_rejects_a_nan_learning_rate_in_one_line_and_writes_nothing(tmp_path):
    stage_tree(tmp_path, edit(params(), "swiss_roll.train.learning_rate", math.nan))
    result = run_stage(tmp_path, "pipeline.check_params", "data/params.ok")
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: swiss_roll.train.learning_rate: expected a finite number, got nan"]
    assert not (tmp_path / "data").exists()


def test_check_params_writes_its_file_for_valid_params_and_leaves_it_alone_after(tmp_path):
    stage_tree(tmp_path, params())
    out = tmp_path / "data" / "params.ok"
    result = run_stage(tmp_path, "pipeline.check_params", "data/params.ok")
    assert result.returncode == 0, result.stderr
    assert out.read_text() == check_params.VERDICT
    written = out.stat().st_mtime_ns
    assert run_stage(tmp_path, "pipeline.check_params", "data/params.ok").returncode == 0
    assert out.stat().st_mtime_ns == written  # unchanged: the stages below it need not rerun


@pytest.mark.parametrize("key, value, shown", [("heartbeat.likelihood.n_repeats", 1, "got 1"),
                                               ("heartbeat.likelihood.kl_repeats", 1, "got 1"),
                                               ("heartbeat.likelihood.n_trajectories", 10, "got 1 group")])
def test_a_heartbeat_estimate_of_one_draw_is_refused_when_the_params_are_read(tmp_path, key, value, shown):
    """The heartbeat's holdout repeats its sequences, whose estimates need 2 draws for their noise:
    one draw is refused by validation, naming the key, not by the likelihood stage at run time."""
    with raises_naming(f"{key}: the heartbeat's holdout repeats its sequences") as error:
        load_edited(tmp_path, (key, value))
    assert shown in str(error.value)
