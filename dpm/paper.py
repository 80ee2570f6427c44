"""The paper's reported values (arXiv v8, SPEC §1), printed beside ours. Reference values, not results."""

from __future__ import annotations

# dataset → (K, K − L_null, unit), Table 1
TABLE_1 = {
    "swiss_roll": (2.35, 6.45, "bits"),
    "heartbeat": (-2.414, 12.024, "bits/seq"),
}
