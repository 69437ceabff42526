"""An analyst with read access to the reporting views attacks the published counts.

Real annual runs of a generated year (15 kommuner, several of them small; respondents of unknown
gender; FH rows without a unit) publish to DuckDB and PostgreSQL. The attack reads nothing but
``reporting.*`` and the public definitions of the composite groups, subtracts published parts
from published parents in every family (T − K − M, kommun − its units, composite − its enkäter,
län − its kommuner, riket − its län), narrows hidden parts by their own published parts, and
solves the families as equations: no group of 1 to threshold − 1 respondents may come out. It
runs again after a re-run of one corrected kommun.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from flows.annual import annual_run
from flows.rerun import rerun
from sample.generate import generate_exports
from schemas.catalogue import Catalogue
from tests import disclosure
from tests.flows.test_rerun import drop_last_row, single_kommun_file
from warehouse.db import create_warehouse_engine

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_server")]

YEAR = 2024
THRESHOLD = 5  # the default of the settings
SURVEYS = ("ifo", "fh")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("disclosure")
    generate_exports(out, [YEAR], n_kommuner=15, seed=3, defects=False)
    return out


def read(warehouse: str, sql: str) -> pd.DataFrame:
    with create_warehouse_engine(warehouse).connect() as conn:
        return pd.read_sql(text(sql), conn)


def published_tables(warehouse: str, catalogue: Catalogue) -> dict[str, disclosure.Table]:
    """Every published count of the year, as the BI role reads it."""
    cell = "survey, level, area_code, kommun_kod, lan_kod, verksamhet, gender"
    where = f"WHERE year = {YEAR}"
    counts = {
        "results.n_valid": read(
            warehouse, f"SELECT {cell}, question_id, n_valid FROM reporting.results {where}"
        ),
        "answer_distribution.n": read(
            warehouse,
            f"SELECT {cell}, question_id, SUM(n) AS n FROM reporting.answer_distribution "
            f"{where} GROUP BY {cell}, question_id",
        ),
        "response_counts.n_respondents": read(
            warehouse, f"SELECT {cell}, n_respondents FROM reporting.response_counts {where}"
        ),
        "response_counts.n_distributed": read(
            warehouse,
            f"SELECT {cell}, n_distributed FROM reporting.response_counts {where} AND gender = 'T'",
        ),
    }
    tables = {}
    for name, frame in counts.items():
        value = name.split(".")[1]
        extra = ["question_id"] if "question_id" in frame.columns else []
        for survey in SURVEYS:
            cells = frame[frame["survey"] == survey].astype({value: "float64"})
            tables[f"{survey} {name}"] = disclosure.Table(
                cells, value, composites=catalogue.composites(survey, YEAR), extra_keys=extra
            )
    return tables


def exposures(warehouse: str, catalogue: Catalogue) -> dict[str, list[disclosure.Exposure]]:
    found = {}
    for name, table in published_tables(warehouse, catalogue).items():
        found[name] = disclosure.attack(table, THRESHOLD)
        if name.startswith("ifo response_counts"):  # small enough to solve as equations
            found[name] += disclosure.solve(table, THRESHOLD)
    return {name: groups for name, groups in found.items() if groups}


def test_no_small_group_can_be_read_off_the_published_views(
    generated: Path, backend_url: str, tmp_path: Path, catalogue: Catalogue
) -> None:
    source = tmp_path / "source"
    shutil.copytree(generated, source)
    state = annual_run(year=YEAR, source=str(source), warehouse=backend_url, return_state=True)
    assert state.is_completed(), state.message

    # The year holds what an attacker feeds on: unknown gender and FH rows without a unit.
    kommun_t = read(
        backend_url,
        "SELECT t.survey, t.n_respondents - COALESCE(k.n_respondents, 0) "
        "- COALESCE(m.n_respondents, 0) AS unknown_gender FROM reporting.response_counts t "
        "LEFT JOIN reporting.response_counts k ON k.survey = t.survey AND k.year = t.year "
        "AND k.area_code = t.area_code AND k.verksamhet = t.verksamhet AND k.gender = 'K' "
        "LEFT JOIN reporting.response_counts m ON m.survey = t.survey AND m.year = t.year "
        "AND m.area_code = t.area_code AND m.verksamhet = t.verksamhet AND m.gender = 'M' "
        "WHERE t.level = 'riket' AND t.gender = 'T' AND t.verksamhet = 'ALL'",
    )
    assert (kommun_t.set_index("survey")["unknown_gender"] > 0).all()
    assert read(backend_url, "SELECT count(*) FROM raw.respondents WHERE enhet_id = ''").iat[0, 0]
    reasons = read(
        backend_url,
        "SELECT suppression_reason, count(*) AS n FROM reporting.results "
        "WHERE suppressed GROUP BY suppression_reason",
    ).set_index("suppression_reason")["n"]
    assert set(reasons.index) == {"few_answers", "protects_other"}

    assert exposures(backend_url, catalogue) == {}

    # A corrected kommun is re-run: suppression is decided again over every family it touches.
    path, kommun = single_kommun_file(source, "fh")
    drop_last_row(path)
    state = rerun(
        survey="fh",
        year=YEAR,
        source=str(source),
        warehouse=backend_url,
        kommuner=[kommun],
        reason="a withdrawn questionnaire",
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert exposures(backend_url, catalogue) == {}
