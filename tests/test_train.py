"""Training: an interrupted run resumes to the same parameters; two runs give the same weights; a
NaN stops it without keeping a diverged state; damaged or crafted files are never trusted."""

import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from dpm.base import config as cfg, sections
from dpm.base.atomic import atomic_path
from dpm.core.model import ModelFileError, read_model_file
from dpm.core.objective import Objective
from dpm.run.train import (KEPT_CONFIGURATIONS, Run, TrainingDiverged, fit, load_checkpoint, read_checkpoint, seal,
                       training_modules)
from tests.test_bound import gaussian_model
from dpm.core.schedules import LearnedSchedule

ROOT = Path(__file__).resolve().parents[1]


def stage_args(name: str) -> list[str]:
    return [name, f"data/{name}", f"checkpoints/{name}", f"runs/{name}", f"models/{name}.pt",
            f"results/curves/{name}.csv"]


def make_project(folder: Path, n_iterations: int, datasets=("swiss_roll",)) -> Path:
    """A copy of the code with a smoke-profile params.yaml and the datasets made."""
    shutil.copytree(ROOT / "dpm", folder / "dpm")
    shutil.copytree(ROOT / "pipeline", folder / "pipeline")
    params = {**cfg.compose(["profile=smoke"]), "device": "cpu"}  # the tests are the CPU's
    for name in datasets:
        params[name]["train"].update(n_iterations=n_iterations, checkpoint_every=10, log_every=10,
                                     lr_decay_every=40)
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    for name in datasets:
        raw = []
        if name in ("mnist", "cifar10", "bark"):
            subprocess.run([sys.executable, "-m", "pipeline.fetch", name, f"data/raw/{name}"], cwd=folder, check=True)
            raw = ["--raw", f"data/raw/{name}"]
        subprocess.run([sys.executable, "-m", "pipeline.data", name, f"data/{name}", *raw], cwd=folder, check=True)
    return folder


