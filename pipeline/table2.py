"""Stage ``table2``: Table 2 as CSV and Markdown, the paper's values beside ours.

Usage: python -m pipeline.table2 OUT_CSV OUT_MD --dead-leaves METRICS_JSON --parzen PARZEN_JSON

Dead leaves: the bound K in bits/pixel (our ``evaluate`` stage) beside the paper's MCGSM and
Diffusion. MNIST: the Parzen-window log-likelihood of the test images (``parzen`` stage) for our
diffusion model and for the "perfect model" (training images as the centres), beside the
paper's six rows, in bits and nats with standard errors, and the σ the validation chose.
The paper's other models (MCGSM, Stacked CAE, DBN, Deep GSN, Adversarial net) were not
trained here: their "ours" cells are empty.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

from dpm.base.atomic import atomic_path, atomic_write_text
from dpm.report.paper_table2 import TABLE_2_DEAD_LEAVES, TABLE_2_MNIST
from dpm.base import stages

COLUMNS = ["dataset", "model", "unit", "paper_bits", "paper_bits_se", "paper_nats", "paper_nats_se", "bits", "bits_se",
           "nats", "nats_se", "sigma", "n_centres", "n_test", "data", "profile"]

# our row → the paper's row it stands beside
OURS = {"diffusion": "Diffusion", "perfect": "Perfect model"}


def table(dead_leaves: dict, parzen: dict) -> pd.DataFrame:
    """Dead-leaves rows (bits/pixel) then MNIST rows (log-likelihood per test image)."""
    rows = []
    for model, paper_bits in TABLE_2_DEAD_LEAVES.items():
        row = {"dataset": "dead_leaves", "model": model, "unit": "per pixel", "paper_bits": paper_bits,
               "paper_nats": paper_bits * math.log(2)}
        if model == "Diffusion":
            row.update(bits=dead_leaves["K"], bits_se=dead_leaves["K_se"], nats=dead_leaves["K"] * math.log(2),
                       nats_se=dead_leaves["K_se"] * math.log(2), n_test=dead_leaves["n_holdout"],
                       data=dead_leaves["label"], profile=dead_leaves["profile"])
        rows.append(row)
    ours = {OURS[key]: parzen[key] for key in OURS}
    for model, (bits, bits_se, nats, nats_se) in TABLE_2_MNIST.items():
        row = {"dataset": "mnist", "model": model, "unit": "per image", "paper_bits": bits, "paper_bits_se": bits_se,
               "paper_nats": nats, "paper_nats_se": nats_se}
        if model in ours:
            r = ours[model]
            row.update(bits=r["mean_bits"], bits_se=r["se_bits"], nats=r["mean_nats"], nats_se=r["se_nats"],
                       sigma=r["sigma"], n_centres=r["n_centres"], n_test=r["n_test"], data=parzen["label"],
                       profile=parzen["profile"])
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def markdown(frame: pd.DataFrame, parzen: dict) -> str:
    """The table as the paper lays it out, "value ± se" cells, then what the numbers came from."""
    def cell(value, se, digits):
        if pd.isna(value):
            return ""
        return f"{value:.{digits}f}" + ("" if pd.isna(se) else f" ± {se:.{digits}f}")

    parts = ["# Table 2"]
    for dataset, unit, digits in (("dead_leaves", "bits/pixel", 3), ("mnist", "log-likelihood of a test image", 1)):
        part = frame[frame["dataset"] == dataset]
        shown = pd.DataFrame({
            "model": part["model"],
            "paper (bits)": [cell(v, s, digits) for v, s in zip(part["paper_bits"], part["paper_bits_se"])],
            "ours (bits)": [cell(v, s, digits) for v, s in zip(part["bits"], part["bits_se"])],
            "paper (nats)": [cell(v, s, digits) for v, s in zip(part["paper_nats"], part["paper_nats_se"])],
            "ours (nats)": [cell(v, s, digits) for v, s in zip(part["nats"], part["nats_se"])],
            "σ": ["" if pd.isna(v) else f"{v:.4g}" for v in part["sigma"]],
        })
        if dataset == "dead_leaves":
            shown = shown.drop(columns="σ")
        parts += [f"## {dataset.replace('_', ' ')}: {unit}", shown.to_markdown(index=False)]
    s = parzen["sampling"]
    parts.append(
        f"Ours: {parzen['profile']} profile (the git commit and the timings of each number: results/provenance/). "
        "Dead leaves: the bound K on the holdout. "
        f"MNIST: Parzen window (SPEC §2) on the {parzen['diffusion']['n_test']} test images, σ from logspace(−1, 0, 10) "
        f"by training images {parzen['validation_start']}–{parzen['validation_start'] + parzen['n_validation'] - 1}; "
        f"diffusion: {s['n_samples']} model samples (T = {s['T']}, {s['device']}, {s['n_shards']} shards) as the "
        f"centres; perfect model: the first {parzen['perfect']['n_centres']} "
        "training images as the centres.")
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_csv", type=Path)
    parser.add_argument("out_md", type=Path)
    parser.add_argument("--dead-leaves", type=Path, required=True)
    parser.add_argument("--parzen", type=Path, required=True)
    args = parser.parse_args(argv)
    parzen = json.loads(args.parzen.read_text())
    frame = table(json.loads(args.dead_leaves.read_text()), parzen)
    with atomic_path(args.out_csv) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    atomic_write_text(args.out_md, markdown(frame, parzen))


if __name__ == "__main__":
    stages.run(main)
