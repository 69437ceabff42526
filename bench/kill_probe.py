"""Kill probe: ``brukardata run`` killed with SIGKILL at many moments, on DuckDB and PostgreSQL.

Two versions of a year's exports of both surveys (B withdraws one questionnaire of each survey,
so every survey-year's figures differ between them) are published in turn. Each round starts a
real ``brukardata run`` of the version not published now and kills it (SIGKILL, no cleanup):
at the moments of ``AFTER_STEPS`` (a step of a survey-year reported done, and a pause after it),
or with ``--at-times`` at seconds spread over a clean run's span. The table names the last step
the run had finished. Then

- every survey-year of the warehouse must read exactly as the old published load or exactly as
  the new one (sha256 of each reporting view's rows of that survey-year, shares to 9 decimals,
  columns naming a load left out), never a mixture;
- the next ``brukardata run`` of the same version must complete and publish the new figures,
  and leave no flow run of a killed command Pending or Running in Prefect.

A ``brukardata server`` runs throughout (each run then costs a second of orchestration, not a
temporary server's 15-20 s). PostgreSQL: ``--postgres-url`` or ``BENCH_POSTGRES_URL`` (an
admin URL; a database is created in it), else a throwaway cluster as the tests start one.

    .venv/bin/python -m bench.kill_probe [--kills 10] [--kommuner 20] [--at-times]

Prints the table; exit status 1 when a round shows a mixture or a next run that failed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psycopg
from sqlalchemy import inspect, text

from sample.generate import generate_exports
from warehouse.db import create_warehouse_engine

BRUKARDATA = str(Path(sys.executable).with_name("brukardata"))
YEAR = 2024
SURVEY_YEARS = [("ifo", YEAR), ("fh", YEAR)]
RUN_TIMEOUT_S = 600


def survey_year_checksums(warehouse: str) -> dict[tuple[str, int], str]:
    """sha256 per survey-year over every reporting view that has survey and year columns."""
    engine = create_warehouse_engine(warehouse)
    digests = {key: hashlib.sha256() for key in SURVEY_YEARS}
    try:
        views = sorted(inspect(engine).get_view_names(schema="reporting"))
        with engine.connect() as conn:
            for view in views:
                if view == "load_history":  # one row per load: it grows with every run
                    continue
                rows = pd.read_sql(text(f"SELECT * FROM reporting.{view}"), conn)
                if not {"survey", "year"} <= set(rows.columns):
                    continue
                rows = rows[[c for c in rows.columns if "load" not in c]]
                for (survey, year), digest in digests.items():
                    part = rows[(rows["survey"] == survey) & (rows["year"] == year)]
                    part = part.sort_values(list(part.columns)).round(9)
                    digest.update(view.encode() + part.to_csv(index=False).encode())
    finally:
        engine.dispose()
    return {key: digest.hexdigest() for key, digest in digests.items()}


@dataclass
class Watched:
    """A ``brukardata run`` in progress: its stderr lines with the second each arrived."""

    process: subprocess.Popen[str]
    started: float
    lines: list[tuple[float, str]] = field(default_factory=list)

    def read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append((time.monotonic() - self.started, line.strip()))


def start_run(source: Path, warehouse: str, env: dict[str, str], cwd: Path) -> Watched:
    command = [BRUKARDATA, "run", "--year", str(YEAR), "--source", str(source),
               "--warehouse", warehouse]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    watched = Watched(process, time.monotonic())
    threading.Thread(target=watched.read, daemon=True).start()
    return watched


def complete_run(source: Path, warehouse: str, env: dict[str, str], cwd: Path) -> Watched:
    watched = start_run(source, warehouse, env, cwd)
    watched.process.wait(timeout=RUN_TIMEOUT_S)
    time.sleep(0.2)  # the reader thread takes the last lines
    return watched


def step_lines(watched: Watched) -> list[tuple[float, str]]:
    """The progress lines: ``ifo 2024: 15 files fetched (0.3 s)``."""
    return [(t, line) for t, line in watched.lines if line.startswith(("ifo ", "fh "))]


STEPS = {"fetched": "fetch", "read": "validate", "computed": "aggregate", "published": "publish"}


def last_step_of(line: str) -> str:
    """``ifo validate`` for ``ifo 2024: 15 files read, …``."""
    what = next((step for word, step in STEPS.items() if word in line), line)
    return f"{line.split(maxsplit=1)[0]} {what}"


def last_step(watched: Watched, before: float) -> str:
    """``ifo validate``: the last step of a survey-year the run said it had finished."""
    seen = [line for t, line in step_lines(watched) if t <= before]
    return last_step_of(seen[-1]) if seen else "none yet"


def unfinished_cli_runs(env: dict[str, str]) -> int:
    """How many flow runs of ``brukardata`` commands are Pending or Running in Prefect."""
    script = (
        "from prefect import get_client\n"
        "from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, "
        "FlowRunFilterStateType, FlowRunFilterTags\n"
        "from prefect.client.schemas.objects import StateType\n"
        "from flows.leftovers import TAG\n"
        "with get_client(sync_client=True) as c:\n"
        "    print(len(c.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags("
        "all_=[TAG]), state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["
        "StateType.PENDING, StateType.RUNNING]))))))\n"
    )
    env = {**env, "PREFECT_API_URL": api_url(env)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip().splitlines()[-1])


def api_url(env: dict[str, str]) -> str:
    import json

    state = Path(env["PREFECT_HOME"]) / "brukardata-server.json"
    url: str = json.loads(state.read_text("utf-8"))["api_url"]
    return url


def withdraw_one_questionnaire(source: Path, survey: str) -> None:
    answers = sorted((source / survey / str(YEAR)).glob(f"{survey}_{YEAR}_[0-9]*.csv"))[0]
    lines = answers.read_bytes().rstrip(b"\r\n").splitlines(keepends=True)
    answers.write_bytes(b"".join(lines[:-1]))


# Kill moments by step: (the step of a survey-year the run said it finished, seconds after).
AFTER_STEPS = [
    ("start", 2.0),  # the command starting, Prefect imported
    ("start", 5.0),  # the flow run starting, the warehouse prepared
    ("ifo fetch", 0.0),  # ifo parsing and validating
    ("ifo validate", 0.0),  # ifo aggregating
    ("ifo aggregate", 0.0),  # ifo staging
    ("ifo aggregate", 0.4),  # ifo staging, auditing or publishing
    ("ifo publish", 0.0),  # ifo published, fh starting
    ("fh validate", 0.0),  # fh aggregating
    ("fh aggregate", 0.0),  # fh staging
    ("fh aggregate", 0.4),  # fh staging, auditing or publishing
]


def kill_moments(clean: Watched, kills: int) -> list[float]:
    """``kills`` seconds after the start, from a second before the first step finished until
    just before the process ended, evenly spread."""
    steps = step_lines(clean)
    first = max(steps[0][0] - 1.0, 0.5) if steps else 0.5
    end = clean.lines[-1][0] if clean.lines else first + 5
    last = max(end - 0.3, first)
    if kills == 1:
        return [first]
    return [first + i * (last - first) / (kills - 1) for i in range(kills)]


def wait_for(watched: Watched, moment: float | tuple[str, float]) -> None:
    """Until ``moment``: seconds after the start, or a step finished and seconds after it."""
    if isinstance(moment, float):
        time.sleep(max(moment - (time.monotonic() - watched.started), 0))
        return
    step, delay = moment
    if step != "start":
        while watched.process.poll() is None:
            seen = [line for _, line in step_lines(watched)]
            if any(last_step_of(line) == step for line in seen):
                break
            time.sleep(0.02)
    time.sleep(delay)


def probe(
    backend: str,
    warehouse: str,
    sources: dict[str, Path],
    env: dict[str, str],
    *,
    kills: int,
    at_times: bool,
) -> list[dict[str, str]]:
    cwd = Path(env["PREFECT_HOME"]).parent
    checksums = {}
    for version in ("A", "B"):
        done = complete_run(sources[version], warehouse, env, cwd)
        if done.process.returncode != 0:
            raise SystemExit(f"{backend}: the clean run of {version} failed: {done.lines[-3:]}")
        checksums[version] = survey_year_checksums(warehouse)
    assert all(checksums["A"][key] != checksums["B"][key] for key in SURVEY_YEARS)
    published = "B"
    rows = []
    moments: list[float | tuple[str, float]] = (
        list(kill_moments(done, kills)) if at_times else list(AFTER_STEPS[:kills])
    )
    for at in moments:
        new = "A" if published == "B" else "B"
        killed = start_run(sources[new], warehouse, env, cwd)
        wait_for(killed, at)
        finished_first = killed.process.poll() is not None
        killed.process.send_signal(signal.SIGKILL)
        killed.process.wait()
        moment = time.monotonic() - killed.started
        now = survey_year_checksums(warehouse)
        verdicts = {
            key: "old" if now[key] == checksums[published][key] else
            "new" if now[key] == checksums[new][key] else "MIXED"
            for key in SURVEY_YEARS
        }  # fmt: skip
        following = complete_run(sources[new], warehouse, env, cwd)
        after = survey_year_checksums(warehouse)
        next_ok = following.process.returncode == 0 and after == checksums[new]
        cleanup = [line for _, line in following.lines if "killed" in line]
        rows.append(
            {
                "backend": backend,
                "kill": f"{at:.1f} s" if isinstance(at, float) else f"{at[0]} +{at[1]} s",
                "killed at s": f"{moment:.1f}",
                "steps done up to": "run had ended"
                if finished_first
                else last_step(killed, moment),
                **{f"{s} {y}": verdicts[(s, y)] for s, y in SURVEY_YEARS},
                "next run": (
                    f"exit {following.process.returncode}, "
                    f"{'new figures' if after == checksums[new] else 'WRONG figures'} "
                    f"({following.lines[-1][0] if following.lines else 0:.1f} s)"
                ),
                "runs left Running": str(unfinished_cli_runs(env)),
                "cleaned up": "; ".join(cleanup) or "-",
                "ok": "yes" if next_ok and "MIXED" not in verdicts.values() else "NO",
            }
        )
        print(" | ".join(rows[-1].values()), flush=True)
        published = new
    return rows


def markdown_table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "(no rounds)"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(row[c]) for row in rows)) for c in columns}
    lines = [[c.ljust(widths[c]) for c in columns], ["-" * widths[c] for c in columns]]
    lines += [[row[c].ljust(widths[c]) for c in columns] for row in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


@contextlib.contextmanager
def postgres_database(url: str | None) -> Iterator[str]:
    """A fresh database: in the cluster ``url`` names, else in a throwaway cluster."""
    with contextlib.ExitStack() as stack:
        if url is None:
            from tests.conftest import postgres_cluster

            url = stack.enter_context(postgres_cluster())
        name = f"kill_probe_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        yield url.rsplit("/", 1)[0] + f"/{name}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10, help="kill moments per backend")
    parser.add_argument(
        "--at-times",
        action="store_true",
        help="kill at seconds spread over a clean run (default: after the steps of AFTER_STEPS)",
    )
    parser.add_argument("--kommuner", type=int, default=20)
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL"))
    parser.add_argument("--backends", nargs="+", default=["duckdb", "postgresql"])
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kill-probe-"))
    sources = {"A": root / "a", "B": root / "b"}
    generate_exports(sources["A"], [YEAR], n_kommuner=args.kommuner, seed=1)
    shutil.copytree(sources["A"], sources["B"])
    for survey, _ in SURVEY_YEARS:
        withdraw_one_questionnaire(sources["B"], survey)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env |= {
        "PREFECT_HOME": str(root / "prefect-home"),
        "BRUKARDATA_LANDING": str(root / "landing"),
        "BRUKARDATA_DATA_DOCS": str(root / "data-docs"),
    }
    from tests.flows.conftest import free_port

    started = subprocess.run(
        [BRUKARDATA, "server", "--port", str(free_port())],
        env=env, cwd=root, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if started.returncode != 0:
        raise SystemExit(f"brukardata server: {started.stdout}{started.stderr}")
    rows: list[dict[str, str]] = []
    moments = {"kills": args.kills, "at_times": args.at_times}
    try:
        for backend in args.backends:
            if backend == "duckdb":
                duckdb = f"duckdb:///{root / 'w.duckdb'}"
                rows += probe(backend, duckdb, sources, env, **moments)
            else:
                with postgres_database(args.postgres_url) as url:
                    rows += probe(backend, url, sources, env, **moments)
    finally:
        subprocess.run([BRUKARDATA, "server", "--stop"], env=env, cwd=root, check=False)
    print()
    print(markdown_table([{k: v for k, v in row.items() if k != "cleaned up"} for row in rows]))
    print()
    for row in rows:
        print(f"{row['backend']} {row['killed at s']} s: {row['cleaned up']}")
    shutil.rmtree(root, ignore_errors=True)
    return 0 if all(row["ok"] == "yes" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
