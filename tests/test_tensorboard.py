"""TensorBoard runs compare: each training run keeps its own folder, a resumed run continues in
its folder, the params are hparams the HParams view reads (its own code, run in-process); the
learning curve is drawn as a PNG."""

import functools
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

from dpm.base import config as cfg
from dpm.report import curves
from dpm.run import tensorboard
from dpm.data.split import DataInfo
from dpm.core.schedules import LearnedSchedule
from dpm.run.train import Run, fit, load_checkpoint, seal
from pipeline import curves as curves_stage
from tests.test_bound import gaussian_model
from tests.test_train import TOY, TRAIN_CONFIG, make_project, stage_args, with_

NAME = "swiss_roll"
TIMESTAMP = re.compile(r"\d{8}T\d{6}Z")


class Interrupted(Exception):
    """Stands for a killed process."""


def train(folder: Path, **env: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pipeline.train", *stage_args(NAME)], cwd=folder,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **env}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def set_iterations(folder: Path, n_iterations: int) -> None:
    params = yaml.safe_load((folder / "params.yaml").read_text())
    params[NAME]["train"]["n_iterations"] = n_iterations
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hparams_view(logdir: Path) -> dict[str, tuple[dict, dict]]:
    """What TensorBoard's HParams view lists: run → (hparams, metric tag → last value)."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    backend = backend_context.Context(base_plugin.TBContext(data_provider=provider, logdir=str(logdir)))
    request = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=100,
                                               allowed_statuses=list(api_pb2.Status.values()))
    groups = list_session_groups.Handler(context.RequestContext(), backend, "", request).run().session_groups
    return {g.name: ({k: _value(v) for k, v in g.hparams.items()}, {m.name.tag: m.value for m in g.metric_values})
            for g in groups}


def _value(value):
    return value.string_value if value.HasField("string_value") else value.number_value


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A smoke project trained three times: fresh, again (resuming its final checkpoint), then
    with other params under a DVC experiment's name; the run folders after each."""
    folder = make_project(tmp_path_factory.mktemp("tensorboard"), 10)
    runs, folders = folder / "runs" / NAME, []
    for n_iterations, env in ((10, {}), (10, {}), (20, {tensorboard.EXPERIMENT_NAME: "bushy-pots"})):
        set_iterations(folder, n_iterations)
        train(folder, **env)
        folders.append(snapshot(runs))
    return folder, folders


@pytest.mark.pipeline
def test_each_training_run_keeps_its_own_folder_and_a_rerun_resumes_in_its_own(project):
    folder, (first, rerun, experiment) = project
    names = sorted({path.split("/")[0] for path in experiment})
    assert len(names) == 2 and "bushy-pots" in names
    (fresh,) = {path.split("/")[0] for path in first}
    assert TIMESTAMP.fullmatch(fresh) and fresh in names
    assert {path.split("/")[0] for path in rerun} == {fresh}  # resumed from its checkpoint: same folder
    assert {k: v for k, v in experiment.items() if k.startswith(fresh)} == rerun  # never touched again


@pytest.mark.pipeline
def test_the_params_are_hparams_of_the_run_and_its_metrics_are_the_curves_last_values(project):
    folder, _ = project
    view = hparams_view(folder / "runs" / NAME)
    assert set(view) == {p.name for p in (folder / "runs" / NAME).iterdir()}  # one row per run, no sub-runs
    params, metrics = view["bushy-pots"]
    (earlier,) = set(view) - {"bushy-pots"}  # the first run, side by side with its own values
    assert view[earlier][0]["train.n_iterations"] == 10
    assert view[earlier][1]["holdout/K_bits"] != metrics["holdout/K_bits"]
    config = cfg.load(folder / "params.yaml")
    section = config.section(NAME)
    assert params["train.n_iterations"] == 20 and params["train.learning_rate"] == pytest.approx(0.01)
    assert params["net.n_hidden"] == section.net.n_hidden and params["diffusion.schedule"] == section.diffusion.schedule
    assert params["data.n_train"] == section.data.n_train
    assert params["dataset"] == NAME and params["profile"] == "smoke" and params["device"] == config.device
    assert params["hardware"].startswith(("CPU", "NVIDIA"))
    last = pd.read_csv(folder / f"results/curves/{NAME}.csv").iloc[-1]
    assert last["iteration"] == 20
    assert metrics["holdout/K_bits"] == pytest.approx(last["holdout_K_bits"], rel=1e-5)
    assert metrics["train/loss_bits"] == pytest.approx(last["train_loss_bits"], rel=1e-5)


@pytest.mark.pipeline
def test_the_curves_stage_draws_the_csv_as_a_png(project):
    folder, _ = project
    curves_stage.main([NAME, str(folder / f"data/{NAME}"), str(folder / f"results/curves/{NAME}.csv"),
                       str(folder / f"results/curves/{NAME}.png")])
    png = (folder / f"results/curves/{NAME}.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
    table = pd.read_csv(folder / f"results/curves/{NAME}.csv")
    assert re.fullmatch(r"swiss roll learning curve \(smoke profile, (CPU|NVIDIA).+\)",
                        curves_stage.title("swiss roll", table))


def test_the_curve_is_titled_with_the_datas_label_and_unit(tmp_path, monkeypatch):
    """The bark stand-in's curve says "texture stand-in", as every table and figure does."""
    (tmp_path / "data").mkdir()
    info = DataInfo(label="texture stand-in", unit="bits/pixel", n_dims=64, n_units=64, image_shape=(1, 8, 8))
    (tmp_path / "data/meta.json").write_text(json.dumps(info.to_json()))
    pd.DataFrame({c: [10, 20] for c in curves.COLUMNS}).assign(profile="quick").to_csv(tmp_path / "curve.csv")
    drawn = []
    monkeypatch.setattr(curves, "learning_curve_figure",
                        lambda curve, unit, title: drawn.append((unit, title)) or curves.Figure())
    curves_stage.main(["bark", str(tmp_path / "data"), str(tmp_path / "curve.csv"), str(tmp_path / "curve.png")])
    assert drawn == [("bits/pixel", "texture stand-in learning curve (quick profile)")]


def test_an_interrupted_run_resumes_in_its_own_folder_without_the_events_it_logs_again(tmp_path):
    """Interrupted after logging step 15 (its last checkpoint: 10), resumed under another proposed
    name: one folder, every step once, the hparams read back from it."""
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    c = with_(TRAIN_CONFIG, n_iterations=20)
    params = {"train.learning_rate": c.learning_rate, "profile": "smoke"}
    runs = tmp_path / "runs"

    def interrupt(model, writer, iteration):
        if iteration == 15:
            raise Interrupted

    def run(name, log_samples=None):
        return Run(checkpoint_dir=tmp_path / "checkpoints", fingerprint="f", name=name, progress=False,
                   open_writer=functools.partial(tensorboard.open_writer, runs, params), log_samples=log_samples)

    interrupted = run("first", interrupt)
    with pytest.raises(Interrupted):
        fit(gaussian_model(LearnedSchedule(8, 0.01)), TOY, x, x[:64], c, interrupted)
    interrupted.writer.close()
    resumed = run("second")
    history = fit(gaussian_model(LearnedSchedule(8, 0.01)), TOY, x, x[:64], c, resumed)
    assert resumed.name == "first" and [p.name for p in runs.iterdir()] == ["first"]
    events = EventAccumulator(str(runs / "first"))
    events.Reload()
    k_bits = events.Scalars("holdout/K_bits")
    assert [e.step for e in k_bits] == [5, 10, 15, 20]
    assert [e.value for e in k_bits] == pytest.approx([row["holdout_K_bits"] for row in history], rel=1e-5)
    params_seen, metrics = hparams_view(runs)["first"]
    assert params_seen == params and metrics["holdout/K_bits"] == pytest.approx(k_bits[-1].value)


def test_a_checkpoint_that_saved_no_name_resumes_in_a_fresh_folder(tmp_path):
    """Checkpoints written before runs had names: the run continues under the name it was given."""
    x = torch.randn(256, 2)
    first = Run(checkpoint_dir=tmp_path, fingerprint="f", progress=False)
    fit(gaussian_model(LearnedSchedule(8, 0.01)), TOY, x, x[:64], TRAIN_CONFIG, first)
    saved = load_checkpoint(first.checkpoint)
    torch.save(seal({k: v for k, v in saved.items() if k != "name"}), first.checkpoint)
    names = []
    resumed = Run(checkpoint_dir=tmp_path, fingerprint="f", name="given", progress=False,
                  open_writer=lambda name, resumed_from: names.append((name, resumed_from)))
    fit(gaussian_model(LearnedSchedule(8, 0.01)), TOY, x, x[:64], TRAIN_CONFIG, resumed)
    assert names == [("given", 10)]


def test_a_run_is_named_by_the_dvc_experiment_else_by_the_utc_time_and_never_reuses_a_folder(tmp_path):
    now = datetime(2026, 12, 1, 10, 30, 5, tzinfo=timezone.utc)
    assert tensorboard.run_name(tmp_path, {}, now) == "20261201T103005Z"
    assert tensorboard.run_name(tmp_path, {"DVC_EXP_NAME": "bushy-pots"}, now) == "bushy-pots"
    (tmp_path / "bushy-pots").mkdir()
    (tmp_path / "bushy-pots-2").mkdir()
    assert tensorboard.run_name(tmp_path, {"DVC_EXP_NAME": "bushy-pots"}, now) == "bushy-pots-3"
    for bad in ("a/b", ".."):
        with pytest.raises(ValueError, match="DVC_EXP_NAME"):
            tensorboard.run_name(tmp_path, {"DVC_EXP_NAME": bad}, now)


def test_an_experiment_in_a_temporary_copy_logs_into_the_projects_own_runs(tmp_path):
    """`dvc exp run --temp`/`--queue` run in <project>/.dvc/tmp/exps/<copy>, which is deleted after."""
    project = tmp_path / "project"
    assert tensorboard.runs_folder("runs/mnist", project / ".dvc/tmp/exps/tmpab12cd") == project / "runs/mnist"
    assert tensorboard.runs_folder("runs/mnist", project / ".dvc/tmp/exps/standalone/tmpx") == project / "runs/mnist"
    assert tensorboard.runs_folder("runs/mnist", project) == Path("runs/mnist")
    copy = project / ".dvc/tmp/exps/tmpab12cd"
    assert tensorboard.runs_folder(tmp_path / "elsewhere", copy) == tmp_path / "elsewhere"


def test_params_flatten_to_dotted_keys_the_hparams_plugin_can_hold():
    flat = tensorboard.flat_params({"train": TRAIN_CONFIG, "net": {"sizes": [1, 2], "inner": {"k": None}}},
                                   profile="smoke")
    assert flat["train.learning_rate"] == TRAIN_CONFIG.learning_rate and flat["profile"] == "smoke"
    assert flat["net.sizes"] == "[1, 2]" and flat["net.inner.k"] == "None"


def test_the_curve_columns_drawn_are_those_training_logs(tmp_path):
    x = torch.randn(256, 2)
    history = fit(gaussian_model(LearnedSchedule(8, 0.01)), TOY, x, x[:64], TRAIN_CONFIG,
                  Run(checkpoint_dir=tmp_path, fingerprint="f", progress=False))
    assert set(curves.COLUMNS) <= set(history[0])
    columns = {c: np.array([row[c] for row in history]) for c in curves.COLUMNS}
    assert curves.learning_curve_figure(columns, "bits", "toy").axes


def test_a_curve_without_profile_or_hardware_is_titled_by_its_data_alone():
    assert curves_stage.title("MNIST", pd.DataFrame({"iteration": [1]})) == "MNIST learning curve"
