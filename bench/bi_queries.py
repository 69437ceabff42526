"""BI queries on a multi-year warehouse: the questions a dashboard asks most.

Each query runs ``repeats`` times on a fresh connection per run (as a BI tool's pool would
hand one out after idling) and reports the median and 95th percentile in milliseconds.
"""

from __future__ import annotations

import statistics
import time

import pandas as pd
from sqlalchemy import create_engine, text

QUERIES: dict[str, str] = {
    "one kommun's year": (
        "SELECT * FROM reporting.results WHERE year = :year AND level = 'kommun' "
        "AND area_code = :kommun"
    ),
    "one question, every kommun": (
        "SELECT area_code, area_name, pct_positive, n_valid FROM reporting.results "
        "WHERE year = :year AND level = 'kommun' AND survey = 'ifo' AND verksamhet = 'ALL' "
        "AND gender = 'T' AND question_id = 'IFO_NOJD' ORDER BY pct_positive DESC"
    ),
    "trend": (
        "SELECT year, pct_positive, ci_low, ci_high FROM reporting.results "
        "WHERE level = 'kommun' AND area_code = :kommun AND survey = 'ifo' "
        "AND verksamhet = 'ALL' AND gender = 'T' AND question_id = 'IFO_NOJD' ORDER BY year"
    ),
    "each län beside its kommuner's mean": (
        "SELECT area_code, area_name, pct_positive, kommun_mean_pct FROM reporting.results "
        "WHERE year = :year AND level = 'lan' AND survey = 'ifo' AND verksamhet = 'ALL' "
        "AND gender = 'T' AND question_id = 'IFO_NOJD'"
    ),
    "one kommun's quality areas": (
        "SELECT * FROM reporting.quality_areas WHERE year = :year AND level = 'kommun' "
        "AND area_code = :kommun"
    ),
}


def time_queries(
    url: str, year: int, kommun: str = "0880", repeats: int = 21
) -> dict[str, tuple[float, float, int]]:
    """query name → (median ms, 95th percentile ms, rows returned)."""
    engine = create_engine(url)
    timings: dict[str, tuple[float, float, int]] = {}
    for name, sql in QUERIES.items():
        samples = []
        rows = 0
        for _ in range(repeats):
            started = time.perf_counter()
            with engine.connect() as conn:
                rows = len(pd.read_sql(text(sql), conn, params={"year": year, "kommun": kommun}))
            samples.append((time.perf_counter() - started) * 1000)
        p95 = statistics.quantiles(samples, n=20)[-1]
        timings[name] = (statistics.median(samples), p95, rows)
    engine.dispose()
    return timings
