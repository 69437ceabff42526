"""Session-wide test set-up: Prefect stays inside the project and starts one test server at most."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from flows.prefect_home import prefect_environment
from schemas.catalogue import Catalogue, default_catalogue

PROJECT = Path(__file__).resolve().parents[1]
# Prefect as a command sets it up (flows/prefect_home.py), with the project's own home and
# short pauses before retries, so that the tests of transient faults run fast.
os.environ.setdefault("PREFECT_HOME", str(PROJECT / ".prefect"))
os.environ.setdefault("PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS", "0.2,0.2,0.2")
prefect_environment()
# Runs whose warehouse is not a DuckDB file would write Data Docs, landing copies and reports
# into the working folder: keep them out of the project.
_OUTPUTS = tempfile.mkdtemp(prefix="brukardata-test-outputs-")
os.environ.setdefault("BRUKARDATA_DATA_DOCS", str(Path(_OUTPUTS) / "data-docs"))
os.environ.setdefault("BRUKARDATA_LANDING", str(Path(_OUTPUTS) / "landing"))

FIXTURES = PROJECT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One Prefect test server for the whole session (it takes ~20 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return default_catalogue()


# The newest installed server (Debian installs them side by side under /usr/lib/postgresql/N).
POSTGRES_BIN = max(
    Path("/usr/lib/postgresql").glob("*/bin"),
    key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    default=Path("/usr/lib/postgresql/15/bin"),
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_postgres(*command: str) -> list[str]:
    """initdb refuses to run as root: run the server's tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a throwaway PostgreSQL cluster; yields the URL of its admin database, and stops
    the server (fast shutdown) and removes its files on exit.

    Missing server binaries fail the tests under CI (``CI=true``), where they must be
    installed, and skip them elsewhere with the reason.
    """
    if not (POSTGRES_BIN / "initdb").is_file():
        message = (
            f"PostgreSQL server binaries not found in {POSTGRES_BIN} (apt-get install postgresql)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    # pytest's temporary folders are private to root; the server's user must reach its own
    cluster = Path(tempfile.mkdtemp(prefix="brukardata-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(cluster, "postgres", "postgres")
    data, port = cluster / "data", _free_port()
    subprocess.run(
        _as_postgres(
            str(POSTGRES_BIN / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {cluster} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres(
            str(POSTGRES_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(cluster / "log"),
            "-w",
            "start",
            "-o",
            options,
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        while (data / "postmaster.pid").exists():
            time.sleep(0.05)
        shutil.rmtree(cluster)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the whole session."""
    with postgres_cluster() as url:
        yield url


def new_database(postgres_server: str) -> str:
    """A fresh, empty database of the cluster ``postgres_server`` administers; its URL."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return postgres_server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database of the session's cluster."""
    return new_database(postgres_server)


@pytest.fixture
def password_postgres(postgres_server: str) -> tuple[str, str]:
    """A fresh database owned by a role that must give its password: the session's cluster
    trusts every local connection, so a pg_hba.conf line ahead of the others makes this one
    role authenticate with scram-sha-256 over TCP. (URL without the password, the password).
    """
    suffix = uuid.uuid4().hex[:12]
    role, password, name = f"owner_{suffix}", f"Pw{suffix}Secret", f"test_{suffix}"
    with psycopg.connect(postgres_server.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute("SET password_encryption = 'scram-sha-256'")
        admin.execute(f"CREATE ROLE {role} LOGIN CREATEROLE PASSWORD '{password}'")
        admin.execute(f"CREATE DATABASE {name} OWNER {role}")
        hba_file = admin.execute("SHOW hba_file").fetchone()
        assert hba_file is not None
        hba = Path(hba_file[0])
        rule = f"host all {role} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rule + hba.read_text(encoding="utf-8"), encoding="utf-8")
        admin.execute("SELECT pg_reload_conf()")
    url = postgres_server.replace("postgres@", f"{role}@", 1).rsplit("/", 1)[0] + f"/{name}"
    no_passfile = str(Path(tempfile.gettempdir()) / f"no-pgpass-{suffix}")
    deadline = time.monotonic() + 10
    while True:  # the server reads pg_hba.conf again a moment after it is told to
        try:
            psycopg.connect(url.replace("+psycopg", ""), passfile=no_passfile).close()
        except psycopg.OperationalError:
            return url, password
        if time.monotonic() > deadline:
            pytest.fail("the server did not apply the password rule of pg_hba.conf")
        time.sleep(0.1)


@pytest.fixture(params=["duckdb", "postgresql"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty warehouse on each backend: a DuckDB file, then a PostgreSQL database."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse' / 'brukardata.duckdb'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
