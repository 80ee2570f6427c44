"""Stage ``ablation_table``: the ablation study as CSV and Markdown, one row per ablation and variant.

Usage: python -m pipeline.ablation_table METRICS_DIR OUT_CSV OUT_MD

Its rows are the variants of params.yaml's ``ablations.variants``, read from
METRICS_DIR/<variant>.json (the ``ablation`` stages' outputs). The CSV has a row for each
(ablation, variant): a baseline shared by two ablations is a row of each. The Markdown groups
the rows by ablation, its baseline first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from dpm.base import config as cfg
from dpm import studies
from dpm.base.atomic import atomic_path, atomic_write_text
from dpm.base import stages

COLUMNS = ["ablation", "variant", "baseline", "dataset", "changes", "n_iterations", "train_seed", "K", "K_se",
           "K_minus_L_null", "K_minus_L_null_se", "K_uniform_t", "K_uniform_t_se", "unit", "neighbours_differ",
           "profile"]


def changes(metrics: dict) -> str:
    """What the variant changes in its dataset's section at the ablation budget ("baseline" if nothing)."""
    return ", ".join(f"{key} = {value}" for key, value in metrics["set"].items()) or "baseline"


def table(metrics: list[dict]) -> pd.DataFrame:
    """One row per ablation and variant, grouped by ablation (in order of first appearance), baseline first."""
    rows = [{**m, "ablation": group, "changes": changes(m)} for m in metrics for group in m["ablation"]]
    groups = list(dict.fromkeys(row["ablation"] for row in rows))
    rows.sort(key=lambda row: (groups.index(row["ablation"]), not row["baseline"]))
    return pd.DataFrame(rows, columns=COLUMNS)


def markdown(frame: pd.DataFrame) -> str:
    """One section per ablation: variant, what it changes, budget, seed, K ± se, K − L_null ± se."""
    parts = [f"# Ablations ({', '.join(sorted(set(frame['profile'])))} profile)"]
    for group, rows in frame.groupby("ablation", sort=False):
        shown = pd.DataFrame({
            "variant": rows["variant"] + rows["baseline"].map({True: " (baseline)", False: ""}),
            "dataset": rows["dataset"], "changes": rows["changes"], "iterations": rows["n_iterations"],
            "seed": rows["train_seed"], "K": [_pm(k, se) for k, se in zip(rows["K"], rows["K_se"])],
            "K − L_null": [_pm(k, se) for k, se in zip(rows["K_minus_L_null"], rows["K_minus_L_null_se"])],
            "unit": rows["unit"]})
        if rows["neighbours_differ"].notna().any():
            shown["neighbours differ"] = rows["neighbours_differ"].map("{:.1%}".format)
        if rows["K_uniform_t"].ne(rows["K"]).any():  # images: the authors' uniform-t estimate of the same K
            shown["K, uniform t"] = [_pm(k, se) for k, se in zip(rows["K_uniform_t"], rows["K_uniform_t_se"])]
        parts += [f"## {group}", shown.to_markdown(index=False)]
    return "\n\n".join(parts) + "\n"


def _pm(mean: float, se: float) -> str:
    return f"{mean:.3f} ± {se:.3f}"


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("metrics_dir", type=Path)
    parser.add_argument("out_csv", type=Path)
    parser.add_argument("out_md", type=Path)
    args = parser.parse_args(argv)
    config = cfg.load(stages.PARAMS)  # not stages.load_config: no torch here
    variants = studies.load(stages.PARAMS, config).ablations.variants
    missing = [name for name in variants if not (args.metrics_dir / f"{name}.json").exists()]
    if missing:
        raise stages.StageError(f"{args.metrics_dir}: no metrics of {', '.join(missing)}; run their ablation stages")
    frame = table([json.loads((args.metrics_dir / f"{name}.json").read_text()) for name in variants])
    with atomic_path(args.out_csv) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4g")
    atomic_write_text(args.out_md, markdown(frame))


if __name__ == "__main__":
    stages.run(main)
