"""A flow's task runner and its settings are chosen when a run starts, never at import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prefect import Flow
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask.task_runners import DaskTaskRunner

from flows.annual import annual_run
from flows.rerun import rerun

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("flow", [annual_run, rerun], ids=["annual_run", "rerun"])
def test_the_task_runner_follows_the_settings_when_a_run_starts(
    flow: Flow[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = flow.task_runner
    monkeypatch.delenv("BRUKARDATA_DASK_WORKERS", raising=False)
    monkeypatch.delenv("BRUKARDATA_DASK_ADDRESS", raising=False)
    assert type(runner.duplicate()) is ThreadPoolTaskRunner
    monkeypatch.setenv("BRUKARDATA_DASK_WORKERS", "2")
    on_dask = runner.duplicate()
    assert isinstance(on_dask, DaskTaskRunner)
    assert on_dask.cluster_kwargs["n_workers"] == 2


def test_importing_the_flows_and_the_command_line_changes_nothing(tmp_path: Path) -> None:
    """No environment set, no settings read, no folder made: a broken setting and an empty
    working folder stay as they were."""
    probe = (
        "import os, json; before = dict(os.environ); "
        "import flows.annual, flows.rerun, flows.kolada, flows.validation, flows.cli; "
        "print(json.dumps(sorted(set(os.environ.items()) ^ set(before.items()))))"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "BRUKARDATA_", "DO_NOT_TRACK"))
    }
    (tmp_path / "home").mkdir()
    (work := tmp_path / "work").mkdir()
    env |= {"BRUKARDATA_DASK_WORKERS": "not a number", "PYTHONPATH": str(PROJECT),
            "HOME": str(tmp_path / "home")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=work, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert list(work.iterdir()) == []