def stage(folder: Path, module: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=folder, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def checkpoint_of(folder: Path, name: str = "swiss_roll") -> Path | None:
    found = list((folder / "checkpoints" / name).glob("checkpoint-*.pt"))
    return found[0] if found else None


@pytest.mark.pipeline
def test_a_killed_run_resumes_and_ends_with_the_same_parameters(tmp_path):
    n_iterations = 120
    whole = make_project(tmp_path / "whole", n_iterations)
    assert stage(whole, "pipeline.train", *stage_args("swiss_roll")).wait() == 0
    broken = make_project(tmp_path / "broken", n_iterations)
    process = stage(broken, "pipeline.train", *stage_args("swiss_roll"))
    deadline = time.time() + 120
    while time.time() < deadline and not _iteration_at_least(checkpoint_of(broken), 20):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = load_checkpoint(checkpoint_of(broken))["iteration"]
    assert 20 <= killed_at < n_iterations, "the run was not interrupted part-way"
    assert not (broken / "models/swiss_roll.pt").exists()
    assert stage(broken, "pipeline.train", *stage_args("swiss_roll")).wait() == 0
    final_whole = read_model_file(whole / "models/swiss_roll.pt")["model"]
    final_broken = read_model_file(broken / "models/swiss_roll.pt")["model"]
    for name, value in final_whole.items():
        assert torch.equal(value, final_broken[name]), name


def _iteration_at_least(checkpoint: Path | None, iteration: int) -> bool:
    try:
        return checkpoint is not None and load_checkpoint(checkpoint)["iteration"] >= iteration
    except (FileNotFoundError, EOFError, RuntimeError):
        return False


@pytest.mark.parametrize("name", ["swiss_roll", "heartbeat", "mnist"])  # the three model kinds
@pytest.mark.pipeline
def test_two_runs_of_the_train_stage_give_bit_identical_weights_and_model_files(tmp_path, name):
    """The same weights, and the same model file bytes: no time, commit or temporary name in it,
    so DVC reruns nothing below a retrain to the same weights (the times: the provenance file)."""
    runs, files = [], []
    for k in range(2):
        folder = make_project(tmp_path / f"run{k}", 30, datasets=(name,))
        result = stage(folder, "pipeline.train", *stage_args(name), "--provenance", "train.json")
        assert result.wait() == 0, result.stderr.read()
        runs.append(read_model_file(folder / f"models/{name}.pt")["model"])
        files.append((folder / f"models/{name}.pt").read_bytes())
    assert runs[0].keys() == runs[1].keys()
    for key, value in runs[0].items():
        assert torch.equal(value, runs[1][key]), key
    assert files[0] == files[1]


TRAIN_CONFIG = sections.TrainConfig(n_iterations=10, batch_size=32, learning_rate=0.01, lr_decay=0.5, lr_decay_every=5,
                               checkpoint_every=5, log_every=5, n_log_examples=64, n_log_samples=10, seed=0)
TOY = Objective(n_t=None, train_proposal=None, importance=None, codec=None, n_units=1)


def with_(c: sections.TrainConfig, **changes) -> sections.TrainConfig:
    return sections.TrainConfig(**{**c.__dict__, **changes})


def test_a_nan_stops_training_naming_the_iteration_and_the_real_last_checkpoint(tmp_path):
    model = gaussian_model(LearnedSchedule(8, 0.01), 0.0)
    x = torch.randn(256, 2)
    run = Run(checkpoint_dir=tmp_path, fingerprint="f", progress=False)
    fit(model, TOY, x, x[:64], TRAIN_CONFIG, run)
    saved = load_checkpoint(run.checkpoint)
    with pytest.raises(TrainingDiverged, match=rf"at iteration 11; the last good checkpoint, {run.checkpoint} "
                                               r"\(iteration 10\), is kept"):
        fit(model, TOY, torch.full_like(x, float("nan")), x[:64], with_(TRAIN_CONFIG, n_iterations=20), run)
    kept = load_checkpoint(run.checkpoint)
    assert kept["iteration"] == 10
    for name, value in saved["model"].items():
        assert torch.equal(value, kept["model"][name])


def test_a_run_that_diverges_before_any_checkpoint_says_none_is_kept(tmp_path):
    model = gaussian_model(LearnedSchedule(8, 0.01), 0.0)
    x = torch.full((256, 2), float("nan"))
    run = Run(checkpoint_dir=tmp_path, fingerprint="f", progress=False)
    with pytest.raises(TrainingDiverged, match="at iteration 1; no checkpoint of this configuration was saved"):
        fit(model, TOY, x, x[:64], TRAIN_CONFIG, run)
    assert not list(tmp_path.iterdir())


def test_a_diverging_run_never_keeps_a_diverged_state_even_checkpointing_every_step(tmp_path):
    """A learning rate so large that the parameters blow up: every checkpoint written is a state
    whose next loss was finite, so the kept state still gives a finite loss."""
    model = gaussian_model(LearnedSchedule(8, 0.01), 0.0)
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    run = Run(checkpoint_dir=tmp_path, fingerprint="f", progress=False)
    c = with_(TRAIN_CONFIG, n_iterations=200, learning_rate=10.0, checkpoint_every=1, lr_decay_every=1000)
    with pytest.raises(TrainingDiverged) as raised:
        fit(model, TOY, x, x[:64], c, run)
    kept = load_checkpoint(run.checkpoint)
    assert kept["iteration"] > 1 and f"(iteration {kept['iteration']})" in str(raised.value)
    restored = gaussian_model(LearnedSchedule(8, 0.01), 0.0)
    restored.load_state_dict(kept["model"])
    assert all(torch.isfinite(p).all() for p in restored.parameters())
    assert torch.isfinite(TOY.loss(restored, x))


def test_a_checkpoint_of_another_configuration_is_not_resumed_and_recent_ones_are_kept(tmp_path):
    """Another configuration trains afresh; the checkpoints of the most recent configurations
    (KEPT_CONFIGURATIONS) stay, so going back to one resumes it."""
    x = torch.randn(256, 2)
    first = Run(checkpoint_dir=tmp_path, fingerprint="a", progress=False)
    history = fit(gaussian_model(LearnedSchedule(8, 0.01)), TOY, x, x[:64], TRAIN_CONFIG, first)
    assert len(history) == 2
    for fingerprint in "bcd":
        other = Run(checkpoint_dir=tmp_path, fingerprint=fingerprint, progress=False)
        assert fit(gaussian_model(LearnedSchedule(8, 0.01)), TOY, x, x[:64], TRAIN_CONFIG, other)[0]["iteration"] == 5
        time.sleep(0.01)  # distinct modification times
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"checkpoint-{f}.pt" for f in "bcd"][-KEPT_CONFIGURATIONS:]
    back = Run(checkpoint_dir=tmp_path, fingerprint="c", progress=False)
    assert fit(gaussian_model(LearnedSchedule(8, 0.01)), TOY, x, x[:64], TRAIN_CONFIG, back) == read_checkpoint(back)["history"]


