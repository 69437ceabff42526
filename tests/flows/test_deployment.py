"""The README's "Deployments" section, run word for word against a real server and worker.

The commands are read from the README itself, so the test and the documentation cannot drift
apart. They run in a fresh folder that holds the project's code the way a clone does, with a
home folder of their own: the only change made to them is the server's port (4200 may be in
use on the machine running the tests). Every flow run must end Completed, the scheduled
deployments' schedules must fire at 06:00 Stockholm time on 15 February, and no Prefect state
may be written to ``~/.prefect``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import httpx
from prefect.server.schemas.schedules import CronSchedule

from flows.annual import last_completed_survey_year
from flows.server import stop_process
from tests.conftest import PROJECT
from tests.flows.conftest import free_port

STOCKHOLM = ZoneInfo("Europe/Stockholm")
# What a clone of the project holds that the commands use (the environment built by make).
CLONE = ("flows", "tasks", "schemas", "warehouse", "prefect.yaml", ".venv")


def readme_deployment_commands() -> list[str]:
    """The shell commands of the README's "Deployments" section, continuation lines joined."""
    readme = (PROJECT / "README.md").read_text("utf-8")
    section = readme.split("### Deployments", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the Deployments section has no sh block"
    return block.group(1).replace("\\\n", " ").strip().splitlines()


def a_clone(folder: Path) -> Path:
    folder.mkdir()
    for name in CLONE:
        (folder / name).symlink_to(PROJECT / name)
    return folder


def a_new_users_environment(home: Path) -> dict[str, str]:
    """A shell with nothing of the tests' settings: no PREFECT_* or BRUKARDATA_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "BRUKARDATA_"))}
    env["HOME"] = str(home)
    env["PREFECT_WORKER_QUERY_SECONDS"] = "2"  # the worker picks runs up sooner, nothing else
    return env


def test_the_readme_deployment_section_word_for_word(tmp_path: Path) -> None:
    commands = readme_deployment_commands()
    port = free_port()
    script = "\n".join(["set -e", *(c.replace("4200", str(port)) for c in commands)])
    project, home = a_clone(tmp_path / "brukardata"), tmp_path / "home"
    home.mkdir()
    state_file = project / ".prefect" / "brukardata-server.json"
    try:
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=project,
            env=a_new_users_environment(home),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        api_url = f"http://127.0.0.1:{port}/api"
        flow_runs = httpx.post(f"{api_url}/flow_runs/filter", json={}, timeout=10).json()
        deployments = httpx.post(f"{api_url}/deployments/filter", json={}, timeout=10).json()
    finally:
        if state_file.exists():
            state = json.loads(state_file.read_text("utf-8"))
            for pid in (state["worker_pid"], state["server_pid"]):
                stop_process(pid)

    by_id = {d["id"]: d["name"] for d in deployments}
    finished = [
        (by_id[r["deployment_id"]], r["parameters"], r["state_type"])
        for r in flow_runs
        if r["state_type"] != "SCHEDULED"
    ]
    rerun = {
        "survey": "ifo",
        "year": 2024,
        "reason": "corrected file from the supplier",
        "kommuner": ["0880"],
    }
    expected = [
        ("annual-fh", {"surveys": ["fh"]}, "COMPLETED"),
        ("annual-ifo", {"surveys": ["ifo"]}, "COMPLETED"),  # as the schedule runs it
        ("annual-ifo", {"surveys": ["ifo"], "year": 2024}, "COMPLETED"),
        ("rerun", rerun, "COMPLETED"),
    ]
    assert sorted(finished, key=str) == sorted(expected, key=str)
    scheduled_year = last_completed_survey_year(date.today())
    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as connection:
        loads = connection.sql(
            "select distinct survey, year from reporting.load_history order by all"
        ).fetchall()
    assert loads == sorted([("fh", scheduled_year), ("ifo", scheduled_year), ("ifo", 2024)])
    for name in ("annual-ifo", "annual-fh"):
        (schedule,) = next(d for d in deployments if d["name"] == name)["schedules"]
        dates = asyncio.run(
            CronSchedule(**schedule["schedule"]).get_dates(
                n=2, start=datetime(2026, 11, 23, tzinfo=UTC)
            )
        )
        assert [d.astimezone(STOCKHOLM).isoformat() for d in dates] == [
            "2027-02-15T06:00:00+01:00",
            "2028-02-15T06:00:00+01:00",
        ]
    assert not (home / ".prefect").exists()
