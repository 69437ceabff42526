"""The 10-year national warehouse (2016–2025, every kommun): BI queries on DuckDB and
PostgreSQL, and the re-run of one corrected kommun against the annual load of the newest year.
Figures are printed, never asserted.

Both warehouses are built from ``bench.data.generated`` (each year has its own questionnaire,
per the catalogue) by the pipeline's own steps (``bench.stages``, one process per year, oldest
first, so each audit compares with the year before), and reused by the next run as long as they
hold a published load of every survey and year — delete them to rebuild:

- DuckDB: ``{work}/ten-years/duckdb/w.duckdb``;
- PostgreSQL: the database ``{name}_10y`` beside the one ``BENCH_POSTGRES_URL`` names (created
  when missing). Without ``BENCH_POSTGRES_URL`` the PostgreSQL column is skipped, saying so.

The re-run (DuckDB, the real flows under a temporary Prefect server) works on copies of the
cached file and of the newest year's exports, so the cache stays as built. Each repeat loads the
newest year with the annual flow (both surveys, then IFO alone), withdraws one questionnaire from
one kommun's IFO file and re-runs IFO with the re-run flow. ``make bench BENCH_ARGS=--quick``
skips this section (national volume of one year only); run it alone with

    .venv/bin/python -m bench.ten_years [--work /tmp/brukardata-bench] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psycopg
from prefect.testing.utilities import prefect_test_harness
from psycopg import sql
from sqlalchemy import inspect, make_url, text

from bench.bi_queries import time_queries
from bench.data import generated
from bench.rerun_one_kommun import (
    print_changes,
    print_requests,
    snapshot,
    timed_flow,
    timed_rerun,
    withdraw_last_questionnaire,
)
from flows.annual import annual_run
from schemas.catalogue import SURVEYS
from warehouse.db import create_warehouse_engine

YEARS = list(range(2016, 2026))
NEWEST = YEARS[-1]
KOMMUN = "0880"  # Kalmar: every generated sample holds it


def load_year(source: Path, year: int, warehouse: str, outputs: Path) -> dict[str, float]:
    """One year's load by ``bench.stages`` in its own process, so its peak memory is the load's:
    seconds per stage. Landing copies and Data Docs go to ``outputs`` (on PostgreSQL they would
    otherwise land in the working folder)."""
    env = {
        **os.environ,
        "BRUKARDATA_LANDING": str(outputs / "landing"),
        "BRUKARDATA_DATA_DOCS": str(outputs / "data-docs"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "bench.stages", "--source", str(source), "--year", str(year),
         "--warehouse", warehouse],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    loaded: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def is_complete(url: str) -> bool:
    """Whether the warehouse at ``url`` has published every survey of every year: then it is
    the one an earlier run built, and building it again would only cost minutes."""
    engine = create_warehouse_engine(url)
    try:
        if not inspect(engine).has_table("loads", schema="audit"):
            return False
        with engine.connect() as conn:
            published = conn.execute(
                text("SELECT DISTINCT survey, year FROM audit.loads WHERE status = 'published'")
            ).all()
    finally:
        engine.dispose()
    return {(survey, year) for survey in SURVEYS for year in YEARS} <= {
        (survey, int(year)) for survey, year in published
    }


def postgres_database(server_url: str, *, drop: bool = False) -> str:
    """The URL of the 10-year database beside ``server_url``'s, created when missing (dropped
    first with ``drop``), so the benchmark never writes into a database it did not create."""
    url = make_url(server_url)
    name = f"{url.database}_10y"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        if drop:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url.set(database=name).render_as_string(hide_password=False)


def build(name: str, url: str, source: Path, outputs: Path, *, postgres_server: str | None) -> None:
    """Load every year into ``url`` from scratch unless it is complete; print which it was."""
    shown = make_url(url).render_as_string(hide_password=True)
    if is_complete(url):
        print(f"  {name}: reused the cached 10-year warehouse {shown} (delete it to rebuild)")
        return
    shutil.rmtree(outputs, ignore_errors=True)
    outputs.mkdir(parents=True)
    if postgres_server is not None:
        postgres_database(postgres_server, drop=True)
    walls = []
    for year in YEARS:
        started = time.perf_counter()
        load_year(source, year, url, outputs)
        walls.append(time.perf_counter() - started)
    print(
        f"  {name}: built {shown} in {sum(walls):.0f} s "
        f"({statistics.median(walls):.1f} s per year, median, each year one process)"
    )


def print_bi_queries(urls: dict[str, str]) -> None:
    """The dashboard queries of ``bench.bi_queries`` side by side on each backend."""
    table: dict[str, dict[str, float | int]] = {}
    for backend, url in urls.items():
        for query, (median, p95, rows) in time_queries(url, NEWEST, KOMMUN).items():
            table.setdefault(query, {}).update(
                {f"{backend} median": round(median, 1), f"{backend} p95": round(p95, 1),
                 f"{backend} rows": rows}
            )  # fmt: skip
    print(f"\nBI queries on the 10-year warehouse, year {NEWEST}, kommun {KOMMUN} (ms; rows):")
    print(pd.DataFrame.from_dict(table, orient="index").to_string())


def rerun_against_annual(warehouse: Path, source: Path, scratch: Path, repeats: int) -> None:
    """Median wall times of the annual flow of the newest year and of the re-run flow after one
    kommun's file was corrected, on a copy of the 10-year DuckDB warehouse; what it replaced."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    copy, exports = scratch / "w.duckdb", scratch / "exports"
    shutil.copyfile(warehouse, copy)
    url = f"duckdb:///{copy}"
    engine = create_warehouse_engine(url)
    both, ifo, rerun = (
        f"annual run {NEWEST}, both surveys",
        f"annual run {NEWEST}, ifo only",
        f"re-run ifo {NEWEST}, one kommun corrected",
    )
    walls: dict[str, list[float]] = {both: [], ifo: [], rerun: []}
    print(f"\nre-run of one corrected kommun in the 10-year DuckDB warehouse ({repeats} runs):")
    with prefect_test_harness(server_startup_timeout=120):
        for repeat in range(repeats):
            for survey in SURVEYS:
                newest = exports / survey / str(NEWEST)
                shutil.rmtree(newest, ignore_errors=True)
                shutil.copytree(source / survey / str(NEWEST), newest)
            for label, surveys in ((both, None), (ifo, ["ifo"])):
                walls[label].append(
                    timed_flow(
                        label,
                        annual_run,
                        source=str(exports),
                        year=NEWEST,
                        surveys=surveys,
                        warehouse=url,
                    )
                )
            corrected = withdraw_last_questionnaire(exports, NEWEST)
            before = snapshot(engine, NEWEST) if repeat == 0 else None
            walls[rerun].append(timed_rerun(NEWEST, f"{corrected} corrected", exports, url))
            if before is not None:
                print_changes(before, snapshot(engine, NEWEST))
    print_requests(engine)
    medians = {label: statistics.median(runs) for label, runs in walls.items()}
    print(f"\nwall s, median of {repeats} (Prefect flows, orchestration included):")
    for label, median in medians.items():
        print(f"  {label}: {median:.1f}")
    for label in (both, ifo):
        print(f"  re-run / {label}: {medians[rerun] / medians[label]:.2f}")


def report(work: Path, repeats: int) -> None:
    """The whole section: build or reuse the warehouses, then time BI queries and the re-run."""
    source = generated(work, YEARS)
    folder = work / "ten-years"
    duckdb_file = folder / "duckdb" / "w.duckdb"
    urls = {"DuckDB": f"duckdb:///{duckdb_file}"}
    print(f"\n10-year national warehouse ({YEARS[0]}–{NEWEST}, every kommun, both surveys):")
    build("DuckDB", urls["DuckDB"], source, duckdb_file.parent, postgres_server=None)
    server = os.environ.get("BENCH_POSTGRES_URL")
    if server:
        urls["PostgreSQL"] = postgres_database(server)
        build("PostgreSQL", urls["PostgreSQL"], source, folder / "postgres", postgres_server=server)
    else:
        print("  PostgreSQL: skipped, BENCH_POSTGRES_URL is not set")
    print_bi_queries(urls)
    rerun_against_annual(duckdb_file, source, folder / "rerun", repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "brukardata-bench"
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    report(args.work, args.repeats)


if __name__ == "__main__":
    main()
