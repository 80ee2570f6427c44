"""The pre-flight (pipeline/check_params.py, the gate both tools run first) checks the machine too:
``device: cuda`` without a GPU, ``processes`` beyond the visible GPUs or 0 on the CPU, ``threads``
beyond the cores, each refused in one line naming the key before anything is written; but where
params.yaml asks a scheduler for GPUs (a cluster's login node submitting GPU jobs) they are the
jobs' own checks."""

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from dpm.base import config as cfg
from pipeline import check_params
from workflow import cluster

ROOT = Path(__file__).resolve().parents[1]
CORES = len(os.sched_getaffinity(0))


def project(folder: Path, profile: str = "smoke", **values) -> Path:
    """The code and a params.yaml of ``profile`` with ``values`` changed (top-level keys)."""
    shutil.copytree(ROOT / "dpm", folder / "dpm")
    shutil.copytree(ROOT / "pipeline", folder / "pipeline")
    params = {**cfg.compose([f"profile={profile}"]), "device": "cpu", **values}
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    return folder


def check(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.check_params", *args], cwd=folder, capture_output=True,
                          text=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_where_torch_sees_no_gpu_is_refused_in_one_line_and_writes_nothing(tmp_path):
    result = check(project(tmp_path, device="cuda"), "data/params.ok")
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: device: cuda was asked for in params.yaml, but torch sees no CUDA device (")
    assert not (tmp_path / "data").exists()


@pytest.mark.pipeline
def test_threads_beyond_the_cores_are_refused_by_the_gate_and_by_every_stage(tmp_path):
    folder = project(tmp_path, threads=CORES + 1)
    said = f"error: threads: {CORES + 1}, but this machine gives this process {CORES} core"
    result = check(folder, "data/params.ok")
    assert result.returncode == 1 and result.stderr.startswith(said) and len(result.stderr.splitlines()) == 1
    stage = subprocess.run([sys.executable, "-m", "pipeline.data", "swiss_roll", "data/swiss_roll"], cwd=folder,
                           capture_output=True, text=True)  # run alone (dvc repro --single-item): no gate
    assert stage.returncode == 1 and stage.stderr.startswith(said) and "Traceback" not in stage.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.pipeline
def test_one_process_per_gpu_on_the_cpu_is_refused(tmp_path):
    result = check(project(tmp_path, processes=0), "data/params.ok")
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["error: processes: 0 is one training process per visible GPU, but the "
                                          "device is the CPU: set processes to a number (1: a plain process)"]


def test_a_login_node_without_gpus_passes_params_that_ask_the_scheduler_for_gpus(tmp_path):
    """The paper profile (device: cuda, processes: 0, a GPU per train and sample job): the gate
    on a machine without GPUs lets the jobs be submitted; each job's stage checks its node."""
    folder = project(tmp_path, profile="paper", device="cuda", threads=CORES + 1)
    result = check(folder, "data/params.ok")
    assert result.returncode == 0, result.stderr
    assert (folder / "data/params.ok").read_text() == check_params.VERDICT


def test_more_processes_than_visible_gpus_are_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr("dpm.base.device.set_tf32", lambda tf32=None: None)  # torch's flags stay as they are
    config = dataclasses.replace(cfg.load_profile("smoke"), device="cuda", processes=3, threads=1)
    resources = cluster.load_resources(cfg.compose(["profile=smoke"]), "cuda")
    assert list(check_params.machine_problems(config, resources)) == [
        ("processes", "3, but 2 GPUs visible (one process per GPU): set processes to at most 2, or 0 for one per "
                      "visible GPU")]
    assert list(check_params.machine_problems(dataclasses.replace(config, processes=0), resources)) == []


def test_an_empty_params_file_or_a_variant_without_its_dataset_is_named_in_one_line(tmp_path):
    """What the gate says (and so Snakemake, which runs it first); `dvc repro` stops earlier, in
    its own one line naming the key it could not template studies/dvc.yaml's stages from."""
    folder = project(tmp_path)
    params = (folder / "params.yaml").read_text()
    (folder / "params.yaml").write_text("")
    result = check(folder)
    assert result.returncode == 1 and result.stderr.splitlines() == [
        "error: params.yaml: empty; compose it from conf/ with `python -m workflow.params profile=<profile>`"]
    data = yaml.safe_load(params)
    variant = next(iter(data["ablations"]["variants"]))
    del data["ablations"]["variants"][variant]["dataset"]
    (folder / "params.yaml").write_text(yaml.safe_dump(data))
    result = check(folder)
    assert result.returncode == 1 and result.stderr.splitlines() == [
        f"error: ablations.variants.{variant}.dataset: missing"]
