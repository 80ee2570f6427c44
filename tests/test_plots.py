"""The learning curves as DVC plots: by iteration and by wall-clock time, titled with the data's
label as the tables and figures give it, axes labelled with their units."""

import json
from pathlib import Path

import yaml

from dpm import curves, registry
from dpm.paper_table1 import TABLE_1

ROOT = Path(__file__).resolve().parents[1]
UNITS = {"bits": "bits/point", "bits/seq": "bits/sequence", "bits/pixel": "bits/pixel"}


def test_each_learning_curve_has_a_plot_by_iteration_and_one_by_time():
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    plots = {name: spec for entry in pipeline["plots"] for name, spec in entry.items()}
    assert set(plots) == {f"{d}_K_by_{view}" for d in registry.NAMES for view in ("iteration", "time")}
    for dataset in registry.NAMES:
        # the label of the committed results (quick profile): the same as every table's and figure's
        label = json.loads((ROOT / f"results/metrics/{dataset}.json").read_text())["label"]
        unit = UNITS[TABLE_1[dataset].unit]
        for view, x, x_label, csv in (
                ("iteration", "iteration", "training iteration", f"results/curves/{dataset}.csv"),
                ("time", "seconds", "training time (s, wall clock)", f"results/provenance/train/{dataset}.csv")):
            spec = plots[f"{dataset}_K_by_{view}"]
            assert spec["x"] == x and spec["x_label"] == x_label
            assert spec["y"] == {csv: "holdout_K_bits"}
            assert spec["y_label"] == f"holdout K ({unit})"
            name = spec["title"].split(":")[0]
            assert label.startswith(name), (name, label)  # "texture stand-in", never "bark"
    assert plots["bark_K_by_time"]["title"].startswith("texture stand-in:")


def test_the_curve_files_are_stage_outputs_drawn_only_by_the_plots_above():
    """No stage-level plot props: each CSV would otherwise be drawn a third time, all columns by row."""
    train = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train"]["do"]
    assert "plots" not in train
    for curve in ("results/curves/${item}.csv", "results/provenance/train/${item}.csv"):
        assert {curve: {"cache": False, "persist": True}} in train["outs"]
    assert "seconds" not in curves.COLUMNS  # the curve other stages read is the same bytes for the same weights
