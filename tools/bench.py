"""Benchmark every model of a profile on the device at hand, on synthetic data of the right shape.

For each dataset: parameter count, training examples per second (real Adam steps, as dpm/run/train.py
takes them), sampling and holdout-evaluation seconds per example, peak memory, and the projected
hours to train the paper profile's model on this device. No real data is read: standard normal
values in model units, random bits at π's rate for the heartbeat. On a CPU shared with other jobs,
set OMP_NUM_THREADS to the cores actually free: oversubscribed threads wait on each other.

Usage: python -m tools.bench [--profile P] [--datasets D ...] [--device auto|cpu|cuda] [--seconds S]
                             [--paper-batch N] [--no-paper] [--compile] [--system-malloc] [--out FILE.json]

``--compile`` measures the networks compiled by torch.compile (params.yaml ``compile``), to
compare with the default eager run; ``--no-paper`` leaves out the paper projection.

As the pipeline's stages, the benchmark keeps freed memory for reuse (dpm.base.device.keep_freed_memory);
``--system-malloc`` measures with glibc's default behaviour instead.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.utils._python_dispatch import TorchDispatchMode

from dpm.base import config as cfg, device as devices, registry
from dpm.core import experiment as experiments
from dpm.core import model as models
from dpm import synthetic
from dpm.run import train
from dpm.base.atomic import atomic_write_text
from dpm.data.split import DataInfo
from dpm.core.objective import Objective
from dpm.base.provenance import git_commit
from dpm.chain.sampling import reverse_trajectory

MIN_TRAIN_STEPS = 3
PHASES = ("forward", "bound", "backward", "optimiser")
# the two lengths of training whose difference in dispatched operations is counted (``count_operations``)
COUNTED_ITERATIONS = (3, 5)
N_SAMPLES = 4  # examples in the timed reverse chain
# The paper's image models take ~10 s and GBs per step of 16 images on a 2-core CPU: there the
# projection times smaller steps by default and scales per example (GPU, toys: the paper's batch).
CPU_PAPER_BATCH = 8

NOTES = [
    "train: real steps (forward, backward, Adam) on synthetic data at the profile's batch size, as dpm/run/train.py "
    "takes them; images: one importance-sampled t per example, bfloat16 autocast on CUDA if train.amp; toys: the "
    "exact sum over t. One warm-up step is excluded.",
    f"sample: a reverse chain of T steps over {N_SAMPLES} examples, its first step a warm-up; where the chain "
    "outlasts the time budget only its first steps are timed and the time per step is scaled to T "
    "(`chain steps run` < T). batched sample: the same over `sample batch` examples (MNIST: the Parzen stage's "
    "batch; others: eval.batch_size), the throughput of drawing many samples.",
    "eval: the evaluate stage's K estimate per example and repeat (images: one importance-sampled t; toys: the "
    "exact sum over t), at eval.batch_size; total = that × eval.n_repeats × n_holdout (bark: unknown, its holdout "
    "is cut from photographs). The stage's uniform-t Monte Carlo check is not counted.",
    "ops/step: operators that launch a kernel (views, scalar reads and profiler markers left out) per training "
    "step of dpm.run.train.fit, counted on the CPU (a Python dispatch mode sees each ATen call once; a foreach or "
    "fused call is one), as the difference between fits of "
    f"{COUNTED_ITERATIONS[1]} and {COUNTED_ITERATIONS[0]} iterations, by phase: forward (the network), bound (the "
    "rest of −K and the batch draw), backward, optimiser (Adam). Each is a kernel launch on a GPU.",
    "memory: CUDA: torch.cuda.max_memory_allocated while the model was measured; CPU: the increase of the "
    "process's peak RSS (ru_maxrss), 0 where an earlier model had already reached a higher peak.",
    "paper: the paper profile's model trained on this device at `paper batch` examples per step (on the CPU at "
    f"most {CPU_PAPER_BATCH} images by default); hours = n_iterations × batch_size / (examples per second) / 3600.",
]

# row key → column of the printed table
TABLE_COLUMNS = {
    "dataset": "dataset", "n_parameters": "parameters", "train_examples_per_s": "train ex/s",
    "sample_seconds_per_example": "sample s/ex", "sample_steps_run": "chain steps run",
    "batched_sample_seconds_per_example": "batched sample s/ex", "sample_batch_size": "sample batch",
    "eval_seconds_per_example": "eval s/ex", "eval_projected_seconds": "eval total s", "peak_memory_mib": "peak MiB",
    "ops_per_step": "ops/step", **{f"ops_{phase}": f"ops {phase}" for phase in PHASES},
    "paper_train_examples_per_s": "paper ex/s", "paper_measured_batch": "paper batch",
    "paper_train_hours": "paper train h",
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step: Callable[[], object], seconds: float, min_calls: int, device: torch.device) -> tuple[float, int]:
    """Seconds per call of ``step`` after one warm-up call, repeated for about ``seconds`` and at
    least ``min_calls`` times; returns (seconds per call, timed calls)."""
    step()
    _sync(device)
    start, n_calls = time.perf_counter(), 0
    while n_calls < min_calls or time.perf_counter() - start < seconds:
        step()
        _sync(device)
        n_calls += 1
    return (time.perf_counter() - start) / n_calls, n_calls


def measure_training(experiment: experiments.Experiment, seconds: float, batch_size: int) -> tuple[float, int]:
    """Training examples per second and the number of timed steps of ``dpm.run.train.fit``'s own step
    (a batch, −K by the dataset's objective, back-propagation, Adam) on synthetic data, its first
    iteration (the warm-up) left out: a fit of MIN_TRAIN_STEPS + 1 iterations to gauge the step,
    then, if that was shorter than ``seconds``, one long enough to last them."""
    generator = torch.Generator(device=experiment.device).manual_seed(experiment.section.train.seed)
    pool = synthetic.draw(experiment.info, 4 * batch_size, generator, experiment.device)
    x_curve = experiment.objective.prepare(pool[:2], generator)
    n_iterations = MIN_TRAIN_STEPS + 1
    with tempfile.TemporaryDirectory() as folder:
        gauge = train.timed_fit(experiment, pool, x_curve, n_iterations, Path(folder), batch_size=batch_size)
        if gauge["seconds_per_step"] * n_iterations < seconds:
            n_iterations = max(n_iterations, math.ceil(seconds / max(gauge["seconds_per_step"], 1e-9)))
            gauge = train.timed_fit(experiment, pool, x_curve, n_iterations, Path(folder) / "long",
                                    batch_size=batch_size)
    return gauge["examples_per_s"], n_iterations - max(1, n_iterations // 10)


def launches_kernel(func) -> bool:
    """Whether an ATen operator launches a kernel on a GPU: not a view or another change of a
    tensor's metadata alone, not the read of a scalar (a synchronisation, not a launch), not a
    profiler marker."""
    return func.namespace == "aten" and not func.is_view and func not in _NO_KERNEL


_NO_KERNEL = {torch.ops.aten._unsafe_view.default, torch.ops.aten._local_scalar_dense.default}


class _PhaseCounter(TorchDispatchMode):
    """Counts the operators dispatched that launch a kernel, by phase of a training step (``PHASES``): inside the
    network's forward, inside an optimiser's step, inside autograd's backward, else the bound."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.counts: Counter = Counter()
        self.in_net = self.in_optimiser = False
        self._hooks = [net.register_forward_pre_hook(lambda *_: self._set("in_net", True)),
                       net.register_forward_hook(lambda *_: self._set("in_net", False)),
                       register_optimizer_step_pre_hook(lambda *_: self._set("in_optimiser", True)),
                       register_optimizer_step_post_hook(lambda *_: self._set("in_optimiser", False))]

    def _set(self, flag: str, value: bool) -> None:
        setattr(self, flag, value)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not launches_kernel(func):
            return func(*args, **(kwargs or {}))
        if self.in_optimiser:
            phase = "optimiser"
        elif torch._C._current_graph_task_id() != -1:
            phase = "backward"
        else:
            phase = "forward" if self.in_net else "bound"
        self.counts[phase] += 1
        return func(*args, **(kwargs or {}))

    def __exit__(self, *exc):
        for hook in self._hooks:
            hook.remove()
        return super().__exit__(*exc)


def count_operations(name: str, config: cfg.Config) -> dict:
    """Operators dispatched per training step of ``name``'s model, by phase (``PHASES``): the real
    ``dpm.run.train.fit`` on the CPU on synthetic data, the count of a fit of COUNTED_ITERATIONS[1]
    iterations less that of one of COUNTED_ITERATIONS[0], so that what a fit does once (the set-up,
    Adam's first step, the final log and checkpoint) cancels. Each operator is one kernel launch
    on a GPU, where small models are bound by launches rather than arithmetic."""
    section = config.section(name)
    info = synthetic.data_info(name, section)
    cpu = torch.device("cpu")
    counts = []
    for n_iterations in COUNTED_ITERATIONS:
        c = replace(section.train, n_iterations=n_iterations, checkpoint_every=10 ** 6, log_every=10 ** 6)
        generator = torch.Generator().manual_seed(c.seed)
        x = synthetic.draw(info, 4 * c.batch_size, generator, cpu)
        experiment = experiments.build(name, registry.get(name).model, section, info, cpu, x)
        x_curve = experiment.objective.prepare(x[:2], generator)
        with tempfile.TemporaryDirectory() as folder, _PhaseCounter(experiment.model.net) as counter:
            train.fit(experiment.model, experiment.objective, x, x_curve, c,
                      train.Run(checkpoint_dir=Path(folder), fingerprint="ops", progress=False))
        counts.append(counter.counts)
    n_steps = COUNTED_ITERATIONS[1] - COUNTED_ITERATIONS[0]
    per_phase = {f"ops_{phase}": (counts[1][phase] - counts[0][phase]) / n_steps for phase in PHASES}
    return {"ops_per_step": sum(per_phase.values()), **per_phase}


def measure_sampling(model: models.DiffusionModel, info: DataInfo, device: torch.device,
                     seconds: float, n_examples: int = N_SAMPLES) -> tuple[float, int]:
    """Seconds per example of x_0 ~ p(x_0) (Eq. 5) over a chain of ``n_examples``, and how many
    of the chain's T steps were run: the first is a warm-up; the chain stops after ``seconds``."""
    generator = torch.Generator(device=device).manual_seed(0)
    chain = reverse_trajectory(model, (n_examples, info.n_dims), generator, device)
    n_steps, _ = next(chain)  # (T, x_T ~ π)
    next(chain)
    _sync(device)
    start, n_timed = time.perf_counter(), 0
    for _ in chain:
        n_timed += 1
        if time.perf_counter() - start > seconds:
            break
    _sync(device)
    per_step = (time.perf_counter() - start) / n_timed
    return per_step * n_steps / n_examples, n_timed + 1


@torch.no_grad()
def measure_evaluation(model: models.DiffusionModel, section, info: DataInfo, device: torch.device,
                       seconds: float) -> float:
    """Seconds per holdout example and repeat of the evaluate stage's K estimate."""
    objective = Objective.of(section, info, device)
    generator = torch.Generator(device=device).manual_seed(section.eval.seed)
    x = objective.prepare(synthetic.draw(info, section.eval.batch_size, generator, device), generator)
    process = model.process()
    per_batch, _ = _timed(lambda: objective.terms(process, model.reverse, x, generator), seconds, 1, device)
    return per_batch / len(x)


def _memory_mark(device: torch.device) -> int:
    """Start a peak-memory measurement; returns the CPU's peak RSS so far (KiB, Linux)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_memory_mib(device: torch.device, mark: int) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - mark) / 2 ** 10


def measure_model(name: str, config: cfg.Config, device: torch.device, seconds: float,
                  compile: bool = False) -> dict:
    """Every figure of the model of ``name`` in ``config``'s profile (``compile``: its network
    compiled by torch.compile, the warm-up steps compiling it)."""
    section = config.section(name)
    info = synthetic.data_info(name, section)
    mark = _memory_mark(device)
    experiment = experiments.build(name, registry.get(name).model, section, info, device, compile=compile)
    model = experiment.model
    rate, n_steps = measure_training(experiment, seconds, section.train.batch_size)
    sample_seconds, n_run = measure_sampling(model, info, device, seconds)
    batch = sample_batch_size(section)
    batched_seconds, _ = measure_sampling(model, info, device, seconds, batch)
    eval_seconds = measure_evaluation(model, section, info, device, seconds)
    n_holdout = getattr(section.data, "n_holdout", None)
    return {
        "dataset": name, "n_parameters": sum(p.numel() for p in model.parameters()),
        "T": section.diffusion.n_steps, "train_batch_size": section.train.batch_size,
        "train_examples_per_s": rate, "train_steps_timed": n_steps,
        "sample_seconds_per_example": sample_seconds, "sample_steps_run": n_run,
        "batched_sample_seconds_per_example": batched_seconds, "sample_batch_size": batch,
        "eval_seconds_per_example": eval_seconds, "eval_n_repeats": section.eval.n_repeats, "eval_n_holdout": n_holdout,
        "eval_projected_seconds": None if n_holdout is None else eval_seconds * section.eval.n_repeats * n_holdout,
        "peak_memory_mib": _peak_memory_mib(device, mark),
        "peak_memory_kind": "cuda max_memory_allocated" if device.type == "cuda" else "process peak RSS increase",
        **count_operations(name, config),
    }


def sample_batch_size(section) -> int:
    """The batch that many samples are drawn in: the Parzen stage's where the section has one,
    else the evaluation batch."""
    return section.parzen.batch_size if hasattr(section, "parzen") else section.eval.batch_size


def project_paper(name: str, paper: cfg.Config, device: torch.device, seconds: float, batch_size: int,
                  compile: bool = False) -> dict:
    """Hours to train the paper profile's model of ``name`` on ``device``, from its measured throughput."""
    section = paper.section(name)
    info = synthetic.data_info(name, section)
    experiment = experiments.build(name, registry.get(name).model, section, info, device, compile=compile)
    rate, _ = measure_training(experiment, seconds, batch_size)
    return {"paper_train_examples_per_s": rate, "paper_measured_batch": batch_size,
            "paper_batch_size": section.train.batch_size, "paper_n_iterations": section.train.n_iterations,
            "paper_train_hours": section.train.n_iterations * section.train.batch_size / rate / 3600}


