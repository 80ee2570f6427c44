"""The benchmark: one row of positive figures per model on the smoke profile; the command writes
JSON and Markdown; an unknown dataset is an error naming it."""

import json
import math
from pathlib import Path

import pytest
import torch

from dpm.base import config as cfg, registry
from dpm.core import model as models
from dpm import synthetic
from tools import bench

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
FAST = {"profile": "smoke", "device": "cpu", "seconds": 0.2, "paper_batch": 2}


@pytest.mark.pipeline
def test_one_row_per_dataset_with_positive_figures():
    rows = bench.benchmark(PARAMS, datasets=["swiss_roll", "dead_leaves"], **FAST)
    assert [row["dataset"] for row in rows] == ["swiss_roll", "dead_leaves"]
    for row in rows:
        assert row["n_parameters"] > 0
        assert row["train_examples_per_s"] > 0 and row["train_steps_timed"] >= bench.MIN_TRAIN_STEPS
        assert row["sample_seconds_per_example"] > 0 and 2 <= row["sample_steps_run"] <= row["T"]
        assert row["batched_sample_seconds_per_example"] > 0 and row["sample_batch_size"] >= 1
        assert row["eval_seconds_per_example"] > 0 and row["eval_projected_seconds"] > 0
        assert row["peak_memory_mib"] >= 0
        assert row["device"].startswith("CPU") and row["profile"] == "smoke"
        assert row["paper_train_hours"] > 0 and row["paper_measured_batch"] == 2


@pytest.mark.parametrize("name", registry.NAMES)
def test_synthetic_data_has_the_model_shape(name):
    section = cfg.load_profile("smoke").section(name)
    info = synthetic.data_info(name, section)
    x = synthetic.draw(info, 3, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert x.shape == (3, info.n_dims)
    assert info.is_image == registry.get(name).is_image
    if info.is_image:
        assert info.image_shape == section.data.image_shape() and info.n_dims == math.prod(info.image_shape)
    if name == "heartbeat":
        assert set(x.unique().tolist()) <= {0.0, 1.0}
    # the model the benchmark times is the one the pipeline builds from that section
    model = models.build(registry.get(name).model, section, info, seed=0)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_many_samples_are_drawn_in_the_parzen_batch_where_there_is_one():
    config = cfg.load_profile("smoke")
    assert bench.sample_batch_size(config.mnist) == config.mnist.parzen.batch_size
    assert bench.sample_batch_size(config.cifar10) == config.cifar10.eval.batch_size


@pytest.mark.pipeline
def test_command_writes_json_and_markdown(tmp_path, capsys):
    out = tmp_path / "bench" / "smoke-cpu.json"
    bench.main(["--params", str(PARAMS), "--profile", "smoke", "--datasets", "swiss_roll", "--device", "cpu",
                "--seconds", "0.1", "--paper-batch", "2", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert [row["dataset"] for row in saved["rows"]] == ["swiss_roll"]
    assert saved["rows"][0]["git_commit"] and saved["rows"][0]["torch"] and saved["notes"]
    markdown = out.with_suffix(".md").read_text()
    assert "swiss_roll" in markdown and "swiss_roll" in capsys.readouterr().out


def test_unknown_dataset_is_an_error_naming_it(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--datasets", "swiss_roll", "imagenet"])
    assert "imagenet" in capsys.readouterr().err
    with pytest.raises(ValueError, match="imagenet"):
        bench.benchmark(PARAMS, datasets=["imagenet"])


@pytest.mark.pipeline
def test_a_training_step_is_counted_by_phase_with_adam_one_call_per_operation():
    """The counter sees fit's own step; Adam takes a handful of calls for all the parameters
    (foreach on the CPU, fused on CUDA), whatever their number, and no gradient norm is taken
    outside the log iterations."""
    config = cfg.load_profile("smoke")
    small, large = (bench.count_operations(name, config) for name in ("dead_leaves", "cifar10"))
    for counts in (small, large):
        assert all(counts[f"ops_{phase}"] > 0 for phase in bench.PHASES)
        assert counts["ops_per_step"] == sum(counts[f"ops_{phase}"] for phase in bench.PHASES)
    assert small["ops_optimiser"] == large["ops_optimiser"] <= 10
