"""The paper's Table 2 (arXiv v8, SPEC §1), printed beside ours. Reference values, not results.

Only the Table 2 stage (pipeline/table2.py) and the Parzen benchmark read these. Table 1's values
are in dpm/report/paper_table1.py."""

from __future__ import annotations

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
