"""The loader the flow calls: record a load, publish it atomically, or record why it failed.

A load of one (survey, year) becomes visible in one transaction that swaps every raw and core
row of that (survey, year) for the new ones, so the reporting views show either the previous
figures or the new ones, never a mixture. Transactions stay short: DuckDB lets one process at
a time hold the file.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, Table, delete, insert, text, update

from schemas.catalogue import Catalogue
from warehouse import tables

LOAD_HISTORY = text(
    """
    SELECT * FROM reporting.load_history
    WHERE load_id IN (SELECT load_id FROM audit.loads ORDER BY load_id DESC LIMIT :limit)
    ORDER BY load_id DESC, source_file
    """
)


def bulk_insert(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """Insert every row of ``frame`` into ``table`` inside the caller's transaction.

    The frame's columns name the table's columns; a column the table lacks is an error, not a
    silent drop. Missing values (NaN, None, pd.NA) become SQL NULL. On DuckDB the frame
    is scanned in place (hundreds of times faster than row-wise inserts); elsewhere rows go
    through one executemany.
    """
    unknown = sorted(set(frame.columns) - set(table.columns.keys()))
    if unknown:
        raise ValueError(f"{table.fullname} has no column {', '.join(map(str, unknown))}")
    if frame.empty:
        return
    if conn.dialect.name == "duckdb":
        _insert_scanned_frame(conn, table, frame)
    else:
        conn.execute(insert(table), _records(frame))


def _insert_scanned_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """DuckDB: register the frame on the transaction's own connection and INSERT … SELECT.

    The INSERT goes through SQLAlchemy, so its errors are SQLAlchemy's as on any dialect. The
    registration is part of the transaction: if the INSERT fails, the rollback removes it.
    """
    quote = conn.dialect.identifier_preparer.quote
    target = conn.dialect.identifier_preparer.format_table(table)
    columns = ", ".join(quote(str(column)) for column in frame.columns)
    view = f"bulk_insert_{table.schema}_{table.name}"
    duckdb_connection: Any = conn.connection.driver_connection
    duckdb_connection.register(view, frame)
    conn.exec_driver_sql(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {view}")
    duckdb_connection.unregister(view)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values, missing values as None."""
    plain = frame.astype(object).where(frame.notna(), None)
    return [{str(key): value for key, value in row.items()} for row in plain.to_dict("records")]


def _now() -> datetime:
    """Timestamps are stored with their time zone, so UTC reads right everywhere."""
    return datetime.now(UTC)


def _optional_year(column: pd.Series) -> pd.Series:
    """A first/last year column of the catalogue: empty text means open-ended (NULL)."""
    return pd.to_numeric(column.mask(column == "")).astype("Int64")


def _dimension_frames(catalogue: Catalogue) -> dict[Table, pd.DataFrame]:
    """Every dimension table's rows from the reference catalogue (extra columns are dropped)."""
    kommuner = catalogue.kommuner
    verksamheter = catalogue.verksamheter.assign(
        first_year=lambda frame: _optional_year(frame["first_year"]),
        last_year=lambda frame: _optional_year(frame["last_year"]),
    )
    questions = catalogue.questions.assign(
        first_year=lambda frame: _optional_year(frame["first_year"]),
        last_year=lambda frame: _optional_year(frame["last_year"]),
    )
    options = questions[["survey", "question_id", "scale_id"]].merge(
        catalogue.answer_scales, on="scale_id"
    )
    return {
        tables.dim_survey: catalogue.surveys,
        tables.dim_kommun: kommuner,
        tables.dim_lan: kommuner.drop_duplicates("lan_kod"),
        tables.dim_verksamhet: verksamheter,
        tables.dim_question: questions,
        tables.dim_answer_option: options.rename(columns={"code": "answer_code"}),
    }


def sync_dimensions(engine: Engine, catalogue: Catalogue) -> None:
    """Replace every dimension with the catalogue's content, in one transaction."""
    frames = _dimension_frames(catalogue)
    with engine.begin() as conn:
        for table, frame in frames.items():
            conn.execute(delete(table))
            bulk_insert(conn, table, frame[table.columns.keys()])


