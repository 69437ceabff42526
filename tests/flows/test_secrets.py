"""Credentials in a warehouse or source URL are used to connect and never written down."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

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
