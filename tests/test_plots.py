"""The learning curves as DVC plots: by iteration and by wall-clock time, one per dataset from a
folder of them (a new dataset needs no plot of its own), axes labelled with their units."""

from pathlib import Path

import yaml

from dpm.report import curves

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"results/curves": ("iteration", "training iteration"),
           "results/provenance/time_curves": ("seconds", "training time (s, wall clock)")}


def test_each_learning_curve_has_a_plot_by_iteration_and_one_by_time():
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    plots = {name: spec for entry in pipeline["plots"] for name, spec in entry.items()}
    assert set(plots) == set(FOLDERS)
    train = pipeline["stages"]["train"]["do"]
    for folder, (x, x_label) in FOLDERS.items():
        spec = plots[folder]
        assert spec["x"] == x and spec["x_label"] == x_label and spec["y"] == "holdout_K_bits"
        assert "title" not in spec  # each plot is titled by its file, which names the dataset
        assert f"{folder}/${{item}}.csv" in train["cmd"]  # every dataset's train stage writes one there
        assert all(unit in spec["y_label"] for unit in ("bits", "point", "sequence", "pixel"))


def test_the_curve_files_are_stage_outputs_drawn_only_by_the_plots_above():
    """No stage-level plot props: each CSV would otherwise be drawn a third time, all columns by row.
    The plotted folders hold nothing that is not a curve or its picture (DVC would fail to draw it)."""
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    train = pipeline["stages"]["train"]["do"]
    assert "plots" not in train
    for curve in ("results/curves/${item}.csv", "results/provenance/time_curves/${item}.csv"):
        assert {curve: {"cache": False, "persist": True}} in train["outs"]
    written = [out for stage in pipeline["stages"].values() for out in stage.get("do", stage).get("outs", [])]
    paths = [next(iter(out)) if isinstance(out, dict) else out for out in written]
    for folder in FOLDERS:
        inside = [p for p in paths if p.startswith(folder + "/")]
        assert inside and all(p.endswith((".csv", ".png")) for p in inside), inside
    assert "seconds" not in curves.COLUMNS  # the curve other stages read is the same bytes for the same weights
