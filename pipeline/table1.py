"""Stage ``table1``: Table 1 as CSV and Markdown, our values beside the paper's.

Usage: python -m pipeline.table1 OUT_CSV OUT_MD --metrics DIR [--likelihood DIR] [--limits DIR]
    --figures PNG...

One row per dataset, in Table 1's order (``pipeline.records``): ``<dataset>.json`` of the evaluate
stages in ``--metrics``, of the likelihood stages in ``--likelihood``, and of the limit stages
(the toys' alone) in ``--limits``.

Each value is set beside the true log-likelihood of the very examples it was computed on: K on
the whole holdout; L_k (Eq. 9) and K (``K_subset``) on the likelihood stage's seeded subset of
``n_subset`` examples; ``K_limit_T``, the best K of the model's family at its T, on the limit
stage's ``n_limit`` examples (none: over the data's distribution). Empty cells where a stage
computed none. Numbers are printed to the second significant digit of their standard error
(``pipeline.rounding``); an exact value (L_null, a true log-likelihood) with the decimals of the
estimate beside it; the paper's values as the paper gives them. The Markdown copy is the report
of a run: the tables, then the figures they link to.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from dpm.report.paper_table1 import NOT_IN_THE_PAPER, TABLE_1
from dpm.base.atomic import atomic_path, atomic_write_text
from dpm.base import stages
from pipeline import records
from pipeline.rounding import decimals, fixed, pm

COLUMNS = ["dataset", "data", "profile", "K", "K_se", "K_minus_L_null", "K_minus_L_null_se", "L_null", "paper_K",
           "paper_K_minus_L_null", "true_log_likelihood", "unit", "K_over_t", "T", "beta_1", "parameterisation",
           "n_holdout", "n_parameters", "train_device"]  # the commit and the times: results/provenance/
KS = (1, 10, 100, 1000)
LIKELIHOOD_COLUMNS = ["n_subset", "K_subset", "K_subset_se", *[name for k in KS for name in (f"L_{k}", f"L_{k}_se")],
                      "true_log_likelihood_subset"]
LIMIT_COLUMNS = ["n_limit", "K_limit_T", "K_limit_T_se", "true_log_likelihood_limit"]
COUNTS = ("T", "n_holdout", "n_parameters", "n_subset", "n_limit")
PRECISION_OF = {"K": "K_se", "K_minus_L_null": "K_minus_L_null_se", "L_null": "K_se", "true_log_likelihood": "K_se",
                "K_subset": "K_subset_se", **{f"L_{k}": f"L_{k}_se" for k in KS},
                "true_log_likelihood_subset": "K_subset_se", "K_limit_T": "K_limit_T_se",
                "true_log_likelihood_limit": "K_limit_T_se"}
"""The standard error each value is printed to: its own, or for an exact value the estimate's beside it."""


def table(metrics: list[dict], likelihood: list[dict] = (), limits: list[dict] = ()) -> pd.DataFrame:
    """One row per dataset, with the paper's K and K − L_null beside ours, then L_k and K_limit_T
    where their stages computed them, each with its subset's size and true log-likelihood."""
    extra = {m["dataset"]: {} for m in metrics}
    for m in likelihood:
        extra[m["dataset"]].update({**{name: m.get(name) for name in LIKELIHOOD_COLUMNS[3:-1]},
                                    "n_subset": m["n_examples"], "K_subset": m["K"], "K_subset_se": m["K_se"],
                                    "true_log_likelihood_subset": m.get("true_log_likelihood")})
    for m in limits:
        extra[m["dataset"]].update({"n_limit": m.get("n_examples"), "K_limit_T": m["K_limit_T"],
                                    "K_limit_T_se": m["K_limit_T_se"],
                                    "true_log_likelihood_limit": m.get("true_log_likelihood")})
    rows = []
    for m in metrics:
        paper = TABLE_1.get(m["dataset"], NOT_IN_THE_PAPER)
        rows.append({**m, "data": m.get("label", m["dataset"]), "paper_K": paper.k,
                     "paper_K_minus_L_null": paper.k_minus_l_null, **extra[m["dataset"]]})
    return pd.DataFrame(rows, columns=COLUMNS + LIKELIHOOD_COLUMNS + LIMIT_COLUMNS)


def formatted(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as text, each number to its precision (``PRECISION_OF``); empty where missing."""
    def cell(row: pd.Series, column: str) -> str:
        value = row[column]
        if isinstance(value, str):
            return value
        if column in COUNTS:
            return fixed(value, 0)
        error = row.get(column if column.endswith("_se") else PRECISION_OF.get(column))
        return fixed(value, None if error is None or pd.isna(error) else decimals(error))
    return pd.DataFrame({column: [cell(row, column) for _, row in frame.iterrows()] for column in frame.columns})


def markdown(frame: pd.DataFrame, links: list[str]) -> str:
    """Table 1 (each estimate ± its standard error), the subsets' estimates beside their own true
    log-likelihood, how each row was computed, then the figures."""
    text = formatted(frame)
    both = lambda name: [pm(v, e) for v, e in zip(frame[name], frame[f"{name}_se"])]  # noqa: E731
    main = pd.DataFrame({"data": text["data"], "K": both("K"), "K − L_null": both("K_minus_L_null"),
                         "L_null": text["L_null"], "paper K": text["paper_K"],
                         "paper K − L_null": text["paper_K_minus_L_null"],
                         "true log-likelihood": text["true_log_likelihood"], "unit": text["unit"],
                         "examples": text["n_holdout"], "T": text["T"]})
    limit_over = [n or ("the distribution" if k else "") for n, k in zip(text["n_limit"], text["K_limit_T"])]
    subsets = pd.DataFrame({"data": text["data"], "examples": text["n_subset"], "K": both("K_subset"),
                            **{f"L_{k}": both(f"L_{k}") for k in KS},
                            "true log-likelihood": text["true_log_likelihood_subset"],
                            "examples (K_limit_T)": limit_over, "K_limit_T": both("K_limit_T"),
                            "true log-likelihood (K_limit_T's examples)": text["true_log_likelihood_limit"]})
    origin = text[["data", "profile", "K_over_t", "beta_1", "parameterisation", "n_parameters",
                   "train_device"]].set_axis(
        ["data", "profile", "K over t", "β_1", "parameterisation", "parameters", "trained on"], axis=1)
    shown = lambda part: part.to_markdown(index=False, disable_numparse=True)  # noqa: E731  (as formatted)
    return "\n\n".join([
        "# Table 1", shown(main),
        "## On subsets of the holdout: L_k (Eq. 9) and the best K of the model's family at its T", shown(subsets),
        "## How each row was computed", shown(origin), *links]) + "\n"


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_csv", type=Path)
    parser.add_argument("out_md", type=Path)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--likelihood", type=Path)
    parser.add_argument("--limits", type=Path)
    parser.add_argument("--figures", type=Path, nargs="*", default=[])
    args = parser.parse_args(argv)
    frame = table(records.read(args.metrics), records.read(args.likelihood) if args.likelihood else [],
                  records.read(args.limits, every=False) if args.limits else [])
    with atomic_path(args.out_csv) as tmp:
        formatted(frame).to_csv(tmp, index=False)
    links = [f"![{path.stem}]({path.relative_to(args.out_md.parent).as_posix()})" for path in args.figures]
    atomic_write_text(args.out_md, markdown(frame, links))


if __name__ == "__main__":
    stages.run(main)
