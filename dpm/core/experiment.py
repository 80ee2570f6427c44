"""An experiment, written once: the model of a params.yaml section built with its objective, its
holdout prepared, evaluated, and its metrics in one schema. How it is trained (its learning-curve
holdout, checkpoint fingerprint and model file) is ``dpm.run.train``'s, the other half of the run.

The train and evaluate stages, the studies (seed spread, Parzen study, ablations), the benchmark
and the GPU check all go through these functions and ``dpm.run.train``'s, so a change to a run's
setup is made in one place. This module imports no training code: a stage that evaluates a model
depends on how it is evaluated, not on how it was trained.

Seeds (the same on every device): the initial weights and the training batches from
``train.seed``; the holdout's dequantisation, for the learning curve and for evaluation, from
``eval.seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dpm.core import model as models
from dpm.data.split import DataInfo, Split
from dpm.core.evaluate import Estimate, Evaluation, evaluate
from dpm.core.objective import Objective
from dpm.base.provenance import computed_on


@dataclass
class Experiment:
    """A model of a section, on its device, with the objective it is trained and evaluated by.

    Attributes:
        name: the dataset (``registry.NAMES``); section: its params.yaml section (``data``,
            ``diffusion``, ``net``, ``train``, ``eval``); info: what its data are.
    """
    name: str
    section: object
    info: DataInfo
    model: models.DiffusionModel
    objective: Objective
    device: torch.device


def build(name: str, kind: str, section, info: DataInfo, device: torch.device,
          x_train: np.ndarray | Tensor | None = None, compile: bool = False) -> Experiment:
    """The untrained model of dataset ``name``, of model ``kind`` (``dpm.core.model.KINDS``) and
    ``section`` (weights from ``train.seed``; the RBF centres on ``x_train`` where given, as
    stored, on the CPU), on ``device``, its network compiled in place with ``compile`` (the state
    dict keeps its keys)."""
    x = None if x_train is None else torch.as_tensor(x_train)
    model = models.build(kind, section, info, x, section.train.seed).to(device)
    if compile:
        model.net.compile()
    return Experiment(name, section, info, model, Objective.of(section, info, device), device)


def holdout(experiment: Experiment, levels: np.ndarray) -> Tensor:
    """Holdout data as stored, in model units on the device, dequantised from ``eval.seed``."""
    noise = torch.Generator(device=experiment.device).manual_seed(experiment.section.eval.seed)
    return experiment.objective.prepare(torch.from_numpy(levels).to(experiment.device), noise)


def evaluate_on(experiment: Experiment, levels: np.ndarray) -> Evaluation:
    """K, K − L_null and the uniform-t check on holdout data as stored (``holdout``), by the
    section's ``eval`` values."""
    experiment.model.eval()
    return evaluate(experiment.model, experiment.objective, holdout(experiment, levels), experiment.section.eval)


def metrics(experiment: Experiment, result: Evaluation, n_holdout: int) -> dict:
    """The metrics of an evaluated model, one schema for every stage and study that evaluates:
    K and K − L_null with their standard errors, L_null, K by uniform t (a check of the
    importance-sampled K; the same estimate for the exact toys), in bits per unit, and what they
    were computed with."""
    s = experiment.section
    return {
        "dataset": experiment.name, "label": experiment.info.label, "unit": experiment.info.unit,
        "K": result.k.mean_bits, "K_se": result.k.se_bits,
        "K_minus_L_null": result.gain.mean_bits, "K_minus_L_null_se": result.gain.se_bits,
        "L_null": result.l_null.mean_bits,
        "K_uniform_t": result.k_uniform_t.mean_bits, "K_uniform_t_se": result.k_uniform_t.se_bits,
        "K_over_t": "importance-sampled t" if experiment.objective.n_t else "exact",
        "T": s.diffusion.n_steps, "beta_1": s.diffusion.beta_1, "schedule": s.diffusion.schedule,
        "parameterisation": s.diffusion.parameterisation, "beta_T": result.beta_T,
        "n_holdout": n_holdout, "n_repeats": s.eval.n_repeats, "n_iterations": s.train.n_iterations,
        "train_seed": s.train.seed, "eval_seed": s.eval.seed,
        "n_parameters": sum(p.numel() for p in experiment.model.parameters()),
        **computed_on(experiment.device),
    }


def true_log_likelihood(split: Split) -> float | None:
    """The holdout's mean true log-likelihood in bits per unit, where the data's density is known."""
    if len(split.true_log_likelihood_nats) == 0:
        return None
    return Estimate.of(torch.from_numpy(split.true_log_likelihood_nats)).mean_bits


def load(trained: models.Trained) -> Experiment:
    """The experiment of a model loaded from its file (``dpm.core.model.load_trained``)."""
    return Experiment(trained.name, trained.section, trained.info, trained.model, trained.objective, trained.device)

