"""Check this project on a GPU, in one command, and record what it found.

    python -m dpm.gpu_check                                   # CUDA: smoke pass, then paper pass
    python -m dpm.gpu_check --device cpu --profile smoke      # the same checks on the CPU (CI)

A pass runs, for one profile (the smoke profile first, then --profile's own if it is another):
  models   every dataset's model trained 100 steps by dpm.run.train.fit (the training loop itself,
           its step timed) on structured synthetic data at the profile's batch size and amp: K
           at fixed draws must rise; the per-t KL terms of K of the same weights on the device
           and on the CPU must agree (below); 16 samples through the whole reverse chain must be
           finite.
  stages   the data, train, evaluate and kl_per_t stages of the generated datasets (swiss_roll,
           heartbeat, dead_leaves), run as dvc.yaml runs them, in a temporary project whose
           params.yaml is the profile's with `device` the checked device (a pass other than smoke
           trains 100 steps, and the image models' per-t terms on 16 examples): every stage must
           succeed, on the device, with K finite.
Then, once, at --profile, with the dead-leaves model:
  resume   fit in a subprocess (200 steps, a checkpoint every 20), killed (SIGKILL) once a
           checkpoint is on disk, then run again: it resumes and must end with the parameters of
           an uninterrupted run, bit for bit on the CPU; on CUDA (deterministic algorithms) within
           a relative 1e-4.
  amp      trained 50 steps from one initialisation with amp off and on: amp must gain at least
           75 % of what float32 gains in K (on the CPU amp is a no-op: the runs must be identical).
  compile  trained 50 steps with `compile: true` (torch.compile): its K gain must be within 25 %
           of the eager run's.
  ddp      fit under torchrun over every visible GPU (NCCL; on the CPU two gloo processes); every
           rank also takes one step through DistributedDataParallel on a batch all ranks share,
           whose gradient must equal the plain one (to a relative 1e-3 in norm), and runs the
           collectives: a one-GPU machine exercises the wrapper and NCCL at world size 1.

The per-t comparison: KL(q(x_{t−1}|x_t, x_0) ‖ p(x_{t−1}|x_t)) at 6 fixed t from 2 to T, at x_t
drawn once on the CPU, averaged over 32 examples, both sides in full float32 (no TF32 rounding):
each term must agree within a relative 1e-3 plus 1e-6 nats per dimension.

It writes results/bench/<profile>-<device>.{json,md} (the device, torch, CUDA and cuDNN versions,
the float32 precision, every figure) and exits 1 if a check failed, 2 if no CUDA device is visible.
"""

# Deviation from STYLE.md (no argparse in dpm/): a tool run by hand (the others are in tools/), kept in
# the library because a bare CUDA image with torch runs it as `python -m dpm.gpu_check`.

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import yaml
from torch import Tensor
from torch.optim.optimizer import register_optimizer_step_post_hook

from dpm.base import config as cfg, device as devices
from dpm.run import distributed
from dpm.core import experiment as experiments
from dpm.core import model as models
from dpm.base import registry
from dpm.chain import sampling
from dpm import synthetic
from dpm.run import train
from dpm.base.atomic import atomic_torch_save, atomic_write_text
from dpm.core.bound import to_bits
from dpm.core.objective import Objective
from dpm.base.params import with_overrides
from dpm.base.provenance import git_commit
from dpm.run.train import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
GENERATED = tuple(name for name in registry.NAMES if not registry.get(name).fetched)
STAGES = ("data", "train", "evaluate", "kl_per_t")
MODEL_ITERATIONS = 100
STAGE_ITERATIONS = 100  # train stage of a non-smoke pass
N_TRAIN, N_CURVE, N_SAMPLES = 512, 64, 16
K_TIMES, K_EXAMPLES = 6, 32
K_RTOL, K_ATOL_NATS = 1e-3, 1e-6
RESUME_ITERATIONS, RESUME_CHECKPOINT_EVERY, RESUME_RTOL = 200, 20, 1e-4
VARIANT_DATASET, VARIANT_ITERATIONS = "dead_leaves", 50
AMP_SHORTFALL, COMPILE_RTOL = 0.25, 0.25
WRAPPER_RTOL = 1e-3  # cuDNN's backward may sum in another order from one call to the next
DDP_ITERATIONS = 20
SEED = 0


