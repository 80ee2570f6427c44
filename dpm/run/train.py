"""Training by gradient ascent on K (Paper: Eq. 15), with checkpoints, resume and TensorBoard.

``fit`` knows no paths of its own: the caller names the checkpoint folder and hands in a
TensorBoard writer. A checkpoint holds everything the loop's future depends on (parameters,
optimiser, learning-rate schedule, random generator, iteration), so an interrupted run resumed
from it ends with the same parameters as an uninterrupted one (CPU, same seed). Its file name
carries the fingerprint of what it was trained with, so whether it can be resumed is known
without opening it, and it is opened with ``weights_only=True``: a crafted file runs no code.

Only states known to be good are saved: the state after iteration i is written once the loss of
iteration i + 1, computed from it, has been found finite (the last one once its holdout K has).
A NaN or infinite loss therefore stops training without ever overwriting a good checkpoint with
a diverged one. Whether the losses are finite is tracked on the device and read only at log and
checkpoint iterations: no step waits for the GPU to report its loss.

Data-parallel (dpm/run/distributed.py, under torchrun): every rank runs this loop on its own seed
stream; rank 0 alone logs, shows progress and writes checkpoints, which hold every rank's
generator, so a run resumes only with the number of processes that saved it (the caller's
fingerprint includes it; a checkpoint of another number is not used).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

import torch
from torch import Tensor

from dpm.run import distributed
from dpm.core import experiment as experiments
from dpm.base import provenance
from dpm.core import seeds
from dpm.base.atomic import atomic_torch_save
from dpm.core.bound import to_bits
from dpm.data.split import Split
from dpm.core.model import DiffusionModel
from dpm.core.objective import Objective
from dpm.base.provenance import computed_on
from dpm.base.sections import TrainConfig

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The objective became NaN or infinite; the message names the iteration and the last good
    checkpoint."""


@dataclass
class Run:
    """What ``fit`` needs besides the model, the objective and the data.

    Attributes:
        checkpoint_dir: where checkpoints are saved and resumed from.
        fingerprint: identifies the configuration, data, code and number of processes; only a
            checkpoint with the same one is resumed (a changed parameter, data, training code or
            number of processes starts afresh, said in one line).
        name: the name of the run's TensorBoard log, saved in its checkpoints: the name a fresh
            run takes; a resumed run takes the name its checkpoint saved, so its events continue
            in the same log (a checkpoint that saved none keeps this one).
        open_writer: optional callable(name, resumed_from) → a TensorBoard SummaryWriter, called
            once the checkpoint has been read (resumed_from None: a fresh run; else its
            iteration), closed by ``fit``.
        log_samples: optional callable(model, writer, iteration) logging samples, called at
            each checkpoint.
        progress: show a tqdm bar.
    """
    checkpoint_dir: Path
    fingerprint: str
    name: str = ""
    open_writer: Callable[[str, int | None], object] | None = None
    writer: object | None = None
    log_samples: Callable[[DiffusionModel, object, int], None] | None = None
    progress: bool = True

    @property
    def checkpoint(self) -> Path:
        return self.checkpoint_dir / f"checkpoint-{self.fingerprint}.pt"


def training_modules() -> list[ModuleType]:
    """The modules whose code determines a trained model: the loop, the experiment's setup (and its
    evaluation, which the experiment module holds), the objective, the model and the data's codec. Editing any other module (figures, the benchmark, the stages' plumbing)
    keeps every checkpoint; tests/test_train.py checks that this list covers what training imports."""
    import sys

    from dpm.core import bound, diffusion, model, nets, objective, schedules, temporal
    from dpm.core import evaluate
    from dpm.data import images, scaling, split
    return [sys.modules[__name__], experiments, evaluate, distributed, seeds, objective, model, nets, temporal,
            diffusion, schedules, bound, images, split, scaling]


