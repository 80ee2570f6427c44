"""One global affine scaling of a continuous dataset, and its effect on log-likelihoods.

SPEC §2: every continuous dataset is scaled by "one global constant" (after subtracting one
global mean) to variance 1, computed on the whole training split — not per dimension, pixel or
channel. Likelihoods are reported on the scaled data, so a density known in raw units is moved
to scaled units with the Jacobian term `log_abs_det_jacobian_nats`.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Scaling:
    """The map z = (x − mean) / scale, the same two constants for every element.

    Attributes:
        mean: global mean of all training elements, raw units.
        scale: global standard deviation of all training elements, raw units (> 0).
    """

    mean: float
    scale: float

    @classmethod
    def fit(cls, x_train: np.ndarray) -> "Scaling":
        """Fits the constants so the scaled training split has mean 0 and variance 1.

        Args:
            x_train: the whole training split, any shape (e.g. (n, d)), raw units; all
                elements are pooled (SPEC §2: one global constant).

        Returns:
            The fitted scaling; variance is the population one (ddof = 0), so the scaled
            training split has variance exactly 1.
        """
        x_train = np.asarray(x_train, dtype=np.float64)
        scale = float(x_train.std())
        if not scale > 0:
            raise ValueError("training data has zero variance; cannot scale")
        return cls(mean=float(x_train.mean()), scale=scale)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Raw → scaled: z = (x − mean) / scale, elementwise, same shape as x."""
        return (np.asarray(x, dtype=np.float64) - self.mean) / self.scale

    def invert(self, z: np.ndarray) -> np.ndarray:
        """Scaled → raw: x = z · scale + mean, elementwise, same shape as z."""
        return np.asarray(z, dtype=np.float64) * self.scale + self.mean

    def log_abs_det_jacobian_nats(self, n_dims: int) -> float:
        """log |det ∂x/∂z| for one n_dims-dimensional point, nats.

        Change of variables: log p_scaled(z) = log p_raw(x) + n_dims · log(scale).

        Args:
            n_dims: number of elements in one data point (2 for the swiss roll).

        Returns:
            n_dims · log(scale), nats.
        """
        return n_dims * float(np.log(self.scale))
