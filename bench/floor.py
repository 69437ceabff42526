"""The floor and the obvious alternative: the same year's share of positive answers, computed
without the pipeline, from the CSV files of ``bench.data``.

Both compute, for levels kommun, län and riket, every enkät and composite group, and genders
T, K and M: ``n_valid``, ``n_positive`` and ``pct_positive``, suppressed below the threshold
(simple suppression only: complementary suppression and intervals are the pipeline's extra
work). ``compare`` checks their unsuppressed cells against the published ``reporting.results``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from sqlalchemy import create_engine

from schemas.catalogue import SURVEYS, default_catalogue

CELL = ["survey", "level", "area_code", "verksamhet", "gender", "question_id"]
THRESHOLD = 5


def _lookups(year: int) -> dict[str, pd.DataFrame]:
    """The catalogue's roles, kommun → län and composite membership, as small frames."""
    catalogue = default_catalogue()
    members = [
        {"survey": survey, "verksamhet": enkat, "grupp": group}
        for survey in SURVEYS
        for group, enkater in catalogue.composites(survey, year).items()
        for enkat in (catalogue.enkater(survey, year) if enkater == ["*"] else enkater)
    ]
    roles = catalogue.roles.astype({"answer_code": str})
    return {
        "roles": roles[["question_id", "answer_code", "role"]],
        "lan": pd.DataFrame(catalogue.lan_of.items(), columns=["kommun_kod", "lan_kod"]),
        "members": pd.DataFrame(members),
    }


FLOOR_SQL = """
CREATE TEMP TABLE answers AS
UNPIVOT (SELECT * FROM read_csv('{files}', delim=';', header=true, all_varchar=true,
                                union_by_name=true))
ON COLUMNS(* EXCLUDE (kommun_kod, verksamhet, enhet_id, svar_id, kon))
INTO NAME question_id VALUE answer_code;

CREATE TEMP TABLE counted AS
SELECT a.kommun_kod, a.verksamhet, a.kon, a.question_id,
       count(*) FILTER (WHERE r.role <> 'excluded') AS n_valid,
       count(*) FILTER (WHERE r.role = 'positive') AS n_positive
FROM answers a JOIN roles r USING (question_id, answer_code)
GROUP BY ALL;

CREATE TEMP TABLE grouped AS
SELECT kommun_kod, verksamhet, kon, question_id, n_valid, n_positive FROM counted
UNION ALL
SELECT c.kommun_kod, m.grupp, c.kon, c.question_id, c.n_valid, c.n_positive
FROM counted c JOIN members m ON m.survey = '{survey}' AND m.verksamhet = c.verksamhet;

CREATE TEMP TABLE floor_results AS
WITH placed AS (
    SELECT 'kommun' AS level, kommun_kod AS area_code, g.* EXCLUDE (kommun_kod) FROM grouped g
    UNION ALL SELECT 'lan', l.lan_kod, g.* EXCLUDE (kommun_kod)
        FROM grouped g JOIN lan l USING (kommun_kod)
    UNION ALL SELECT 'riket', '0000', g.* EXCLUDE (kommun_kod) FROM grouped g
), gendered AS (
    SELECT level, area_code, verksamhet, 'T' AS gender, question_id, n_valid, n_positive
    FROM placed
    UNION ALL SELECT level, area_code, verksamhet, kon, question_id, n_valid, n_positive
    FROM placed WHERE kon IN ('K', 'M')
)
SELECT '{survey}' AS survey, level, area_code, verksamhet, gender, question_id,
       sum(n_valid) AS n_valid, sum(n_positive) AS n_positive,
       100.0 * sum(n_positive) / nullif(sum(n_valid), 0) AS pct_positive,
       sum(n_valid) < {threshold} AS suppressed
FROM gendered GROUP BY ALL;
"""


