"""One command that checks this project on a GPU and records what it measured (minutes on one GPU).

1. The benchmark (dpm/bench.py) of every model of the profile, on synthetic data.
2. Every model trained a few hundred steps with ``amp`` on (bfloat16 autocast on CUDA): the
   training loss must fall.
3. K of the same weights on the device and on the CPU, at the same draws of t and x_t: they must
   agree within ``K_TOLERANCE_BITS``.
4. A batch of samples drawn through the whole reverse chain: every value finite.
5. Data-parallel training (dpm/distributed.py) on every visible GPU when there are several (on
   the CPU: two gloo processes, to exercise the same path).
6. The profile's training time per model on this device, projected from the benchmark (one GPU)
   and from the data-parallel run (all of them).

The report (JSON and Markdown beside it) names the device, the torch and CUDA versions and every
figure; the command fails if a check does. Without a GPU, ``--device cpu --profile smoke`` runs
the same parts on the CPU (the test suite does).

Usage: python -m dpm.gpu_check [--device cuda|cpu] [--profile P] [--iterations N] [--seconds S]
                               [--processes N] [--out FILE.json]

Deviation from STYLE.md (no argparse in dpm/): like dpm/bench.py, a tool run by hand.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import Tensor

from dpm import bench, config as cfg, device as devices, distributed, model as models, registry, sampling
from dpm.atomic import atomic_write_text
from dpm.bound import bound_terms, to_bits
from dpm.objective import Objective
from dpm.provenance import git_commit
from dpm.train import Run, fit, update

K_TOLERANCE_BITS = 0.01
"""|K on the device − K on the CPU|, bits per unit (pixel; example for the toys): below the
standard error the evaluate stage reports. CUDA's convolutions run in TF32 by default, as in
the pipeline's own stages."""
N_SAMPLES = 16
DDP_ITERATIONS = 50


