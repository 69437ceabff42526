"""Operating the flows: faults retried then reported in one line, failure notifications,
artifacts for the Prefect UI, and the same figures when per-file steps run on Dask."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect_dask.task_runners import DaskTaskRunner
from typer.testing import CliRunner

from flows import load
from flows.annual import annual_run
from flows.cli import app
from sample.generate import generate_exports
from tests.conftest import postgres_cluster
from tests.flows.test_rerun import view_checksums

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_server")]

YEAR = 2024


class FlakyFolder(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, but answers the first ``failures`` requests with 503 Service Unavailable,
    and records every JSON body POSTed to it (a webhook)."""

    failures = 0
    served_503 = 0
    posted: list[dict[str, Any]]

    def do_GET(self) -> None:
        if type(self).served_503 < type(self).failures:
            type(self).served_503 += 1
            self.send_error(503, "busy")
            return
        super().do_GET()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posted.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads what the server saw, not its log."""


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, type[FlakyFolder]]]:
    handler = type("Handler", (FlakyFolder,), {"failures": 0, "served_503": 0, "posted": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(tmp_path / "web"))
    )
    (tmp_path / "web").mkdir()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exports")
    generate_exports(out, [YEAR], n_kommuner=4, seed=11)
    return out


def test_a_source_answering_503_twice_is_retried_and_loads(
    http_folder: tuple[str, type[FlakyFolder]], exports: Path, tmp_path: Path
) -> None:
    url, handler = http_folder
    (tmp_path / "web" / "ifo").symlink_to(exports / "ifo", target_is_directory=True)
    handler.failures = 2
    state = annual_run(
        source=url,
        year=YEAR,
        surveys=["ifo"],
        warehouse=f"duckdb:///{tmp_path / 'w.duckdb'}",
        return_state=True,
    )
    assert state.is_completed(), state.message
    assert handler.served_503 == 2


def test_a_source_that_stays_down_fails_in_one_line(
    http_folder: tuple[str, type[FlakyFolder]], tmp_path: Path
) -> None:
    url, handler = http_folder
    handler.failures = 1000
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--year",
            str(YEAR),
            "--survey",
            "ifo",
            "--source",
            url,
            "--warehouse",
            f"duckdb:///{tmp_path / 'w.duckdb'}",
        ],
    )
    assert result.exit_code == 1
    problem = f"ifo {YEAR}: source {url} unreachable after retries: ClientResponseError: 503"
    assert any(line.startswith(f"✗ {problem}") for line in result.output.splitlines())
    assert handler.served_503 == 4  # the first try and three retries


def test_a_stopped_database_fails_after_retries_in_one_line(exports: Path) -> None:
    with postgres_cluster() as url:
        pass  # started, then stopped: nothing listens on its port any more
    # The command line checks the warehouse before it starts a flow (one line, status 2); a
    # deployed run, or one whose database stops after that check, retries and then fails.
    result = CliRunner().invoke(
        app, ["run", "--year", str(YEAR), "--source", str(exports), "--warehouse", url]
    )
    assert result.exit_code == 2
    assert "warehouse postgresql+psycopg://postgres@127.0.0.1" in result.output
    state = annual_run(year=YEAR, source=str(exports), warehouse=url, return_state=True)
    assert state.is_failed()
    assert state.message.startswith("warehouse postgresql+psycopg://postgres@127.0.0.1")
    assert "unreachable after retries: OperationalError" in state.message


def test_a_failed_run_is_announced_to_the_webhook(
    http_folder: tuple[str, type[FlakyFolder]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = http_folder
    monkeypatch.setenv("BRUKARDATA_NOTIFY_WEBHOOK", f"{url}/hook")
    state = annual_run(
        source=str(tmp_path / "nowhere"),
        year=YEAR,
        surveys=["fh"],
        warehouse=f"duckdb:///{tmp_path / 'w.duckdb'}",
        return_state=True,
    )
    assert state.is_failed()
    (message,) = handler.posted
    assert message["flow"] == "annual-run"
    assert message["message"] == "1 problem(s)"
    assert message["parameters"]["surveys"] == ["fh"]
    assert message["text"].startswith("brukardata: annual-run run '")


def test_a_run_publishes_its_summary_and_refused_files(exports: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "fh").mkdir(parents=True)
    (source / "fh" / str(YEAR)).symlink_to(exports / "fh" / str(YEAR), target_is_directory=True)
    state = annual_run(
        source=str(source),
        year=YEAR,
        surveys=["fh"],
        warehouse=f"duckdb:///{tmp_path / 'w.duckdb'}",
        return_state=True,
    )
    assert state.is_completed()
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    with get_client(sync_client=True) as client:
        artifacts, refused, reports = (
            client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=[key]),
                    flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]),
                )
            )
            for key in (f"run-summary-{YEAR}", f"refused-files-{YEAR}", f"report-{YEAR}")
        )
    summary = str(artifacts[0].data)
    for part in (
        "# brukardata run",
        "## Quarantine by reason",
        "## Headline figures",
        "## Audit reports",
        "suppressed cells",
    ):
        assert part in summary
    assert refused
    assert reports
    assert str(reports[0].data).startswith("[Rapport 2024 (riket)](file://")


def figures(warehouse: str) -> dict[str, str]:
    """Checksums of every reporting view but the load history (fetch times, landing paths)."""
    return {
        name: digest for name, digest in view_checksums(warehouse).items() if name != "load_history"
    }


@pytest.fixture(scope="module")
def plain_figures(exports: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The figures of a plain in-process run: every file held in memory, one process."""
    plain = f"duckdb:///{tmp_path_factory.mktemp('plain') / 'plain.duckdb'}"
    assert annual_run(
        source=str(exports), year=YEAR, warehouse=plain, return_state=True
    ).is_completed()
    return figures(plain)