def _paper_batch(name: str, paper: cfg.Config, device: torch.device) -> int:
    """The paper's batch size, capped at ``CPU_PAPER_BATCH`` for image models on the CPU."""
    batch_size = paper.section(name).train.batch_size
    if device.type == "cpu" and registry.get(name).is_image:
        return min(batch_size, CPU_PAPER_BATCH)
    return batch_size


def benchmark(config_path: str | Path, profile: str | None = None, datasets: list[str] | None = None,
              device: str | None = None, seconds: float = 5.0, paper_batch: int | None = None,
              allocator: str = "keep freed memory", compile: bool = False, paper: bool = True) -> list[dict]:
    """One row per dataset: the figures of its model in ``profile`` and the paper projection.

    Args:
        config_path: params.yaml.
        profile: smoke, quick or paper, composed from conf/; None: the values in config_path.
        datasets: a subset of the datasets, in order; None: all.
        device: auto, cpu or cuda; None: the file's.
        seconds: time budget of each measurement.
        paper_batch: examples per timed step of the paper model; None: the paper's batch size,
            at most ``CPU_PAPER_BATCH`` for image models on the CPU.
        allocator: how the caller set up malloc, for the record.
        compile: compile the networks with torch.compile.
        paper: measure the paper projection too.

    Raises:
        ValueError: naming an unknown dataset.
    """
    unknown = [name for name in datasets or [] if name not in registry.NAMES]
    if unknown:
        raise ValueError(f"unknown dataset(s) {unknown}; expected some of {registry.NAMES}")
    config = cfg.load(config_path) if profile is None else cfg.load_profile(profile)
    paper_config = cfg.load_profile("paper")
    torch_device = devices.resolve(device or config.device)
    provenance = {"device": devices.describe(torch_device), "device_kind": torch_device.type,
                  "torch": torch.__version__, "profile": config.profile, "allocator": allocator, "compile": compile,
                  "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git_commit": git_commit()}
    rows = []
    for name in datasets or registry.NAMES:
        row = measure_model(name, config, torch_device, seconds, compile)
        if paper:
            batch = paper_batch or _paper_batch(name, paper_config, torch_device)
            row.update(project_paper(name, paper_config, torch_device, seconds, batch, compile))
        rows.append({**provenance, **row})
    return rows


