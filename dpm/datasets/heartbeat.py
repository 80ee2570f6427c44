"""Binary 'heartbeat' sequences (Paper: §3.1.2, App. D.1.2; SPEC §3).

A sequence of ``n_bits`` bins holds a 1 every ``period``-th bin and 0 elsewhere; the first pulse
is uniform over the first ``period`` bins. With 20 bins and period 5 there are exactly 5
distinct sequences, so the true log-likelihood of any sequence is log(1/5) = −2.322 bits.
Train and holdout are independent draws from that uniform mixture (the paper does not say how
it split its data).
"""

from __future__ import annotations

import math

import numpy as np

from dpm.data.split import DataInfo, Split


def sample(n: int, n_bits: int, period: int, rng: np.random.Generator) -> np.ndarray:
    """(n, n_bits) float32 array of 0/1 sequences with a random phase each."""
    phase = rng.integers(0, period, size=n)
    bins = np.arange(n_bits)
    return ((bins[None, :] - phase[:, None]) % period == 0).astype(np.float32)


def true_log_likelihood_nats(period: int) -> float:
    """log p(x) of every sequence the generator can produce: log(1/period) nats."""
    return -math.log(period)


def mean_activity(n_bits: int, period: int) -> float:
    """Expected fraction of 1s over the generator's sequences: π's rate (0.2 for 20 bins,
    period 5). SPEC §2 takes π's rate from the data's mean activity."""
    ones_per_phase = [len(range(phase, n_bits, period)) for phase in range(period)]
    return float(np.mean(ones_per_phase)) / n_bits


def make_split(c, raw_dir=None) -> Split:
    """The split of params.yaml's heartbeat.data section ``c``: independent draws; every sequence
    has probability 1/period."""
    rng = np.random.default_rng(c.seed)
    train = sample(c.n_train, c.n_bits, c.period, rng)
    holdout = sample(c.n_holdout, c.n_bits, c.period, rng)
    info = DataInfo(label="heartbeat", unit="bits/seq", n_dims=c.n_bits, p_pi=mean_activity(c.n_bits, c.period),
                    period=c.period)
    return Split(train, holdout, info, np.full(c.n_holdout, true_log_likelihood_nats(c.period)))
