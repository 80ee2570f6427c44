"""Training: an interrupted run resumes to the same parameters; a NaN stops it cleanly; outputs are atomic."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from dpm import config as cfg
from dpm.atomic import atomic_path
from dpm.train import Run, TrainingDiverged, fit
from tests.test_bound import gaussian_model
from dpm.schedules import LearnedSchedule

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["swiss_roll", "data/swiss_roll", "checkpoints/swiss_roll", "runs/swiss_roll", "models/swiss_roll.pt",
         "results/curves/swiss_roll.csv"]


def make_project(folder: Path, n_iterations: int) -> Path:
    """A copy of the code with a smoke-profile params.yaml and the swiss-roll data made."""
    shutil.copytree(ROOT / "dpm", folder / "dpm")
    shutil.copytree(ROOT / "pipeline", folder / "pipeline")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["profile"] = "smoke"
    params["swiss_roll"]["train"].update(n_iterations=n_iterations, checkpoint_every=10, log_every=10,
                                        lr_decay_every=40)
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run([sys.executable, "-m", "pipeline.data", "swiss_roll", "data/swiss_roll"], cwd=folder, check=True)
    return folder


def stage(folder: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "pipeline.train", *args], cwd=folder, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_killed_run_resumes_and_ends_with_the_same_parameters(tmp_path):
    n_iterations = 120
    whole = make_project(tmp_path / "whole", n_iterations)
    assert stage(whole, *TRAIN).wait() == 0
    broken = make_project(tmp_path / "broken", n_iterations)
    checkpoint = broken / "checkpoints/swiss_roll/checkpoint.pt"
    process = stage(broken, *TRAIN)
    deadline = time.time() + 120
    while time.time() < deadline and not _iteration_at_least(checkpoint, 20):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = torch.load(checkpoint, weights_only=False)["iteration"]
    assert 20 <= killed_at < n_iterations, "the run was not interrupted part-way"
    assert not (broken / "models/swiss_roll.pt").exists()
    assert stage(broken, *TRAIN).wait() == 0
    final_whole = torch.load(whole / "models/swiss_roll.pt", weights_only=False)["model"]
    final_broken = torch.load(broken / "models/swiss_roll.pt", weights_only=False)["model"]
    for name, value in final_whole.items():
        assert torch.equal(value, final_broken[name]), name


def _iteration_at_least(checkpoint: Path, iteration: int) -> bool:
    try:
        return torch.load(checkpoint, weights_only=False)["iteration"] >= iteration
    except (FileNotFoundError, EOFError, RuntimeError):
        return False


TRAIN_CONFIG = cfg.TrainConfig(n_iterations=10, batch_size=32, learning_rate=0.01, lr_decay=0.5, lr_decay_every=5,
                               checkpoint_every=5, log_every=5, n_log_examples=64, n_log_samples=10, seed=0)


def test_a_nan_stops_training_naming_the_iteration_and_keeps_the_last_checkpoint(tmp_path):
    model = gaussian_model(LearnedSchedule(8, 0.01), 0.0)
    x = torch.randn(256, 2)
    run = Run(checkpoint=tmp_path / "checkpoint.pt", fingerprint="f", progress=False)
    fit(model, x, x[:64], TRAIN_CONFIG, run)
    saved = torch.load(run.checkpoint, weights_only=False)
    longer = cfg.TrainConfig(**{**TRAIN_CONFIG.__dict__, "n_iterations": 20})
    with pytest.raises(TrainingDiverged, match="at iteration 11"):
        fit(model, torch.full_like(x, float("nan")), x[:64], longer, run)
    kept = torch.load(run.checkpoint, weights_only=False)
    assert kept["iteration"] == 10
    for name, value in saved["model"].items():
        assert torch.equal(value, kept["model"][name])


def test_a_checkpoint_of_another_configuration_is_not_resumed(tmp_path):
    x = torch.randn(256, 2)
    first = Run(checkpoint=tmp_path / "checkpoint.pt", fingerprint="a", progress=False)
    history = fit(gaussian_model(LearnedSchedule(8, 0.01)), x, x[:64], TRAIN_CONFIG, first)
    other = Run(checkpoint=tmp_path / "checkpoint.pt", fingerprint="b", progress=False)
    assert fit(gaussian_model(LearnedSchedule(8, 0.01)), x, x[:64], TRAIN_CONFIG, other)[0]["iteration"] == 5
    assert len(history) == 2


def test_a_failed_write_leaves_neither_the_target_nor_a_temporary_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
