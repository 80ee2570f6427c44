"""The learning curve as a picture (matplotlib, no file I/O): what TensorBoard shows, without a browser.

Takes the curve ``dpm.run.train.fit`` returns (and the train stage writes as CSV) as columns of numpy
arrays and returns a ``matplotlib.figure.Figure`` built without pyplot; the caller saves it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

COLUMNS = ("iteration", "train_loss_bits", "holdout_K_bits", "holdout_K_minus_L_null_bits")
"""The columns of the curve that are drawn (``dpm.run.train.fit``'s history less its wall-clock
``seconds``, which the train stage keeps out of the curve: tests/test_tensorboard.py)."""


def learning_curve_figure(curve: Mapping[str, np.ndarray], unit: str, title: str) -> Figure:
    """K (holdout and training batch) and holdout K − L_null, both against the training iteration.

    Args:
        curve: the columns of ``COLUMNS``, one entry per logged iteration; K in bits per unit
            (point, sequence or pixel), the training loss being −K on one batch.
        unit: the unit of K, ``bits/pixel``.
        title: the figure's title (dataset, profile, hardware).

    Paper: K, Eq. 14; K − L_null, Table 1.
    """
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    by_iteration, improvement = fig.subplots(1, 2)
    iteration = np.asarray(curve["iteration"])
    by_iteration.plot(iteration, -np.asarray(curve["train_loss_bits"]), color="0.6", linewidth=1,
                      label="training batch (−loss)")
    by_iteration.plot(iteration, curve["holdout_K_bits"], "o-", color="tab:blue", markersize=3, label="holdout")
    by_iteration.set(xlabel="iteration", ylabel=f"K ({unit})", title="bound K on the log-likelihood")
    by_iteration.legend(loc="lower right")
    improvement.plot(iteration, curve["holdout_K_minus_L_null_bits"], "o-", color="tab:red", markersize=3)
    improvement.set(xlabel="iteration", ylabel=f"K − $L_{{null}}$ ({unit})", title="holdout K − $L_{null}$")
    for ax in (by_iteration, improvement):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title, fontsize=13)
    return fig

