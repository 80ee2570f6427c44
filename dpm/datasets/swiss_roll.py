"""The 2-D swiss roll: a noisy spiral with an exactly known density.

The paper (§3, Table 1, Fig. 1) trains on a "swiss roll" but does not pin the generator down
(SPEC §5). We use the classic 2-D swiss roll (the x–z plane of scikit-learn's
``make_swiss_roll``):

    u ~ U(0, 1),   θ = 1.5π (1 + 2u)  ∈ [1.5π, 4.5π],
    γ(θ) = (θ cos θ, θ sin θ),
    x = γ(θ) + ε,  ε ~ N(0, noise² I₂).

Because θ is uniform and the noise is Gaussian, the true density is the 1-D integral

    p(x) = ∫ p(θ) N(x; γ(θ), noise² I₂) dθ,   p(θ) = 1 / (3π) on [1.5π, 4.5π],

which `log_density` evaluates to better than 1e-7 relative accuracy, so the pipeline can
report the true log-likelihood beside the bound K (SPEC §5). Everything here is in raw
(unscaled) units; see `dpm.data.scaling` for the global constant scaling and its Jacobian.
"""

import numpy as np

from dpm.data.scaling import Scaling
from dpm.data.split import DataInfo, Split

THETA_MIN = 1.5 * np.pi
THETA_MAX = 4.5 * np.pi


