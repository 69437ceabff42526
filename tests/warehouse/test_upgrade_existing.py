"""A warehouse created by the previous revision is upgraded in place, on both backends."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text
from typer.testing import CliRunner

from flows.cli import app
from warehouse.db import create_warehouse_engine, upgrade
from warehouse.load import begin_load


def test_db_upgrade_keeps_the_loads_of_a_0001_warehouse(backend_url: str) -> None:
    upgrade(backend_url, "0001_initial")
    engine = create_warehouse_engine(backend_url)
    load_id = begin_load(
        engine, survey="ifo", year=2024, source="file:///x", flow_run_id=None, settings={}
    )
    result = CliRunner().invoke(app, ["db", "upgrade", "--warehouse", backend_url])
    assert result.exit_code == 0, result.output
    with engine.connect() as connection:
        loads = pd.read_sql(text("SELECT load_id, status FROM audit.loads"), connection)
        staged = connection.execute(text("SELECT count(*) FROM staging.respondents")).scalar()
    engine.dispose()
    assert loads.to_dict("records") == [{"load_id": load_id, "status": "running"}]
    assert staged == 0
