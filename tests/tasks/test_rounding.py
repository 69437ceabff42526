"""One rounding rule for every figure people read: half up, away from zero."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from flows.kolada import _shown
from schemas.catalogue import Catalogue
from tasks.report import _change, _confidence, _interval, _percent
from tasks.rounding import half_up, whole_percent
from tasks.summary import headline_figures


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (90.5, 91),  # Python's round() gives 90
        (89.5, 90),
        (90.49, 90),
        (-0.5, -1),  # away from zero, as a spreadsheet's ROUND
        (-0.49, 0),
        (70.49999999999999, 71),  # 70.5 on paper, a float's noise below it
        (100 * 181 / 200, 91),  # 181 of 200 positive = 90.5 %
    ],
)
def test_whole_percent_rounds_halves_up(value: float, expected: int) -> None:
    assert whole_percent(value) == expected


def test_half_up_to_one_decimal() -> None:
    # 56.05 is stored as 56.04999…; on paper it is a half and rounds up
    assert half_up(56.05, 1) == Decimal("56.1")
    assert half_up(56.04, 1) == Decimal("56.0")


def test_report_texts_round_half_up() -> None:
    assert _percent(90.5) == "91 %"
    assert _interval(65.5, 82.5) == "66–83 %"
    assert _change(-0.5) == "−1 procentenhet"
    assert _change(0.4) == "+0 procentenheter"
    assert _change(-2.5) == "−3 procentenheter"
    assert _confidence(0.95) == "95 %"
    assert _confidence(0.995) == "99,5 %"


def test_cli_headline_and_kolada_table_round_half_up(catalogue: Catalogue) -> None:
    results = pd.DataFrame(
        {
            "level": ["kommun"],
            "area_code": ["0880"],
            "verksamhet": ["ALL"],
            "gender": ["T"],
            "question_id": ["IFO_NOJD"],
            "suppressed": [False],
            "n_valid": [200],
            "pct_positive": [100 * 181 / 200],  # 90.5 %
        }
    )
    assert headline_figures(results, "ifo", catalogue) == [
        "0880 Kalmar, IFO totalt, nöjda: 91 % (n = 200)"
    ]
    assert _shown(0.25) == "0.3"  # Kolada's difference column, one decimal
    assert _shown(float("nan")) == "–"
