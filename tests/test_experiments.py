"""`dvc exp run` on the smoke project: what it records, the profile it composes on, a refused
experiment, and TensorBoard's runs across experiments. Each test in a fresh copy of the project."""

import json
import subprocess

import pytest
import yaml

from tests.smoke import commit_all, copy_project, run, set_param, tool

pytestmark = pytest.mark.pipeline  # minutes each: `pytest -m "not pipeline"` leaves them out


def test_dvc_exp_run_records_the_values_each_stage_used(tmp_path):
    """`dvc exp run -S profile=smoke` composes params.yaml from conf/: `dvc exp show` and
    `dvc params diff` show the effective values, not the profile's name alone."""
    folder = copy_project(tmp_path)
    run(folder, "python", "-m", "workflow.params", "profile=quick")
    commit_all(folder, "quick")
    run(folder, tool("dvc"), "exp", "run", "-S", "profile=smoke", "-n", "smoke-exp", "data@swiss_roll")
    assert yaml.safe_load((folder / "params.yaml").read_text())["swiss_roll"]["train"]["n_iterations"] == 100
    diff = json.loads(run(folder, tool("dvc"), "params", "diff", "--json"))["params.yaml"]
    assert (diff["profile"]["old"], diff["profile"]["new"]) == ("quick", "smoke")
    n_iterations = diff["swiss_roll.train.n_iterations"]
    assert (n_iterations["old"], n_iterations["new"]) == (8000, 100)
    table = run(folder, tool("dvc"), "exp", "show", "--csv", "--only-changed").splitlines()
    header = table[0].split(",")
    rows = {row.split(",")[header.index("Experiment")]: row.split(",") for row in table[1:]}
    assert rows["smoke-exp"][header.index("swiss_roll.train.n_iterations")] == "100"


def test_dvc_exp_run_composes_on_the_profile_the_project_is_set_to(tmp_path):
    """`python -m workflow.params profile=<name>` records the profile in conf/config.yaml's
    defaults list, so `dvc exp run -S key=value` composes on it (not on the shipped quick)."""
    folder = copy_project(tmp_path)  # `python -m workflow.params profile=smoke`, uncommitted below
    run(folder, "python", "-m", "workflow.params", "profile=quick")
    commit_all(folder, "quick")
    run(folder, "python", "-m", "workflow.params", "profile=smoke")
    run(folder, tool("dvc"), "exp", "run", "-S", "swiss_roll.train.learning_rate=0.02", "check_params")
    composed = yaml.safe_load((folder / "params.yaml").read_text())
    assert composed["profile"] == "smoke" and composed["swiss_roll"]["train"]["n_iterations"] == 100
    assert composed["swiss_roll"]["train"]["learning_rate"] == 0.02


def test_a_refused_experiment_leaves_params_yaml_as_it_was(tmp_path):
    """`dvc exp run -S` writes its composition over params.yaml before any stage runs; when
    check_params refuses it, the file the user had (a hand edit, uncommitted) is put back."""
    folder = copy_project(tmp_path)
    commit_all(folder, "smoke", allow_empty=True)
    set_param(folder, "heartbeat.train.learning_rate", 0.03)  # a hand edit
    edited = (folder / "params.yaml").read_text()
    output = run(folder, tool("dvc"), "exp", "run", "-S", "swiss_roll.train.n_iterations=abc", fail=True)
    assert "error: swiss_roll.train.n_iterations:" in output and "params.yaml is back as it was" in output
    assert (folder / "params.yaml").read_text() == edited
    assert run(folder, "git", "diff", "--cached", "--name-only") == ""  # nothing of it staged either
    run(folder, tool("dvc"), "repro", "check_params")  # the hand edit is still the user's to run


def test_tensorboard_keeps_every_experiments_run_through_exp_apply_and_checkout(tmp_path):
    """TensorBoard's runs are no DVC output: applying an earlier experiment, a checkout or a rerun
    leaves the later experiments' runs beside it."""
    folder = copy_project(tmp_path)
    (folder / "dvc.lock").unlink(missing_ok=True)  # only the stages run here are recorded
    commit_all(folder, "smoke")
    run(folder, tool("dvc"), "exp", "run", "-n", "first", "-S", "profile=smoke", "train@swiss_roll")
    run(folder, tool("dvc"), "exp", "run", "-n", "second", "-S", "profile=smoke",
        "-S", "swiss_roll.train.learning_rate=0.02", "train@swiss_roll")
    runs = folder / "runs/swiss_roll"
    assert {p.name for p in runs.iterdir()} == {"first", "second"}
    applied = subprocess.run([tool("dvc"), "exp", "apply", "first"], cwd=folder, capture_output=True, text=True)
    assert "swiss_roll" not in applied.stdout + applied.stderr  # DVC may not check out the stages never run
    assert yaml.safe_load((folder / "params.yaml").read_text())["swiss_roll"]["train"]["learning_rate"] != 0.02
    run(folder, tool("dvc"), "checkout", "train@swiss_roll")
    assert {p.name for p in runs.iterdir()} == {"first", "second"}
    assert all(list((runs / name).glob("events.out.tfevents.*")) for name in ("first", "second"))