def structured(info, n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """(n, D) data as stored that an untrained model fits badly and learns fast: one random value
    per example repeated over its dimensions, plus a little noise (binary: one random bit)."""
    if info.p_pi is not None:
        return torch.bernoulli(torch.full((n, 1), 0.5, device=device), generator=generator).expand(n, info.n_dims)
    level = torch.randn((n, 1), generator=generator, device=device)
    return level + 0.1 * torch.randn((n, info.n_dims), generator=generator, device=device)


def check_training(name: str, section, device: torch.device, n_iterations: int):
    """Train ``n_iterations`` Adam steps with amp on; the loss must fall (mean of the last fifth
    of the steps below that of the first fifth). Returns the model and its figures."""
    info = bench.synthetic_info(name, section)
    generator = torch.Generator(device=device).manual_seed(section.train.seed)
    x = structured(info, 4 * section.train.batch_size, generator, device)
    model = models.build(name, section, info, x, section.train.seed).to(device)
    model.amp = True
    objective = Objective.of(section, info, device)
    optimiser = torch.optim.Adam(model.parameters(), lr=section.train.learning_rate)
    losses, start = [], time.perf_counter()
    for _ in range(n_iterations):
        batch = x[torch.randint(len(x), (section.train.batch_size,), generator=generator, device=device)]
        loss = objective.loss(model, batch, generator)
        update(model, optimiser, loss)
        losses.append(loss.detach())
    bits = to_bits(torch.stack(losses).float().cpu()) / objective.n_units  # the one synchronisation
    fifth = max(1, n_iterations // 5)
    first, last = bits[:fifth].mean().item(), bits[-fifth:].mean().item()
    model.amp = False
    return model, info, x, {"iterations": n_iterations, "seconds": round(time.perf_counter() - start, 3),
                            "loss_first_bits": first, "loss_last_bits": last, "loss_falls": last < first}


@torch.no_grad()
def k_at_draws(model, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
    """K per example (nats) with the sum over t = 2..T estimated at one given t per example
    (uniform, weight T − 1) and x_t = q_sample(x0, t, noise): no random draw of its own.
    Paper: Eq. 14."""
    process = model.process()
    drawn = bound_terms(process, model.reverse, x0, torch.Generator(device=x0.device).manual_seed(0), n_t=1)
    rest = drawn.k + drawn.kl  # the terms besides the KL sum, which need no draw
    xt = process.q_sample(x0[None], t[None], noise[None])
    kl = process.kl(process.q_posterior(x0[None], xt, t[None]), model.reverse(process, xt, t[None])).sum(0)
    return rest - (process.n_steps - 1) * kl


def check_k(model, info, x_stored: Tensor, section, device: torch.device) -> dict:
    """K of the same weights on ``device`` and on the CPU, at the same draws (made on the CPU)."""
    generator = torch.Generator().manual_seed(section.eval.seed)
    on_cpu = copy.deepcopy(model).cpu()
    x0 = Objective.of(section, info).prepare(x_stored[:section.eval.batch_size].cpu(), generator)
    process = on_cpu.process()
    t = torch.randint(2, process.n_steps + 1, x0.shape[:1], generator=generator)
    noise = process.noise_like(x0, generator)
    n_units = Objective.of(section, info).n_units
    k_cpu = to_bits(k_at_draws(on_cpu, x0, t, noise).mean().item()) / n_units
    k_device = to_bits(k_at_draws(model, x0.to(device), t.to(device), noise.to(device)).mean().item()) / n_units
    return {"K_device_bits": k_device, "K_cpu_bits": k_cpu, "difference_bits": abs(k_device - k_cpu),
            "tolerance_bits": K_TOLERANCE_BITS, "agree": abs(k_device - k_cpu) <= K_TOLERANCE_BITS}


def check_sampling(model, info, device: torch.device) -> dict:
    """A batch of N_SAMPLES samples through the whole reverse chain (Eq. 5)."""
    start = time.perf_counter()
    x = sampling.sample(model, (N_SAMPLES, info.n_dims), torch.Generator(device=device).manual_seed(0), device)
    finite = bool(torch.isfinite(x).all())
    return {"n_samples": N_SAMPLES, "seconds": round(time.perf_counter() - start, 3), "finite": finite}


def check_model(name: str, config: cfg.Config, device: torch.device, n_iterations: int) -> dict:
    section = config.section(name)
    model, info, x, training = check_training(name, section, device, n_iterations)
    return {"dataset": name, "training": training, "K": check_k(model, info, x, section, device),
            "sampling": check_sampling(model, info, device)}


def check_data_parallel(profile: str, device: torch.device, n_processes: int, dataset: str) -> dict:
    """``n_processes`` ranks (torchrun; NCCL on GPUs, gloo on the CPU) train ``dataset``'s model
    DDP_ITERATIONS steps through dpm.train.fit; rank 0 reports the global examples per second."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "ddp.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n_processes}",
                   "-m", "dpm.gpu_check", "--ddp-worker", str(out), "--device", device.type, "--profile", profile,
                   "--datasets", dataset]
        result = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
        if result.returncode or not out.exists():
            return {"processes": n_processes, "dataset": dataset, "ok": False, "error": result.stderr[-2000:]}
        return {**json.loads(out.read_text()), "ok": True}


def ddp_worker(out: Path, profile: str, device_name: str, dataset: str) -> None:
    """One rank of ``check_data_parallel``."""
    device = distributed.setup(devices.resolve(device_name))
    section = cfg.load_profile(profile).section(dataset)
    c = replace(section.train, n_iterations=DDP_ITERATIONS, checkpoint_every=DDP_ITERATIONS,
                log_every=DDP_ITERATIONS)
    info = bench.synthetic_info(dataset, section)
    x = structured(info, 4 * c.batch_size, torch.Generator(device=device).manual_seed(c.seed), device)
    model = models.build(dataset, section, info, x, c.seed).to(device)
    objective = Objective.of(section, info, device)
    x_curve = objective.prepare(x[:64], torch.Generator(device=device).manual_seed(1))
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        history = fit(model, objective, x, x_curve, c, Run(checkpoint_dir=Path(folder), fingerprint="gpu_check",
                                                           progress=False))
        seconds = time.perf_counter() - start
    n_ranks = distributed.world_size()
    if distributed.rank() == 0:
        atomic_write_text(out, json.dumps({
            "processes": n_ranks, "dataset": dataset, "iterations": DDP_ITERATIONS, "seconds": round(seconds, 3),
            "global_batch_size": n_ranks * c.batch_size, "examples_per_s": DDP_ITERATIONS * n_ranks * c.batch_size / seconds,
            "final_K_bits": history[-1]["holdout_K_bits"]}))
    distributed.finish()


def project(rows: list[dict], config: cfg.Config, data_parallel: dict | None) -> list[dict]:
    """Hours to train each model of the profile: n_iterations × batch_size / (examples per second),
    on one device from the benchmark; on all the data-parallel run's devices for its model, the
    global batch being processes × batch_size (the same number of iterations)."""
    projected = []
    for row in rows:
        train = config.section(row["dataset"]).train
        entry = {"dataset": row["dataset"], "n_iterations": train.n_iterations, "batch_size": train.batch_size,
                 "hours_one_device": train.n_iterations * train.batch_size / row["train_examples_per_s"] / 3600}
        if data_parallel and data_parallel.get("ok") and data_parallel["dataset"] == row["dataset"]:
            entry["hours_data_parallel"] = (train.n_iterations * data_parallel["global_batch_size"]
                                            / data_parallel["examples_per_s"] / 3600)
            entry["processes"] = data_parallel["processes"]
        projected.append(entry)
    return projected


def versions(device: torch.device) -> dict:
    cuda = torch.version.cuda if device.type == "cuda" else None
    return {"device": devices.describe(device), "n_gpus": torch.cuda.device_count() if device.type == "cuda" else 0,
            "torch": torch.__version__, "cuda": cuda,
            "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None}


def passed(report: dict) -> list[str]:
    """The checks that failed, by name (empty: every check passed)."""
    failed = [f"{m['dataset']}: {what}" for m in report["models"] for what, ok in (
        ("training loss did not fall", m["training"]["loss_falls"]), ("K differs from the CPU's", m["K"]["agree"]),
        ("samples not finite", m["sampling"]["finite"]))if not ok]
    if report["data_parallel"] is not None and not report["data_parallel"]["ok"]:
        failed.append("data-parallel training failed")
    return failed


def to_markdown(report: dict) -> str:
    v = report["versions"]
    lines = [f"# GPU check: profile {report['profile']} on {v['device']}", "",
             f"torch {v['torch']}, CUDA {v['cuda']}, cuDNN {v['cudnn']}, {v['n_gpus']} GPU(s) visible; "
             f"git {report['git_commit']}, {report['date']}; {report['seconds']:.0f} s in all. "
             f"Result: {'every check passed' if not report['failed'] else 'FAILED: ' + '; '.join(report['failed'])}.",
             "", "## Checks", "", "| dataset | train steps (amp) | loss first → last fifth (bits) | K device | K CPU "
             "| abs. difference (tolerance) | samples finite |", "|---|---|---|---|---|---|---|"]
    for m in report["models"]:
        t, k, s = m["training"], m["K"], m["sampling"]
        lines.append(f"| {m['dataset']} | {t['iterations']} in {t['seconds']:.1f} s | {t['loss_first_bits']:.4g} → "
                     f"{t['loss_last_bits']:.4g} | {k['K_device_bits']:.6g} | {k['K_cpu_bits']:.6g} | "
                     f"{k['difference_bits']:.2g} ({k['tolerance_bits']}) | {s['finite']} ({s['n_samples']} in "
                     f"{s['seconds']:.1f} s) |")
    ddp = report["data_parallel"]
    lines += ["", "## Data-parallel training", "", "not run (one device)" if ddp is None else
              json.dumps({k: v for k, v in ddp.items() if k != "error"}) + ("" if ddp["ok"] else "\n\n" + ddp["error"])]
    lines += ["", "## Projected training time of the profile's models", "", "| dataset | iterations × batch | hours, one "
              "device | hours, data-parallel |", "|---|---|---|---|"]
    for p in report["projection"]:
        parallel = f"{p['hours_data_parallel']:.3g} ({p['processes']} processes)" if "hours_data_parallel" in p else ""
        lines.append(f"| {p['dataset']} | {p['n_iterations']} × {p['batch_size']} | {p['hours_one_device']:.3g} | "
                     f"{parallel} |")
    return "\n".join(lines) + "\n\n" + bench.to_markdown(report["bench"]).replace("# Benchmark", "## Benchmark")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--profile", choices=cfg.PROFILES, help="default: paper on CUDA, smoke on the CPU")
    parser.add_argument("--datasets", nargs="+", choices=registry.NAMES, metavar="DATASET", help="default: all")
    parser.add_argument("--iterations", type=int, default=300, help="training steps of the amp check")
    parser.add_argument("--seconds", type=float, default=2.0, help="time budget of each benchmark measurement")
    parser.add_argument("--processes", type=int, help="data-parallel processes (default: the visible GPUs; "
                                                      "2 on the CPU); 1: no data-parallel check")
    parser.add_argument("--out", type=Path, help="default: results/bench/<profile>-<device>.json")
    parser.add_argument("--ddp-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    profile = args.profile or ("paper" if args.device == "cuda" else "smoke")
    datasets = args.datasets or list(registry.NAMES)
    if args.ddp_worker:
        return ddp_worker(args.ddp_worker, profile, args.device, datasets[0])
    devices.keep_freed_memory()
    start, device, config = time.perf_counter(), devices.resolve(args.device), cfg.load_profile(profile)
    rows = bench.benchmark("params.yaml", profile, datasets, args.device, args.seconds, paper=False)
    models_checked = [check_model(name, config, device, args.iterations) for name in datasets]
    n_processes = args.processes or (torch.cuda.device_count() if device.type == "cuda" else 2)
    data_parallel = check_data_parallel(profile, device, n_processes, datasets[0]) if n_processes > 1 else None
    report = {"profile": profile, "versions": versions(device), "git_commit": git_commit(),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "models": models_checked,
              "data_parallel": data_parallel, "projection": project(rows, config, data_parallel), "bench": rows}
    report["seconds"] = time.perf_counter() - start
    report["failed"] = passed(report)
    out = args.out or Path("results/bench") / f"{profile}-{device.type}.json"
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    atomic_write_text(out.with_suffix(".md"), to_markdown(report))
    print(to_markdown(report))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    if report["failed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
