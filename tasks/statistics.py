"""Interval estimates for shares, in percent."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd


def wilson_interval(
    successes: pd.Series, trials: pd.Series, confidence: float
) -> tuple[pd.Series, pd.Series]:
    """Wilson score interval for ``successes / trials``, in percent; NaN where ``trials`` is 0.

    Wilson rather than the normal approximation because many cells are small and shares near
    100 % are common, where the normal interval overshoots the [0, 100] range.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, not {confidence}")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    n = trials.astype("float64").where(trials > 0)
    share = successes.astype("float64") / n
    denominator = 1 + z**2 / n
    centre = (share + z**2 / (2 * n)) / denominator
    half_width: pd.Series = z / denominator * np.sqrt(share * (1 - share) / n + z**2 / (4 * n**2))
    low = (100 * (centre - half_width)).clip(0, 100)
    high = (100 * (centre + half_width)).clip(0, 100)
    return low, high


def critical_z(significance_level: float) -> float:
    """The two-sided critical value of the standard normal for ``significance_level``.

    Recorded with every load, so the SQL views that test changes between years (where no
    inverse normal function exists portably) use the same threshold as the settings say.
    """
    if not 0 < significance_level < 1:
        raise ValueError(
            f"significance level must lie strictly between 0 and 1, not {significance_level}"
        )
    return NormalDist().inv_cdf(1 - significance_level / 2)
