"""What the studies' stages (studies/dvc.yaml) share: a model trained again under params
overrides, by the same library calls as the train stage, and its holdout K as the evaluate stage
computes it.

Not a stage. Training here runs in one process (params.yaml's ``processes`` is not read) and
writes no TensorBoard events; with the main row's params it gives the train stage's model
(tests/test_studies.py checks it at the smoke profile).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dpm import config as cfg, device as devices, model as models, registry, train
from dpm.atomic import atomic_torch_save
from dpm.data import split as splits
from dpm.evaluate import evaluate
from dpm.objective import Objective
from pipeline import common, trained as trained_model


def load_config(overrides: dict[str, Any]) -> cfg.Config:
    """params.yaml with dotted ``overrides`` (``{"mnist.train.seed": 1}``), validated as a whole
    (dpm.config.load); torch's CPU threads set to its ``threads``, as every stage's."""
    config = cfg.load(common.PARAMS, overrides)
    torch.set_num_threads(config.threads)
    return config


def train_model(name: str, data_dir: Path, config: cfg.Config, checkpoint_dir: Path, model_file: Path) -> dict:
    """Train dataset ``name``'s model with ``config``'s section as the train stage does (resuming
    a checkpoint of the same configuration from ``checkpoint_dir``); save it to ``model_file`` in
    the train stage's format, with its ``seed`` and ``n_iterations``. Returns the saved record."""
    device = devices.resolve(config.device, config.tf32)
    section = config.section(name)
    split = splits.load(data_dir)
    x_train = torch.from_numpy(split.train)
    model = models.build(registry.get(name).model, section, split.info, x_train, section.train.seed).to(device)
    if config.compile:
        model.net.compile()
    objective = Objective.of(section, split.info, device)
    run = train.Run(checkpoint_dir=checkpoint_dir, progress=False,
                    fingerprint=common.fingerprint(name, section.data, section.diffusion, section.net, section.train,
                                                   common.file_digest(data_dir / "data.npz"),
                                                   train.source_digest(train.training_modules()),
                                                   {"processes": 1}))  # as the train stage's, one process
    curve_noise = torch.Generator(device=device).manual_seed(section.eval.seed)
    x_curve = objective.prepare(torch.from_numpy(split.holdout[:section.train.n_log_examples]).to(device), curve_noise)
    history = train.fit(model, objective, x_train.to(device), x_curve, section.train, run)
    record = {"model": model.state_dict(), "dataset": name, "profile": config.profile,
              "fingerprint": run.fingerprint, **common.provenance(device), "history": history,
              "processes": 1, "batch_size": section.train.batch_size, "global_batch_size": section.train.batch_size,
              "seed": section.train.seed, "n_iterations": section.train.n_iterations}
    atomic_torch_save(record, model_file)
    return record


def evaluate_model(name: str, data_dir: Path, model_file: Path, config: cfg.Config) -> dict:
    """K and K − L_null (± se) on the holdout, in the dataset's unit, as the evaluate stage
    computes them (its eval section and seeds)."""
    trained = trained_model.load(name, data_dir, model_file, config)
    section, objective = trained.section, trained.objective
    noise = torch.Generator(device=trained.device).manual_seed(section.eval.seed)
    x = objective.prepare(torch.from_numpy(trained.split.holdout).to(trained.device), noise)
    result = evaluate(trained.model, objective, x, section.eval)
    return {"K": result.k.mean_bits, "K_se": result.k.se_bits, "K_minus_L_null": result.gain.mean_bits,
            "K_minus_L_null_se": result.gain.se_bits, "L_null": result.l_null.mean_bits,
            "unit": trained.info.unit, "train_seconds": trained.saved["history"][-1]["seconds"]}
