"""The BI role reads every reporting view and nothing behind it (PostgreSQL)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import inspect, make_url

from warehouse import tables
from warehouse.db import create_warehouse_engine, upgrade

HIDDEN = ("raw.respondents", "raw.answers", "raw.quarantine", "core.fct_results", "audit.loads")


def test_a_member_of_the_bi_role_reads_reporting_only(postgres_url: str) -> None:
    upgrade(postgres_url)
    engine = create_warehouse_engine(postgres_url)
    views = inspect(engine).get_view_names(schema=tables.REPORTING)
    engine.dispose()
    url = make_url(postgres_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    user = f"analyst_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {user} LOGIN IN ROLE {tables.BI_ROLE}")
    member = url.set(drivername="postgresql", username=user).render_as_string(hide_password=False)
    hidden = [*HIDDEN, *(staged.fullname for staged in tables.STAGED.values())]
    with psycopg.connect(member, autocommit=True) as connection:
        for view in views:
            connection.execute(f"SELECT * FROM reporting.{view} LIMIT 1").fetchall()
        for table in hidden:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(f"SELECT * FROM {table} LIMIT 1")
    assert set(views) >= {"results", "answer_distribution", "response_counts", "load_history"}
