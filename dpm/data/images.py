"""8-bit images in model units: one global scaling, and dequantisation (SPEC §2).

Images are kept as their integer levels 0..255, flattened to (N, C·H·W) in C, H, W order.
Pixel values p = level/255 lie in [0, 1]; model units are z = (p − mean)/scale, with one mean
and one scale for every pixel and colour, fitted on the whole training split. Fresh
dequantisation noise is drawn each time an image is used, so the model sees a continuous
density, and K bounds the log-likelihood of the dequantised (continuous) images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dpm.data.scaling import Scaling
from dpm.data.split import DataInfo, Split

N_LEVELS = 256


def fit_scaling(levels: np.ndarray) -> Scaling:
    """Global mean and standard deviation of p = level/255 over the whole training split."""
    return Scaling.fit(np.asarray(levels, dtype=np.float64) / (N_LEVELS - 1))


def noise_width(scaling: Scaling, mode: str) -> float:
    """Width of the uniform dequantisation noise in model units.

    ``level``: one quantisation level, 1/(255·scale) (= scl/255 with scl = 1/scale).
    ``authors``: the authors' code's (1/255)·scale = (1/255)/scl, narrower by scl² (SPEC §2).
    ``none``: no noise (the density of a discrete set: K can grow without bound).
    """
    widths = {"level": 1.0 / ((N_LEVELS - 1) * scaling.scale),
              "authors": scaling.scale / (N_LEVELS - 1), "none": 0.0}
    return widths[mode]


def dequantise(levels: Tensor, scaling: Scaling, mode: str, generator: torch.Generator | None = None) -> Tensor:
    """Integer levels → model units plus U(−w/2, w/2) noise of width w = ``noise_width``.

    Args:
        levels: integer tensor (any shape), values 0..255.
        mode: ``level`` (default, SPEC §2), ``authors`` or ``none``.

    Returns:
        float32 tensor of the same shape, on the same device.
    """
    z = (levels.float() / (N_LEVELS - 1) - scaling.mean) / scaling.scale
    width = noise_width(scaling, mode)
    if width == 0.0:
        return z
    u = torch.rand(levels.shape, generator=generator, device=levels.device) - 0.5
    return z + width * u


def to_pixels(z: Tensor | np.ndarray, scaling: Scaling) -> np.ndarray:
    """Model units → pixel values in [0, 1] (clipped), for figures and the Parzen estimate."""
    z = z.detach().cpu().numpy() if isinstance(z, Tensor) else np.asarray(z)
    return np.clip(scaling.invert(z), 0.0, 1.0)


@dataclass(frozen=True)
class ImageCodec:
    """8-bit images ↔ model units: the global scaling and the dequantisation noise (SPEC §2).

    Attributes:
        scaling: fitted on the training split's pixel values in [0, 1].
        dequantisation: ``level``, ``authors`` or ``none`` (``noise_width``).
        image_shape: (colours, height, width).
    """
    scaling: Scaling
    dequantisation: str
    image_shape: tuple[int, int, int]

    @classmethod
    def of(cls, info: DataInfo) -> "ImageCodec":
        return cls(info.scaling, info.dequantisation, info.image_shape)

    @property
    def noise_width(self) -> float:
        return noise_width(self.scaling, self.dequantisation)

    def encode(self, levels: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(N, C·H·W) levels → dequantised model units, fresh noise from ``generator``."""
        return dequantise(levels, self.scaling, self.dequantisation, generator)

    def decode(self, z: Tensor | np.ndarray) -> np.ndarray:
        """(N, C·H·W) model units → (N, C, H, W) pixel values in [0, 1]."""
        return to_pixels(z, self.scaling).reshape(-1, *self.image_shape)


def image_split(train: np.ndarray, holdout: np.ndarray, dequantisation: str, label: str) -> Split:
    """Levels (N, C, H, W) → a Split of flattened levels, with the scaling fitted on train."""
    n_colours, height, width = train.shape[1:]
    info = DataInfo(label=label, unit="bits/pixel", n_dims=n_colours * height * width, n_units=height * width,
                    scaling=fit_scaling(train), image_shape=(n_colours, height, width),
                    dequantisation=dequantisation)
    flat = lambda x: np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.uint8)  # noqa: E731
    return Split(flat(train), flat(holdout), info)
