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

import pandas as pd
from prefect.testing.utilities import prefect_test_harness
from sqlalchemy import Engine, text

from flows.annual import annual_run
from flows.rerun import rerun
from tasks.generate import generate_exports
from warehouse.db import create_warehouse_engine

RAW_TABLES = ("raw.respondents", "raw.answers", "raw.quarantine")
FACT_TABLES = ("core.fct_results", "core.fct_answer_distribution", "core.fct_response_counts")


def snapshot(engine: Engine, year: int) -> dict[str, pd.DataFrame]:
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


def timed_rerun(year: int, reason: str, source: Path, warehouse: str) -> None:
    """Re-run IFO of ``year`` and print how it ended and how long it took."""
    started = time.perf_counter()
    state = rerun(
        survey="ifo",
        year=year,
        reason=reason,
        requested_by="benchmark",
        source=str(source),
        warehouse=warehouse,
        return_state=True,
    )
    print(
        f"re-run ifo {year} ({reason}): {state.type.value} in {time.perf_counter() - started:.1f} s"
    )


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
            started = time.perf_counter()
            state = annual_run(
                source=str(source), year=each, warehouse=warehouse, return_state=True
            )
            print(
                f"annual run {each} (both surveys): {state.type.value} in "
                f"{time.perf_counter() - started:.1f} s"
            )
        engine = create_warehouse_engine(warehouse)
        corrected = sorted((source / "ifo" / str(year)).glob(f"ifo_{year}_[0-9]*.csv"))[0]
        lines = corrected.read_bytes().rstrip(b"\r\n").splitlines(keepends=True)
        corrected.write_bytes(b"".join(lines[:-1]))
        print(f"corrected: ifo/{year}/{corrected.name} (its last questionnaire withdrawn)")
        before = snapshot(engine, year)
        timed_rerun(year, "corrected file from the supplier", source, warehouse)
        print_changes(before, snapshot(engine, year))
        timed_rerun(year, "nothing changed", source, warehouse)
        with engine.connect() as conn:
            requests = pd.read_sql(
                text(
                    "SELECT requested_by, reason, outcome, load_id, changed_files, "
                    "replaced_kommuner, rows_replaced FROM audit.rerun_requests"
                ),
                conn,
            )
        print(requests.to_string(index=False))


if __name__ == "__main__":
    main()