def begin_load(
    engine: Engine,
    *,
    survey: str,
    year: int,
    source: str,
    flow_run_id: str | None,
    settings: dict[str, Any],
) -> int:
    """Record a new, running load of (survey, year) and return its id."""
    with engine.begin() as conn:
        load_id: int = conn.execute(
            insert(tables.loads)
            .values(
                survey=survey,
                year=year,
                source=source,
                flow_run_id=flow_run_id,
                status="running",
                started_at=_now(),
                settings=json.dumps(settings, sort_keys=True),
            )
            .returning(tables.loads.c.load_id)
        ).scalar_one()
    return load_id


def _file_totals(files: pd.DataFrame | None) -> dict[str, int | None]:
    """A load's questionnaire accounting summed over its answer files (NULL when none was read)."""
    if files is None:
        return dict.fromkeys(("rows_read", "rows_loaded", "rows_quarantined", "files_refused"))
    answers = files[files["kind"] == "answers"]
    return {
        "rows_read": int(answers["rows_read"].sum()),
        "rows_loaded": int(answers["rows_loaded"].sum()),
        "rows_quarantined": int(answers["rows_quarantined"].sum()),
        "files_refused": int((files["status"] == "refused").sum()),
    }


def _finish(
    conn: Connection,
    *,
    load_id: int,
    status: str,
    files: pd.DataFrame | None,
    error: str | None = None,
    survey: str | None = None,
    year: int | None = None,
) -> None:
    """Close a running load with its outcome; anything but a running load is an error."""
    condition = [tables.loads.c.load_id == load_id, tables.loads.c.status == "running"]
    if survey is not None and year is not None:
        condition += [tables.loads.c.survey == survey, tables.loads.c.year == year]
    finished = conn.execute(
        update(tables.loads)
        .where(*condition)
        .values(status=status, error=error, finished_at=_now(), **_file_totals(files))
        .returning(tables.loads.c.load_id)
    ).scalar_one_or_none()
    if finished is None:
        where = f" of {survey} {year}" if survey is not None else ""
        raise ValueError(f"load {load_id} is not a running load{where}")
    if files is not None:
        bulk_insert(conn, tables.load_files, files.assign(load_id=load_id, loaded_at=_now()))


def _check_accounting(
    files: pd.DataFrame, respondents_frame: pd.DataFrame, quarantine_frame: pd.DataFrame
) -> None:
    """The rows to publish are exactly the rows the file report says were loaded."""
    totals = _file_totals(files)
    if len(respondents_frame) != totals["rows_loaded"]:
        raise ValueError(
            f"{len(respondents_frame)} respondents to publish, files report "
            f"{totals['rows_loaded']} rows loaded"
        )
    if len(quarantine_frame) != totals["rows_quarantined"]:
        raise ValueError(
            f"{len(quarantine_frame)} quarantined rows to publish, files report "
            f"{totals['rows_quarantined']}"
        )


def publish(
    engine: Engine,
    *,
    load_id: int,
    survey: str,
    year: int,
    files: pd.DataFrame,
    respondents: pd.DataFrame,
    answers: pd.DataFrame,
    quarantine: pd.DataFrame,
    results: pd.DataFrame,
    distribution: pd.DataFrame,
    response_counts: pd.DataFrame,
) -> None:
    """Make a running load the published figures of its (survey, year), all or nothing.

    One transaction deletes every raw and core row of (survey, year), inserts the new ones,
    records the files and marks the load published. If any step fails, the transaction rolls
    back and the previously published figures stay exactly as they were.
    """
    _check_accounting(files, respondents, quarantine)
    partitions = {
        tables.respondents: respondents,
        tables.answers: answers,
        tables.quarantine: quarantine,
        tables.fct_results: results,
        tables.fct_answer_distribution: distribution,
        tables.fct_response_counts: response_counts,
    }
    with engine.begin() as conn:
        _finish(conn, load_id=load_id, status="published", files=files, survey=survey, year=year)
        for table, frame in partitions.items():
            conn.execute(delete(table).where(table.c.survey == survey, table.c.year == year))
            bulk_insert(conn, table, frame.assign(survey=survey, year=year, load_id=load_id))


def fail_load(engine: Engine, *, load_id: int, error: str, files: pd.DataFrame | None) -> None:
    """Close a running load as failed, with why and with the files it read, if any."""
    with engine.begin() as conn:
        _finish(conn, load_id=load_id, status="failed", files=files, error=error)


def load_history(engine: Engine, limit: int = 20) -> pd.DataFrame:
    """The ``limit`` most recent loads, newest first, one row per file of each."""
    with engine.connect() as conn:
        return pd.read_sql(LOAD_HISTORY, conn, params={"limit": limit})
