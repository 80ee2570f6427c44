"""The per-dataset records an aggregating stage reads (``table1``, ``kl_figure``, ``seed_table``):
``<folder>/<dataset><suffix>`` for each dataset of dpm/base/registry.py, in its order (Table 1's). The
stages take folders, so their commands name no dataset, and a new dataset changes none of them.
"""

from __future__ import annotations

import json
from pathlib import Path

from dpm.base import registry
from dpm.base import stages


def paths(folder: Path, suffix: str = ".json", *, every: bool = True) -> list[Path]:
    """The datasets' files in ``folder``, in Table 1's order; StageError naming the missing ones if
    ``every``, else those present (the limit stages write the toys' alone)."""
    named = [folder / f"{name}{suffix}" for name in registry.NAMES]
    missing = [path.as_posix() for path in named if not path.is_file()]
    if every and missing:
        raise stages.StageError(f"missing {', '.join(missing)}: run the stages that write them")
    return [path for path in named if path.is_file()]


def read(folder: Path, *, every: bool = True) -> list[dict]:
    """The datasets' JSON records in ``folder`` (:func:`paths`), in Table 1's order."""
    return [json.loads(path.read_text()) for path in paths(folder, every=every)]
