"""dpm.gpu_check's CPU parts, as a machine without a GPU runs them (the smoke profile)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_passes_on_the_cpu_with_the_smoke_profile(tmp_path):
    out = tmp_path / "smoke-cpu.json"
    result = subprocess.run([sys.executable, "-m", "dpm.gpu_check", "--device", "cpu", "--profile", "smoke",
                             "--seconds", "0.2", "--iterations", "200", "--out", str(out)], cwd=ROOT,
                            capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["failed"] == [] and report["versions"]["torch"]
    assert {m["dataset"] for m in report["models"]} == {row["dataset"] for row in report["bench"]} == {
        "swiss_roll", "heartbeat", "mnist", "cifar10", "dead_leaves", "bark"}
    for checked in report["models"]:
        assert checked["training"]["loss_last_bits"] < checked["training"]["loss_first_bits"]
        assert checked["K"]["difference_bits"] <= checked["K"]["tolerance_bits"]
        assert checked["sampling"]["finite"]
    assert report["data_parallel"]["ok"] and report["data_parallel"]["processes"] == 2  # gloo, two processes
    assert all(p["hours_one_device"] > 0 for p in report["projection"])
    assert "every check passed" in out.with_suffix(".md").read_text()
