"""The migrations build the warehouse the loader and the BI tools expect, and only once."""

from __future__ import annotations

from pathlib import Path

import pandera.pandas as pa
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table, inspect, text

from schemas import frames
from tests.warehouse.sample import VIEW_COLUMNS
from warehouse import tables
from warehouse.db import alembic_config, create_warehouse_engine, downgrade, upgrade
from warehouse.load import begin_load
from warehouse.reporting import sync_views

# The catalogue of a DuckDB database: every column, constraint, index and comment, by name,
# of the tables of every schema and of the reporting views
SCHEMAS = "('raw', 'core', 'audit', 'staging', 'reporting')"
DESCRIBE = {
    "columns": f"""
        SELECT table_schema, table_name, column_name, ordinal_position, data_type, is_nullable
        FROM information_schema.columns WHERE table_schema IN {SCHEMAS}
        AND table_name <> 'alembic_version'""",
    "constraints": f"""
        SELECT schema_name, table_name, constraint_type, constraint_text
        FROM duckdb_constraints() WHERE schema_name IN {SCHEMAS}
        AND table_name <> 'alembic_version'""",
    "indexes": f"""
        SELECT schema_name, table_name, index_name, expressions
        FROM duckdb_indexes() WHERE schema_name IN {SCHEMAS}""",
    "sequences": "SELECT schema_name, sequence_name FROM duckdb_sequences()",
    "comments": f"""
        SELECT schema_name, table_name, comment FROM duckdb_tables()
        WHERE schema_name IN {SCHEMAS} AND table_name <> 'alembic_version'
        UNION ALL SELECT schema_name, view_name, comment FROM duckdb_views()
        WHERE schema_name IN {SCHEMAS}""",
    "column comments": f"""
        SELECT schema_name, table_name, column_name, comment FROM duckdb_columns()
        WHERE schema_name IN {SCHEMAS} AND table_name <> 'alembic_version'""",
    "views": f"""
        SELECT schema_name, view_name, sql FROM duckdb_views() WHERE schema_name IN {SCHEMAS}""",
}


def _head() -> str | None:
    """The newest revision of the migration chain."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _describe(connection: Connection) -> dict[str, set[tuple[str, ...]]]:
    return {
        aspect: {tuple(map(str, row)) for row in connection.execute(text(query))}
        for aspect, query in DESCRIBE.items()
    }


def test_upgrade_creates_every_schema_table_and_view(warehouse_url: str) -> None:
    upgrade(warehouse_url)
    engine = create_warehouse_engine(warehouse_url)
    inspector = inspect(engine)
    for schema in tables.SCHEMAS:
        assert inspector.has_schema(schema)
    for table in tables.metadata.tables.values():
        assert inspector.has_table(table.name, schema=table.schema), table.fullname
    assert set(inspector.get_view_names(schema="reporting")) == set(VIEW_COLUMNS)
    for view, columns in VIEW_COLUMNS.items():
        reflected = [column["name"] for column in inspector.get_columns(view, "reporting")]
        assert reflected == columns, view
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM audit.alembic_version"))
        assert version.scalar_one() == _head()
    engine.dispose()


def test_alembic_commands_migrate_a_warehouse_named_by_its_url(warehouse_url: str) -> None:
    config = alembic_config(warehouse_url)
    command.upgrade(config, "head")
    engine = create_warehouse_engine(warehouse_url)
    assert set(inspect(engine).get_view_names(schema="reporting")) == set(VIEW_COLUMNS)
    engine.dispose()


def test_the_warehouse_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.duckdb"
    upgrade(f"duckdb:///{path}")
    assert path.is_file()


def test_every_table_and_view_states_its_grain(engine: Engine) -> None:
    with engine.connect() as connection:
        comments = connection.execute(
            text(
                "SELECT schema_name, table_name, comment FROM duckdb_tables() "
                "WHERE table_name <> 'alembic_version' UNION ALL "
                "SELECT schema_name, view_name, comment FROM duckdb_views() "
                "WHERE schema_name = 'reporting'"
            )
        ).all()
    assert len(comments) == len(tables.metadata.tables) + len(VIEW_COLUMNS)
    for schema, name, comment in comments:
        assert comment.startswith("One row per"), f"{schema}.{name}: {comment!r}"


def test_upgrade_twice_changes_nothing(engine: Engine) -> None:
    load_id = begin_load(
        engine, survey="ifo", year=2024, source="file:///x", flow_run_id=None, settings={}
    )
    upgrade(engine)
    with engine.connect() as connection:
        loads = connection.execute(text("SELECT load_id FROM audit.loads")).scalars().all()
        versions = connection.execute(text("SELECT * FROM audit.alembic_version")).scalars().all()
    assert loads == [load_id]
    assert versions == [_head()]


def test_migrations_build_exactly_the_model(engine: Engine, tmp_path: Path) -> None:
    """The migrations build what ``warehouse.tables`` and ``warehouse/views/`` describe: the
    same tables (staging too), columns, keys, comments and views."""
    modelled = create_warehouse_engine(f"duckdb:///{tmp_path / 'model.duckdb'}")
    with modelled.begin() as connection:
        for schema in tables.SCHEMAS:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        tables.metadata.create_all(connection)
        sync_views(connection)
    with engine.connect() as migrated, modelled.connect() as model:
        from_migrations, from_model = _describe(migrated), _describe(model)
    modelled.dispose()
    for aspect in DESCRIBE:
        assert from_migrations[aspect] == from_model[aspect], aspect


def test_downgrade_removes_everything_and_upgrade_rebuilds_it(engine: Engine) -> None:
    downgrade(engine, "base")
    inspector = inspect(engine)
    for schema in ("raw", "core", "reporting"):
        assert not inspector.has_schema(schema)
    assert inspector.get_table_names(schema="audit") == ["alembic_version"]
    upgrade(engine)
    assert set(inspect(engine).get_view_names(schema="reporting")) == set(VIEW_COLUMNS)


@pytest.mark.parametrize(
    ("table", "model"),
    [
        (tables.respondents, frames.Respondents),
        (tables.answers, frames.Answers),
        (tables.quarantine, frames.Quarantine),
        (tables.fct_results, frames.Results),
        (tables.fct_answer_distribution, frames.AnswerDistribution),
        (tables.fct_response_counts, frames.ResponseCounts),
        (tables.load_files, frames.FileReport),
    ],
)
def test_tables_hold_the_columns_of_their_frames(
    table: Table, model: type[pa.DataFrameModel]
) -> None:
    added_by_the_loader = {"survey", "year", "load_id", "loaded_at"}
    assert set(table.columns.keys()) - added_by_the_loader == set(model.to_schema().columns)


BI_INDEXES = {
    "duckdb": "SELECT index_name FROM duckdb_indexes() WHERE schema_name = 'core'",
    "postgresql": "SELECT indexname FROM pg_indexes WHERE schemaname = 'core' "
    "AND indexname LIKE 'ix_%'",
}


def test_only_postgresql_indexes_the_facts_for_bi(backend_url: str) -> None:
    """DuckDB skips row groups for the BI filter without the index, PostgreSQL needs it."""
    upgrade(backend_url)
    engine = create_warehouse_engine(backend_url)
    with engine.connect() as connection:
        indexed = set(connection.scalars(text(BI_INDEXES[engine.dialect.name])))
    engine.dispose()
    facts = ("fct_results", "fct_answer_distribution", "fct_response_counts")
    on_postgresql = engine.dialect.name == "postgresql"
    assert indexed == ({f"ix_{fact}_area" for fact in facts} if on_postgresql else set())
