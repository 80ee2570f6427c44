"""params.yaml validation: each kind of bad file is an error naming the key, and no stage writes anything."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dpm import config as cfg

ROOT = Path(__file__).resolve().parents[1]


def params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_shipped_params_load_in_every_profile():
    for profile in cfg.PROFILES:
        c = cfg.load(ROOT / "params.yaml", {"profile": profile})
        assert c.profile == profile
        assert c.swiss_roll.diffusion.n_steps == 40
    assert cfg.load(ROOT / "params.yaml", {"profile": "paper"}).heartbeat.diffusion.n_steps == 2000


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


DELETE = object()

BAD = [
    ("swiss_roll.train.learning_rat", 0.1, "swiss_roll.train.learning_rat: unknown key"),
    ("swiss_roll.train.learning_rate", "fast", "swiss_roll.train.learning_rate: expected a number"),
    ("swiss_roll.train.batch_size", 12.5, "swiss_roll.train.batch_size: expected an integer"),
    ("swiss_roll.train.batch_size", True, "swiss_roll.train.batch_size: expected an integer"),
    ("swiss_roll.diffusion.beta_1", 1.5, "swiss_roll.diffusion.beta_1: expected a value <= 1.0"),
    ("swiss_roll.data.noise", 0, "swiss_roll.data.noise: expected a value > 0.0"),
    ("heartbeat.diffusion.schedule", "cosine", "heartbeat.diffusion.schedule: expected one of"),
    ("heartbeat.train.n_iterations", {"smoke": 1, "quick": 2}, "heartbeat.train.n_iterations: a per-profile value"),
    ("heartbeat.net.n_layers", DELETE, "heartbeat.net.n_layers: missing"),
    ("profile", "huge", "profile: expected one of"),
    ("mnist.parzen.validation_start", 59500, "mnist.parzen: validation images 59500..60499 are past mnist.data.n_train"),
    ("mnist.parzen.n_centres", 70000, "mnist.parzen.n_centres: 70000 is more than mnist.data.n_train"),
    ("mnist.parzen.n_samples", 0, "mnist.parzen.n_samples: expected a value >= 1"),
]


@pytest.mark.parametrize("key, value, message", BAD, ids=[b[0] + ":" + str(b[1])[:12] for b in BAD])
def test_each_kind_of_bad_value_is_an_error_naming_its_key(tmp_path, key, value, message):
    path = write(tmp_path, edit(params(), key, value))
    with pytest.raises(cfg.ConfigError, match=message.replace("(", r"\(")):
        cfg.load(path)


def test_a_file_that_is_not_yaml_is_an_error(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile: [quick\n")
    with pytest.raises(cfg.ConfigError, match="not valid YAML"):
        cfg.load(path)


def test_an_unknown_override_is_an_error():
    with pytest.raises(cfg.ConfigError, match="swiss_roll.train.lr: unknown key"):
        cfg.load(ROOT / "params.yaml", {"swiss_roll.train.lr": 0.1})


def test_a_stage_with_bad_params_exits_non_zero_and_writes_nothing(tmp_path):
    shutil.copytree(ROOT / "dpm", tmp_path / "dpm")
    shutil.copytree(ROOT / "pipeline", tmp_path / "pipeline")
    write(tmp_path, edit(params(), "swiss_roll.data.n_train", -5))
    result = subprocess.run([sys.executable, "-m", "pipeline.data", "swiss_roll", "data/swiss_roll"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    assert "error: swiss_roll.data.n_train: expected a value >= 2, got -5" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()