def structured(info, n: int, generator: torch.Generator) -> Tensor:
    """(n, D) data as stored, on the CPU, that an untrained model fits badly and learns fast: one
    random value per example repeated over its dimensions, plus a little noise (binary: one bit)."""
    if info.p_pi is not None:
        return torch.bernoulli(torch.full((n, 1), 0.5), generator=generator).expand(n, info.n_dims).contiguous()
    return torch.randn((n, 1), generator=generator) + 0.1 * torch.randn((n, info.n_dims), generator=generator)


def setup(name: str, section, device: torch.device):
    """The experiment of ``name`` (the same weights on any device), structured training data and
    a learning-curve batch, on ``device``."""
    info = synthetic.data_info(name, section)
    generator = torch.Generator().manual_seed(section.train.seed)
    x = structured(info, N_TRAIN, generator)
    experiment = experiments.build(name, registry.get(name).model, section, info, device, x)
    x_curve = experiment.objective.prepare(structured(info, N_CURVE, generator), generator)
    return experiment, x.to(device), x_curve.to(device)


@torch.no_grad()
def fixed_k(model, objective: Objective, x0: Tensor) -> float:
    """K (bits per unit) of ``x0`` (model units) at draws of t and x_t fixed by SEED."""
    generator = torch.Generator(device=x0.device).manual_seed(SEED)
    terms = objective.terms(model.process(), model.reverse, x0, generator)
    return to_bits(terms.k.mean().item()) / objective.n_units


@torch.no_grad()
def kl_at(model, x0: Tensor, xt: Tensor, t: Tensor) -> Tensor:
    """(n_t,) the KL terms of K at the given t and x_t, mean over the examples (nats). Paper: Eq. 14."""
    process = model.process()
    return process.kl(process.q_posterior(x0, xt, t), model.reverse(process, xt, t)).mean(1)


def compare_k(model, x_curve: Tensor) -> dict:
    """The per-t KL terms of the same weights on the model's device and on the CPU (module docstring)."""
    device, on_cpu = x_curve.device, copy.deepcopy(model).cpu()
    process = on_cpu.process()
    times = torch.logspace(0, 1, K_TIMES, base=float(process.n_steps)).round().long().clamp(2, process.n_steps).unique()
    x0 = x_curve[:K_EXAMPLES].cpu()
    x0_t = x0.expand(len(times), *x0.shape)  # (n_t, B, D)
    t = times[:, None].expand(x0_t.shape[:2])
    xt = process.q_sample(x0_t, t, process.noise_like(x0_t, torch.Generator().manual_seed(SEED)))
    cpu = kl_at(on_cpu, x0_t, xt, t)
    with devices.full_float32():
        on_device = kl_at(model, x0_t.to(device), xt.to(device), t.to(device)).cpu()
    difference, atol = (on_device - cpu).abs(), K_ATOL_NATS * x0.shape[-1]
    return {"t": times.tolist(), "kl_cpu_nats": cpu.tolist(), "kl_device_nats": on_device.tolist(),
            "max_relative_difference": (difference / cpu.abs().clamp_min(atol)).max().item(),
            "rtol": K_RTOL, "atol_nats": atol, "ok": bool((difference <= K_RTOL * cpu.abs() + atol).all())}


def check_samples(model, n_dims: int, device: torch.device) -> dict:
    """N_SAMPLES samples through the whole reverse chain (Eq. 5): every value finite."""
    start = time.perf_counter()
    x = sampling.sample(model, (N_SAMPLES, n_dims), torch.Generator(device=device).manual_seed(SEED), device)
    return {"n_samples": N_SAMPLES, "seconds": round(time.perf_counter() - start, 3),
            "ok": bool(torch.isfinite(x).all())}