def source_digest(modules: list[ModuleType]) -> str:
    """sha256 over the source files of ``modules``: part of a checkpoint's fingerprint."""
    digests = [hashlib.sha256(Path(m.__file__).read_bytes()).hexdigest() for m in sorted(modules, key=lambda m: m.__name__)]
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def optimiser_of(model: DiffusionModel, c: TrainConfig) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.StepLR]:
    """Adam on the model's parameters and its stepwise learning-rate decay (``c``).

    One kernel per operation for all the parameters at once: fused on CUDA; on the CPU the
    foreach form, whose numbers are bit for bit those of the one-parameter-at-a-time loop (the
    CPU's fused kernel rounds differently, which would change every CPU result).
    """
    on_cuda = next(model.parameters()).is_cuda
    optimiser = torch.optim.Adam(model.parameters(), lr=c.learning_rate, fused=on_cuda, foreach=not on_cuda)
    return optimiser, torch.optim.lr_scheduler.StepLR(optimiser, c.lr_decay_every, c.lr_decay)


def update(model: DiffusionModel, optimiser: torch.optim.Optimizer, loss: Tensor, norm: bool = False) -> Tensor | None:
    """One Adam step on ``loss`` (not clipped: the authors did not clip); with ``norm``, returns
    the gradient's norm (for the log: it costs a kernel per parameter), else None."""
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = gradient_norm(model) if norm else None
    optimiser.step()
    return grad_norm


def gradient_norm(model: DiffusionModel) -> Tensor:
    """The Euclidean norm of every parameter's gradient together."""
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in model.parameters()
                                                 if p.grad is not None]))


def fit(model: DiffusionModel, objective: Objective, x_train: Tensor, x_curve: Tensor, c: TrainConfig,
        run: Run) -> list[dict]:
    """Maximise K on x_train; log K and K − L_null on a holdout subset as training goes.

    Args:
        model: the model, on the device of x_train.
        objective: how K is estimated and what the model sees of a batch (``Objective.loss``).
        x_train: (N, D) training data as stored; x_curve: (M, D) holdout data for the learning
            curve, in model units.
        c: the training section of params.yaml.
        run: checkpoint folder, fingerprint, writer and options.

    Returns:
        The learning curve: one dict per logged iteration (iteration, seconds, bits); on rank 0
        only (data-parallel: its training loss is the mean over the ranks).

    Raises:
        TrainingDiverged: if the loss, or the final holdout K, is not finite; the last good
            checkpoint is kept and named.
    """
    optimiser, lr_schedule = optimiser_of(model, c)
    generator = distributed.rank_generator(c.seed, x_train.device)  # rank 0's: a single process's stream
    state = _resume(run, model, optimiser, lr_schedule, generator, c.seed, c.n_iterations)
    start, clock, saved = state["iteration"], time.perf_counter() - state["seconds"], state["iteration"] or None
    curve = _Curve(run, state, c.n_iterations)
    step_loss = distributed.data_parallel(model, objective.loss)  # its gradient: the mean over the ranks'
    losses = _FiniteLosses(x_train.device)
    for iteration in range(start + 1, c.n_iterations + 1):
        rng_state = generator.get_state()
        batch = x_train[torch.randint(len(x_train), (c.batch_size,), generator=generator, device=x_train.device)]
        loss = step_loss(batch, generator)
        losses.see(loss, iteration)
        previous = iteration - 1
        if previous > start and previous % c.checkpoint_every == 0:
            losses.check(run, saved)  # the loss computed from the state of `previous` is finite
            _save(run, model, optimiser, lr_schedule, rng_state, previous, time.perf_counter() - clock, curve.history)
            saved = previous
        logged = iteration % c.log_every == 0 or iteration == c.n_iterations
        grad_norm = update(model, optimiser, loss, norm=logged and curve.lead)
        lr_schedule.step()
        curve.bar.update(1)
        if logged:
            losses.check(run, saved)
            curve.log(model, objective, x_curve, iteration, time.perf_counter() - clock, loss, grad_norm,
                      lr_schedule.get_last_lr()[0])
        if iteration % c.checkpoint_every == 0:
            curve.log_samples(model, iteration)
    curve.close()
    if c.n_iterations > start:
        _check_final(run, model, curve.final_k(), saved)
        _save(run, model, optimiser, lr_schedule, generator.get_state(), c.n_iterations, time.perf_counter() - clock,
              curve.history)
    return curve.history


