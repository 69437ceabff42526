"""Summary: the few headline figures a run prints, as people quote them."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from schemas.catalogue import Catalogue
from schemas.defaults import DEFAULT_REFERENCE_DIR
from tasks.rounding import whole_percent

HEADLINES_FILE = DEFAULT_REFERENCE_DIR.parent / "headlines.csv"


@lru_cache(maxsize=1)
def headline_definitions() -> pd.DataFrame:
    """Which question is each survey's headline and how to word it (data, not code)."""
    return pd.read_csv(HEADLINES_FILE, dtype=str, keep_default_na=False)


def headline_figures(
    results: pd.DataFrame, survey: str, catalogue: Catalogue, top: int = 3
) -> list[str]:
    """E.g. "0880 Kalmar, IFO totalt, nöjda: 91 % (n = 331)" for the largest municipalities."""
    definitions = headline_definitions()
    names = dict(
        zip(catalogue.kommuner["kommun_kod"], catalogue.kommuner["kommun_namn"], strict=True)
    )
    lines: list[str] = []
    for spec in definitions[definitions["survey"] == survey].itertuples():
        cells = results[
            (results["level"] == "kommun")
            & (results["verksamhet"] == spec.verksamhet)
            & (results["gender"] == "T")
            & (results["question_id"] == spec.question_id)
            & ~results["suppressed"]
        ].nlargest(top, "n_valid")
        lines += [
            f"{code} {names[code]}, {spec.survey_label}, {spec.measure_label}: "
            f"{whole_percent(pct)} % (n = {n})"
            for code, pct, n in zip(
                cells["area_code"],
                cells["pct_positive"].astype(float),
                cells["n_valid"],
                strict=True,
            )
        ]
    return lines
