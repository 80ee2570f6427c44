"""Stage ``curves``: the learning curve the train stage wrote, as a PNG.

The title names the dataset, and the profile and the hardware where the CSV records them (the
train stage writes them on every row; an older CSV has neither).

Usage: python -m pipeline.curves DATASET CURVE_CSV OUT_PNG
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from dpm import curves, registry
from dpm.atomic import atomic_path
from pipeline import common


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=registry.NAMES)
    for name in ("curve_csv", "out_png"):
        parser.add_argument(name, type=Path)
    args = parser.parse_args(argv)
    table = pd.read_csv(args.curve_csv)
    missing = [c for c in curves.COLUMNS if c not in table]
    if missing or table.empty:
        raise common.StageError(f"{args.curve_csv}: no learning curve (missing columns {missing} or no rows); "
                                "rerun the train stage")
    fig = curves.learning_curve_figure({c: table[c].to_numpy() for c in curves.COLUMNS},
                                       registry.get(args.dataset).paper.unit, title(args.dataset, table))
    with atomic_path(args.out_png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")


def title(dataset: str, table: pd.DataFrame) -> str:
    """``swiss_roll learning curve (quick profile, CPU x86_64 (1 thread))``, with what the CSV
    records of the run."""
    recorded = [f"{table['profile'].iloc[-1]} profile" if "profile" in table else None,
                str(table["hardware"].iloc[-1]) if "hardware" in table else None]
    details = ", ".join(r for r in recorded if r)
    return f"{dataset} learning curve" + (f" ({details})" if details else "")


if __name__ == "__main__":
    common.run(main)