class _Curve:
    """The learning curve, its TensorBoard log and the progress bar. Data-parallel: rank 0's alone
    (``lead``); every rank takes part in the mean of the training loss over the ranks."""

    def __init__(self, run: Run, state: dict, n_iterations: int):
        self.run, self.history, self.lead = run, state["history"], distributed.rank() == 0
        run.name = state["name"] or run.name
        start = state["iteration"]
        if run.open_writer is not None and self.lead:
            run.writer = run.open_writer(run.name, start or None)
        self.bar = _progress(run, start, n_iterations, self.lead)

    def log(self, model: DiffusionModel, objective: Objective, x_curve: Tensor, iteration: int, seconds: float,
            loss: Tensor, grad_norm: Tensor | None, lr: float) -> None:
        mean_loss = distributed.mean(loss.detach())
        if self.lead:
            self.history.append(_log(model, objective, x_curve, self.run, iteration, seconds, mean_loss, grad_norm, lr))
            self.bar.set_postfix(K_bits=f"{self.history[-1]['holdout_K_bits']:.3f}")

    def log_samples(self, model: DiffusionModel, iteration: int) -> None:
        if self.run.log_samples is not None and self.run.writer is not None:
            self.run.log_samples(model, self.run.writer, iteration)

    def final_k(self) -> float:
        """The last holdout K (bits) on rank 0; 0.0 on the others, which hold no curve."""
        return self.history[-1]["holdout_K_bits"] if self.lead else 0.0

    def close(self) -> None:
        self.bar.close()
        if self.run.writer is not None:
            self.run.writer.close()


def _check_final(run: Run, model: DiffusionModel, final_k: float, saved: int | None) -> None:
    """Raises TrainingDiverged if the final holdout K (rank 0's) or a parameter is not finite."""
    if not math.isfinite(final_k) or not all(torch.isfinite(p).all() for p in model.parameters()):
        raise TrainingDiverged(f"the final model is not finite (holdout K {final_k} bits); {_last_good(run, saved)}")


def _restore_generator(run: Run, saved: dict, generator: torch.Generator, seed: int) -> None:
    """Set this rank's generator to the checkpoint's. A generator's state is the device's own (the
    CPU's Mersenne Twister, CUDA's Philox seed and offset), so a checkpoint written on another
    device type (checkpoints made before the device was recorded were made on the CPU) continues
    from a generator seeded again from the run's seed and the iteration: deterministic, said in
    the log, the batches drawn from then on not those of an uninterrupted run. ``seed``: the run's
    (``distributed.this_rank_seed`` makes this rank's)."""
    state = saved["generators"][distributed.rank()]
    saved_on, here = saved.get("device", "cpu"), generator.device.type
    if saved_on == here and state.numel() == generator.get_state().numel():
        generator.set_state(state)
        return
    generator.manual_seed(seeds.mixed_seed(distributed.this_rank_seed(seed), saved["iteration"]))
    if distributed.rank() == 0:
        log.warning("%s was written on %s and this run is on %s: its random-number generator cannot be carried "
                    "over, so training continues from iteration %d with the generator seeded from the run's seed "
                    "and that iteration", run.checkpoint, saved_on, here, saved["iteration"])


class _FiniteLosses:
    """The first iteration whose training loss was not finite, tracked on the loss's device
    without waiting for it; ``check`` reads it (a CPU–GPU synchronisation, a collective over the
    ranks) and is called only at log and checkpoint iterations."""

    def __init__(self, device: torch.device):
        self.iteration = torch.zeros((), dtype=torch.long, device=device)  # 0: every loss finite
        self.loss = torch.zeros((), device=device)

    def see(self, loss: Tensor, iteration: int) -> None:
        first = (self.iteration == 0) & ~torch.isfinite(loss.detach())
        self.iteration = torch.where(first, torch.full_like(self.iteration, iteration), self.iteration)
        self.loss = torch.where(first, loss.detach(), self.loss)

    def check(self, run: Run, saved: int | None) -> None:
        """Raises TrainingDiverged, on every rank, if any rank has seen a non-finite loss."""
        never = torch.full_like(self.iteration, 2 ** 62)
        first = distributed.minimum(torch.where(self.iteration > 0, self.iteration, never)).item()
        if first != never.item():
            value = self.loss.item() if self.iteration.item() == first else "not finite (on another process)"
            raise TrainingDiverged(f"loss is {value} at iteration {first}; {_last_good(run, saved)}")


