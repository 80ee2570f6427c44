"""The paper's reported values (arXiv v8, SPEC §1), printed beside ours. Reference values, not results."""

from __future__ import annotations

# dataset → (K, K − L_null, unit), Table 1; None where the paper reports no value
TABLE_1 = {
    "swiss_roll": (2.35, 6.45, "bits"),
    "heartbeat": (-2.414, 12.024, "bits/seq"),
    "bark": (-0.55, 1.5, "bits/pixel"),
    "dead_leaves": (1.489, 3.536, "bits/pixel"),
    "cifar10": (5.4, 11.5, "bits/pixel"),
    "mnist": (None, None, "bits/pixel"),  # the paper gives MNIST only as a Parzen estimate (Table 2)
}