def check_model(name: str, config: cfg.Config, device: torch.device, folder: Path) -> dict:
    """Train, compare with the CPU and sample the model of ``name`` (module docstring: models)."""
    section = config.section(name)
    experiment, x, x_curve = setup(name, section, device)
    model, objective = experiment.model, experiment.objective
    before = fixed_k(model, objective, x_curve)
    training = train.timed_fit(experiment, x, x_curve, MODEL_ITERATIONS, folder / name)
    after = fixed_k(model, objective, x_curve)
    per_t, samples = compare_k(model, x_curve), check_samples(model, x.shape[1], device)
    hours = section.train.n_iterations * training["seconds_per_step"] / 3600
    return {"dataset": name, "parameterisation": section.diffusion.parameterisation, "amp": model.amp,
            "batch_size": section.train.batch_size, "fit": training, "profile_n_iterations": section.train.n_iterations,
            "profile_hours_at_this_rate": hours, "K_before_bits": before, "K_after_bits": after,
            "per_t_kl": per_t, "samples": samples, "ok": after > before and per_t["ok"] and samples["ok"]}


def stage_commands(dataset: str) -> list[tuple[list[str], list[str]]]:
    """(command, output paths) of each of STAGES for ``dataset``, as dvc.yaml writes them (each
    path is written there once)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    declared = yaml.safe_load((ROOT / "datasets.yaml").read_text())  # the lists `foreach: ${name}` names
    commands = []
    for stage in STAGES:
        if dataset not in declared[stages[stage]["foreach"].removeprefix("${").removesuffix("}")]:
            raise ValueError(f"dvc.yaml: stage {stage} does not run for {dataset}")
        spec = stages[stage]["do"]
        command = shlex.split(spec["cmd"].replace("${item}", dataset))
        outputs = [next(iter(out)) if isinstance(out, dict) else out
                   for kind in ("outs", "metrics") for out in spec.get(kind, [])]
        commands.append(([sys.executable if command[0] == "python" else command[0], *command[1:]],
                         [out.replace("${item}", dataset) for out in outputs]))
    return commands


def stage_project(folder: Path, profile: str, device: torch.device) -> Path:
    """A new project ``folder`` holding params.yaml: ``profile``'s with ``device``; a pass other
    than smoke trains STAGE_ITERATIONS steps and the image models' per-t terms on 16 examples."""
    overrides = [f"profile={profile}", f"device={device.type}"]
    if device.type == "cpu":
        overrides += ["processes=1", *(f"resources.{kind}.gpus=0" for kind in ("default", "train", "sample"))]
    if profile != "smoke":
        for name in GENERATED:
            overrides += [f"{name}.train.{key}={STAGE_ITERATIONS}"
                          for key in ("n_iterations", "lr_decay_every", "checkpoint_every", "log_every")]
            overrides += [f"{name}.likelihood.kl_examples=16"] if registry.get(name).is_image else []
    folder.mkdir(parents=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(cfg.compose(overrides), sort_keys=False))
    return folder


def run_stages(dataset: str, profile: str, device: torch.device, folder: Path) -> dict:
    """The data, train, evaluate and kl_per_t stages of ``dataset`` in a new project ``folder``
    (``stage_project``); K from the JSON outputs of evaluate and kl_per_t that hold it, which must
    say they were computed on ``device``."""
    stage_project(folder, profile, device)
    rows, start = [], time.perf_counter()
    for stage, (command, outputs) in zip(STAGES, stage_commands(dataset)):
        began = time.perf_counter()
        result = subprocess.run(command, cwd=folder, env=subprocess_env(), capture_output=True, text=True)
        rows.append({"stage": stage, "seconds": round(time.perf_counter() - began, 1), "ok": result.returncode == 0})
        if result.returncode:
            return {"stages": rows, "error": (result.stdout + result.stderr)[-3000:], "ok": False}
        if stage in ("evaluate", "kl_per_t"):
            written = [json.loads((folder / out).read_text()) for out in outputs if out.endswith(".json")]
            k = next(w for w in written if "K" in w and "device" in w)
            on_device = k["device"].startswith("CPU") == (device.type == "cpu")
            rows[-1].update(K_bits=k["K"], device=k["device"],
                            ok=on_device and torch.isfinite(torch.tensor(k["K"])).item())
    return {"stages": rows, "seconds": round(time.perf_counter() - start, 1), "ok": all(row["ok"] for row in rows)}