def _progress(run: Run, start: int, total: int, lead: bool):
    from tqdm import tqdm
    return tqdm(total=total, initial=start, disable=not (run.progress and lead), desc="train", unit="it")


def _last_good(run: Run, iteration: int | None) -> str:
    if iteration is None:
        return "no checkpoint of this configuration was saved, nothing is kept"
    return f"the last good checkpoint, {run.checkpoint} (iteration {iteration}), is kept"


@torch.no_grad()
def _log(model: DiffusionModel, objective: Objective, x_curve: Tensor, run: Run, iteration: int, seconds: float,
         loss: Tensor, grad_norm: Tensor, lr: float) -> dict:
    """Holdout K by importance-sampled t (its own generator: logging never changes the training stream)."""
    generator = torch.Generator(device=x_curve.device).manual_seed(iteration)
    process = model.process()
    terms = objective.terms(process, model.reverse, x_curve, generator)
    k_bits = to_bits(terms.k.mean().item()) / objective.n_units
    l_null_bits = to_bits(process.log_prior(x_curve).mean().item()) / objective.n_units
    row = {"iteration": iteration, "seconds": round(seconds, 3),
           "train_loss_bits": to_bits(loss.item()) / objective.n_units,
           "holdout_K_bits": k_bits, "holdout_K_minus_L_null_bits": k_bits - l_null_bits}
    if run.writer is not None:
        _write_scalars(run.writer, row, grad_norm.item(), lr)
        run.writer.add_histogram("schedule/beta", process.beta.detach().cpu(), iteration)
        run.writer.add_scalar("schedule/beta_T", process.beta[-1].item(), iteration)
        run.writer.flush()
    return row


def _write_scalars(writer, row: dict, grad_norm: float, lr: float) -> None:
    step = row["iteration"]
    writer.add_scalar("train/loss_bits", row["train_loss_bits"], step)
    writer.add_scalar("train/grad_norm", grad_norm, step)
    writer.add_scalar("train/learning_rate", lr, step)
    writer.add_scalar("holdout/K_bits", row["holdout_K_bits"], step)
    writer.add_scalar("holdout/K_minus_L_null_bits", row["holdout_K_minus_L_null_bits"], step)
    writer.add_scalar("holdout/seconds", row["seconds"], step)


