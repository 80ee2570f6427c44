"""The ablation study (params.yaml ``ablations``): one variant trained and evaluated at its budget.

A variant is its dataset's model with some values changed (``dpm.studies.Studies.ablation_section``);
it is trained by ``dpm.train.fit`` and evaluated by ``dpm.evaluate.evaluate``, exactly as the
pipeline's own model, only without checkpoints to resume, TensorBoard or a model file.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dpm import model as models
from dpm.data.split import Split
from dpm.evaluate import Evaluation, evaluate
from dpm.objective import Objective
from dpm.train import Run, fit


@dataclass(frozen=True)
class Result:
    """A trained variant's holdout evaluation, its learning curve and what it cost.

    Attributes:
        evaluation: K, K − L_null (with standard errors) and the uniform-t check, per reporting unit.
        history: the learning curve (``dpm.train.fit``).
        train_seconds: training alone; seconds: training and evaluation.
        n_parameters: the model's parameters.
    """
    evaluation: Evaluation
    history: list[dict]
    train_seconds: float
    seconds: float
    n_parameters: int


def run_variant(kind: str, section, split: Split, device: torch.device, fingerprint: str) -> Result:
    """Train a model of ``kind`` (``dpm.model.build``) with ``section`` on ``split`` and evaluate it
    on the holdout.

    Training draws from ``section.train.seed``, the holdout's dequantisation and the estimator's
    noise from ``section.eval.seed`` (as the pipeline's train and evaluate stages).
    """
    start = time.perf_counter()
    x_train = torch.from_numpy(split.train).to(device)
    model = models.build(kind, section, split.info, x_train, section.train.seed).to(device)
    objective = Objective.of(section, split.info, device)
    curve_noise = torch.Generator(device=device).manual_seed(section.eval.seed)
    x_curve = objective.prepare(torch.from_numpy(split.holdout[:section.train.n_log_examples]).to(device),
                                curve_noise)
    with tempfile.TemporaryDirectory(prefix="ablation-") as checkpoints:
        history = fit(model, objective, x_train, x_curve, section.train,
                      Run(Path(checkpoints), fingerprint, progress=False))
    model.eval()
    noise = torch.Generator(device=device).manual_seed(section.eval.seed)
    x = objective.prepare(torch.from_numpy(split.holdout).to(device), noise)
    evaluation = evaluate(model, objective, x, section.eval)
    return Result(evaluation, history, history[-1]["seconds"], time.perf_counter() - start,
                  sum(p.numel() for p in model.parameters()))


def neighbours_differ(levels: np.ndarray, shape: tuple[int, int, int]) -> float:
    """The fraction of horizontally or vertically adjacent pixel pairs whose 8-bit levels differ.

    Args:
        levels: (N, C·H·W) images as stored; shape: (C, H, W). A pixel's colours count together:
            a pair differs if any colour does.
    """
    images = levels.reshape(len(levels), *shape)  # (N, C, H, W)
    across = (images[..., :, 1:] != images[..., :, :-1]).any(axis=1)  # (N, H, W − 1)
    down = (images[..., 1:, :] != images[..., :-1, :]).any(axis=1)  # (N, H − 1, W)
    return float((across.sum() + down.sum()) / (across.size + down.size))
