"""Data-parallel training (dpm/run/distributed.py): two gloo processes on the CPU are one process
trained on the union of their batches; rank 0 alone saves; a two-process run resumes."""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml

from dpm.base import config as cfg, registry
from dpm.run import distributed
from dpm.core import model as models
from dpm import synthetic
from dpm.core.model import read_model_file
from dpm.core.objective import Objective
from dpm.run.train import Run, fit, load_checkpoint, update
from tests.test_train import _iteration_at_least, checkpoint_of, make_project, stage_args


def smoke_training(name: str, n_iterations: int):
    """A smoke-profile model on synthetic data, its objective, the data and its training section."""
    section = cfg.load_profile("smoke").section(name)
    info = synthetic.data_info(name, section)
    x = synthetic.draw(info, 256, torch.Generator().manual_seed(0), torch.device("cpu"))
    model = models.build(registry.get(name).model, section, info, x, section.train.seed)
    c = dataclasses.replace(section.train, n_iterations=n_iterations, checkpoint_every=10, log_every=10,
                            lr_decay_every=15)
    return model, Objective.of(section, info), x, c


def _worker(rank: int, world: int, init_file: str, name: str, n_iterations: int, folder: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    import dpm.run.train
    saves, save = [], dpm.run.train.atomic_torch_save
    dpm.run.train.atomic_torch_save = lambda value, path: (saves.append(path), save(value, path))
    model, objective, x, c = smoke_training(name, n_iterations)
    x_curve = objective.prepare(x[:16], torch.Generator().manual_seed(1))
    fit(model, objective, x, x_curve, c, Run(checkpoint_dir=Path(folder) / "checkpoints", fingerprint="f", progress=False))
    torch.save({"model": model.state_dict(), "saves": len(saves)}, f"{folder}/rank{rank}.pt")
    dist.destroy_process_group()


def union_of_two_ranks(name: str, n_iterations: int) -> dict:
    """One process, the same steps: the loss is the mean of the two ranks' losses, each on the
    batch and the noise its rank's seed stream draws."""
    model, objective, x, c = smoke_training(name, n_iterations)
    optimiser = torch.optim.Adam(model.parameters(), lr=c.learning_rate)
    lr_schedule = torch.optim.lr_scheduler.StepLR(optimiser, c.lr_decay_every, c.lr_decay)
    generators = [torch.Generator().manual_seed(distributed.rank_seed(c.seed, r)) for r in range(2)]
    for _ in range(n_iterations):
        losses = [objective.loss(model, x[torch.randint(len(x), (c.batch_size,), generator=g)], g) for g in generators]
        update(model, optimiser, sum(losses) / 2)
        lr_schedule.step()
    return model.state_dict()


@pytest.mark.parametrize("name, n_iterations", [("swiss_roll", 1), ("swiss_roll", 20), ("mnist", 20)])
@pytest.mark.pipeline
def test_two_processes_train_as_one_on_the_union_of_their_batches(tmp_path, name, n_iterations):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), name, n_iterations, str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    expected = union_of_two_ranks(name, n_iterations)
    for key, value in expected.items():
        assert torch.equal(ranks[0]["model"][key], ranks[1]["model"][key]), key
        torch.testing.assert_close(ranks[0]["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    # each checkpoint written once, by rank 0: iteration 10 (of 20) and the last
    assert (ranks[0]["saves"], ranks[1]["saves"]) == (n_iterations // 10 + (n_iterations % 10 > 0), 0)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["checkpoint-f.pt"]
    saved = load_checkpoint(tmp_path / "checkpoints/checkpoint-f.pt")
    assert saved["processes"] == 2 and len(saved["generators"]) == 2


def two_process_project(folder, n_iterations: int):
    project = make_project(folder, n_iterations)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["processes"] = 2
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    return project


def train_stage(folder) -> subprocess.Popen:
    """The train stage in its own process group (torchrun and its workers with it)."""
    return subprocess.Popen([sys.executable, "-m", "pipeline.train", *stage_args("swiss_roll")], cwd=folder,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.pipeline
def test_a_killed_two_process_run_resumes_with_two_processes_and_one_process_starts_afresh(tmp_path):
    """The number of processes is part of the fingerprint: another number trains afresh with one
    line, the two-process checkpoint kept; going back to two resumes it to the same parameters."""
    n_iterations = 120
    whole = two_process_project(tmp_path / "whole", n_iterations)
    result = train_stage(whole)
    assert result.wait() == 0, result.stderr.read()
    broken = two_process_project(tmp_path / "broken", n_iterations)
    process = train_stage(broken)
    deadline = time.time() + 120
    while time.time() < deadline and not _iteration_at_least(checkpoint_of(broken), 20):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    two_processes = checkpoint_of(broken)
    killed_at = load_checkpoint(two_processes)["iteration"]
    assert 20 <= killed_at < n_iterations, "the run was not interrupted part-way"
    assert not (broken / "models/swiss_roll.pt").exists()

    params = yaml.safe_load((broken / "params.yaml").read_text())
    (broken / "params.yaml").write_text(yaml.safe_dump({**params, "processes": 1}))
    afresh = train_stage(broken)
    assert afresh.wait() == 0
    said = [line for line in afresh.stderr.read().splitlines() if "training starts afresh" in line]
    assert len(said) == 1 and "the number of processes" in said[0]
    assert read_model_file(broken / "models/swiss_roll.pt")["processes"] == 1
    assert load_checkpoint(two_processes)["iteration"] == killed_at  # kept as it was

    (broken / "params.yaml").write_text(yaml.safe_dump(params))
    result = train_stage(broken)
    assert result.wait() == 0, result.stderr.read()
    final_whole, final_broken = (read_model_file(f / "models/swiss_roll.pt") for f in (whole, broken))
    assert final_broken["processes"] == 2 and final_broken["global_batch_size"] == 2 * final_broken["batch_size"]
    for key, value in final_whole["model"].items():
        assert torch.equal(value, final_broken["model"][key]), key
    assert len(list((whole / "runs/swiss_roll").glob("*/events.out.tfevents.*"))) == 1  # rank 0's writer only


@pytest.mark.pipeline
def test_an_error_of_two_processes_is_said_once_without_torchruns_account(tmp_path):
    """Both ranks find the loss not finite: the stage prints that once, in one line, and none of
    torchrun's traceback or warnings."""
    project = two_process_project(tmp_path, 40)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["swiss_roll"]["train"]["learning_rate"] = 1.0e30
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    result = train_stage(project)
    assert result.wait() == 1
    said = [line for line in result.stderr.read().splitlines() if line.strip() and not line.startswith(
        ("train:", "TensorBoard")) and "FutureWarning" not in line and "DistributedDataParallel(" not in line]
    assert said == ["error: loss is nan at iteration 2; no checkpoint of this configuration was saved, nothing is kept"]
    assert not (project / "models").exists()


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, their children, …), from /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found.update(children)
        todo.extend(children)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.pipeline
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killing_a_two_process_training_stops_every_process_it_started(tmp_path, sig):
    """Only the stage's own process is signalled (as DVC or a user's `kill` does; torchrun starts
    each worker in a session of its own, out of reach of the stage's process group): torchrun and
    both workers end within seconds, and the checkpoint is not written again."""
    project = two_process_project(tmp_path, 100_000)
    process = subprocess.Popen([sys.executable, "-m", "pipeline.train", *stage_args("swiss_roll")], cwd=project,
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not _iteration_at_least(checkpoint_of(project), 10):
        time.sleep(0.05)
    started = descendants(process.pid)
    assert len(started) >= 3, "torchrun and its two workers"
    process.send_signal(sig)
    process.wait(timeout=60)
    deadline = time.time() + 40
    while time.time() < deadline and any(alive(p) for p in started):
        time.sleep(0.1)
    assert not [p for p in started if alive(p)], "processes outlived the stage"
    checkpoint = checkpoint_of(project)
    written = checkpoint.stat().st_mtime_ns
    time.sleep(2)
    assert checkpoint.stat().st_mtime_ns == written
    if sig == signal.SIGTERM:
        assert process.returncode == 1
        assert process.stderr.read().strip().splitlines()[-1] == (
            "error: stopped by SIGTERM: the 2 training processes were stopped too")


def test_processes_are_checked_against_the_gpus_torch_sees(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(cfg.ConfigError, match=r"^processes: 4, but 1 GPU visible"):
        distributed.n_processes(4, cuda)
    assert distributed.n_processes(1, cuda) == distributed.n_processes(0, cuda) == 1
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert distributed.n_processes(0, cuda) == 2
    with pytest.raises(cfg.ConfigError, match=r"^processes: 3, but 2 GPUs visible"):
        distributed.n_processes(3, cuda)


def test_processes_0_one_per_gpu_is_refused_on_the_cpu():
    with pytest.raises(cfg.ConfigError, match=r"^processes: 0 is one training process per visible GPU, but the "
                                              r"device is the CPU"):
        distributed.n_processes(0, torch.device("cpu"))
    assert distributed.n_processes(2, torch.device("cpu")) == 2  # gloo processes on the CPU are allowed


def test_the_train_stage_refuses_more_processes_than_gpus_before_reading_anything(monkeypatch, tmp_path):
    from dpm.base import device as devices
    from dpm.base import stages
    from pipeline import train as train_stage_module
    config = dataclasses.replace(cfg.load_profile("smoke"), device="cuda", processes=4)
    monkeypatch.setattr(stages, "load_config", lambda: config)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(devices, "set_tf32", lambda tf32=None: None)  # torch's flags stay as they are
    monkeypatch.chdir(tmp_path)  # no data, no params.yaml: the check comes first
    with pytest.raises(cfg.ConfigError, match=r"^processes: 4, but 1 GPU visible"):
        train_stage_module.main(stage_args("swiss_roll"))
    assert not any(tmp_path.iterdir())