def subprocess_env(**extra: str) -> dict:
    """The environment of a subprocess: this one's, with the project importable from any folder."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def worker(mode: str, out: Path, profile: str, device: torch.device) -> list[str]:
    """The command of a worker of this module (``--fit-worker``, ``--ddp-worker``)."""
    return [sys.executable, "-m", "dpm.gpu_check", mode, str(out), "--profile", profile, "--device", device.type]


def check_resume(profile: str, device: torch.device, folder: Path) -> dict:
    """fit (``fit_worker``) uninterrupted, and killed with SIGKILL once its first checkpoint is on
    disk then run again: the final parameters must be equal (module docstring: resume)."""
    whole, killed = folder / "whole", folder / "killed"
    env = subprocess_env(CUBLAS_WORKSPACE_CONFIG=":4096:8")  # deterministic cuBLAS

    def run(out: Path) -> None:
        result = subprocess.run(worker("--fit-worker", out, profile, device), env=env, capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"fit_worker exited with status {result.returncode}: {result.stderr[-2000:]}")

    run(whole)
    process = subprocess.Popen(worker("--fit-worker", killed, profile, device), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while process.poll() is None and not list(killed.glob("checkpoint-*.pt")):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    if process.wait() != -signal.SIGKILL:
        return {"ok": False, "error": f"the run ended (status {process.returncode}) before it could be killed"}
    after = load_checkpoint(next(killed.glob("checkpoint-*.pt")))["iteration"]
    run(killed)
    (a, _), (b, steps) = (torch.load(out / "final.pt", weights_only=True).values() for out in (whole, killed))
    equal = all(torch.equal(a[key], b[key]) for key in a)
    close = all(torch.allclose(a[key], b[key], rtol=RESUME_RTOL, atol=1e-6) for key in a)
    return {"dataset": VARIANT_DATASET, "iterations": RESUME_ITERATIONS, "killed_after_checkpoint": after,
            "steps_after_resuming": steps, "bit_equal": equal,
            "max_abs_difference": max((a[k] - b[k]).abs().max().item() for k in a),
            "criterion": "bit-equal" if device.type == "cpu" else f"allclose rtol {RESUME_RTOL}",
            "ok": steps == RESUME_ITERATIONS - after and (equal if device.type == "cpu" else close)}


def fit_worker(out: Path, profile: str, device_name: str) -> None:
    """One run of ``check_resume``: fit, resuming from ``out``'s checkpoint if there is one; the
    final parameters and the number of optimiser steps this process took to ``out``/final.pt."""
    config = cfg.load_profile(profile)
    device = devices.resolve(device_name, config.tf32)
    if device.type == "cuda":
        torch.use_deterministic_algorithms(True, warn_only=True)
    section = config.section(VARIANT_DATASET)
    experiment, x, x_curve = setup(VARIANT_DATASET, section, device)
    steps = []
    register_optimizer_step_post_hook(lambda *_: steps.append(None))
    train.timed_fit(experiment, x, x_curve, RESUME_ITERATIONS, out, RESUME_CHECKPOINT_EVERY)
    atomic_torch_save({"model": experiment.model.state_dict(), "steps": len(steps)}, out / "final.pt")


def check_variants(config: cfg.Config, device: torch.device, folder: Path) -> dict:
    """VARIANT_DATASET's model trained from one initialisation in float32, with amp, and compiled
    with the profile's amp (module docstring: amp, compile)."""
    section = config.section(VARIANT_DATASET)
    runs = {}
    for name, amp, compiled in (("float32", False, False), ("amp", True, False), ("compile", section.train.amp, True)):
        experiment, x, x_curve = setup(VARIANT_DATASET, with_overrides(
            section, {"train.amp": amp}, VARIANT_DATASET), device)
        model, objective = experiment.model, experiment.objective
        before = fixed_k(model, objective, x_curve)
        if compiled:
            model.net.compile()
        training = train.timed_fit(experiment, x, x_curve, VARIANT_ITERATIONS, folder / name)
        after = fixed_k(model, objective, x_curve)
        runs[name] = {**training, "amp": amp, "K_before_bits": before, "K_after_bits": after, "K_gain_bits": after - before}
    reference = runs["amp" if section.train.amp else "float32"]
    no_op = models.AUTOCAST.get(device.type) is None
    amp_ok = (runs["amp"]["K_after_bits"] == runs["float32"]["K_after_bits"] if no_op else
              runs["amp"]["K_gain_bits"] >= (1 - AMP_SHORTFALL) * runs["float32"]["K_gain_bits"] > 0)
    gain = reference["K_gain_bits"]
    compile_ok = abs(runs["compile"]["K_gain_bits"] - gain) <= COMPILE_RTOL * abs(gain)
    return {"amp": {"dataset": VARIANT_DATASET, "float32": runs["float32"], "amp": runs["amp"], "no_op": no_op,
                    "criterion": "identical runs (autocast is a no-op here)" if no_op else
                    f"amp's K gain at least {1 - AMP_SHORTFALL:.0%} of float32's", "ok": amp_ok},
            "compile": {"dataset": VARIANT_DATASET, "compiled": runs["compile"], "eager": reference,
                        "criterion": f"K gain within {COMPILE_RTOL:.0%} of the eager run's", "ok": compile_ok}}


