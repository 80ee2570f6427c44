"""dpm.gpu_check: its command line and pieces, and the whole check on the CPU (smoke profile) in a
virtual environment that holds only what a CUDA image has."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dpm.base import config as cfg
from dpm import gpu_check

ROOT = Path(__file__).resolve().parents[1]
CUDA_IMAGE = ("torch", "numpy", "pyyaml", "matplotlib", "pandas", "tqdm", "tensorboard")
NOT_IN_A_CUDA_IMAGE = ("hydra", "omegaconf", "dvc", "snakemake", "scipy", "tabulate")


@pytest.fixture(scope="module")
def cuda_image(tmp_path_factory) -> Path:
    """The python of a new virtual environment holding CUDA_IMAGE alone, installed as CI installs
    (pip, constraints.txt), no pip cache."""
    folder = tmp_path_factory.mktemp("cuda-image")
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    python = folder / "bin" / "python"
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-cache-dir", *CUDA_IMAGE,
                             "-c", str(ROOT / "constraints.txt")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return python


@pytest.mark.pipeline
def test_a_cuda_image_has_none_of_the_pipeline_tools(cuda_image):
    found = subprocess.run([str(cuda_image), "-c", "import importlib.util as u; print([m for m in "
                            f"{NOT_IN_A_CUDA_IMAGE!r} if u.find_spec(m)])"], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


@pytest.mark.pipeline
def test_gpu_check_passes_on_the_cpu_in_a_cuda_image(cuda_image, tmp_path):
    """``python -m dpm.gpu_check --device cpu --profile smoke`` from the source tree (no install),
    with only CUDA_IMAGE: every check passes, and says what it checked."""
    out = tmp_path / "smoke-cpu.json"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), "OMP_NUM_THREADS": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),
           "MPLCONFIGDIR": str(tmp_path / "matplotlib")}
    result = subprocess.run([str(cuda_image), "-m", "dpm.gpu_check", "--device", "cpu", "--profile", "smoke",
                             "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["failed"] == [] and report["passes"] == ["smoke"] and report["environment"]["torch"]
    models = {m["dataset"]: m for m in report["models"]["smoke"]}
    assert set(models) == {"swiss_roll", "heartbeat", "mnist", "cifar10", "dead_leaves", "bark"}
    assert models["heartbeat"]["parameterisation"] == "x0"
    for m in models.values():
        assert m["K_after_bits"] > m["K_before_bits"] and m["per_t_kl"]["ok"] and m["samples"]["ok"]
        assert m["fit"]["seconds_per_step"] > 0
    stages = {s["dataset"]: s for s in report["stages"]["smoke"]}
    assert set(stages) == set(gpu_check.GENERATED) == {"swiss_roll", "heartbeat", "dead_leaves"}
    for s in stages.values():
        assert [row["stage"] for row in s["stages"] if row["ok"]] == list(gpu_check.STAGES)
    resume = report["resume"]
    assert resume["bit_equal"] and resume["steps_after_resuming"] == gpu_check.RESUME_ITERATIONS - resume[
        "killed_after_checkpoint"] > 0
    assert report["amp"]["no_op"] and report["amp"]["ok"] and report["compile"]["ok"]
    ddp = report["data_parallel"]
    assert ddp["processes"] == 2 and ddp["wrapper"]["ok"] and ddp["collectives"] == {
        "world_size": 2, "backend": "gloo", "ok": True}
    assert "every check passed" in out.with_suffix(".md").read_text()


@pytest.mark.pipeline
def test_without_cuda_it_says_so_in_one_line_and_exits_2():
    result = subprocess.run([sys.executable, "-m", "dpm.gpu_check"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "no CUDA device is visible" in result.stderr


def test_its_help_is_for_its_users(capsys):
    with pytest.raises(SystemExit) as exit:
        gpu_check.main(["--help"])
    shown = capsys.readouterr().out
    assert exit.value.code == 0 and "--device" in shown
    assert not any(note in shown for note in ("STYLE", "Deviation", "worker"))


def test_the_docstring_states_its_constants():
    doc, g = " ".join(gpu_check.__doc__.split()), gpu_check
    e = lambda x: f"{x:.0e}".replace("e-0", "e-")  # noqa: E731  (1e-4)
    assert f"trained {g.MODEL_ITERATIONS} steps by dpm.run.train.fit" in doc and f"{g.N_SAMPLES} samples" in doc
    assert f"trains {g.STAGE_ITERATIONS} steps" in doc
    assert f"({g.RESUME_ITERATIONS} steps, a checkpoint every {g.RESUME_CHECKPOINT_EVERY})" in doc
    assert f"within a relative {e(g.RESUME_RTOL)}" in doc and f"trained {g.VARIANT_ITERATIONS} steps" in doc
    assert f"at least {100 * (1 - g.AMP_SHORTFALL):.0f} %" in doc and f"within {100 * g.COMPILE_RTOL:.0f} %" in doc
    assert f"relative {e(g.WRAPPER_RTOL)} in norm" in doc
    assert f"at {g.K_TIMES} fixed t" in doc and f"over {g.K_EXAMPLES} examples" in doc
    assert f"relative {e(g.K_RTOL)} plus {e(g.K_ATOL_NATS)} nats per dimension" in doc


def test_the_stages_run_as_dvc_yaml_writes_them():
    for name in gpu_check.GENERATED:
        commands, outputs = zip(*gpu_check.stage_commands(name))
        assert [c[:3] for c in commands] == [[sys.executable, "-m", f"pipeline.{stage}"] for stage in gpu_check.STAGES]
        assert all(c[3] == name for c in commands) and f"results/metrics/evaluate/{name}.json" in outputs[2]


@pytest.mark.parametrize("profile", cfg.PROFILES)
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_the_stages_params_are_valid_for_every_profile_and_device(profile, device, tmp_path):
    config = cfg.load(gpu_check.stage_project(tmp_path / "project", profile, torch.device(device)) / "params.yaml")
    assert config.profile == profile and config.device == device
    if profile != "smoke":
        assert config.dead_leaves.train.n_iterations == gpu_check.STAGE_ITERATIONS


@pytest.mark.parametrize("error, ok", [(1e-4, True), (1e-2, False)])
def test_the_per_t_comparison_tolerates_a_relative_1e_3(error, ok, monkeypatch):
    """The device's KL terms off by a relative ``error`` (the second call of ``kl_at``, the first
    being the CPU's) pass within the tolerance and fail beyond it."""
    section = cfg.load_profile("smoke").section("dead_leaves")
    experiment, _, x_curve = gpu_check.setup("dead_leaves", section, torch.device("cpu"))
    model = experiment.model
    calls, kl_at = [], gpu_check.kl_at

    def device_off(*args):
        calls.append(None)
        return kl_at(*args) * (1 + error if len(calls) == 2 else 1)

    monkeypatch.setattr(gpu_check, "kl_at", device_off)
    assert gpu_check.compare_k(model, x_curve)["ok"] == ok and len(calls) == 2
