"""``make bench``: the pipeline's figures at national and 100× national volume, against the
plain DuckDB floor and the pandas alternative, printed as a table (never asserted).

    .venv/bin/python -m bench.run_all [--quick] [--work /tmp/brukardata-bench] [--repeats 3]

Then, after the table, ``bench.ten_years``: BI queries on a 10-year national warehouse on DuckDB
and (with ``BENCH_POSTGRES_URL``) PostgreSQL, and the re-run of one corrected kommun against the
annual load of the newest year; both warehouses are built once and reused from ``--work``.

``--quick`` runs national volume only: no 100× national, no 10-year warehouse (building it takes
minutes). Data: ``bench.data`` (generator, fixed seed, CSV).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import duckdb
import pandas as pd

from bench.bi_queries import time_queries
from bench.data import generated, write_scaled
from bench.floor import compare, duckdb_floor, pandas_alternative
from bench.stages import STAGES, SUPPRESSION
from bench.ten_years import load_year, report

YEAR = 2024
BIG_RESPONDENTS = 4_000_000  # the 100× national


def stage_runs(source: Path, work: Path, repeats: int) -> dict[str, float]:
    """Median per stage over ``repeats`` fresh warehouses, each load in its own process."""
    runs = []
    for repeat in range(repeats):
        folder = work / f"stages-{source.name}-{repeat}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        runs.append(load_year(source, YEAR, f"duckdb:///{folder / 'w.duckdb'}", folder))
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def cli_run(source: Path, warehouse: Path, prefect_home: Path) -> float:
    """Wall seconds of one ``brukardata run`` of both surveys."""
    env = {**os.environ, "PREFECT_HOME": str(prefect_home)}
    env.pop("PREFECT_API_URL", None)
    started = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).parent / "brukardata"), "run", "--year", str(YEAR),
         "--source", str(source), "--warehouse", f"duckdb:///{warehouse}"],
        check=True, capture_output=True, env=env, cwd=prefect_home.parent,
    )  # fmt: skip
    return time.perf_counter() - started


def end_to_end(sources: dict[str, Path], work: Path, repeats: int) -> dict[str, float]:
    """Median wall time of ``brukardata run`` of each source, without a server, then with
    ``brukardata server``."""
    brukardata = str(Path(sys.executable).parent / "brukardata")
    walls: dict[str, float] = {}
    home = Path(tempfile.mkdtemp(dir=work, prefix="prefect-")) / ".prefect"
    home.mkdir()
    env = {**os.environ, "PREFECT_HOME": str(home)}

    def timings(how: str) -> None:
        for name, source in sources.items():
            walls[f"{how}, {name}"] = statistics.median(
                cli_run(source, home.parent / f"{how}-{source.name}-{i}.duckdb", home)
                for i in range(repeats)
            )

    timings("no server")
    subprocess.run([brukardata, "server", "--port", "4299"], check=True, env=env, cwd=home.parent)
    try:
        timings("with server")
    finally:
        subprocess.run([brukardata, "server", "--stop"], check=True, env=env, cwd=home.parent)
    return walls


def published(warehouse: Path) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("SELECT * FROM core.fct_results WHERE year = ?", [YEAR]).df()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "brukardata-bench"
    )
    parser.add_argument(
        "--quick", action="store_true", help="national volume only, no 10-year warehouse"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-server", action="store_true", help="skip brukardata run timings")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    generated_source = generated(args.work, [YEAR])
    national = write_scaled(generated_source, YEAR, args.work / "x1", 1)
    # The generated year itself: a file per kommun (one holding several) in the mixed formats
    # exports come in. Only our pipeline reads it; the contenders read the CSV rewrite below.
    files = sum(1 for _ in generated_source.glob(f"*/{YEAR}/*.*"))
    scales = {
        f"national, as exported ({files} files)": (generated_source, national, args.repeats),
        "national": (args.work / "x1", national, args.repeats),
    }
    if not args.quick:
        copies = round(BIG_RESPONDENTS / national)
        big = write_scaled(generated_source, YEAR, args.work / f"x{copies}", copies)
        scales[f"{copies}x national"] = (args.work / f"x{copies}", big, 1)

    print(f"cores: {os.cpu_count()}; python {sys.version.split()[0]}; " + ", ".join(
        f"{p} {version(p)}" for p in ("prefect", "pandas", "duckdb", "great-expectations",
                                      "pandera", "sqlalchemy")))  # fmt: skip
    rows = []
    work_totals: dict[Path, float] = {}
    for name, (source, respondents, repeats) in scales.items():
        stages = stage_runs(source, args.work, repeats)
        work_total = work_totals[source] = sum(stages[s] for s in STAGES)
        row = {"scale": name, "respondents": respondents, "runs": repeats}
        row |= {s: round(stages[s], 2) for s in STAGES}
        row[SUPPRESSION] = round(stages[SUPPRESSION], 2)
        row |= {
            "total (no orchestration)": round(work_total, 1),
            "peak MB": round(stages["peak_rss_mb"]),
        }
        if source == generated_source:  # workbooks and labels: no plain SQL script reads them
            rows.append(row)
            continue
        floor_s, floor_results = duckdb_floor(source, YEAR)
        ours = published(args.work / f"stages-{source.name}-0" / "w.duckdb")
        row |= {
            "DuckDB floor": round(floor_s, 2),
            "ours/floor": round(work_total / floor_s, 1),
            "floor equal": compare(ours, floor_results),
        }
        if os.environ.get("BENCH_POSTGRES_URL"):
            alt_s, alt_results = pandas_alternative(source, YEAR, os.environ["BENCH_POSTGRES_URL"])
            row |= {"alternative": round(alt_s, 1), "alt/ours": round(alt_s / work_total, 2),
                    "alt equal": compare(ours, alt_results)}  # fmt: skip
        rows.append(row)
    print(pd.DataFrame(rows).set_index("scale").T.to_string())
    national_wh = args.work / "stages-x1-0" / "w.duckdb"
    print("\nBI queries, DuckDB (ms: median, p95, rows):")
    for query, (median, p95, n) in time_queries(f"duckdb:///{national_wh}", YEAR).items():
        print(f"  {query}: {median:.1f}  {p95:.1f}  {n}")
    if not args.no_server:
        print("\nbrukardata run, national, both surveys (s, median):")
        sources = {"as exported": generated_source, "CSV rewrite": args.work / "x1"}
        walls = end_to_end(sources, args.work, args.repeats)
        for how, wall in walls.items():
            print(f"  {how}: {wall:.1f}")
        print("orchestration and start-up (run with server − total without orchestration):")
        for name, source in sources.items():
            print(f"  {name}: {walls[f'with server, {name}'] - work_totals[source]:.1f}")
    if args.quick:
        print("\n10-year warehouse (BI queries, one-kommun re-run): skipped with --quick")
    else:
        report(args.work, args.repeats)


if __name__ == "__main__":
    main()
