"""The objective K as the configuration asks for it: one object for training, evaluation and the
benchmark, so that the three cannot drift apart.

It says how the sum over t is estimated (every t exactly, or one t per example drawn uniformly
or by importance), what the model sees of the data (8-bit images dequantised and scaled by their
codec; other data as stored) and the reporting unit (per example, or per pixel).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dpm.core.bound import BoundTerms, bound_terms, inverse_t_proposal
from dpm.data.images import ImageCodec
from dpm.data.split import DataInfo


@dataclass(frozen=True)
class Objective:
    """How K is estimated, from a dataset's params.yaml section and its data.

    Attributes:
        n_t: None sums K exactly over t = 2..T (the toys: every per-step readout gets a gradient
            at every iteration); 1 draws one t per example (the images, T = 1000).
        train_proposal: P(t) of the training draws, (T − 1,); None is uniform (the authors').
        importance: P(t) ∝ 1/t mixed with 10 % uniform, (T − 1,): the evaluation's and the learning
            curve's draws (a far smaller variance than uniform; dpm/core/bound.py). None with n_t None.
        codec: images: levels → model units, fresh dequantisation noise each time; None: data
            are stored in model units.
        n_units: reported bits are per example divided by this (pixels per image: bits/pixel).
    """
    n_t: int | None
    train_proposal: Tensor | None
    importance: Tensor | None
    codec: ImageCodec | None
    n_units: int

    @classmethod
    def of(cls, section, info: DataInfo, device: torch.device | str = "cpu") -> "Objective":
        """The objective of a dataset's section (``train.t_sampling``) and data (``info``)."""
        if not info.is_image:
            return cls(n_t=None, train_proposal=None, importance=None, codec=None, n_units=info.n_units)
        importance = inverse_t_proposal(section.diffusion.n_steps, device=device)
        train_proposal = importance if section.train.t_sampling == "importance" else None
        return cls(n_t=1, train_proposal=train_proposal, importance=importance, codec=ImageCodec.of(info),
                   n_units=info.n_units)

    def prepare(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Stored data → model units (images: dequantised with fresh noise from ``generator``)."""
        return x if self.codec is None else self.codec.encode(x, generator)

    def loss(self, model, batch: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """−K averaged over a stored batch (nats per example): the training loss. Paper: Eq. 15."""
        x0 = self.prepare(batch, generator)
        return -bound_terms(model.process(), model.reverse, x0, generator, self.n_t, self.train_proposal).k.mean()

    def terms(self, process, reverse, x0: Tensor, generator: torch.Generator | None = None,
              uniform: bool = False) -> BoundTerms:
        """The terms of K for x0 in model units, as evaluation estimates them: exactly over t, or
        one t per example by importance; ``uniform``: one t per example drawn uniformly, the
        authors' estimator, which evaluation reports as a check."""
        if uniform:
            return bound_terms(process, reverse, x0, generator, n_t=1)
        return bound_terms(process, reverse, x0, generator, self.n_t, self.importance)
