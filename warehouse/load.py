"""The loader the flow calls: record a load, stage it, publish it atomically, or fail it.

Write–audit–publish: a load of one (survey, year) is first written to the ``staging`` tables,
tagged with its load id and invisible to the reporting views; after its audit passes, one
transaction swaps the staged rows into ``raw`` and ``core``, so the reporting views show either
the previous figures or the new ones, never a mixture. A process killed at any point leaves at
most staged rows and a ``running`` load behind; the next load of that (survey, year) marks such
a load failed and clears its staging rows. Transactions stay short: DuckDB lets one process at
a time hold the file.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Table,
    and_,
    delete,
    exists,
    insert,
    select,
    text,
    update,
)

from schemas.catalogue import Catalogue
from warehouse import tables
from warehouse.db import upgrade

COPY_BATCH_ROWS = 100_000  # rows written as CSV and sent to PostgreSQL at a time
LOAD_HISTORY = text(
    """
    SELECT * FROM reporting.load_history
    WHERE load_id IN (SELECT load_id FROM audit.loads ORDER BY load_id DESC LIMIT :limit)
    ORDER BY load_id DESC, source_file
    """
)


def bulk_insert(
    conn: Connection, table: Table, frame: pd.DataFrame, constants: Mapping[str, Any] | None = None
) -> None:
    """Insert every row of ``frame`` into ``table`` inside the caller's transaction.

    The frame's columns name the table's columns; a column the table lacks is an error, not a
    silent drop. ``constants`` are further columns with one value for every row (a load's
    partition), never materialised per row. Missing values (NaN, None, pd.NA) become SQL NULL.
    On DuckDB the frame is scanned in place as Arrow (hundreds of times faster than row-wise
    inserts, and its Arrow-backed text is read without conversion);
    on PostgreSQL they are streamed with COPY, as CSV Arrow writes.
    """
    constants = dict(constants or {})
    unknown = sorted(set(frame.columns) - set(table.columns.keys()))
    if unknown:
        raise ValueError(f"{table.fullname} has no column {', '.join(map(str, unknown))}")
    if frame.empty:
        return
    if conn.dialect.name == "duckdb":
        _insert_scanned_frame(conn, table, frame, constants)
    else:
        _copy_frame(conn, table, frame.assign(**constants))


def _copy_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> None:
    """PostgreSQL: COPY the rows as CSV that Arrow writes, a batch at a time, on the
    transaction's own psycopg connection (writing row by row from Python took most of a
    national load). Every value is quoted, so an empty text stays text and an unquoted empty
    field is NULL."""
    quote = conn.dialect.identifier_preparer.quote
    target = conn.dialect.identifier_preparer.format_table(table)
    columns = ", ".join(quote(str(column)) for column in frame.columns)
    rows = pa.Table.from_pandas(frame, preserve_index=False)
    options = pa_csv.WriteOptions(include_header=False, quoting_style="all_valid")
    psycopg_connection: Any = conn.connection.driver_connection
    copy_sql = f"COPY {target} ({columns}) FROM STDIN (FORMAT csv)"
    with psycopg_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for batch in rows.to_batches(max_chunksize=COPY_BATCH_ROWS):
            text_rows = io.BytesIO()
            pa_csv.write_csv(batch, text_rows, options)
            copy.write(text_rows.getbuffer())


def _insert_scanned_frame(
    conn: Connection, table: Table, frame: pd.DataFrame, constants: Mapping[str, Any]
) -> None:
    """DuckDB: register the frame on the transaction's own connection and INSERT … SELECT.

    The INSERT goes through SQLAlchemy, so its errors are SQLAlchemy's as on any dialect. The
    registration is part of the transaction: if the INSERT fails, the rollback removes it.
    """
    quote = conn.dialect.identifier_preparer.quote
    target = conn.dialect.identifier_preparer.format_table(table)
    names = [*map(str, frame.columns), *constants]
    scanned = [quote(str(column)) for column in frame.columns] + ["?"] * len(constants)
    view = f"bulk_insert_{table.schema}_{table.name}"
    duckdb_connection: Any = conn.connection.driver_connection
    duckdb_connection.register(view, pa.Table.from_pandas(frame, preserve_index=False))
    conn.exec_driver_sql(
        f"INSERT INTO {target} ({', '.join(map(quote, names))}) "
        f"SELECT {', '.join(scanned)} FROM {view}",
        tuple(constants.values()),
    )
    duckdb_connection.unregister(view)


class PauseAt:
    """Crash tests only: a test's process sets ``PauseAt.point`` to a point's name; a load that
    reaches it says so on stderr and sleeps there, so the test can kill it at exactly that point
    of a load. Never set by the pipeline itself."""

    point: str | None = None


def pause_point(name: str) -> None:
    """A point of a load where a crash test may pause it (``PauseAt``)."""
    if PauseAt.point == name:
        sys.stderr.write(f"paused at {name}\n")  # not print(): a flow's log_prints reformats it
        sys.stderr.flush()
        time.sleep(3600)


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
        # the catalogue lists each survey's questions in the questionnaire's order
        question_order=lambda frame: frame.groupby("survey").cumcount() + 1,
    )
    options = questions[["survey", "question_id", "scale_id"]].merge(
        catalogue.answer_scales, on="scale_id"
    )
    return {
        tables.dim_survey: catalogue.surveys,
        tables.dim_kommun: kommuner,
        tables.dim_lan: kommuner.drop_duplicates("lan_kod"),
        tables.dim_gender: catalogue.genders,
        tables.dim_verksamhet: verksamheter,
        tables.dim_question: questions,
        tables.dim_answer_option: options.rename(columns={"code": "answer_code"}),
        tables.dim_questionnaire: catalogue.questionnaires,
    }


def prepare_warehouse(engine: Engine, catalogue: Catalogue) -> None:
    """Migrate the warehouse to the current schema and bring its dimensions in step."""
    upgrade(engine)
    sync_dimensions(engine, catalogue)


def sync_dimensions(engine: Engine, catalogue: Catalogue) -> None:
    """Replace every dimension with the catalogue's content, in one transaction.

    A dimension already holding exactly those rows is left as it is: reading the small tables
    costs less than rewriting them, which every run with an unchanged catalogue would.
    """
    frames = _dimension_frames(catalogue)
    with engine.begin() as conn:
        for table, frame in frames.items():
            wanted = frame[table.columns.keys()]
            if _rows(wanted) == _rows(read_frame(conn, select(table))):
                continue
            conn.execute(delete(table))
            bulk_insert(conn, table, wanted)


def _rows(frame: pd.DataFrame) -> Counter[tuple[Any, ...]]:
    """A frame's rows as comparable values, every kind of missing value as None (a year read
    back from the database may come as 2024.0: equal to 2024, as Python compares numbers)."""
    plain = frame.astype(object).where(frame.notna(), None)
    return Counter(plain.itertuples(index=False, name=None))


def begin_load(
    engine: Engine,
    *,
    survey: str,
    year: int,
    source: str,
    flow_run_id: str | None,
    settings: dict[str, Any],
) -> int:
    """Record a new, running load of (survey, year) and return its id.

    A load of the same (survey, year) still ``running`` belongs to a process that died (the
    pipeline is the warehouse's one writer): it is marked failed and its staged rows cleared,
    so it never blocks this one.
    """
    with engine.begin() as conn:
        interrupted = conn.execute(
            update(tables.loads)
            .where(
                tables.loads.c.survey == survey,
                tables.loads.c.year == year,
                tables.loads.c.status == "running",
            )
            .values(status="failed", error=INTERRUPTED, finished_at=_now())
            .returning(tables.loads.c.load_id)
        ).scalars()
        _clear_staging(conn, list(interrupted))
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


INTERRUPTED = "interrupted: the process stopped before the load finished"


def _clear_staging(conn: Connection, load_ids: list[int]) -> None:
    """Remove the staged rows of these loads."""
    if load_ids:
        for staged in tables.STAGED.values():
            conn.execute(delete(staged).where(staged.c.load_id.in_(load_ids)))


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
    _clear_staging(conn, [load_id])


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


def _running(conn: Connection, load_id: int, survey: str, year: int) -> None:
    """Refuse to touch a load that is not a running load of (survey, year)."""
    found = conn.execute(
        select(tables.loads.c.load_id).where(
            tables.loads.c.load_id == load_id,
            tables.loads.c.status == "running",
            tables.loads.c.survey == survey,
            tables.loads.c.year == year,
        )
    ).scalar_one_or_none()
    if found is None:
        raise ValueError(f"load {load_id} is not a running load of {survey} {year}")


def stage(
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
    distributed: pd.DataFrame | None = None,
) -> None:
    """Write a running load's rows to the staging tables, where nothing reads them but its audit.

    The raw frames are those to replace (every kommun of an annual load, the changed kommuner of
    a re-run); the fact frames are always the whole (survey, year). Staging again replaces the
    load's staged rows, so a retried write cannot duplicate them.
    """
    _check_accounting(files, respondents, quarantine)
    frames = {
        tables.respondents: respondents,
        tables.answers: answers,
        tables.quarantine: quarantine,
        tables.distributed: distributed,
        tables.fct_results: results,
        tables.fct_answer_distribution: distribution,
        tables.fct_response_counts: response_counts,
    }
    partition = {"survey": survey, "year": year, "load_id": load_id}
    with engine.begin() as conn:
        _running(conn, load_id, survey, year)
        _clear_staging(conn, [load_id])
        for published, frame in frames.items():
            if frame is not None:
                bulk_insert(conn, tables.STAGED[published], frame, partition)


def read_staged(
    engine: Engine, load_id: int, wanted: Mapping[str, Sequence[str] | None]
) -> dict[str, pd.DataFrame]:
    """A load's staged rows of the ``wanted`` tables (by the name of the table they will
    replace rows of), with the wanted columns (None: all). Only what a check needs is read:
    at national scale the staged answers alone are millions of rows."""
    staged_by_name = {published.name: staged for published, staged in tables.STAGED.items()}
    frames: dict[str, pd.DataFrame] = {}
    with engine.connect() as conn:
        for name, columns in wanted.items():
            staged = staged_by_name[name]
            chosen = [c for c in staged.columns if c.name != "load_id"]
            if columns is not None:
                chosen = [c for c in chosen if c.name in columns]
            frames[name] = read_frame(conn, select(*chosen).where(staged.c.load_id == load_id))
    return frames


# Arrow text as pandas' own text dtype, without a Python object per cell.
_PANDAS_TEXT = dict.fromkeys(
    [pa.string(), pa.large_string(), pa.string_view()], pd.StringDtype("pyarrow", na_value=np.nan)
)


def read_frame(conn: Connection, query: Select[Any]) -> pd.DataFrame:
    """The rows of ``query`` as a DataFrame, read by the database driver itself.

    The read counterpart of ``bulk_insert``: SQLAlchemy's row-by-row result handling costs
    seconds per million rows, so DuckDB hands its result over columnar and PostgreSQL's rows
    go straight from psycopg into the frame.
    """
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name == "duckdb":
        ordered = [params[name] for name in compiled.positiontup or []]
        rows = driver.sql(str(compiled), params=ordered).to_arrow_table()
        return rows.to_pandas(types_mapper=_PANDAS_TEXT.get)  # type: ignore[no-any-return]
    with driver.cursor() as cursor:
        cursor.execute(str(compiled), params)
        columns = [column.name for column in cursor.description]
        return pd.DataFrame.from_records(cursor.fetchall(), columns=columns)


def record_audit(
    engine: Engine,
    *,
    load_id: int,
    status: str,
    expectations: pd.DataFrame,
    data_docs_path: str | None,
) -> None:
    """Keep an audit's verdict, each expectation's outcome and where its Data Docs are."""
    with engine.begin() as conn:
        conn.execute(
            insert(tables.load_audits).values(
                load_id=load_id, status=status, audited_at=_now(), data_docs_path=data_docs_path
            )
        )
        bulk_insert(conn, tables.expectation_results, expectations.assign(load_id=load_id))


RAW_TABLES: tuple[Table, ...] = (
    tables.respondents,
    tables.quarantine,
    tables.distributed,
)
FACT_TABLES: tuple[Table, ...] = (
    tables.fct_results,
    tables.fct_answer_distribution,
    tables.fct_response_counts,
)


def publish(
    engine: Engine,
    *,
    load_id: int,
    survey: str,
    year: int,
    files: pd.DataFrame,
    kommuner: list[str] | None = None,
    source_files: list[str] | None = None,
) -> int:
    """Swap a running load's staged rows into the published tables, all or nothing.

    With ``kommuner`` None (an annual load) every raw and core row of (survey, year) is
    replaced. With a list (a re-run) only those kommuner's respondents, answers and hand-out
    counts are replaced, and the quarantined rows of ``source_files`` (a refused row's kommun
    code is as written, so the file is its only reliable owner). Of the facts, staged for the
    whole (survey, year), only the rows that differ from the published ones change: a published
    row without an identical staged row is deleted, a staged row without an identical published
    row inserted. Returns the number of fact rows deleted plus inserted. If any step fails, the
    transaction rolls back and the published figures stay as they were.
    """
    with engine.begin() as conn:
        _running(conn, load_id, survey, year)
        partition = {"survey": survey, "year": year, "load_id": load_id}
        answers_of = select(tables.respondents.c.respondent_id).where(
            tables.respondents.c.survey == survey, tables.respondents.c.year == year
        )
        if kommuner is not None:
            answers_of = answers_of.where(tables.respondents.c.kommun_kod.in_(kommuner))
        answers = tables.answers
        conn.execute(
            delete(answers).where(
                answers.c.survey == survey,
                answers.c.year == year,
                answers.c.respondent_id.in_(answers_of),
            )
        )
        for table in RAW_TABLES:
            condition = [table.c.survey == survey, table.c.year == year]
            if table is tables.quarantine and kommuner is not None:
                condition.append(table.c.source_file.in_(source_files or []))
            elif kommuner is not None:
                condition.append(table.c.kommun_kod.in_(kommuner))
            conn.execute(delete(table).where(*condition))
        for table in (*RAW_TABLES, answers):
            _insert_staged(conn, table, partition)
        changed = 0
        for table in FACT_TABLES:
            if kommuner is None:
                conn.execute(delete(table).where(table.c.survey == survey, table.c.year == year))
                changed += _insert_staged(conn, table, partition)
            else:
                changed += _replace_differing_rows(conn, table, partition)
        _finish(conn, load_id=load_id, status="published", files=files, survey=survey, year=year)
        pause_point("before-commit")
    return changed


def _insert_staged(conn: Connection, table: Table, partition: dict[str, Any]) -> int:
    """Copy the load's staged rows of ``table`` into it; returns how many."""
    staged = tables.STAGED[table]
    names = [column.name for column in table.columns]
    inserted = conn.execute(
        insert(table).from_select(
            names,
            select(*[staged.c[name] for name in names]).where(
                staged.c.load_id == partition["load_id"]
            ),
        )
    )
    return int(inserted.rowcount)