def duckdb_floor(source: Path, year: int) -> tuple[float, pd.DataFrame]:
    """Seconds of the plain DuckDB script for both surveys, and its results."""
    lookups = _lookups(year)
    started = time.perf_counter()
    con = duckdb.connect()
    for name, frame in lookups.items():
        con.register(name, frame)
    parts = []
    for survey in SURVEYS:
        files = f"{source}/{survey}/{year}/{survey}_*.csv"
        con.execute(FLOOR_SQL.format(files=files, survey=survey, threshold=THRESHOLD))
        parts.append(con.execute("SELECT * FROM floor_results").df())
        con.execute("DROP TABLE answers; DROP TABLE counted; DROP TABLE grouped;")
        con.execute("DROP TABLE floor_results")
    con.close()
    return time.perf_counter() - started, pd.concat(parts, ignore_index=True)


def pandas_alternative(source: Path, year: int, sql_url: str) -> tuple[float, pd.DataFrame]:
    """Seconds of the analyst's script — pandas, ``DataFrame.to_sql``, Great Expectations on
    the SQL table — for both surveys, and its results."""
    lookups = _lookups(year)
    started = time.perf_counter()
    parts = []
    for survey in SURVEYS:
        files = sorted((source / survey / str(year)).glob(f"{survey}_*.csv"))
        wide = pd.concat((pd.read_csv(f, sep=";", dtype=str) for f in files), ignore_index=True)
        keys = ["kommun_kod", "verksamhet", "enhet_id", "svar_id", "kon"]
        long = wide.melt(id_vars=keys, var_name="question_id", value_name="answer_code")
        long = long.dropna(subset=["answer_code"]).merge(
            lookups["roles"], on=["question_id", "answer_code"]
        )
        long["n_valid"] = long["role"] != "excluded"
        long["n_positive"] = long["role"] == "positive"
        members = lookups["members"][lookups["members"]["survey"] == survey]
        grouped = pd.concat(
            [
                long,
                long.merge(members[["verksamhet", "grupp"]], on="verksamhet")
                .drop(columns="verksamhet")
                .rename(columns={"grupp": "verksamhet"}),
            ]
        ).merge(lookups["lan"], on="kommun_kod")
        for level, area in (("kommun", "kommun_kod"), ("lan", "lan_kod"), ("riket", None)):
            placed = grouped.assign(area_code=grouped[area] if area else "0000")
            for gender in ("T", "K", "M"):
                chosen = placed if gender == "T" else placed[placed["kon"] == gender]
                cells = chosen.groupby(["area_code", "verksamhet", "question_id"], as_index=False)[
                    ["n_valid", "n_positive"]
                ].sum()
                parts.append(cells.assign(survey=survey, level=level, gender=gender))
    results = pd.concat(parts, ignore_index=True)
    results["pct_positive"] = 100 * results["n_positive"] / results["n_valid"]
    results["suppressed"] = results["n_valid"] < THRESHOLD
    engine = create_engine(sql_url)
    results.to_sql("alt_results", engine, if_exists="replace", index=False, chunksize=10_000)
    _expectations_on_sql_table(sql_url)
    return time.perf_counter() - started, results


def _expectations_on_sql_table(sql_url: str) -> None:
    """The checks an analyst would add: percentages within 0–100, no unsuppressed small cell."""
    import great_expectations as gx

    gxe: Any = gx.expectations
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
    asset = context.data_sources.add_postgres("alt", connection_string=sql_url).add_table_asset(
        "alt_results", table_name="alt_results"
    )
    batch = asset.add_batch_definition_whole_table("all").get_batch()
    for expectation in (
        gxe.ExpectColumnValuesToBeBetween(column="pct_positive", min_value=0, max_value=100),
        gxe.ExpectColumnValuesToNotBeNull(column="suppressed"),
        gxe.ExpectColumnValuesToBeBetween(column="n_valid", min_value=0),
    ):
        batch.validate(expectation)


def compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> str:
    """How many of our unsuppressed kommun/län/riket cells the other result reproduces."""
    ours = ours[(~ours["suppressed"]) & ours["level"].isin(["kommun", "lan", "riket"])]
    merged = ours[[*CELL, "n_valid", "n_positive"]].merge(
        theirs[[*CELL, "n_valid", "n_positive"]], on=CELL, how="left", suffixes=("", "_other")
    )
    same = (merged["n_valid"] == merged["n_valid_other"]) & (
        merged["n_positive"] == merged["n_positive_other"]
    )
    return f"{int(same.sum())}/{len(merged)} cells equal"
