"""Benchmark: re-run one corrected municipality in a multi-year warehouse (run by hand).

Generates ``--years`` of sample exports for ``--kommuner`` municipalities, loads every year
with the annual flow, withdraws the last questionnaire of one municipality's IFO file in the
newest year, re-runs that survey-year, and prints the wall times, what the re-run replaced
(rows deleted and inserted per table and level) and the recorded re-run request; then an
unchanged re-run, which must replace nothing. Figures are printed, never asserted.

    .venv/bin/python -m bench.rerun_one_kommun --out /tmp/rerun-bench
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import Flow
from prefect.client.schemas.objects import State
from prefect.testing.utilities import prefect_test_harness
from sqlalchemy import Engine, text

from flows.annual import annual_run
from flows.rerun import rerun
from sample.generate import generate_exports
from warehouse.db import create_warehouse_engine

RAW_TABLES = ("raw.respondents", "raw.answers", "raw.quarantine")
FACT_TABLES = ("core.fct_results", "core.fct_answer_distribution", "core.fct_response_counts")


def snapshot(engine: Engine, year: int) -> dict[str, pd.DataFrame]:
    """Every IFO row of ``year`` in the raw and fact tables, to compare around a re-run."""
    with engine.connect() as conn:
        return {
            table: pd.read_sql(
                text(f"SELECT * FROM {table} WHERE survey = 'ifo' AND year = :year"),
                conn,
                params={"year": year},
            )
            for table in (*RAW_TABLES, *FACT_TABLES)
        }


def print_changes(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]) -> None:
    """What a re-run replaced: raw rows it wrote, fact rows it deleted and inserted by level."""
    for table in RAW_TABLES:
        newest = after[table]["load_id"].max()
        replaced = int((after[table]["load_id"] == newest).sum())
        print(
            f"  {table}: {len(before[table])} rows before, {len(after[table])} after, "
            f"{replaced} written by the re-run"
        )
    for table in FACT_TABLES:
        merged = (
            before[table]
            .drop(columns="load_id")
            .merge(after[table].drop(columns="load_id"), how="outer", indicator=True)
        )
        gone = merged[merged["_merge"] == "left_only"]["level"].value_counts().to_dict()
        new = merged[merged["_merge"] == "right_only"]["level"].value_counts().to_dict()
        print(
            f"  {table}: of {len(after[table])} rows, deleted by level {gone}, "
            f"inserted by level {new}"
        )


def timed_flow(label: str, flow: Flow[..., State[Any]], **parameters: Any) -> float:
    """Run one flow, print how it ended and return its wall seconds (orchestration included,
    as an operator waits for it)."""
    started = time.perf_counter()
    state: State[Any] = flow(**parameters, return_state=True)
    seconds = time.perf_counter() - started
    print(f"{label}: {state.type.value} in {seconds:.1f} s")
    return seconds


def timed_rerun(year: int, reason: str, source: Path, warehouse: str) -> float:
    """Re-run IFO of ``year`` through the re-run flow; its wall seconds."""
    return timed_flow(
        f"re-run ifo {year} ({reason})",
        rerun,
        survey="ifo",
        year=year,
        reason=reason,
        requested_by="benchmark",
        source=str(source),
        warehouse=warehouse,
    )


def withdraw_last_questionnaire(source: Path, year: int) -> str:
    """The correction a supplier sends: one kommun's IFO file of ``year`` without its last
    questionnaire. Returns the file's name."""
    corrected = sorted((source / "ifo" / str(year)).glob(f"ifo_{year}_[0-9]*.csv"))[0]
    lines = corrected.read_bytes().rstrip(b"\r\n").splitlines(keepends=True)
    corrected.write_bytes(b"".join(lines[:-1]))
    return corrected.name


def print_requests(engine: Engine) -> None:
    """The re-run requests the warehouse recorded: what each found changed and replaced."""
    with engine.connect() as conn:
        requests = pd.read_sql(
            text(
                "SELECT requested_by, reason, outcome, load_id, changed_files, "
                "replaced_kommuner, rows_replaced FROM audit.rerun_requests ORDER BY requested_at"
            ),
            conn,
        )
    print(requests.to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--warehouse", help="SQLAlchemy URL (default: a DuckDB file in --out)")
    parser.add_argument("--years", type=int, nargs="+", default=[2022, 2023, 2024])
    parser.add_argument("--kommuner", type=int, default=20)
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    source = args.out / "source"
    generate_exports(source, args.years, n_kommuner=args.kommuner, seed=42)
    warehouse = args.warehouse or f"duckdb:///{args.out / 'w.duckdb'}"
    year = max(args.years)
    with prefect_test_harness(server_startup_timeout=120):
        for each in args.years:
            timed_flow(
                f"annual run {each} (both surveys)",
                annual_run,
                source=str(source),
                year=each,
                warehouse=warehouse,
            )
        engine = create_warehouse_engine(warehouse)
        name = withdraw_last_questionnaire(source, year)
        print(f"corrected: ifo/{year}/{name} (its last questionnaire withdrawn)")
        before = snapshot(engine, year)
        timed_rerun(year, "corrected file from the supplier", source, warehouse)
        print_changes(before, snapshot(engine, year))
        timed_rerun(year, "nothing changed", source, warehouse)
        print_requests(engine)


if __name__ == "__main__":
    main()