def _replace_differing_rows(conn: Connection, table: Table, partition: dict[str, Any]) -> int:
    """Delete published rows of the (survey, year) without an identical staged row, insert the
    staged rows without an identical published row; returns how many rows changed."""
    staged = tables.STAGED[table]
    names = [column.name for column in table.columns]
    compared = [name for name in names if name != "load_id"]
    published_rows = and_(table.c.survey == partition["survey"], table.c.year == partition["year"])
    staged_rows = staged.c.load_id == partition["load_id"]

    def same(left: Table, right: Table) -> Any:
        """Row equality, NULL equal to NULL; plain ``=`` where a column holds no NULL, so the
        database can hash-join on those (IS NOT DISTINCT FROM alone makes a nested loop)."""
        return and_(
            *[
                left.c[name].is_not_distinct_from(right.c[name])
                if table.c[name].nullable
                else left.c[name] == right.c[name]
                for name in compared
            ]
        )

    deleted = conn.execute(
        delete(table).where(published_rows, ~exists().where(staged_rows, same(staged, table)))
    )
    inserted = conn.execute(
        insert(table).from_select(
            names,
            select(*[staged.c[name] for name in names]).where(
                staged_rows, ~exists().where(published_rows, same(table, staged))
            ),
        )
    )
    return int(deleted.rowcount) + int(inserted.rowcount)


