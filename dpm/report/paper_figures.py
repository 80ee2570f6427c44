"""The paper's figures we draw, each from one dataset's trained model.

Only the figure stages (pipeline/figures.py, image_figures.py, posterior_figures.py) read this
list, so adding or changing a figure reruns them alone; dvc.yaml's ``foreach`` lists name the same
figures (tests/test_registry.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """A figure drawn from a trained model.

    Attributes:
        name: the figure stage's key and file name (results/<name>.png).
        dataset: the dataset (dpm/base/registry.py) whose model draws it.
        kind: ``samples`` (data beside model samples), ``denoise``, ``inpaint``, ``inpaint_full``
            (the photographs' holdout squares at full size), ``swiss_roll`` or ``heartbeat``.
        letters: the paper's panel letters of the figure's panels, in order ("" for none).
        shown: ``samples``: which part of the split is shown beside the samples.
        region: ``inpaint``: ``right_half`` or ``centre`` (a central square of half the side).
    """
    name: str
    dataset: str
    kind: str
    letters: str = ""
    shown: str = "holdout"
    region: str = "centre"


FIGURES = {f.name: f for f in (
    Figure("figure1", "swiss_roll", "swiss_roll"),
    Figure("figure2", "heartbeat", "heartbeat"),
    Figure("figure_bark", "bark", "samples"),
    Figure("figure5", "bark", "inpaint"),
    Figure("figure5_full", "bark", "inpaint_full"),
    Figure("figure4", "dead_leaves", "samples", shown="train"),
    Figure("figure3", "cifar10", "samples", letters="ad"),
    Figure("figure3_denoise", "cifar10", "denoise", letters="abc"),
    Figure("figure_app1", "mnist", "samples"),
    Figure("figure_mnist_inpaint", "mnist", "inpaint", region="right_half"),
)}
NAMES = tuple(FIGURES)


def get(name: str) -> Figure:
    """The entry of figure ``name``; ValueError otherwise."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}")
    return FIGURES[name]


def of_kinds(*kinds: str) -> list[str]:
    """The names of the figures of ``kinds``: a figure stage's choices."""
    return [f.name for f in FIGURES.values() if f.kind in kinds]
