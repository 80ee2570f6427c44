"""Stage ``seed_table`` (studies/dvc.yaml): how far Table 1's rows move with the training seed.

Usage: python -m pipeline.seed_table OUT_CSV OUT_MD --main METRICS_DIR --seeds SEEDS_DIR

Each folder holds ``<dataset>.json`` of every dataset (the evaluate stages', the seed_spread
stages'), read in Table 1's order (``pipeline.records``).

One row per dataset: the main row's K (the evaluate stage, seed train.seed), K ± se of every
other seed (the seed_spread stages), and the mean and standard deviation (ddof = 1) of K and of
K − L_null over all the seeds, the main one included. The standard deviation is the spread from
initialisation and batch order; each K's own se is the holdout estimate's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from dpm.base.atomic import atomic_path, atomic_write_text
from dpm.base import stages
from pipeline import records
from pipeline.rounding import pm


def table(main: list[dict], spread: list[dict]) -> pd.DataFrame:
    """Rows in the order of ``main``; K_i, K_i_se, seed_i for the i-th seed, the main one first."""
    by_dataset = {s["dataset"]: s for s in spread}
    missing = [m["dataset"] for m in main if m["dataset"] not in by_dataset]
    if missing:
        raise stages.StageError(f"no seed_spread results for {missing}")
    rows = []
    for m in main:
        s = by_dataset[m["dataset"]]
        if s["profile"] != m["profile"]:
            raise stages.StageError(f"{m['dataset']}: main row of profile {m['profile']}, seeds of {s['profile']}")
        seeds = [{"seed": s["main_seed"], **m}, *s["seeds"]]
        row = {"dataset": m["dataset"], "data": m.get("label", m["dataset"]), "profile": m["profile"],
               "unit": m["unit"], "n_seeds": len(seeds)}
        for i, one in enumerate(seeds):
            row.update({f"seed_{i}": one["seed"], f"K_{i}": one["K"], f"K_{i}_se": one["K_se"]})
        for key in ("K", "K_minus_L_null"):
            values = np.array([one[key] for one in seeds])
            row.update({f"{key}_mean": values.mean(), f"{key}_sd": values.std(ddof=1) if len(values) > 1 else np.nan})
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(frame: pd.DataFrame) -> str:
    """The table with K ± se per seed and mean ± sd, each value to its error's second digit."""
    n_seeds = int(frame["n_seeds"].max())
    shown = pd.DataFrame({"data": frame["data"], "unit": frame["unit"]})
    for i in range(n_seeds):
        label = "K ± se (seed), Table 1's" if i == 0 else f"K ± se (seed), retrained {i}"
        shown[label] = [pm(r.get(f"K_{i}"), r.get(f"K_{i}_se"), f" ({r.get(f'seed_{i}'):.0f})")
                        for _, r in frame.iterrows()]
    shown["K mean ± sd"] = [pm(r["K_mean"], r["K_sd"]) for _, r in frame.iterrows()]
    shown["K − L_null mean ± sd"] = [pm(r["K_minus_L_null_mean"], r["K_minus_L_null_sd"]) for _, r in frame.iterrows()]
    note = ("Each K's ± is its holdout standard error; the mean's ± is the standard deviation over the "
            "seeds (ddof = 1): the spread from the initial weights and the order of the training batches.")
    return "# Table 1: spread over training seeds\n\n" + shown.to_markdown(index=False) + "\n\n" + note + "\n"


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_csv", type=Path)
    parser.add_argument("out_md", type=Path)
    parser.add_argument("--main", type=Path, required=True)
    parser.add_argument("--seeds", type=Path, required=True)
    args = parser.parse_args(argv)
    frame = table(records.read(args.main), records.read(args.seeds))
    with atomic_path(args.out_csv) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    atomic_write_text(args.out_md, markdown(frame))


if __name__ == "__main__":
    stages.run(main)