@pytest.mark.parametrize("damage", ["flipped", "too_far"])
def test_a_damaged_or_impossible_checkpoint_is_set_aside_numbered_and_training_starts_afresh(tmp_path, damage, caplog):
    x = torch.randn(256, 2)
    source = Run(checkpoint_dir=tmp_path / "source", fingerprint="f", progress=False)
    fit(gaussian_model(LearnedSchedule(8, 0.01)), TOY, x, x[:64], with_(TRAIN_CONFIG, n_iterations=5), source)
    if damage == "flipped":  # one byte of the weights changed: still a readable archive
        sealed = torch.load(source.checkpoint, weights_only=True)
        sealed["body"][-2000] ^= 1
        torch.save(sealed, source.checkpoint)
    else:  # a checkpoint past the end of this run's training
        torch.save(seal({**load_checkpoint(source.checkpoint), "iteration": 50}), source.checkpoint)
    run = Run(checkpoint_dir=tmp_path / "run", fingerprint="f", progress=False)
    run.checkpoint_dir.mkdir()
    for attempt in range(2):
        shutil.copy(source.checkpoint, run.checkpoint)
        history = fit(gaussian_model(LearnedSchedule(8, 0.01)), TOY, x, x[:64], TRAIN_CONFIG, run)
        assert history[0]["iteration"] == 5  # afresh
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == [
        "checkpoint-f.pt", "checkpoint-f.pt.corrupt", "checkpoint-f.pt.corrupt-2"]
    said = "does not match its sha256" if damage == "flipped" else "claims iteration 50, outside this run's 1..10"
    assert caplog.text.count(said) == 2


def as_if_written_on_cuda(checkpoint: Path) -> None:
    """Rewrite a CPU checkpoint as CUDA writes one: its device, and a generator state of CUDA's
    size (16 bytes, Philox's seed and offset, against the CPU's 5,056)."""
    saved = load_checkpoint(checkpoint)
    saved["device"] = "cuda"
    saved["generators"] = [torch.zeros(16, dtype=torch.uint8) for _ in saved["generators"]]
    torch.save(seal(saved), checkpoint)


def test_a_checkpoint_written_on_another_device_type_continues_from_a_seeded_generator(tmp_path, caplog):
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    ends = []
    for k in range(2):
        run = Run(checkpoint_dir=tmp_path / str(k), fingerprint="f", progress=False)
        fit(gaussian_model(LearnedSchedule(8, 0.01)), TOY, x, x[:64], with_(TRAIN_CONFIG, n_iterations=5), run)
        as_if_written_on_cuda(run.checkpoint)
        model = gaussian_model(LearnedSchedule(8, 0.01))
        history = fit(model, TOY, x, x[:64], TRAIN_CONFIG, run)
        assert [row["iteration"] for row in history] == [5, 10]  # continued, not afresh
        assert read_checkpoint(run)["device"] == "cpu"
        ends.append(model.state_dict())
    for name, value in ends[0].items():  # the generator seeded again is the same each time
        assert torch.equal(value, ends[1][name]), name
    lines = [r.getMessage() for r in caplog.records if "written on cuda" in r.getMessage()]
    assert len(lines) == 2 and "this run is on cpu" in lines[0] and "from iteration 5" in lines[0]


@pytest.mark.pipeline
def test_the_train_stage_resumes_a_checkpoint_written_on_cuda_with_one_line(tmp_path):
    folder = make_project(tmp_path, 20)
    assert stage(folder, "pipeline.train", *stage_args("swiss_roll")).wait() == 0
    as_if_written_on_cuda(checkpoint_of(folder))
    (folder / "models/swiss_roll.pt").unlink()
    resumed = stage(folder, "pipeline.train", *stage_args("swiss_roll"))
    assert resumed.wait() == 0
    said = resumed.stderr.read()
    assert "Traceback" not in said
    assert len([line for line in said.splitlines() if "written on cuda and this run is on cpu" in line]) == 1, said
    assert read_model_file(folder / "models/swiss_roll.pt")["dataset"] == "swiss_roll"


