"""A dataset's trained model as a stage loads it: its kind from dpm/base/registry.py, its section and
device from params.yaml."""

from __future__ import annotations

from pathlib import Path

from dpm.base import config as cfg, registry
from dpm.base.device import resolve
from dpm.core.model import Trained, load_trained


def load(name: str, data_dir: str | Path, model_file: str | Path, config: cfg.Config,
         device: str | None = None) -> Trained:
    """The trained model of dataset ``name`` with its data (``data/<name>``, ``models/<name>.pt``).

    Args:
        config: params.yaml as read by ``dpm.base.config.load``.
        device: ``auto``, ``cpu`` or ``cuda``; None: the config's.

    Raises:
        ModelFileError: the model file is missing, not ours, or of another dataset.
    """
    return load_trained(name, registry.get(name).model, config.section(name), data_dir, model_file,
                        resolve(device or config.device, config.tf32))