def curve(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The noiseless roll γ(θ) = (θ cos θ, θ sin θ).

    Args:
        theta: roll parameter, any shape, radians.

    Returns:
        The two coordinates of γ(θ), each with the shape of ``theta``, raw units.
    """
    return theta * np.cos(theta), theta * np.sin(theta)


def sample(n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Draws points from the noisy swiss roll described in the module docstring.

    Args:
        n: number of points.
        noise: standard deviation of the isotropic Gaussian noise, raw units (> 0).
        rng: source of randomness.

    Returns:
        Points x, shape (n, 2), float64, raw units.
    """
    theta = THETA_MIN + (THETA_MAX - THETA_MIN) * rng.uniform(size=n)
    gamma = np.stack(curve(theta), axis=1)
    return gamma + noise * rng.standard_normal((n, 2))


def log_density(
    x: np.ndarray,
    noise: float,
    *,
    points_per_noise: int = 16,
    tail_nats: float = 40.0,
    max_chunk_elements: int = 2**22,
) -> np.ndarray:
    """Exact log-density of the noisy roll: log p(x) = log ∫ p(θ) N(x; γ(θ), noise² I) dθ.

    The θ-integral is done by composite Simpson quadrature over a few short θ-intervals per
    point (`_theta_bands`) outside which the integrand is below e^(−tail_nats) of its peak. The
    step is chosen so the curve moves at most noise / points_per_noise per step, which resolves
    the sharp peak of the integrand for any noise; where an interval ends at an end of the roll,
    the step shrinks geometrically towards it (`_grade_towards_end`). The defaults give a
    relative error below ~1e-7 everywhere (~1e-10 away from the ends; checked against
    adaptive quadrature in the tests). Intervals are processed in chunks of similar length, so
    memory stays bounded.

    Args:
        x: points, shape (n, 2), raw units.
        noise: the generator's noise standard deviation, raw units (> 0).
        points_per_noise: quadrature steps per noise-length of arc, and per e-fold of the
            integrand next to an end of the roll (rounded up to even).
        tail_nats: how far below the peak (in log-integrand) an interval may cut off.
        max_chunk_elements: bound on (intervals × quadrature nodes) held in memory at once.

    Returns:
        log p(x), shape (n,), nats, density with respect to Lebesgue measure in raw units.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must have shape (n, 2), got {x.shape}")
    if not noise > 0:
        raise ValueError(f"noise must be positive, got {noise}")
    steps = 2 * int(np.ceil(points_per_noise / 2))  # Simpson needs an even count
    point, lo, hi = _theta_bands(x, noise, tail_nats)
    for end in (THETA_MIN, THETA_MAX):
        point, lo, hi = _grade_towards_end(x, point, lo, hi, end, noise, steps, tail_nats)
    n_intervals = 2 * np.ceil((hi - lo) / (2 * _max_step(hi, noise, steps))).astype(np.int64)
    n_intervals = np.maximum(n_intervals, 2 * steps)  # graded pieces rely on this minimum

    log_integral = np.empty(len(lo))
    order = np.argsort(n_intervals, kind="stable")
    start = 0
    while start < len(order):
        stop = _chunk_stop(n_intervals[order], start, max_chunk_elements)
        rows = order[start:stop]
        log_integral[rows] = _log_simpson_integral(
            x[point[rows]], lo[rows], hi[rows], noise, n_intervals[rows].max()
        )
        start = stop
    log_p = np.full(len(x), -np.inf)
    np.logaddexp.at(log_p, point, log_integral)  # a point's intervals are disjoint: add them
    log_gauss_norm = -np.log(2 * np.pi * noise**2)
    log_p_theta = -np.log(THETA_MAX - THETA_MIN)
    return log_p + log_gauss_norm + log_p_theta


def _theta_bands(
    x: np.ndarray, noise: float, tail_nats: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint θ-intervals outside which the integrand is negligible, for each point.

    With x = ρ e^(iφ) and γ(θ) = θ e^(iθ) in polar form,
        d(θ)² := |x − γ(θ)|² = (ρ − θ)² + 4ρθ sin²((θ − φ)/2).
    With U ≥ min_θ d(θ) any evaluated distance, every θ whose integrand exceeds e^(−tail_nats)
    times the peak has d(θ)² < U² + 2·noise²·tail_nats =: D². Each term above is then < D², so
    θ ∈ [ρ − D, ρ + D] =: [lo, hi] and |sin((θ − φ)/2)| < D / (2 sqrt(ρ lo)): θ lies within a
    band of half-width w around some φ + 2πk. U comes from a few candidate θ: the curve points
    at the same polar angle as x, and the two ends.

    Args:
        x: points, shape (n, 2), raw units.
        noise: noise standard deviation, raw units.
        tail_nats: log-ratio of peak to the largest neglected integrand value.

    Returns:
        (point, lo, hi), each shape (n_bands,): the index of the point each interval belongs
        to, and the interval in θ, radians, within [THETA_MIN, THETA_MAX].
    """
    radius = np.hypot(x[:, 0], x[:, 1])
    angle = np.arctan2(x[:, 1], x[:, 0])  # in (−π, π]
    centres = angle[:, None] + 2 * np.pi * np.arange(4)  # k = 0..3 covers [1.5π, 4.5π]
    ends = np.broadcast_to([THETA_MIN, THETA_MAX], (len(x), 2))
    candidates = np.concatenate([np.clip(centres, THETA_MIN, THETA_MAX), ends], axis=1)
    gx, gy = curve(candidates)
    dist2_bound = np.min((x[:, :1] - gx) ** 2 + (x[:, 1:] - gy) ** 2, axis=1)
    reach = np.sqrt(dist2_bound + 2 * noise**2 * tail_nats)
    lo = np.maximum(radius - reach, THETA_MIN)
    hi = np.minimum(radius + reach, THETA_MAX)
    with np.errstate(divide="ignore"):  # ρ = 0 means no angular constraint: ratio = inf
        sin_half_max = reach / (2 * np.sqrt(radius * lo))
    half_width = 2 * np.arcsin(np.minimum(sin_half_max, 1.0))
    # Bands around successive φ + 2πk only stay disjoint while they are narrower than 2π.
    banded = sin_half_max < 1.0
    lo, hi, half_width, banded = lo[:, None], hi[:, None], half_width[:, None], banded[:, None]
    band_lo = np.where(banded, np.maximum(lo, centres - half_width), lo)  # (n, 4)
    band_hi = np.where(banded, np.minimum(hi, centres + half_width), hi)
    keep = band_hi > band_lo
    keep[~banded[:, 0], 1:] = False  # the unconstrained interval once, not once per k
    point = np.broadcast_to(np.arange(len(x))[:, None], keep.shape)
    return point[keep], band_lo[keep], band_hi[keep]


def _max_step(hi: np.ndarray, noise: float, steps_per_noise: int) -> np.ndarray:
    """Largest θ-step on [·, hi] that moves the curve by at most noise / steps_per_noise.

    Args:
        hi: upper ends of θ-intervals, any shape, radians.
        noise: noise standard deviation, raw units.
        steps_per_noise: quadrature steps per noise-length of arc.

    Returns:
        The step, shape of ``hi``, radians. Arc speed |γ'(θ)| = sqrt(1 + θ²) grows with θ, so
        an interval's upper end bounds it.
    """
    return noise / (steps_per_noise * np.sqrt(1.0 + hi**2))


def _grade_towards_end(
    x: np.ndarray,
    point: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    end: float,
    noise: float,
    steps_per_noise: int,
    tail_nats: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Splits intervals that stop at an end of the roll into pieces that shrink towards it.

    At an end the integrand is cut off where it can still fall steeply, as exp(−s |θ − end|)
    with log-slope s = |(x − γ(end))·γ'(end)| / noise², up to distance·speed / noise² for a
    point far beyond the end: many e-folds per regular step. Simpson's error on such a cut-off
    is ~(s h)⁴ / 180, so the interval is cut at distances 1/s, 2/s, 4/s, ... from the end;
    with ≥ 2·steps_per_noise steps per piece (the caller's minimum), s·h ≤ u / 32 on a piece
    where the integrand has fallen by e^(−u). Doubling stops once pieces reach
    steps_per_noise regular steps and the fall-off has reached e^(−tail_nats). The cost is
    logarithmic in s.

    Args:
        x: points, shape (n, 2), raw units.
        point: index into x of each interval, shape (m,).
        lo: interval starts, shape (m,), radians.
        hi: interval ends, shape (m,), radians.
        end: THETA_MIN or THETA_MAX.
        noise: noise standard deviation, raw units.
        steps_per_noise: regular quadrature steps per noise-length of arc.
        tail_nats: fall-off (in log-integrand) after which the regular step takes over.

    Returns:
        (point, lo, hi) of the pieces, each shape (m',), m' ≥ m, covering the same θ.
    """
    touches = ((lo == end) | (hi == end))[:, None]  # windows were clipped to the ends exactly
    gx, gy = curve(np.float64(end))
    tangent = np.cos(end) - end * np.sin(end), np.sin(end) + end * np.cos(end)  # γ'(end)
    slope = np.abs((x[point, 0] - gx) * tangent[0] + (x[point, 1] - gy) * tangent[1]) / noise**2
    with np.errstate(divide="ignore"):  # zero slope: efold = inf, a single piece
        efold = 1.0 / slope  # θ-distance over which the cut-off integrand falls by e
    regular = steps_per_noise * _max_step(hi, noise, steps_per_noise)
    graded = np.minimum(np.maximum(regular, tail_nats * efold), hi - lo)  # (m,)
    first = np.minimum(efold, graded)
    ratio = np.where(touches[:, 0], graded / first, 1.0)
    n_pieces = int(np.ceil(np.log2(np.max(ratio, initial=1.0)))) + 1
    dist = np.minimum(first[:, None] * 2.0 ** np.arange(n_pieces), graded[:, None])  # (m, K)
    width = (hi - lo)[:, None]
    dist = np.concatenate([np.zeros_like(width), np.where(touches, dist, 0.0), width], axis=1)
    at_lo = (lo == end)[:, None]
    bounds = np.where(at_lo, lo[:, None] + dist, hi[:, None] - dist)
    bounds[:, -1:] = np.where(at_lo, hi[:, None], lo[:, None])  # exact, so `end` stays exact
    piece_lo = np.minimum(bounds[:, :-1], bounds[:, 1:])
    piece_hi = np.maximum(bounds[:, :-1], bounds[:, 1:])
    keep = piece_hi > piece_lo
    return np.broadcast_to(point[:, None], keep.shape)[keep], piece_lo[keep], piece_hi[keep]


def _chunk_stop(n_intervals_sorted: np.ndarray, start: int, max_elements: int) -> int:
    """End index of the next chunk of θ-intervals, sorted by node count, that fits in memory.

    Args:
        n_intervals_sorted: quadrature intervals per θ-interval, shape (m,), non-decreasing.
        start: first index of the chunk.
        max_elements: bound on rows × (largest row's nodes).

    Returns:
        stop > start such that the chunk [start, stop) fits (or holds a single θ-interval).
    """
    rows = np.arange(1, len(n_intervals_sorted) - start + 1)
    cost = rows * (n_intervals_sorted[start:] + 1)  # non-decreasing in rows
    return start + max(1, int(np.searchsorted(cost, max_elements, side="right")))


def _log_simpson_integral(
    x: np.ndarray, lo: np.ndarray, hi: np.ndarray, noise: float, n_intervals: int
) -> np.ndarray:
    """log ∫_lo^hi exp(−|x − γ(θ)|² / (2 noise²)) dθ by composite Simpson quadrature.

    Args:
        x: points, shape (m, 2), raw units.
        lo: interval start, shape (m,), radians.
        hi: interval end, shape (m,), radians.
        noise: noise standard deviation, raw units.
        n_intervals: number of Simpson intervals (even), shared by the chunk.

    Returns:
        The log-integral, shape (m,), nats (log radians).
    """
    simpson = np.ones(n_intervals + 1)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    width = hi - lo
    theta = lo[:, None] + width[:, None] * np.linspace(0.0, 1.0, n_intervals + 1)  # (m, nodes)
    gx, gy = curve(theta)
    dist2 = (x[:, :1] - gx) ** 2 + (x[:, 1:] - gy) ** 2
    log_sum = np.logaddexp.reduce(-dist2 / (2 * noise**2) + np.log(simpson), axis=1)
    return log_sum + np.log(width / (3 * n_intervals))  # Simpson's h/3


def make_split(c, raw_dir=None) -> Split:
    """The split of params.yaml's swiss_roll.data section ``c``: scaled to unit variance by one
    global mean and constant fitted on train; the exact density of each holdout point in scaled
    units (the 1-D integral over θ plus the scaling's Jacobian)."""
    rng = np.random.default_rng(c.seed)
    raw_train = sample(c.n_train, c.noise, rng)
    raw_holdout = sample(c.n_holdout, c.noise, rng)
    scaling = Scaling.fit(raw_train)
    n_dims = raw_holdout.shape[1]
    true_ll = log_density(raw_holdout, c.noise) + scaling.log_abs_det_jacobian_nats(n_dims)
    info = DataInfo(label="swiss roll", unit="bits", n_dims=n_dims, scaling=scaling)
    return Split(scaling.apply(raw_train).astype(np.float32), scaling.apply(raw_holdout).astype(np.float32), info,
                 true_ll)