class _Marker:
    """Unpickling this creates a file: proof that a load ran code chosen by the file's author."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (self.path,)


def crafted(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"model": _Marker(marker), "fingerprint": "f", "iteration": 5}))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated", None], ids=["empty", "truncated", "crafted"])
def test_a_damaged_or_crafted_checkpoint_is_set_aside_and_training_starts_afresh(tmp_path, content, caplog):
    run = Run(checkpoint_dir=tmp_path / "checkpoints", fingerprint="f", progress=False)
    marker = tmp_path / "code-ran"
    if content is None:
        crafted(run.checkpoint, marker)
    else:
        run.checkpoint.parent.mkdir()
        run.checkpoint.write_bytes(content)
    x = torch.randn(256, 2)
    history = fit(gaussian_model(LearnedSchedule(8, 0.01)), TOY, x, x[:64], TRAIN_CONFIG, run)
    assert history[0]["iteration"] == 5  # afresh
    assert not marker.exists()
    assert (run.checkpoint_dir / "checkpoint-f.pt.corrupt").exists()
    assert "checkpoint-f.pt cannot be used" in caplog.text and "set aside" in caplog.text
    assert read_checkpoint(run)["iteration"] == 10


def test_a_crafted_model_file_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "code-ran"
    crafted(tmp_path / "model.pt", marker)
    with pytest.raises(ModelFileError, match="model.pt: not a model file"):
        read_model_file(tmp_path / "model.pt")
    assert not marker.exists()


@pytest.mark.pipeline
def test_crafted_files_run_no_code_when_the_stages_train_evaluate_and_sample(tmp_path):
    folder = make_project(tmp_path / "project", 20)
    assert stage(folder, "pipeline.train", *stage_args("swiss_roll")).wait() == 0
    marker = folder / "code-ran"
    checkpoint = checkpoint_of(folder)
    crafted(checkpoint, marker)  # the checkpoint this configuration would resume from
    (folder / "models/swiss_roll.pt").unlink()
    result = stage(folder, "pipeline.train", *stage_args("swiss_roll"))
    assert result.wait() == 0, result.stderr.read()
    assert not marker.exists() and checkpoint.with_name(checkpoint.name + ".corrupt").exists()
    crafted(folder / "models/swiss_roll.pt", marker)
    for module, args in (("pipeline.evaluate",
                          ["swiss_roll", "data/swiss_roll", "models/swiss_roll.pt", "m.json", "h.json"]),
                         ("pipeline.figures", ["figure1", "data/swiss_roll", "models/swiss_roll.pt", "f.png"])):
        result = stage(folder, module, *args)
        assert result.wait() == 1
        error = result.stderr.read()
        assert "models/swiss_roll.pt: not a model file" in error and "Traceback" not in error
    assert not marker.exists()


@pytest.mark.pipeline
def test_the_fingerprint_covers_every_module_training_imports():
    """A checkpoint is resumed unless the code that determines it changed: the fingerprint's
    modules must be all the library modules training uses, besides plumbing that cannot change
    a number (section types and their validation, atomic writes, devices, provenance, a worker's error
    note); neither
    dpm.base.config nor dpm.base.registry (the model is built from its kind and section)."""
    code = ("import sys, dpm.run.train, dpm.core.model, dpm.core.objective; "
            "print(*sorted(m for m, module in sys.modules.items() if m.startswith('dpm') and not hasattr(module, '__path__')))")
    imported = set(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                  check=True).stdout.split())
    plumbing = {"dpm.base.params", "dpm.base.sections", "dpm.base.atomic", "dpm.base.device", "dpm.base.provenance",
                "dpm.base.workers"}  # packages (their __init__) hold no code
    assert imported - plumbing == {m.__name__ for m in training_modules()}
    assert "dpm.report.figures" not in imported and "tools.bench" not in imported


def test_a_failed_write_leaves_neither_the_target_nor_a_temporary_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]



@pytest.mark.pipeline
def test_a_batch_no_memory_holds_is_refused_naming_the_key_before_anything_is_written(tmp_path):
    """A lower bound on one training step's memory, worked out on the meta device (nothing is
    allocated), against what the machine has free: refused before the data are read or any
    checkpoint, log or model is written (DVC leaves the previous model in place: persist)."""
    folder = make_project(tmp_path, 20)
    params = yaml.safe_load((folder / "params.yaml").read_text())
    params["swiss_roll"]["train"]["batch_size"] = 2 ** 31 - 1
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    result = stage(folder, "pipeline.train", *stage_args("swiss_roll"))
    assert result.wait() == 1
    [line] = result.stderr.read().splitlines()
    assert line.startswith("error: swiss_roll.train.batch_size: 2147483647 needs at least ")
    assert line.endswith("free: lower it") and "GiB for one training step, but this machine has " in line
    assert not any((folder / name).exists() for name in ("checkpoints", "runs", "models", "results"))


@pytest.mark.pipeline
def test_running_out_of_memory_while_training_names_the_key(tmp_path, monkeypatch):
    """Where the bound lets a batch through but the allocator refuses it: one line naming the key."""
    from pipeline import train as train_stage
    folder = make_project(tmp_path, 20)
    monkeypatch.chdir(folder)

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 80000000000 bytes. Error code 12 (Cannot allocate memory)")
    monkeypatch.setattr(train_stage.train, "fit", out_of_memory)
    with pytest.raises(RuntimeError, match=r"^swiss_roll\.train\.batch_size: 128 ran out of memory during training "
                                           r"\(\[enforce fail .*can't allocate memory"):
        train_stage.main(stage_args("swiss_roll"))
    assert not (folder / "models").exists()


@pytest.mark.parametrize("name", ["swiss_roll", "mnist"])
@pytest.mark.pipeline
def test_the_memory_of_a_training_step_is_bounded_from_below_without_allocating_it(name):
    """The bound grows with the batch as the saved tensors do, and a real step (its peak resident
    memory, measured in a fresh process) needs at least what it says."""
    from dpm.run import memory
    from dpm.core import model as models
    from dpm.base import registry
    from dpm import synthetic
    section = cfg.load_profile("smoke").section(name)
    info = synthetic.data_info(name, section)
    model = models.build(registry.get(name).model, section, info, seed=0).to(memory.META)
    objective = Objective.of(section, info, memory.META)
    small, large = (memory.training_step_bytes(model, objective, b, info.n_dims) for b in (64, 2 ** 30))
    assert small < large and large > 2 ** 30 * info.n_dims * 4  # 2^30 examples: nothing allocated
    batch = 4096 if name == "swiss_roll" else 256
    bound = memory.training_step_bytes(model, objective, batch, info.n_dims)
    # the step's own peak resident memory: VmHWM, the high-water mark of this process's memory
    # (ru_maxrss would start at the size of the process that started it: Linux keeps the larger
    # across exec, and pytest after the whole suite is larger than the step)
    step = (f"import re, torch; from dpm import synthetic; from dpm.base import config as cfg, registry; from dpm.core import model as models\n"
            f"from dpm.core.objective import Objective\n"
            f"hwm = lambda: int(re.search(r'VmHWM:\\s*(\\d+) kB', open('/proc/self/status').read()).group(1))\n"
            f"section = cfg.load_profile('smoke').section('{name}'); info = synthetic.data_info('{name}', section)\n"
            f"model = models.build(registry.get('{name}').model, section, info, seed=0)\n"
            f"objective = Objective.of(section, info)\n"
            f"x = synthetic.draw(info, {batch}, torch.Generator().manual_seed(0), torch.device('cpu'))\n"
            f"optimiser = torch.optim.Adam(model.parameters())\n"
            f"before = hwm()\n"
            f"objective.loss(model, x, torch.Generator().manual_seed(0)).backward(); optimiser.step()\n"
            f"print((hwm() - before) * 1024)\n")
    grown = int(subprocess.run([sys.executable, "-c", step], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout)
    params = sum(p.numel() * 4 for p in model.parameters())
    assert bound - 4 * params <= grown, (bound, grown)  # the parameters existed before the step
