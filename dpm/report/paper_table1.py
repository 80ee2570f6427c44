"""The paper's Table 1 (arXiv v8, SPEC §1), printed beside ours. Reference values, not results.

Only the Table 1 stage (pipeline/table1.py) reads these, so correcting one reruns it alone.
Table 2's values are in dpm/report/paper_table2.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table1Row:
    """A dataset's row of the paper's Table 1; None where it reports none."""
    k: float | None
    k_minus_l_null: float | None
    unit: str


# dataset (dpm/base/registry.py) → its row; a dataset the paper does not have has none
TABLE_1 = {
    "swiss_roll": Table1Row(2.35, 6.45, "bits"),
    "heartbeat": Table1Row(-2.414, 12.024, "bits/seq"),
    "bark": Table1Row(-0.55, 1.5, "bits/pixel"),
    "dead_leaves": Table1Row(1.489, 3.536, "bits/pixel"),
    "cifar10": Table1Row(5.4, 11.5, "bits/pixel"),
    # the paper gives MNIST only as a Parzen-window estimate (Table 2)
    "mnist": Table1Row(None, None, "bits/pixel"),
}

NOT_IN_THE_PAPER = Table1Row(None, None, "")
"""The paper's columns of a dataset it does not have: empty."""
