"""Training by gradient ascent on K (Paper: Eq. 15), with checkpoints, resume and TensorBoard.

``fit`` knows no paths of its own: the caller names the checkpoint file and hands in a
TensorBoard writer. A checkpoint holds everything the loop's future depends on (parameters,
optimiser, learning-rate schedule, random generator, iteration), so an interrupted run resumed
from it ends with the same parameters as an uninterrupted one (CPU, same seed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from dpm.atomic import atomic_torch_save
from dpm.bound import bound_terms, to_bits
from dpm.config import TrainConfig
from dpm.model import DiffusionModel


class TrainingDiverged(RuntimeError):
    """The objective became NaN or infinite; the message names the iteration."""


@dataclass
class Run:
    """What ``fit`` needs besides the model and data.

    Attributes:
        checkpoint: file to save to and resume from.
        fingerprint: identifies the configuration, data and code; a checkpoint with another one
            is not resumed (a changed parameter or library starts training afresh).
        writer: TensorBoard SummaryWriter, or None.
        n_t: None sums K over every t per example; an integer samples that many t (``kl_sum``).
        proposal: the distribution of the sampled t in training (``kl_sum``); None is uniform.
        curve_proposal: the same for the learning curve's holdout estimate.
        log_figures: optional callable(model, writer, iteration) drawing sample plots, called
            at each checkpoint.
        prepare: optional callable(batch, generator) → the batch in model units, applied to
            each training batch (fresh dequantisation noise for 8-bit images).
        n_units: the logged bits are per example divided by this (pixels per image: bits/pixel).
        progress: show a tqdm bar.
    """
    checkpoint: Path
    fingerprint: str
    writer: object | None = None
    n_t: int | None = None
    proposal: Tensor | None = None
    curve_proposal: Tensor | None = None
    log_figures: Callable[[DiffusionModel, object, int], None] | None = None
    prepare: Callable[[Tensor, torch.Generator], Tensor] | None = None
    n_units: int = 1
    progress: bool = True


def fit(model: DiffusionModel, x_train: Tensor, x_holdout: Tensor, c: TrainConfig, run: Run) -> list[dict]:
    """Maximise K on x_train; log K and K − L_null on a holdout subset as training goes.

    Args:
        model: the model, on the device of x_train.
        x_train: (N, D) training data (as stored: ``run.prepare`` maps a batch to model units);
            x_holdout: (M, D) data for the learning curve, in model units.
        c: the training section of params.yaml.
        run: checkpoint, writer and options.

    Returns:
        The learning curve: one dict per logged iteration (iteration, seconds, bits).

    Raises:
        TrainingDiverged: if the loss is not finite; the last good checkpoint is kept.
    """
    optimiser = torch.optim.Adam(model.parameters(), lr=c.learning_rate)
    lr_schedule = torch.optim.lr_scheduler.StepLR(optimiser, c.lr_decay_every, c.lr_decay)
    generator = torch.Generator(device=x_train.device).manual_seed(c.seed)
    state = _resume(run, model, optimiser, lr_schedule, generator)
    start, clock = state["iteration"], time.perf_counter() - state["seconds"]
    history = state["history"]
    bar = _progress(run, start, c.n_iterations)
    for iteration in range(start + 1, c.n_iterations + 1):
        batch = x_train[torch.randint(len(x_train), (c.batch_size,), generator=generator, device=x_train.device)]
        if run.prepare is not None:
            batch = run.prepare(batch, generator)
        loss = -bound_terms(model.process(), model.reverse, batch, generator, run.n_t, run.proposal).k.mean()
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"loss is {loss.item()} at iteration {iteration}; the last good checkpoint "
                f"({run.checkpoint}, iteration {state['iteration']}) is kept")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
        optimiser.step()
        lr_schedule.step()
        bar.update(1)
        if iteration % c.log_every == 0 or iteration == c.n_iterations:
            seconds = time.perf_counter() - clock
            history.append(_log(model, x_holdout, run, iteration, seconds, loss, grad_norm,
                                lr_schedule.get_last_lr()[0]))
            bar.set_postfix(K_bits=f"{history[-1]['holdout_K_bits']:.3f}")
        if iteration % c.checkpoint_every == 0 or iteration == c.n_iterations:
            state = {"iteration": iteration, "seconds": time.perf_counter() - clock, "history": history}
            _save(run, model, optimiser, lr_schedule, generator, state)
            if run.writer is not None and run.log_figures is not None:
                run.log_figures(model, run.writer, iteration)
    bar.close()
    return history


def _progress(run: Run, start: int, total: int):
    from tqdm import tqdm
    return tqdm(total=total, initial=start, disable=not run.progress, desc="train", unit="it")


@torch.no_grad()
def _log(model: DiffusionModel, x_holdout: Tensor, run: Run, iteration: int, seconds: float,
         loss: Tensor, grad_norm: Tensor, lr: float) -> dict:
    """Holdout K (its own generator, so logging never changes the training stream)."""
    generator = torch.Generator(device=x_holdout.device).manual_seed(iteration)
    process = model.process()
    terms = bound_terms(process, model.reverse, x_holdout, generator, run.n_t, run.curve_proposal)
    k_bits = to_bits(terms.k.mean().item()) / run.n_units
    l_null_bits = to_bits(process.log_prior(x_holdout).mean().item()) / run.n_units
    row = {"iteration": iteration, "seconds": round(seconds, 3), "train_loss_bits": to_bits(loss.item()) / run.n_units,
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


def _save(run, model, optimiser, lr_schedule, generator, state: dict) -> None:
    atomic_torch_save({
        "fingerprint": run.fingerprint,
        "model": model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "lr_schedule": lr_schedule.state_dict(),
        "generator": generator.get_state(),
        **state,
    }, run.checkpoint)


def _read_checkpoint(checkpoint: Path, fingerprint: str) -> dict | None:
    """The checkpoint's contents if it exists and was written for ``fingerprint``."""
    if not checkpoint.exists():
        return None
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return saved if saved.get("fingerprint") == fingerprint else None


def resume_iteration(checkpoint: Path, fingerprint: str) -> int | None:
    """The iteration ``fit`` would resume from, or None if it would start afresh."""
    saved = _read_checkpoint(checkpoint, fingerprint)
    return None if saved is None else saved["iteration"]


def _resume(run, model, optimiser, lr_schedule, generator) -> dict:
    """Restore a checkpoint of this configuration; a fresh state if there is none."""
    saved = _read_checkpoint(run.checkpoint, run.fingerprint)
    if saved is None:
        return {"iteration": 0, "seconds": 0.0, "history": []}
    model.load_state_dict(saved["model"])
    optimiser.load_state_dict(saved["optimiser"])
    lr_schedule.load_state_dict(saved["lr_schedule"])
    generator.set_state(saved["generator"])
    return {key: saved[key] for key in ("iteration", "seconds", "history")}
