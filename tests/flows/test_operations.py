"""Operating the flows: faults retried then reported in one line, failure notifications,
artifacts for the Prefect UI, and the same figures when per-file steps run on Dask."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
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
)
from prefect_dask.task_runners import DaskTaskRunner
from typer.testing import CliRunner

from flows.annual import annual_run
from flows.cli import app
from tasks.generate import generate_exports
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
    monkeypatch.setenv("BRUKARDATA_HOLD_FILE_MB", "0")
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
