"""Credentials in a warehouse or source URL are used to connect and never written down."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from sqlalchemy import make_url, text

from sample.generate import generate_exports
from tests.flows.conftest import BRUKARDATA, free_port
from warehouse.db import create_warehouse_engine

PASSWORD = "Hunter2secretPW"
TOKEN = "SrcToken123"


@pytest.fixture
def http_source(tmp_path: Path) -> Iterator[str]:
    """Exports of one year served over HTTP, reached with a user and token in the URL."""
    folder = tmp_path / "exports"
    generate_exports(folder, [2024], n_kommuner=3, seed=5)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            server.wait(timeout=1)  # still serving
        yield f"http://srcuser:{TOKEN}@127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def stored_text(url: str) -> str:
    """Every row of the audit tables and the load history the BI role reads, as text."""
    engine = create_warehouse_engine(url)
    with engine.connect() as conn:
        return "\n".join(
            pd.read_sql(text(f"SELECT * FROM {table}"), conn).to_csv(index=False)
            for table in ("audit.loads", "audit.load_files", "reporting.load_history")
        )


def test_passwords_and_tokens_are_never_printed_or_stored(
    http_source: str, postgres_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    warehouse = postgres_url.replace("postgres@", f"postgres:{PASSWORD}@", 1)
    assert PASSWORD in warehouse
    env = {
        **cli_env,
        "BRUKARDATA_LANDING": str(tmp_path / "landing"),
        "BRUKARDATA_DATA_DOCS": str(tmp_path / "data-docs"),
    }
    done = subprocess.run(
        [BRUKARDATA, "run", "--year", "2024", "--survey", "ifo", "--source", http_source,
         "--warehouse", warehouse],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"Warehouse: {postgres_url.replace('postgres@', 'postgres:***@', 1)}" in output
    assert PASSWORD not in output
    assert TOKEN not in output
    stored = stored_text(postgres_url)
    assert "http://***@127.0.0.1" in stored
    assert TOKEN not in stored
    prefect_home = Path(cli_env["PREFECT_HOME"])
    assert prefect_home.stat().st_mode & 0o077 == 0
    for path in prefect_home.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert PASSWORD.encode() not in content, path
            assert TOKEN.encode() not in content, path


def _flow_runs_and_artifacts(prefect_home: Path) -> str:
    """Every flow run's parameters and every artifact in Prefect's database, as text."""
    with contextlib.closing(sqlite3.connect(prefect_home / "prefect.db")) as db:
        parameters = db.execute("SELECT parameters FROM flow_run").fetchall()
        artifacts = db.execute("SELECT coalesce(data, '') FROM artifact").fetchall()
    return "\n".join(str(row[0]) for row in [*parameters, *artifacts])


def test_a_password_the_server_requires_comes_from_the_environment(
    password_postgres: tuple[str, str], cli_env: dict[str, str], tmp_path: Path
) -> None:
    url, password = password_postgres
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(url.replace("+psycopg", ""), passfile=str(tmp_path / "no-pgpass"))
    generate_exports(tmp_path / "exports", [2024], n_kommuner=3, seed=5)
    env = {
        **cli_env,
        "PGPASSFILE": str(tmp_path / "no-pgpass"),  # no ~/.pgpass of whoever runs the tests
        "BRUKARDATA_LANDING": str(tmp_path / "landing"),
        "BRUKARDATA_DATA_DOCS": str(tmp_path / "data-docs"),
    }
    command = [BRUKARDATA, "run", "--year", "2024", "--survey", "ifo",
               "--source", str(tmp_path / "exports"), "--warehouse", url]  # fmt: skip

    refused = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith(f"error: warehouse {url} unreachable: "), refused.stderr
    assert "password" in refused.stderr

    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:*:*:{make_url(url).username}:{password}\n", "utf-8")
    passfile.chmod(0o600)
    upgraded = subprocess.run(
        [BRUKARDATA, "db", "upgrade", "--warehouse", url],
        env={**env, "PGPASSFILE": str(passfile)}, cwd=tmp_path, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr

    done = subprocess.run(
        command, env={**env, "PGPASSWORD": password}, cwd=tmp_path, capture_output=True,
        text=True, timeout=600, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert url in output  # "Warehouse: URL", wrapped at 80 columns
    assert password not in output + upgraded.stdout + upgraded.stderr
    prefect_home = Path(cli_env["PREFECT_HOME"])
    recorded = _flow_runs_and_artifacts(prefect_home)
    assert url in recorded  # the warehouse parameter, without a password to hide
    assert password not in recorded
    for path in prefect_home.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    admin = url.replace(f"{make_url(url).username}@", "postgres@", 1)
    stored = stored_text(admin)
    assert "published" in stored
    assert password not in stored
