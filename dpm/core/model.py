"""A diffusion probabilistic model: a β schedule, a reverse network and the process joining them;
building one from its kind and its params.yaml section, and loading a trained one with its data.

The kind (``rbf``, ``sigmoid_mlp``, ``image``) is what a dataset's entry in dpm/base/registry.py says it
trains; this module knows no dataset and no params.yaml file."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from dpm.data import split as splits
from dpm.data.split import DataInfo, Split
from dpm.core.diffusion import BinomialDiffusion, GaussianDiffusion
from dpm.core.nets import ImageNet, RBFNet, SigmoidMLP
from dpm.core.objective import Objective
from dpm.core.schedules import make_schedule


AUTOCAST = {"cuda": torch.bfloat16}
"""What ``amp`` autocasts the network to, by device type; on any other device it runs in float32."""


class DiffusionModel(nn.Module):
    """Schedule + network; ``process()`` builds the forward process from the current β.

    Args:
        schedule: module returning β_1..β_T (fixed or learned).
        net: module mapping (x_t, t) to a tuple of raw coefficients.
        make_process: builds a GaussianDiffusion or BinomialDiffusion from β.
        amp: autocast the network in training steps (``autocast_dtype``); ``build`` sets it from
            the section's ``train.amp``.
    """

    def __init__(self, schedule: nn.Module, net: nn.Module, make_process: Callable[[Tensor], object],
                 amp: bool = False):
        super().__init__()
        self.schedule = schedule
        self.net = net
        self.make_process = make_process
        self.amp = amp

    def process(self):
        """The forward process of the current β. A fixed schedule's β is one tensor (until the
        model moves), so its process is built once and kept: a training step launches no kernel
        to rebuild its tables."""
        beta = self.schedule()
        if beta.requires_grad:  # a learned schedule: β depends on parameters that change each step
            return self.make_process(beta)
        if getattr(self, "_fixed_process", None) is None or self._fixed_process.beta is not beta:
            self._fixed_process = self.make_process(beta)
        return self._fixed_process

    def autocast_dtype(self, device_type: str) -> torch.dtype | None:
        """The dtype the network is autocast to on ``device_type``, None for float32.

        Only a training step autocasts: ``amp`` on, the model in training mode and gradients
        recorded, on a device of ``AUTOCAST``. Every evaluation (K, the learning curve inside
        ``dpm.run.train.fit``, likelihoods, samples) runs under ``torch.no_grad`` or in eval mode, so
        in float32, whatever ``amp`` says; the bound is always computed in float32.
        """
        if self.amp and self.training and torch.is_grad_enabled():
            return AUTOCAST.get(device_type)
        return None

    def reverse(self, process, xt: Tensor, t: Tensor):
        """Parameters of p(x_{t−1}|x_t) (Table C.1)."""
        dtype = self.autocast_dtype(xt.device.type)
        if dtype is None:
            return process.p_params(xt, t, *self.net(xt, t))
        with torch.autocast(xt.device.type, dtype=dtype):
            coefficients = self.net(xt, t)
        return process.p_params(xt, t, *(z.float() for z in coefficients))


def _net(kind: str, section, info: DataInfo, generator: torch.Generator) -> nn.Module:
    """The reverse network of model ``kind`` (App. D.1.1, D.1.2, D.2.1)."""
    n_steps = section.diffusion.n_steps
    if kind == "rbf":
        return RBFNet(n_steps, info.n_dims, section.net.n_hidden, section.net.local_linear, generator)
    if kind == "sigmoid_mlp":
        return SigmoidMLP(n_steps, info.n_dims, section.net.n_hidden, section.net.n_layers, generator,
                          section.net.init)
    if kind == "image":
        return ImageNet(n_steps, info.image_shape, section.net, generator)
    raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")


KINDS = ("rbf", "sigmoid_mlp", "image")
"""The kinds of model ``build`` makes (a dataset's ``model`` in dpm/base/registry.py)."""


def build(kind: str, section, info: DataInfo, x_train: Tensor | None = None, seed: int = 0) -> DiffusionModel:
    """The model of ``kind`` (``KINDS``) from a dataset's params.yaml section and its data.

    Every initial weight comes from ``seed`` (never from torch's global generator); the RBF
    centres start on ``x_train`` when it is given (a model about to be trained; one about to
    load saved weights needs neither). ``amp`` is the section's ``train.amp`` (False where it
    has none): the one place it is set.
    """
    net = _net(kind, section, info, torch.Generator().manual_seed(seed))
    if kind == "rbf" and x_train is not None:
        net.rbf.init_from_data(x_train, torch.Generator().manual_seed(seed))
    if kind == "sigmoid_mlp":
        make_process = functools.partial(BinomialDiffusion, p_pi=info.p_pi,
                                         parameterisation=section.diffusion.parameterisation)
    else:
        make_process = functools.partial(GaussianDiffusion, parameterisation=section.diffusion.parameterisation)
    schedule = make_schedule(section.diffusion.schedule, section.diffusion.n_steps, section.diffusion.beta_1)
    return DiffusionModel(schedule, net, make_process, amp=getattr(section.train, "amp", False))


class ModelFileError(OSError):
    """A model file that cannot be used: not one of ours, truncated, or of another dataset."""


def read_model_file(path: str | Path) -> dict:
    """What the train stage saved (``model`` state, ``dataset``, ``profile``, ``history``, …).

    Loaded with ``weights_only=True``: tensors and plain containers only, so a crafted file
    cannot run code.

    Raises:
        ModelFileError: naming the file and what is wrong with it.
    """
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing; run the train stage that writes it") from None
    except Exception as error:  # a crafted or truncated file: torch raises many kinds
        raise ModelFileError(f"{path}: not a model file this library can load ({type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else ''})") from None
    if not isinstance(saved, dict) or "model" not in saved:
        raise ModelFileError(f"{path}: not a model file written by the train stage")
    return saved


@dataclass
class Trained:
    """A trained model with everything needed to use it.

    Attributes:
        name: the dataset.
        section: the dataset's params.yaml section the model was built from.
        info: what the data are (units, scaling, image shape); ``split`` reads the arrays
            themselves from ``data_dir`` when first asked for.
        model: the model, on ``device``, in evaluation mode.
        objective: how K is estimated on it, and the data's codec (images: ``objective.codec``).
        saved: the model file's record (``history``, ``device`` it trained on, …).
    """
    name: str
    section: object
    info: DataInfo
    data_dir: Path
    model: DiffusionModel
    device: torch.device
    objective: Objective
    saved: dict

    @functools.cached_property
    def split(self) -> Split:
        return splits.load(self.data_dir)


def load_trained(name: str, kind: str, section, data_dir: str | Path, model_file: str | Path,
                 device: torch.device) -> Trained:
    """The trained model of dataset ``name`` (of model ``kind``, built from its ``section``) with
    its data (``data/<name>``, ``models/<name>.pt``), on ``device``.

    Raises:
        ModelFileError: the model file is missing, not ours, or of another dataset.
    """
    info = splits.load_info(data_dir)
    saved = read_model_file(model_file)
    if saved.get("dataset") != name:
        raise ModelFileError(f"{model_file}: a model of {saved.get('dataset')!r}, not of {name!r}")
    model = build(kind, section, info)
    try:
        model.load_state_dict(saved["model"])
    except RuntimeError as error:
        raise ModelFileError(f"{model_file}: does not fit {name}'s params.yaml section (retrain it): "
                             f"{str(error).splitlines()[0]}") from None
    model = model.to(device).eval()
    objective = Objective.of(section, info, device)
    return Trained(name, section, info, Path(data_dir), model, device, objective, saved)
