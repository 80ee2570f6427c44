"""Figures 1 and 2 and the sample plots logged to TensorBoard (matplotlib, no file I/O)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def swiss_roll_figure(forward: dict[int, np.ndarray], reverse: dict[int, np.ndarray],
                      drift: dict[int, tuple[np.ndarray, np.ndarray]], title: str) -> plt.Figure:
    """Figure 1: forward slices, reverse slices and the drift f_μ(x, t) − x, one column per t.

    Args:
        forward, reverse: t → (n, 2) samples of q(x_t) and p(x_t).
        drift: column t → (step s, grid (g, 2), drift (g, 2)) for the reverse step from x_s.
            Arrows are scaled per panel; the title gives the longest one in data units.
    """
    columns = sorted(forward)
    fig, axes = plt.subplots(3, len(columns), figsize=(3.2 * len(columns), 9.6), squeeze=False)
    for j, t in enumerate(columns):
        axes[0, j].scatter(*forward[t].T, s=1, alpha=0.4, color="tab:blue")
        axes[0, j].set_title(f"q(x_t), t = {t}")
        axes[1, j].scatter(*reverse[t].T, s=1, alpha=0.4, color="tab:red")
        axes[1, j].set_title(f"p(x_t), t = {t}")
        step, grid, arrows = drift[t]
        axes[2, j].quiver(*grid.T, *arrows.T, angles="xy", color="tab:green")
        longest = np.linalg.norm(arrows, axis=1).max()
        axes[2, j].set_title(f"f_μ(x, {step}) − x  (max {longest:.2g})")
    for ax in axes.flat:
        ax.set_xlim(-2.5, 2.5)
        ax.set_ylim(-2.5, 2.5)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def scatter_figure(samples: np.ndarray, title: str) -> plt.Figure:
    """2-D samples as a scatter plot (TensorBoard)."""
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(*samples.T, s=1, alpha=0.5)
    ax.set_xlim(-2.5, 2.5)
    ax.set_ylim(-2.5, 2.5)
    ax.set_aspect("equal")
    ax.set_title(title)
    return fig


def align_pulses(samples: np.ndarray, period: int) -> np.ndarray:
    """Roll each sequence so that its strongest pulse phase is in the first column (Fig. 2)."""
    n_bits = samples.shape[1]
    phase_mass = np.stack([samples[:, p::period].sum(1) for p in range(period)], axis=1)
    phases = phase_mass.argmax(1)
    index = (np.arange(n_bits)[None, :] + phases[:, None]) % n_bits
    return np.take_along_axis(samples, index, axis=1)


def heartbeat_figure(samples: np.ndarray, initial: np.ndarray, title: str) -> plt.Figure:
    """Figure 2: generated sequences (left, pulses aligned) and the π noise they began as (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.5))
    for ax, image, name in ((axes[0], samples, "samples x_0 (aligned)"), (axes[1], initial, "initial x_T ~ π")):
        ax.imshow(image, cmap="gray_r", interpolation="nearest", aspect="auto", vmin=0, vmax=1)
        ax.set_title(name)
        ax.set_xlabel("bin")
    axes[0].set_ylabel("sample")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def binary_image_figure(samples: np.ndarray, title: str) -> plt.Figure:
    """Binary sequences as an image (TensorBoard)."""
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(samples, cmap="gray_r", interpolation="nearest", aspect="auto", vmin=0, vmax=1)
    ax.set_title(title)
    return fig


def image_grid(pixels: np.ndarray, n_cols: int, pad: int = 1) -> np.ndarray:
    """Tile (n, C, H, W) images with values in [0, 1] into one (rows·H, cols·W, C) image,
    ``pad`` pixels of white between tiles."""
    n, n_colours, height, width = pixels.shape
    n_rows = -(-n // n_cols)
    grid = np.ones((n_rows * (height + pad) - pad, n_cols * (width + pad) - pad, n_colours))
    for i, image in enumerate(pixels):
        top, left = (i // n_cols) * (height + pad), (i % n_cols) * (width + pad)
        grid[top:top + height, left:left + width] = image.transpose(1, 2, 0)
    return grid


def image_panels_figure(panels: list[tuple[str, np.ndarray]], title: str, panel_inches: float = 4.0) -> plt.Figure:
    """Side-by-side panels of (H, W, C) images in [0, 1] (grey when C = 1), each with a title:
    Figures 3, 4 and App. 1."""
    fig, axes = plt.subplots(1, len(panels), figsize=(panel_inches * len(panels), panel_inches + 0.6), squeeze=False)
    for ax, (name, image) in zip(axes[0], panels):
        grey = image.shape[-1] == 1
        ax.imshow(image[..., 0] if grey else image, cmap="gray" if grey else None, vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    return fig
