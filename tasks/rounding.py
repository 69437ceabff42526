"""The one rounding rule of every figure people read: half up, as SKR and Kolada publish.

Half up means halves round away from zero (90.5 → 91, −0.5 → −1), the rule of Swedish
official statistics and of spreadsheets' ROUND. Python's ``round`` rounds halves to even
(90.5 → 90), so no human-facing figure uses it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

NOISE_DECIMALS = 9  # places kept before rounding: below them a float differs from its value


def half_up(value: float, decimals: int = 0) -> Decimal:
    """``value`` rounded half up to ``decimals`` places.

    Binary floating point cannot hold most halves exactly: a mean of shares that is 70.5 on
    paper may arrive as 70.49999999999999. The value is first taken to ``NOISE_DECIMALS``
    places, far below any published precision, so such a half rounds up as on paper.
    """
    exact = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-NOISE_DECIMALS))
    return exact.quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP)


def whole_percent(value: float) -> int:
    """A share in percent as the whole number it is published as."""
    return int(half_up(value))
