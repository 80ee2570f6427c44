"""The paper's figures and the sample plots logged to TensorBoard (matplotlib, no file I/O).

Every function takes numpy arrays and returns a ``matplotlib.figure.Figure`` built without pyplot,
so no global figure state is kept; the caller saves it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter

SUPTITLE_SIZE = 13


def swiss_roll_figure(forward: dict[int, np.ndarray], reverse: dict[int, np.ndarray],
                      drift: dict[int, tuple[int, np.ndarray, np.ndarray]], title: str,
                      under_drift: np.ndarray | None = None) -> Figure:
    """Figure 1: forward slices, reverse slices and the reverse drift, one column per time t.

    The columns are the keys of ``forward`` (the paper's t = 0, T/4, T/2, T; the largest is read
    as T). A drift panel is titled with the step it really shows; where that is not the column's
    own t (no learned reverse step exists at t = 0 or at the tied t = 1), a note under it says so.

    Args:
        forward: t → (n, 2) samples of q(x_t); forward[0] is the data.
        reverse: t → (n, 2) samples of p(x_t) from the reverse chain, same keys as ``forward``.
        drift: column t → (step s, grid (g, 2), arrows (g, 2)), arrows = f_μ(x_s, s) − x_s on the
            grid for the reverse step x_s → x_{s−1}. Arrows are scaled per panel; the title gives
            the longest one in data units.
        title: the figure's title.
        under_drift: (m, 2) points drawn faint grey under every drift panel; default the data,
            forward at the first column.

    Paper: Fig. 1 (rows: q(x_t), p(x_t), f_μ(x_t, t) − x_t; columns t = 0, T/2, T in the paper).
    """
    columns = sorted(forward)
    under = forward[columns[0]] if under_drift is None else under_drift
    limit = _scatter_limit([*forward.values(), *reverse.values()])
    fig = Figure(figsize=(2.9 * len(columns) + 0.6, 10.6), layout="constrained")
    axes = fig.subplots(3, len(columns), squeeze=False)
    for row, slices, colour in ((axes[0], forward, "tab:blue"), (axes[1], reverse, "tab:red")):
        for ax, t in zip(row, columns):
            ax.scatter(*slices[t].T, s=1, alpha=0.4, color=colour, rasterized=True)
            ax.set_title(_time_label(t, columns[-1]))
    for ax, t in zip(axes[2], columns):
        _draw_drift(ax, t, *drift[t], under)
    for ax, label in zip(axes[:, 0], ("forward diffusion $q(x_t)$\ndata → noise",
                                      "reverse (generative) $p(x_t)$\nsamples of the model",
                                      "drift $f_\\mu(x_t, t) - x_t$ of the\nreverse step $x_t \\to x_{t-1}$")):
        ax.set_ylabel(label, fontsize=12)
    for ax in axes.flat:
        ax.set(xlim=(-limit, limit), ylim=(-limit, limit), xticks=[], yticks=[], aspect="equal")
    fig.suptitle(_wrap(f"{title}. Drift arrows are scaled per panel; grey: the data", fig.get_figwidth()),
                 fontsize=SUPTITLE_SIZE)
    return fig


def _draw_drift(ax: Axes, t: int, step: int, grid: np.ndarray, arrows: np.ndarray, under: np.ndarray) -> None:
    """One drift panel: grey points, green arrows, the step shown and, when it is not t, why."""
    ax.scatter(*under.T, s=1, alpha=0.15, color="0.5", rasterized=True)
    ax.quiver(*grid.T, *arrows.T, angles="xy", color="tab:green")
    longest = np.linalg.norm(arrows, axis=1).max()
    ax.set_title(f"step $x_{{{step}}} \\to x_{{{step - 1}}}$  (longest {longest:.2g})")
    if step != t:
        ax.set_xlabel(f"column t = {t} has no learned reverse step:\nshown is the step from t = {step}",
                      fontsize=9, style="italic")


def _time_label(t: int, n_steps: int) -> str:
    """'t = 10 (T/4)' for the paper's landmark times, else 't = 13'."""
    names = {0: "", n_steps: " (T)", n_steps / 2: " (T/2)", n_steps / 4: " (T/4)"}
    return f"t = {t}{names.get(t, '')}"