def test_per_file_steps_on_two_dask_workers_give_the_same_figures(
    exports: Path, plain_figures: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRUKARDATA_DASK_WORKERS", "2")
    on_dask = f"duckdb:///{tmp_path / 'dask.duckdb'}"
    runner = DaskTaskRunner(
        cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "dashboard_address": None}
    )
    state = annual_run.with_options(task_runner=runner)(
        source=str(exports), year=YEAR, warehouse=on_dask, return_state=True
    )
    assert state.is_completed(), state.message
    assert figures(on_dask) == plain_figures


def test_files_too_large_to_hold_give_the_same_figures(
    exports: Path, plain_figures: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file streamed to the landing area and read 50 rows at a time."""
    monkeypatch.setenv("BRUKARDATA_STREAM_ABOVE_MB", "0")
    monkeypatch.setattr("tasks.parse.CHUNK_ROWS", 50)
    monkeypatch.setenv("BRUKARDATA_LANDING", str(tmp_path / "landing"))
    streamed = f"duckdb:///{tmp_path / 'streamed.duckdb'}"
    state = annual_run(source=str(exports), year=YEAR, warehouse=streamed, return_state=True)
    assert state.is_completed(), state.message
    assert figures(streamed) == plain_figures
    with duckdb.connect(str(tmp_path / "streamed.duckdb"), read_only=True) as con:
        lineage = con.execute(
            "SELECT survey, source_file, sha256, landing_url FROM reporting.load_history"
        ).fetchall()
    assert lineage
    for survey, source_file, sha256, landing_url in lineage:
        copy = Path(landing_url)
        assert copy.parent.name == sha256
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == sha256
        assert copy.read_bytes() == (exports / survey / str(YEAR) / source_file).read_bytes()


def test_a_database_down_at_the_start_is_retried_before_it_is_called_unreachable(
    exports: Path,
) -> None:
    """The preparation, its lock's connection included, is tried once and retried three times."""
    with postgres_cluster() as url:
        pass  # started, then stopped: nothing listens on its port any more
    state = annual_run(source=str(exports), year=YEAR, warehouse=url, return_state=True)
    assert state.is_failed()
    assert "unreachable after retries: OperationalError" in str(state.message)
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
    assert [(run.name.rsplit("-", 1)[0], run.run_count) for run in runs] == [
        ("prepare-warehouse", 4)
    ]


def test_a_duckdb_reader_holding_the_file_fails_one_survey_in_one_line_and_the_run_goes_on(
    exports: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A BI tool opens the file while IFO is audited: the audit's reads are retried, then IFO's
    load is marked failed with one line saying who holds the file, and FH is still loaded."""
    database = tmp_path / "w.duckdb"
    holding = "import duckdb, time; held = duckdb.connect({!r}, read_only=True); print('holding', flush=True); time.sleep(600)"  # noqa: E501
    readers: list[subprocess.Popen[str]] = []

    def open_by_a_reader(point: str) -> None:
        if point == "after-stage" and not readers:
            reader = subprocess.Popen(
                [sys.executable, "-c", holding.format(str(database))],
                stdout=subprocess.PIPE,
                text=True,
            )
            readers.append(reader)
            assert reader.stdout is not None
            assert reader.stdout.readline().strip() == "holding"

    record_failed_load = load.fail_load_task

    def closed_by_the_reader(*args: Any, **kwargs: Any) -> None:
        for reader in readers:
            reader.kill()
            reader.wait()
        record_failed_load(*args, **kwargs)

    monkeypatch.setattr(load, "pause_point", open_by_a_reader)
    monkeypatch.setattr(load, "fail_load_task", closed_by_the_reader)
    state = annual_run(
        source=str(exports), year=YEAR, warehouse=f"duckdb:///{database}", return_state=True
    )
    assert state.is_failed()
    summary = state.result(raise_on_failure=False)
    assert summary.problems == [
        f"ifo {YEAR}: warehouse duckdb:///{database} is held by another process "
        f"(PID {readers[0].pid}) after retries: DuckDB lets one process at a time open its "
        "file; for BI tools that query while loads run, use PostgreSQL"
    ]
    with duckdb.connect(str(database), read_only=True) as connection:
        loads = connection.sql("SELECT survey, status FROM audit.loads ORDER BY load_id").fetchall()
    assert loads == [("ifo", "failed"), ("fh", "published")]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a file system of 6 MB: room for a warehouse's schema, not for a load."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"a small file system cannot be mounted here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_fails_each_load_in_one_line_without_retrying(
    small_disk: Path, tmp_path: Path
) -> None:
    generate_exports(tmp_path / "source", [YEAR], n_kommuner=20, seed=2)
    warehouse = f"duckdb:///{small_disk / 'w.duckdb'}"
    result = CliRunner().invoke(
        app, ["run", "--year", str(YEAR), "--source", str(tmp_path / "source"), "--warehouse",
              warehouse],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    problems = [line for line in result.output.splitlines() if line.startswith("✗")]
    assert [line.split(": ", 1)[0] for line in problems] == [f"✗ ifo {YEAR}", f"✗ fh {YEAR}"]
    for line in problems:
        assert line.split(": ", 1)[1].startswith(
            f"warehouse {warehouse}: no space left on device, its disk has "
        )
        assert "MB free; nothing was published" in line
