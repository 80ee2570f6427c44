"""The smoke pipeline's train stages with two data-parallel processes each, under both tools."""

import json
import shutil

import pytest

from dpm.core.model import read_model_file
from tests.smoke import copy_built, run, set_param, tool

pytestmark = pytest.mark.pipeline  # minutes each: `pytest -m "not pipeline"` leaves them out

STAGES = ("swiss_roll", "mnist")  # a toy and an image model


def ranks_recorded(folder, name: str) -> int:
    """How many processes ran the train stage of ``name``: the launcher and each rank record
    their imports (dpm.base.stages._record_imports)."""
    records = [json.loads(line) for line in (folder / "imports.jsonl").read_text().splitlines()]
    return sum(r["module"] == "pipeline.train" and r["argv"][0] == name for r in records) - 1


@pytest.mark.parametrize("command", [(tool("dvc"), "repro", *(f"train@{name}" for name in STAGES)),
                                     (tool("snakemake"), "--cores", "2", *(f"models/{name}.pt" for name in STAGES))],
                         ids=["dvc", "snakemake"])
def test_train_stages_run_two_processes_under_both_tools(smoke_build, tmp_path, command):
    """In a copy of the session's smoke build (its data made), the stages' import records and
    TensorBoard runs cleared: the train stages run again, each with two processes."""
    folder = copy_built(smoke_build, tmp_path)
    (folder / "imports.jsonl").unlink()
    shutil.rmtree(folder / "runs")  # TensorBoard's, no DVC output: one run per stage below
    set_param(folder, "processes", 2)
    run(folder, *command)
    for name in STAGES:
        saved = read_model_file(folder / f"models/{name}.pt")
        assert saved["processes"] == 2 and saved["global_batch_size"] == 2 * saved["batch_size"], name
        assert ranks_recorded(folder, name) == 2, name
        assert len(list((folder / f"runs/{name}").glob("*/events.out.tfevents.*"))) == 1, name  # rank 0's log