def _scatter_limit(points: list[np.ndarray], floor: float = 2.5) -> float:
    """A common half-width for 2-D panels: 99.5 % of all coordinates, at least ``floor``."""
    return max(floor, 1.05 * float(np.quantile(np.abs(np.concatenate(points)), 0.995)))


def scatter_figure(samples: np.ndarray, title: str) -> Figure:
    """(n, 2) samples as a scatter plot on [−2.5, 2.5]² (TensorBoard)."""
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    ax.scatter(*samples.T, s=1, alpha=0.5)
    ax.set(xlim=(-2.5, 2.5), ylim=(-2.5, 2.5), aspect="equal", title=title)
    return fig


def align_pulses(samples: np.ndarray, period: int) -> np.ndarray:
    """Roll each (n, n_bits) binary sequence so its strongest pulse phase is in bin 0 (Fig. 2)."""
    n_bits = samples.shape[1]
    phase_mass = np.stack([samples[:, p::period].sum(1) for p in range(period)], axis=1)
    phases = phase_mass.argmax(1)
    index = (np.arange(n_bits)[None, :] + phases[:, None]) % n_bits
    return np.take_along_axis(samples, index, axis=1)


def heartbeat_figure(samples: np.ndarray, initial: np.ndarray, title: str, period: int | None = None) -> Figure:
    """Figure 2: generated sequences as generated, beside the π noise each chain began as.

    Row i of ``samples`` is the end of the reverse chain that started at row i of ``initial``.

    Args:
        samples: (n, n_bits) samples x_0 ~ p(x_0) in {0, 1}, in generation order.
        initial: (n, n_bits) starting states x_T ~ π of the same chains.
        title: the figure's title.
        period: if given, a third panel shows the samples with each row rolled so that its
            strongest pulse phase (bins ≡ p mod ``period``) is in bin 0, which shows at a glance
            whether every sequence has the training data's period.

    Paper: Fig. 2.
    """
    panels = [("generated samples $x_0 \\sim p(x_0)$", samples), ("their starting noise $x_T \\sim \\pi$", initial)]
    if period is not None:
        aligned = align_pulses(samples, period)
        panels.append((f"samples rolled: strongest\npulse phase (period {period}) in bin 0", aligned))
    fig = Figure(figsize=(3.6 * len(panels) + 0.6, 4.8), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (name, image) in zip(axes, panels):
        _draw_bits(ax, image)
        ax.set_title(name)
    axes[0].set_ylabel("chain (same row in every panel)")
    fig.suptitle(title, fontsize=SUPTITLE_SIZE)
    return fig


def _draw_bits(ax: Axes, bits: np.ndarray) -> None:
    """An (n, n_bits) binary array as black/white cells with thin cell borders and integer bin ticks."""
    n_rows, n_bits = bits.shape
    ax.imshow(bits, cmap="gray_r", interpolation="nearest", aspect="auto", vmin=0, vmax=1)
    ax.set_xticks(np.arange(n_bits) if n_bits <= 20 else np.arange(0, n_bits, 5))
    ax.set_xticks(np.arange(n_bits + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n_rows + 1) - 0.5, minor=True)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, steps=(1, 2, 5, 10)))
    ax.grid(which="minor", color="0.85", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel("bin")


def binary_image_figure(samples: np.ndarray, title: str) -> Figure:
    """(n, n_bits) binary sequences as an image (TensorBoard)."""
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    ax.imshow(samples, cmap="gray_r", interpolation="nearest", aspect="auto", vmin=0, vmax=1)
    ax.set_title(title)
    return fig


def image_grid(pixels: np.ndarray, n_cols: int, pad: int = 1) -> np.ndarray:
    """Tile (n, C, H, W) images with values in [0, 1] into one (rows·H, cols·W, C) image.

    ``pad`` pixels of white separate the tiles; with fewer images than ``n_cols`` the grid is
    one row of n, so a single image is returned as it is.
    """
    n, n_colours, height, width = pixels.shape  # images, colours, height, width
    n_cols = min(n_cols, n)
    n_rows = -(-n // n_cols)
    grid = np.ones((n_rows * (height + pad) - pad, n_cols * (width + pad) - pad, n_colours))
    for i, image in enumerate(pixels):
        top, left = (i // n_cols) * (height + pad), (i % n_cols) * (width + pad)
        grid[top:top + height, left:left + width] = image.transpose(1, 2, 0)
    return grid


def image_panels_figure(panels: Sequence[tuple[str, np.ndarray]], title: str, panel_inches: float = 4.0,
                        letters: Sequence[str | None] | None = None) -> Figure:
    """Side-by-side titled image panels, each as wide as its image's aspect asks: Figs. 3, 4, App. 1.

    Args:
        panels: (name, image) pairs; image (H, W), (H, W, 1) grey or (H, W, 3) colour, in [0, 1].
        title: the figure's title (wrapped to the figure's width).
        panel_inches: the height of every panel.
        letters: one entry per panel, e.g. ("a", "d"): the panel's title becomes "(a) name";
            None (for the list or an entry) leaves that title bare.

    Paper: Fig. 3 ((a) holdout, (b) holdout + noise at SNR 1, (c) denoised, (d) samples), Fig. 4.
    """
    names = _lettered([name for name, _ in panels], letters)
    widths = [panel_inches * image.shape[1] / image.shape[0] for _, image in panels]
    fig_width = sum(widths) + 0.15 * (len(panels) + 1)
    title = _wrap(title, fig_width)
    fig = Figure(figsize=(fig_width, panel_inches + 0.55 + 0.25 * title.count("\n") + 0.3), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.04, h_pad=0.04, wspace=0.02)
    axes = fig.subplots(1, len(panels), squeeze=False, gridspec_kw={"width_ratios": widths})[0]
    for ax, name, (_, image) in zip(axes, names, panels):
        _draw_image(ax, image)
        ax.set_title(name)
    fig.suptitle(title, fontsize=SUPTITLE_SIZE)
    return fig


def inpainting_grid_figure(rows: Sequence[Sequence[np.ndarray]], column_names: Sequence[str], title: str,
                           row_names: Sequence[str] | None = None, panel_inches: float = 3.0,
                           letters: Sequence[str | None] | None = None) -> Figure:
    """Figure 5 at full size: one large image per axes, a row per photograph, a column per stage.

    Args:
        rows: one list per photograph of images (H, W), (H, W, 1) or (H, W, 3) in [0, 1], one per
            column, e.g. [holdout square, central square replaced by noise, inpainted,
            unconditioned sample]; all images share one shape.
        column_names: the column titles, drawn over the top row.
        title: the figure's title, wrapped to the figure's width.
        row_names: optional labels, one per photograph, drawn left of each row.
        panel_inches: the height of each image.
        letters: one entry per column, as in ``image_panels_figure``: "(a) holdout".

    Paper: Fig. 5 (bark: (a) original, (b) central 100×100 replaced by noise, (c) inpainted).
    """
    n_rows, n_cols = len(rows), len(column_names)  # photographs, stages
    if any(len(row) != n_cols for row in rows) or (row_names is not None and len(row_names) != n_rows):
        raise ValueError(f"rows must each have {n_cols} images and row_names {n_rows} entries")
    height, width = rows[0][0].shape[:2]
    panel_width = panel_inches * width / height
    fig_width = n_cols * panel_width + 0.1 * (n_cols + 1) + (0.35 if row_names else 0)
    title = _wrap(title, fig_width)
    fig = Figure(figsize=(fig_width, n_rows * (panel_inches + 0.06) + 0.75 + 0.25 * title.count("\n")),
                 layout="constrained")
    fig.get_layout_engine().set(w_pad=0.03, h_pad=0.03, wspace=0.01, hspace=0.01)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            _draw_image(axes[i, j], image)
        if row_names is not None:
            axes[i, 0].set_ylabel(row_names[i], fontsize=11)
    for ax, name in zip(axes[0], _lettered(column_names, letters)):
        ax.set_title(name, fontsize=12)
    fig.suptitle(title, fontsize=SUPTITLE_SIZE)
    return fig


def _lettered(names: Sequence[str], letters: Sequence[str | None] | None) -> list[str]:
    """Titles "(a) name" where a letter is given (the paper's panel letters), else the bare name."""
    letters = [None] * len(names) if letters is None else list(letters)
    if len(letters) != len(names):
        raise ValueError(f"{len(letters)} letters for {len(names)} panels")
    return [name if letter is None else f"({letter}) {name}" for name, letter in zip(names, letters)]


def _draw_image(ax: Axes, image: np.ndarray) -> None:
    """An (H, W), (H, W, 1) or (H, W, 3) image in [0, 1] (clipped there), pixel for pixel, without ticks."""
    grey = image.ndim == 2 or image.shape[-1] == 1
    image = np.clip(image, 0, 1)
    ax.imshow(image.reshape(image.shape[:2]) if grey else image, cmap="gray" if grey else None,
              vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _wrap(text: str, width_inches: float, fontsize: float = SUPTITLE_SIZE) -> str:
    """``text`` broken into lines that fit ``width_inches`` at ``fontsize`` points."""
    return textwrap.fill(text, width=max(20, int(width_inches * 72 / (0.6 * fontsize))))


def kl_per_t_figure(panels: Sequence[tuple[str, str, dict[str, np.ndarray]]], title: str) -> Figure:
    """Where the bound loses: E KL(q(x_{t−1}|x_t, x_0) ‖ p(x_{t−1}|x_t)) against t, one panel per model,
    with its running sum Σ_{s ≤ t} on a twin axis.

    Args:
        panels: (title, unit, columns) per model; columns ``t``, ``kl_bits``, ``kl_se_bits`` and
            ``cumulative_bits`` (bits per ``unit``), one entry per t = 2..T, and optionally
            ``limit_kl_bits``: the terms of the best step of the model's family (dashed).
        title: the figure's title.

    Paper: Eq. 14 (the terms of K's sum over t).
    """
    n_cols = min(3, len(panels))
    n_rows = -(-len(panels) // n_cols)
    fig = Figure(figsize=(4.6 * n_cols, 3.6 * n_rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    for ax, (name, unit, c) in zip(axes, panels):
        t, kl, se = c["t"], c["kl_bits"], c["kl_se_bits"]
        ax.fill_between(t, np.maximum(kl - 2 * se, kl.min(initial=1.0) * 1e-3), kl + 2 * se, color="tab:blue",
                        alpha=0.25, linewidth=0)
        ax.plot(t, kl, color="tab:blue", linewidth=1.2, label="model")
        if "limit_kl_bits" in c:
            ax.plot(t, c["limit_kl_bits"], "--", color="0.3", linewidth=1.2, label="best step of its family")
            ax.legend(loc="lower left", fontsize=8)
        ax.set(xscale="log", yscale="log", xlabel="t", title=name)
        ax.set_ylim(bottom=1e-5 * np.nanmax(kl))  # terms near zero (Monte Carlo noise) off the log axis
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel(f"E KL$_t$ ({unit})", color="tab:blue")
        ax.grid(alpha=0.3, which="both")
        running = ax.twinx()
        running.plot(t, c["cumulative_bits"], color="tab:red", linewidth=1.2)
        running.set_ylabel(f"$\\sum_{{s \\leq t}}$ E KL$_s$ ({unit})", color="tab:red")
        running.set_ylim(bottom=0)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(_wrap(title, fig.get_figwidth()), fontsize=SUPTITLE_SIZE)
    return fig
