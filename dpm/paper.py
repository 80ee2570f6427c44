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

# Table 2, dead leaves: model → bits/pixel
TABLE_2_DEAD_LEAVES = {"MCGSM": 1.244, "Diffusion": 1.489}

# Table 2, MNIST, Parzen-window estimate of the test log-likelihood: model → (bits, ± bits,
# nats, ± nats). arXiv v8 prints bits; earlier versions printed the nats, mislabelled (SPEC §1).
TABLE_2_MNIST = {
    "Stacked CAE": (174, 2.3, 121, 1.6),
    "DBN": (199, 2.9, 138, 2.0),
    "Deep GSN": (309, 1.6, 214, 1.1),
    "Diffusion": (317, 2.7, 220, 1.9),
    "Adversarial net": (325, 2.9, 225, 2.0),
    "Perfect model": (349, 3.3, 242, 2.3),
}