def fail_load(engine: Engine, *, load_id: int, error: str, files: pd.DataFrame | None) -> None:
    """Close a running load as failed, with why and with the files it read, if any."""
    with engine.begin() as conn:
        _finish(conn, load_id=load_id, status="failed", files=files, error=error)


def load_history(engine: Engine, limit: int = 20) -> pd.DataFrame:
    """The ``limit`` most recent loads, newest first, one row per file of each."""
    with engine.connect() as conn:
        return pd.read_sql(LOAD_HISTORY, conn, params={"limit": limit})


def published_results(engine: Engine, survey: str, year: int) -> pd.DataFrame:
    """The published results of one (survey, year): the baseline an audit compares with."""
    with engine.connect() as conn:
        return read_frame(
            conn,
            select(tables.fct_results).where(
                tables.fct_results.c.survey == survey, tables.fct_results.c.year == year
            ),
        )


def last_published_files(engine: Engine, survey: str, year: int) -> pd.DataFrame:
    """The file report of the newest published load of (survey, year); empty if none."""
    newest = (
        select(tables.loads.c.load_id)
        .where(
            tables.loads.c.survey == survey,
            tables.loads.c.year == year,
            tables.loads.c.status == "published",
        )
        .order_by(tables.loads.c.load_id.desc())
        .limit(1)
        .scalar_subquery()
    )
    with engine.connect() as conn:
        return pd.read_sql(
            select(tables.load_files).where(tables.load_files.c.load_id == newest), conn
        )


def published_raw(engine: Engine, survey: str, year: int) -> dict[str, pd.DataFrame]:
    """The published raw rows of (survey, year) by table name, without their partition columns:
    what a re-run keeps of the kommuner whose input did not change."""
    partition = {"survey", "year", "load_id"}
    with engine.connect() as conn:
        return {
            table.name: read_frame(
                conn,
                select(*[c for c in table.columns if c.name not in partition]).where(
                    table.c.survey == survey, table.c.year == year
                ),
            )
            for table in (*RAW_TABLES, tables.answers)
        }


def record_rerun_request(engine: Engine, request: dict[str, Any]) -> None:
    """Keep who asked for a re-run, why, and what it replaced (``audit.rerun_requests``)."""
    with engine.begin() as conn:
        conn.execute(insert(tables.rerun_requests).values(finished_at=_now(), **request))


def published_kommuner(engine: Engine, survey: str, year: int) -> set[str]:
    """The kommuner with accepted questionnaires in the published (survey, year)."""
    query = (
        select(tables.respondents.c.kommun_kod)
        .where(tables.respondents.c.survey == survey, tables.respondents.c.year == year)
        .distinct()
    )
    with engine.connect() as connection:
        return set(connection.scalars(query))