def to_markdown(rows: list[dict]) -> str:
    """The rows as a titled Markdown table, with their provenance and the notes."""
    table = pd.DataFrame(rows)[[column for column in TABLE_COLUMNS if column in rows[0]]]
    table["sample_steps_run"] = [f"{r['sample_steps_run']}/{r['T']}" for r in rows]
    table["eval_projected_seconds"] = ["n/a" if pd.isna(v) else f"{v:.3g}" for v in table["eval_projected_seconds"]]
    first = rows[0]
    header = (f"# Benchmark: profile {first['profile']} on {first['device']}\n\n"
              f"torch {first['torch']}, git {first['git_commit']}, {first['date']}; "
              f"malloc: {first.get('allocator', 'system')}; "
              f"{'torch.compile' if first.get('compile') else 'eager'}; "
              f"peak memory: {first['peak_memory_kind']}.\n\n")
    notes = "\n".join(f"- {note}" for note in NOTES)
    markdown = table.rename(columns=TABLE_COLUMNS).to_markdown(index=False, floatfmt=".3g")
    return header + markdown + "\n\n" + notes + "\n"


def write_report(rows: list[dict], out: str | Path) -> str:
    """Write ``out`` (JSON: notes and rows) and the Markdown table beside it, atomically;
    returns the Markdown."""
    markdown = to_markdown(rows)
    atomic_write_text(out, json.dumps({"notes": NOTES, "rows": rows}, indent=2) + "\n")
    atomic_write_text(Path(out).with_suffix(".md"), markdown)
    return markdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=cfg.PROFILES, help="default: params.yaml's")
    parser.add_argument("--datasets", nargs="+", choices=registry.NAMES, metavar="DATASET",
                        help=f"a subset of {', '.join(registry.NAMES)} (default: all)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: params.yaml's")
    parser.add_argument("--seconds", type=float, default=5.0, help="time budget of each measurement")
    parser.add_argument("--paper-batch", type=int, help="examples per timed step of the paper model")
    parser.add_argument("--out", type=Path, help="JSON file (default: results/bench/<profile>-<device>.json)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="the params file")
    parser.add_argument("--compile", action="store_true", help="compile the networks with torch.compile")
    parser.add_argument("--no-paper", action="store_true", help="leave out the paper projection")
    parser.add_argument("--system-malloc", action="store_true",
                        help="leave glibc's malloc as it is (default: keep freed memory, as the stages do)")
    args = parser.parse_args(argv)
    kept = not args.system_malloc and devices.keep_freed_memory()
    rows = benchmark(args.params, args.profile, args.datasets, args.device, args.seconds, args.paper_batch,
                     "keep freed memory" if kept else "system", args.compile, not args.no_paper)
    out = args.out or Path("results/bench") / f"{rows[0]['profile']}-{rows[0]['device_kind']}.json"
    print(write_report(rows, out))
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
