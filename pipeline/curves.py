"""Stage ``curves``: the learning curve the train stage wrote, as a PNG.

The title names the data as every table and figure does (its split's label: "texture stand-in"
for the bark stand-in), and the profile and the hardware where the CSV records them (the train
stage writes them on every row; an older CSV has neither).

Usage: python -m pipeline.curves DATASET DATA_DIR CURVE_CSV OUT_PNG
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from dpm.report import curves
from dpm.base import registry
from dpm.base.atomic import atomic_path
from dpm.data import split as splits
from dpm.base import stages


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", choices=registry.NAMES)
    for name in ("data_dir", "curve_csv", "out_png"):
        parser.add_argument(name, type=Path)
    args = parser.parse_args(argv)
    table = pd.read_csv(args.curve_csv)
    missing = [c for c in curves.COLUMNS if c not in table]
    if missing or table.empty:
        raise stages.StageError(f"{args.curve_csv}: no learning curve (missing columns {missing} or no rows); "
                                "rerun the train stage")
    info = splits.load_info(args.data_dir)
    fig = curves.learning_curve_figure({c: table[c].to_numpy() for c in curves.COLUMNS}, info.unit,
                                       title(info.label, table))
    with atomic_path(args.out_png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")


def title(label: str, table: pd.DataFrame) -> str:
    """``texture stand-in learning curve (quick profile, CPU x86_64 (1 thread))``: the data's
    label, with what the CSV records of the run."""
    recorded = [f"{table['profile'].iloc[-1]} profile" if "profile" in table else None,
                str(table["hardware"].iloc[-1]) if "hardware" in table else None]
    details = ", ".join(r for r in recorded if r)
    return f"{label} learning curve" + (f" ({details})" if details else "")


if __name__ == "__main__":
    stages.run(main)
