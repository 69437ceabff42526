"""prefect.yaml for real: a server, `prefect deploy`, a process worker, and parameterised runs.

The annual deployment loads a year through the worker; a supplier then corrects one
municipality's file and the re-run deployment, triggered with parameters, replaces it. The
schedules are read back from the server and must fire at 06:00 Stockholm time on 15 February.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import httpx
from prefect.server.schemas.schedules import CronSchedule

from tasks.generate import generate_exports
from tests.conftest import PROJECT

PREFECT = [sys.executable, "-m", "prefect", "--no-prompt"]
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def prefect(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        [*PREFECT, *args],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def run_deployment(env: dict[str, str], name: str, **parameters: str) -> None:
    """Trigger a deployment with parameters and wait (--watch) until the worker has run it."""
    params = [f"--param={key}={value}" for key, value in parameters.items()]
    output = prefect(env, "deployment", "run", name, *params, "--watch", "--watch-timeout", "280")
    assert "Completed" in output, output


def kommun_rows(database: Path) -> dict[str, int]:
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.sql(
            "select area_code, sum(n_valid) from reporting.results where survey = 'ifo' "
            "and level = 'kommun' and verksamhet = 'ALL' and gender = 'T' group by area_code"
        ).fetchall()
    return {code: int(n) for code, n in rows}


def test_deployments_schedule_and_run_through_a_worker(
    started_server: dict[str, object], cli_env: dict[str, str], tmp_path: Path
) -> None:
    api_url = str(started_server["api_url"])
    env = {**cli_env, "PREFECT_API_URL": api_url, "BRUKARDATA_PROJECT_DIR": str(PROJECT)}
    prefect(env, "deploy", "--all")

    deployments = httpx.post(f"{api_url}/deployments/filter", json={}, timeout=10).json()
    by_name = {d["name"]: d for d in deployments}
    assert set(by_name) == {"annual-ifo", "annual-fh", "rerun"}
    for name in ("annual-ifo", "annual-fh"):
        (schedule,) = by_name[name]["schedules"]
        cron = CronSchedule(**schedule["schedule"])
        start = datetime(2026, 11, 23, tzinfo=UTC)
        dates = asyncio.run(cron.get_dates(n=2, start=start))
        assert [d.astimezone(STOCKHOLM).isoformat() for d in dates] == [
            "2027-02-15T06:00:00+01:00",
            "2028-02-15T06:00:00+01:00",
        ]
    assert by_name["rerun"]["schedules"] == []

    exports = tmp_path / "exports"
    generate_exports(exports, [2024], n_kommuner=4, seed=5)
    database = tmp_path / "w.duckdb"
    warehouse = f"duckdb:///{database}"
    run_deployment(
        env, "annual-run/annual-ifo", year="2024", source=str(exports), warehouse=warehouse
    )
    before = kommun_rows(database)

    entry = next(
        f
        for f in json.loads((exports / "manifest.json").read_text("utf-8"))["files"]
        if f["survey"] == "ifo"
        and f["kind"] == "answers"
        and f["format"] == "csv"
        and len(f["kommuner"]) == 1
        and not f["defect_rows"]
    )
    (kommun,) = entry["kommuner"]
    corrected = exports / entry["path"]
    lines = corrected.read_bytes().splitlines(keepends=True)
    corrected.write_bytes(b"".join(lines[:-5]))  # the supplier withdrew five questionnaires
    run_deployment(
        env,
        "rerun/rerun",
        survey="ifo",
        year="2024",
        reason="supplier correction",
        source=str(exports),
        warehouse=warehouse,
    )
    after = kommun_rows(database)
    assert after[kommun] < before[kommun]
    assert {k: v for k, v in after.items() if k != kommun} == {
        k: v for k, v in before.items() if k != kommun
    }
    flow_runs = httpx.post(f"{api_url}/flow_runs/filter", json={}, timeout=10).json()
    finished = [r for r in flow_runs if r["state_type"] not in ("SCHEDULED",)]
    assert sorted(r["state_type"] for r in finished) == ["COMPLETED", "COMPLETED"]
