"""Stage ``kl_figure``: the per-t terms of K of every model in one figure (the ``kl_per_t`` stages' CSVs).

Usage: python -m pipeline.kl_figure OUT_PNG --kl-per-t DIR [--limits DIR]

One panel per model, in Table 1's order (``pipeline.records``): E KL_t against t (log axes; band ±2 standard errors), and
the running sum on a twin axis, from ``<dataset>.csv`` of the kl_per_t stages in ``--kl-per-t``, whose
``<dataset>.json`` gives the panel's name and unit. The limit stages' JSONs (the toys') add, dashed, the terms of the best reverse step of the model's family.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from dpm.report import figures
from dpm.base.atomic import atomic_path
from dpm.base import stages
from pipeline import records

COLUMNS = ("t", "kl_bits", "kl_se_bits", "cumulative_bits")


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_png", type=Path)
    parser.add_argument("--kl-per-t", type=Path, required=True)
    parser.add_argument("--limits", type=Path)
    args = parser.parse_args(argv)
    limits = {m["dataset"]: m["kl_bits_by_t"] for m in (records.read(args.limits, every=False) if args.limits else [])}
    metas = records.paths(args.kl_per_t)
    panels = []
    for csv, meta_file in zip(records.paths(args.kl_per_t, ".csv"), metas):
        table, meta = pd.read_csv(csv), json.loads(meta_file.read_text())
        if any(c not in table for c in COLUMNS) or table.empty:
            raise stages.StageError(f"{csv}: not a per-t KL table (columns {COLUMNS}); rerun its kl_per_t stage")
        columns = {c: table[c].to_numpy() for c in COLUMNS}
        if meta["dataset"] in limits:
            columns["limit_kl_bits"] = np.asarray(limits[meta["dataset"]])
        panels.append((f"{meta['label']} (T = {meta['T']})", meta["unit"], columns))
    profile = json.loads(metas[0].read_text())["profile"]
    fig = figures.kl_per_t_figure(panels, "Where the bound loses: each term E KL$(q(x_{t-1}|x_t, x_0)\\,\\|\\,"
                                          "p(x_{t-1}|x_t))$ of K against t (blue; dashed: the best step of the "
                                          f"model's family), their running sum in red ({profile} profile)")
    with atomic_path(args.out_png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")


if __name__ == "__main__":
    stages.run(main)
