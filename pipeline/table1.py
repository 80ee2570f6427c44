"""Stage ``table1``: Table 1 as CSV and Markdown, our values beside the paper's.

Usage: python -m pipeline.table1 OUT_CSV OUT_MD --metrics METRICS_JSON... [--likelihood JSON...]
    [--limits JSON...] --figures PNG...

The Markdown copy is the report of a run: the table, then the figures it links to. The likelihood
stages add L_k (Eq. 9) on their holdout subset, with K on that same subset (``K_subset``) and its
size; the limit stages the best K of the model's family at its T (``K_limit_T``); empty cells where
a stage computed none.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from dpm import registry
from dpm.atomic import atomic_path, atomic_write_text
from pipeline import common

COLUMNS = ["dataset", "data", "profile", "K", "K_se", "K_minus_L_null", "L_null", "paper_K", "paper_K_minus_L_null",
           "true_log_likelihood", "unit", "K_over_t", "T", "beta_1", "parameterisation", "n_holdout",
           "n_parameters", "train_seconds", "train_device", "git_commit"]
KS = (1, 10, 100, 1000)
LIKELIHOOD_COLUMNS = [name for k in KS for name in (f"L_{k}", f"L_{k}_se")] + ["K_subset", "K_subset_se", "n_subset"]
LIMIT_COLUMNS = ["K_limit_T", "K_limit_T_se"]


def table(metrics: list[dict], likelihood: list[dict] = (), limits: list[dict] = ()) -> pd.DataFrame:
    """One row per dataset, with the paper's K and K − L_null beside ours, then L_k and K_limit_T
    where their stages computed them."""
    extra = {m["dataset"]: {} for m in metrics}
    for m in likelihood:
        extra[m["dataset"]].update({**{name: m.get(name) for name in LIKELIHOOD_COLUMNS[:-3]},
                                    "K_subset": m["K"], "K_subset_se": m["K_se"], "n_subset": m["n_examples"]})
    for m in limits:
        extra[m["dataset"]].update({name: m[name] for name in LIMIT_COLUMNS})
    rows = []
    for m in metrics:
        paper = registry.get(m["dataset"]).paper
        rows.append({**m, "data": m.get("label", m["dataset"]), "paper_K": paper.k,
                     "paper_K_minus_L_null": paper.k_minus_l_null, **extra[m["dataset"]]})
    return pd.DataFrame(rows, columns=COLUMNS + LIKELIHOOD_COLUMNS + LIMIT_COLUMNS)


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_csv", type=Path)
    parser.add_argument("out_md", type=Path)
    parser.add_argument("--metrics", type=Path, nargs="+", required=True)
    parser.add_argument("--likelihood", type=Path, nargs="*", default=[])
    parser.add_argument("--limits", type=Path, nargs="*", default=[])
    parser.add_argument("--figures", type=Path, nargs="*", default=[])
    args = parser.parse_args(argv)
    read = lambda paths: [json.loads(path.read_text()) for path in paths]  # noqa: E731
    frame = table(read(args.metrics), read(args.likelihood), read(args.limits))
    with atomic_path(args.out_csv) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4g")
    links = [f"![{path.stem}]({path.relative_to(args.out_md.parent).as_posix()})" for path in args.figures]
    # an empty cell where there is no value (the paper's MNIST row; K's true value for images)
    report = "\n\n".join(["# Table 1", frame.astype(object).where(frame.notna(), None).to_markdown(index=False, floatfmt=".4g", missingval=""), *links])
    atomic_write_text(args.out_md, report + "\n")


if __name__ == "__main__":
    common.run(main)