def check_data_parallel(profile: str, device: torch.device, folder: Path) -> dict:
    """``ddp_worker`` under torchrun: one process per visible GPU (NCCL), or two on the CPU (gloo)."""
    n = torch.cuda.device_count() if device.type == "cuda" else 2
    out = folder / "ddp.json"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
               *worker("--ddp-worker", out, profile, device)[1:]]
    result = subprocess.run(command, env=subprocess_env(OMP_NUM_THREADS="1"), capture_output=True, text=True)
    if result.returncode or not out.exists():
        return {"processes": n, "ok": False, "error": (result.stdout + result.stderr)[-3000:]}
    return json.loads(out.read_text())


def ddp_worker(out: Path, profile: str, device_name: str) -> None:
    """One rank of ``check_data_parallel``: fit DDP_ITERATIONS steps (data-parallel through
    dpm.run.distributed when there are several ranks), then the wrapper and the collectives."""
    config = cfg.load_profile(profile)
    device = distributed.setup(devices.resolve(device_name, config.tf32))
    section = config.section(VARIANT_DATASET)
    experiment, x, x_curve = setup(VARIANT_DATASET, section, device)
    with tempfile.TemporaryDirectory() as folder:
        training = train.timed_fit(experiment, x, x_curve, DDP_ITERATIONS, Path(folder))
    wrapper = check_wrapper(experiment.model, experiment.objective, x[:section.train.batch_size])
    collectives = check_collectives(device)
    if distributed.rank() == 0:
        atomic_write_text(out, json.dumps({
            "processes": distributed.world_size(), "dataset": VARIANT_DATASET, "fit": training,
            "wrapper": wrapper, "collectives": collectives, "ok": wrapper["ok"] and collectives["ok"]}))
    distributed.finish()


def check_wrapper(model, objective: Objective, batch: Tensor) -> dict:
    """One gradient through DistributedDataParallel, every rank on the same batch and draws,
    against this rank's plain gradient: the mean of equal gradients is that gradient."""
    gradients = []
    for loss in (lambda b, g: objective.loss(model, b, g), distributed.data_parallel(model, objective.loss, wrap=True)):
        model.zero_grad(set_to_none=True)
        loss(batch, torch.Generator(device=batch.device).manual_seed(SEED)).backward()
        gradients.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    plain, wrapped = gradients
    worst = max((((a - b).norm() / b.norm().clamp_min(1e-30)).item() for a, b in zip(plain, wrapped)), default=0.0)
    return {"world_size": dist.get_world_size(), "n_gradients": len(plain), "max_relative_difference": worst,
            "ok": len(plain) == len(wrapped) > 0 and worst <= WRAPPER_RTOL}


def check_collectives(device: torch.device) -> dict:
    """all_reduce, all_gather_object, broadcast_object_list and barrier, at this world size."""
    rank, size = dist.get_rank(), dist.get_world_size()
    total = torch.tensor([rank + 1.0], device=device)
    dist.all_reduce(total)
    ranks, sent = [None] * size, [{"from": rank}]
    dist.all_gather_object(ranks, rank)
    dist.broadcast_object_list(sent, src=0)
    dist.barrier()
    ok = total.item() == size * (size + 1) / 2 and ranks == list(range(size)) and sent == [{"from": 0}]
    return {"world_size": size, "backend": dist.get_backend(), "ok": ok}


