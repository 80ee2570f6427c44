"""Seeds of independent random streams, named by integers."""

from __future__ import annotations

import numpy as np


def mixed_seed(*keys: int) -> int:
    """A seed for the stream named by ``keys`` (a run's seed and a rank, an iteration, a batch):
    distinct, well-mixed streams for distinct keys (numpy's SeedSequence)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1, dtype=np.uint64)[0] >> 1)