def _save(run: Run, model, optimiser, lr_schedule, rng_state: Tensor, iteration: int, seconds: float,
          history: list[dict]) -> None:
    """Write the checkpoint of ``iteration`` (finite states only; rank 0 alone), then drop those of
    other configurations. ``rng_state``: this rank's generator; the checkpoint holds every rank's
    (every rank must call this)."""
    rng_states = distributed.gather(rng_state)
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise TrainingDiverged(f"parameters are not finite after iteration {iteration}; nothing was saved")
    if distributed.rank() != 0:
        return
    atomic_torch_save(seal({
        "fingerprint": run.fingerprint, "name": run.name, "iteration": iteration, "seconds": seconds,
        "history": list(history), "model": model.state_dict(), "optimiser": optimiser.state_dict(),
        "lr_schedule": lr_schedule.state_dict(), "processes": len(rng_states),
        "device": next(model.parameters()).device.type, "generators": rng_states}), run.checkpoint)
    others = sorted((p for p in run.checkpoint_dir.glob("checkpoint-*.pt") if p != run.checkpoint),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for other in others[KEPT_CONFIGURATIONS - 1:]:
        other.unlink()


KEPT_CONFIGURATIONS = 3
"""Checkpoints kept per checkpoint folder: this configuration's and those of the most recently
saved others, so that changing a value and changing it back resumes instead of retraining."""


def seal(state: dict) -> dict:
    """``state`` serialised, with the sha256 of its bytes: ``load_checkpoint`` refuses it if they changed."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    body = buffer.getvalue()
    return {"sha256": hashlib.sha256(body).hexdigest(), "body": torch.frombuffer(bytearray(body), dtype=torch.uint8)}


def load_checkpoint(path: Path) -> dict:
    """The state a checkpoint file holds (``weights_only``: tensors and plain containers), checked
    against its digest.

    Raises:
        ValueError: not a sealed checkpoint, or its content does not match its digest; torch's
            own errors for a file that is not a readable archive.
    """
    sealed = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(sealed, dict) or set(sealed) != {"sha256", "body"}:
        raise ValueError("not a sealed checkpoint (written by another version of dpm/run/train.py)")
    body = sealed["body"].numpy().tobytes()
    if hashlib.sha256(body).hexdigest() != sealed["sha256"]:
        raise ValueError("its content does not match its sha256 (the file was damaged)")
    return torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)


def read_checkpoint(run: Run, n_iterations: int | None = None) -> dict | None:
    """The checkpoint of ``run``'s fingerprint, or None if there is none. A checkpoint that cannot
    be used (truncated, empty, crafted, its content not matching its digest, of another
    fingerprint, past ``n_iterations``, or of another number of processes) is set aside as
    ``<name>.corrupt`` (``.corrupt-2``, … if that exists) with one line in the log, and None
    returned: training starts afresh."""
    if not run.checkpoint.exists():
        return None
    try:
        saved = load_checkpoint(run.checkpoint)
        if saved.get("fingerprint") != run.fingerprint:
            raise ValueError("its fingerprint is not the one in its name")
        if n_iterations is not None and not 0 < saved["iteration"] <= n_iterations:
            raise ValueError(f"it claims iteration {saved['iteration']}, outside this run's 1..{n_iterations}")
        if len(saved["generators"]) != distributed.world_size():
            raise ValueError(f"it was saved by {len(saved['generators'])} training processes, this run has "
                             f"{distributed.world_size()} (a fingerprint that leaves the number out)")
        return saved
    except Exception as error:  # torch raises many kinds for a damaged file
        aside = _set_aside(run.checkpoint)
        log.warning("checkpoint %s cannot be used (%s: %s); set aside as %s, training starts afresh",
                    run.checkpoint, type(error).__name__, str(error).splitlines()[0] if str(error) else "", aside.name)
        return None


def _set_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.corrupt``, or ``.corrupt-N`` with the first N free: none overwritten."""
    aside, n = path.with_name(path.name + ".corrupt"), 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{n}")
    path.replace(aside)
    return aside


def _resume(run: Run, model, optimiser, lr_schedule, generator, seed: int, n_iterations: int) -> dict:
    """Restore the checkpoint of this configuration; a fresh state if there is none."""
    if distributed.rank() == 0 and not run.checkpoint.exists():
        _say_why_afresh(run)
    saved = read_checkpoint(run, n_iterations) if distributed.rank() == 0 else None
    saved = distributed.from_rank_0(saved)  # rank 0 alone reads (and may set aside) the file
    if saved is None:
        return {"iteration": 0, "seconds": 0.0, "history": [], "name": ""}
    model.load_state_dict(saved["model"])
    optimiser.load_state_dict(saved["optimiser"])
    lr_schedule.load_state_dict(saved["lr_schedule"])
    _restore_generator(run, saved, generator, seed)
    log.info("resuming from %s at iteration %d", run.checkpoint, saved["iteration"])
    return {"name": saved.get("name", ""), **{key: saved[key] for key in ("iteration", "seconds", "history")}}


def _say_why_afresh(run: Run) -> None:
    """One line when the folder holds checkpoints, none of this configuration: training starts afresh."""
    others = list(run.checkpoint_dir.glob("checkpoint-*.pt"))
    if others:
        log.info("%s holds no checkpoint of this configuration (%d of other ones: a parameter, the data, the "
                 "training code or the number of processes differs); training starts afresh, and the "
                 "checkpoints of the %d most recent configurations are kept", run.checkpoint_dir, len(others),
                 KEPT_CONFIGURATIONS)


# --- A run of an experiment (dpm/core/experiment.py): the stages', the studies', the benchmark's ---

def run_fingerprint(name: str, section, data_digest: str, processes: int) -> str:
    """What a checkpoint of a training run can be resumed under: the sections training reads, the
    data's digest, the training code's (``dpm.run.train.training_modules``) and the number of
    processes (each rank's generator is in the checkpoint). The device type is not in it: a
    checkpoint continues on another device type (``dpm.run.train`` re-seeds its generator)."""
    return provenance.fingerprint(name, section.data, section.diffusion, section.net, section.train, data_digest,
                                   source_digest(training_modules()), {"processes": processes})


def fit_experiment(experiment: experiments.Experiment, split: Split, run: Run) -> list[dict]:
    """``fit`` on the split's training data, its learning curve on the first
    ``train.n_log_examples`` of the holdout (dequantised as evaluation's, ``experiment.holdout``).
    Returns the learning curve."""
    x_curve = experiments.holdout(experiment, split.holdout[:experiment.section.train.n_log_examples])
    x_train = torch.from_numpy(split.train).to(experiment.device)
    return fit(experiment.model, experiment.objective, x_train, x_curve, experiment.section.train, run)


def fit_in_memory(experiment: experiments.Experiment, split: Split, name: str) -> list[dict]:
    """``fit_experiment`` with checkpoints in a temporary folder (nothing resumed, nothing kept) and no
    TensorBoard: a run whose model is evaluated and thrown away (an ablation variant)."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as checkpoints:
        return fit_experiment(experiment, split, Run(Path(checkpoints), name, progress=False))


def timed_fit(experiment: experiments.Experiment, x_train: Tensor, x_curve: Tensor, n_iterations: int, folder: Path,
              checkpoint_every: int | None = None, batch_size: int | None = None) -> dict:
    """``fit`` for ``n_iterations`` with the section's optimiser settings, its own step
    timed between its first log (a tenth of the way) and its last: the whole run's seconds, seconds
    per step, examples per second and the holdout K at each log (the benchmark, the GPU check).
    ``batch_size`` replaces the section's (the benchmark's projection to the paper's batch)."""
    c = dataclasses.replace(experiment.section.train, n_iterations=n_iterations,
                            checkpoint_every=checkpoint_every or n_iterations, log_every=max(1, n_iterations // 10),
                            batch_size=batch_size or experiment.section.train.batch_size)
    start = time.perf_counter()
    history = fit(experiment.model, experiment.objective, x_train, x_curve, c,
                  Run(checkpoint_dir=folder, fingerprint="timed", progress=False))
    result = {"iterations": n_iterations, "seconds": round(time.perf_counter() - start, 3)}
    if history:  # rank 0
        first, last = history[0], history[-1]
        per_step = (last["seconds"] - first["seconds"]) / max(1, last["iteration"] - first["iteration"])
        result.update(seconds_per_step=per_step, examples_per_s=c.batch_size / per_step if per_step else None,
                      holdout_K_bits=[row["holdout_K_bits"] for row in history])
    return result


def model_record(experiment: experiments.Experiment, history: list[dict], profile: str, processes: int = 1) -> dict:
    """What a model file holds: the weights and what they depend on (dataset, profile, device,
    processes, batch sizes) and the learning curve without its wall-clock times, so that a retrain
    to the same weights writes the same bytes (``dpm.base.atomic.atomic_torch_save``)."""
    batch_size = experiment.section.train.batch_size
    return {"model": experiment.model.state_dict(), "dataset": experiment.name, "profile": profile,
            **computed_on(experiment.device), "history": [untimed(row) for row in history],
            "processes": processes, "batch_size": batch_size, "global_batch_size": processes * batch_size}


def untimed(row: dict) -> dict:
    """A learning-curve row without its wall-clock time."""
    return {key: value for key, value in row.items() if key != "seconds"}
