"""Numbers as the tables print them: an estimate to the second significant digit of its standard
error, an exact value (the paper's, a true log-likelihood) as it is."""

from __future__ import annotations

import math
import numbers

import pandas as pd


def decimals(error: float) -> int:
    """Decimal places that show ``error`` to its second significant digit (0.012 → 3, 0.0018 → 4);
    4 for an error of 0."""
    return max(0, 1 - math.floor(math.log10(error))) if error > 0 else 4


def fixed(value, places: int | None = None) -> str:
    """``value`` with ``places`` decimals; without them, as Python writes it (12.024 stays 12.024,
    an integer stays an integer); empty where there is no value."""
    if value is None or pd.isna(value):
        return ""
    if places is not None:
        return f"{value:.{places}f}"
    return str(int(value)) if isinstance(value, numbers.Integral) else str(float(value))


def pm(value, error, suffix: str = "") -> str:
    """``value ± error`` and the suffix, both to the error's second significant digit; empty
    without a value, the value alone (four significant digits) without an error."""
    if value is None or pd.isna(value):
        return ""
    if error is None or pd.isna(error):
        return f"{value:.4g}{suffix}"
    places = decimals(error)
    return f"{value:.{places}f} ± {error:.{places}f}{suffix}"