def attempt(check: Callable[..., dict], *args) -> dict:
    """``check(*args)``, or a failed result holding the exception's traceback."""
    try:
        return check(*args)
    except Exception:  # a check that raises fails; the others still run
        return {"ok": False, "error": traceback.format_exc()[-3000:]}


def check(profile: str, device: torch.device, datasets: list[str]) -> dict:
    """Every check (module docstring); the report. The models run alone (their steps are timed);
    then the training variants, beside the subprocesses of the stages, resume and data-parallel checks."""
    start, passes = time.perf_counter(), ["smoke"] + ([profile] if profile != "smoke" else [])
    report = {"profile": profile, "passes": passes, "environment": devices.environment(device),
              "n_gpus": torch.cuda.device_count() if device.type == "cuda" else 0, "git_commit": git_commit(),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    generated = [name for name in datasets if name in GENERATED]
    with tempfile.TemporaryDirectory() as temporary, ThreadPoolExecutor(len(passes) * len(generated) + 2) as pool:
        folder = Path(temporary)
        report["models"] = {name: [{"dataset": d, **attempt(check_model, d, cfg.load_profile(name), device,
                                                             folder / name)} for d in datasets] for name in passes}
        stages = {name: [pool.submit(attempt, run_stages, d, name, device, folder / f"{name}-stages" / d)
                         for d in generated] for name in passes}
        resume = pool.submit(attempt, check_resume, profile, device, folder / "resume")
        data_parallel = pool.submit(attempt, check_data_parallel, profile, device, folder)
        variants = attempt(check_variants, cfg.load_profile(profile), device, folder / "variants")
        report.update(amp=variants.get("amp", variants), compile=variants.get("compile", variants),
                      resume=resume.result(), data_parallel=data_parallel.result(),
                      stages={name: [{"dataset": d, **job.result()} for d, job in zip(generated, jobs)]
                              for name, jobs in stages.items()})
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["failed"] = failed(report)
    return report


def failed(report: dict) -> list[str]:
    """The checks that failed, by name (empty: every check passed)."""
    names = [f"{kind} {profile} {row.get('dataset', '')}".strip() for kind in ("models", "stages")
             for profile, rows in report[kind].items() for row in rows if not row["ok"]]
    return names + [kind for kind in ("resume", "amp", "compile", "data_parallel") if not report[kind]["ok"]]


def to_markdown(report: dict) -> str:
    """The report as Markdown: a table per pass, a line per one-off check, the errors."""
    env, failures = report["environment"], report["failed"]
    lines = [f"# GPU check: profile {report['profile']} on {env['device']}", "",
             f"torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}, "
             f"float32 precision {env['fp32_precision']}, "
             f"{report['n_gpus']} GPU(s) visible; git {report['git_commit']}, {report['date']}; "
             f"{report['seconds']:.0f} s in all. Result: "
             f"{'every check passed' if not failures else 'FAILED: ' + '; '.join(failures)}.", ""]
    for name in report["passes"]:
        lines += [f"## Models, {name} profile", "", f"fit {MODEL_ITERATIONS} steps on structured synthetic data; "
                  f"per-t KL terms at {K_TIMES} t, device against CPU in full float32 (rtol {K_RTOL}).", "",
                  "| dataset | parameterisation | amp | fit s/step (ex/s) | h for the profile's steps at this rate "
                  "| K before → after (bits) | per-t KL max rel. difference | samples finite | ok |",
                  "|---|---|---|---|---|---|---|---|---|", *map(_model_row, report["models"][name]), "",
                  f"## Stages, {name} profile", "", "| dataset | seconds per stage | K evaluate | K kl_per_t | ok |",
                  "|---|---|---|---|---|", *map(_stage_row, report["stages"][name]), ""]
    lines += ["## Once, at the profile", "", "amp and compile ran beside the stages', resume's and data-parallel's "
              "subprocesses: their times per step compare with each other, not with the models' above.", "",
              *(f"- {kind}: {_summary(kind, report[kind])}" for kind in ("resume", "amp", "compile", "data_parallel"))]
    errors = [(name, row["error"]) for name, row in _results(report) if "error" in row]
    for name, error in errors:
        lines += ["", f"### Error: {name}", "", "```", error.strip(), "```"]
    return "\n".join(lines) + "\n"


def _results(report: dict):
    for kind in ("models", "stages"):
        for name, rows in report[kind].items():
            yield from ((f"{kind} {name} {row['dataset']}", row) for row in rows)
    yield from ((kind, report[kind]) for kind in ("resume", "amp", "compile", "data_parallel"))


def _model_row(row: dict) -> str:
    if "fit" not in row:
        return f"| {row['dataset']} | | | | | | | | failed |"
    fit_ = row["fit"]
    return (f"| {row['dataset']} | {row['parameterisation']} | {row['amp']} | {fit_['seconds_per_step']:.3g} "
            f"({fit_['examples_per_s']:.3g}) | {row['profile_hours_at_this_rate']:.3g} "
            f"({row['profile_n_iterations']} steps) | {row['K_before_bits']:.4g} → {row['K_after_bits']:.4g} "
            f"| {row['per_t_kl']['max_relative_difference']:.2g} "
            f"| {row['samples']['ok']} | {row['ok']} |")


def _stage_row(row: dict) -> str:
    stages = {r["stage"]: r for r in row.get("stages", [])}
    seconds = ", ".join(f"{name} {r['seconds']:.0f}" for name, r in stages.items())
    k = [f"{stages[name]['K_bits']:.4g}" if "K_bits" in stages.get(name, {}) else ""
         for name in ("evaluate", "kl_per_t")]
    return f"| {row['dataset']} | {seconds} | {k[0]} | {k[1]} | {row['ok']} |"


def _summary(kind: str, result: dict) -> str:
    if "error" in result:
        return "FAILED (error below)"
    ok = "passed" if result["ok"] else "FAILED"
    if kind == "resume":
        return (f"{ok}: {result['dataset']}, {result['iterations']} steps, killed after its checkpoint of step "
                f"{result['killed_after_checkpoint']}, resumed for {result['steps_after_resuming']} steps; bit-equal "
                f"{result['bit_equal']}, largest difference {result['max_abs_difference']:.2g} ({result['criterion']})")
    if kind in ("amp", "compile"):
        a, b = (result["amp"], result["float32"]) if kind == "amp" else (result["compiled"], result["eager"])
        return (f"{ok}: {result['dataset']}, K gain {a['K_gain_bits']:.4g} against {b['K_gain_bits']:.4g} bits, "
                f"{a['seconds_per_step']:.3g} against {b['seconds_per_step']:.3g} s/step ({result['criterion']})")
    return (f"{ok}: {result['processes']} process(es), {result['collectives']['backend']}; DistributedDataParallel "
            f"gradient equal to the plain one {result['wrapper']['ok']}, collectives {result['collectives']['ok']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dpm.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--profile", choices=cfg.PROFILES, help="default: paper on CUDA, smoke on the CPU")
    parser.add_argument("--datasets", nargs="+", choices=registry.NAMES, metavar="DATASET",
                        help="the models and stages checked in each pass (default: all)")
    parser.add_argument("--out", type=Path, help="default: results/bench/<profile>-<device>.json")
    parser.add_argument("--fit-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ddp-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    profile = args.profile or ("paper" if args.device == "cuda" else "smoke")
    if args.fit_worker or args.ddp_worker:
        return (fit_worker if args.fit_worker else ddp_worker)(args.fit_worker or args.ddp_worker, profile, args.device)
    if args.device == "cuda" and not torch.cuda.is_available():
        build = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a build without CUDA"
        print(f"gpu_check: no CUDA device is visible to torch {torch.__version__} ({build}); --device cpu runs "
              f"the checks on the CPU", file=sys.stderr)
        sys.exit(2)
    devices.keep_freed_memory()
    config = cfg.load_profile(profile)
    report = check(profile, devices.resolve(args.device, config.tf32), list(args.datasets or registry.NAMES))
    out = args.out or ROOT / "results" / "bench" / f"{profile}-{args.device}.json"
    markdown = to_markdown(report)
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), markdown)
    print(markdown + f"\nwrote {out} and {out.with_suffix('.md')}")
    if report["failed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
