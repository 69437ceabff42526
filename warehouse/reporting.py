"""The reporting views BI tools query, made from ``warehouse/views/``: one SQL file per view
and ``views.yaml``, which gives each view's grain and the meaning of every column.

Alembic keeps the tables; views are replaceable objects, so they are not frozen into
revisions: every upgrade to the newest revision brings them in step with these files
(``sync_views``), in the same transaction. The view comments, the column comments (``COMMENT
ON``, which Superset and Metabase show) and the README's table of views all come from
``views.yaml``, so they cannot disagree.

``python -m warehouse.reporting`` prints the README section; ``--write README.md`` replaces it.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Connection, delete, insert, select, text

from warehouse import tables

VIEWS_DIR = Path(__file__).with_name("views")
README_START = "<!-- reporting views: made by `python -m warehouse.reporting --write README.md` -->"
README_END = "<!-- end of reporting views -->"


class ViewDriftError(RuntimeError):
    """A view's columns are not the ones ``views.yaml`` describes."""


@dataclass(frozen=True)
class View:
    """One reporting view: its query and what it and each of its columns mean."""

    name: str
    grain: str
    says: str
    columns: dict[str, str]
    select: str

    @property
    def comment(self) -> str:
        return f"{self.grain}: {self.says}"

    @property
    def fingerprint(self) -> str:
        """Changes whenever what this view creates changes: its query or its comments."""
        described = [self.select, self.comment, *(f"{c}: {m}" for c, m in self.columns.items())]
        return hashlib.sha256("\n".join(described).encode()).hexdigest()


def _columns(
    listed: list[str | dict[str, str]], shared: dict[str, str], view: str
) -> dict[str, str]:
    """A view's columns in order, each with its own meaning or the shared one."""
    columns: dict[str, str] = {}
    for item in listed:
        name, meaning = next(iter(item.items())) if isinstance(item, dict) else (item, None)
        if meaning is None and name not in shared:
            raise ValueError(f"views.yaml: {view}.{name} has no meaning, here or under columns")
        columns[name] = meaning or shared[name]
    return columns


@cache
def catalogue(directory: Path = VIEWS_DIR) -> tuple[View, ...]:
    """Every reporting view, in the order they are created."""
    described: dict[str, Any] = yaml.safe_load((directory / "views.yaml").read_text("utf-8"))
    shared: dict[str, str] = described["columns"]
    return tuple(
        View(
            name=name,
            grain=view["grain"],
            says=view["says"],
            columns=_columns(view["columns"], shared, name),
            select=(directory / f"{name}.sql").read_text("utf-8").strip(),
        )
        for name, view in described["views"].items()
    )


def _quoted(comment: str) -> str:
    return "'" + comment.replace("'", "''") + "'"


def _create(connection: Connection, view: View) -> None:
    """Create one view, check its columns against its description, and comment it."""
    name = f"{tables.REPORTING}.{view.name}"
    connection.execute(text(f"CREATE VIEW {name} AS\n{view.select}"))
    made = list(connection.execute(text(f"SELECT * FROM {name} WHERE 1 = 0")).keys())
    if made != list(view.columns):
        raise ViewDriftError(
            f"{view.name}.sql makes columns {made}, views.yaml describes {list(view.columns)}"
        )
    connection.execute(text(f"COMMENT ON VIEW {name} IS {_quoted(view.comment)}"))
    for column, meaning in view.columns.items():
        connection.execute(text(f"COMMENT ON COLUMN {name}.{column} IS {_quoted(meaning)}"))
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"GRANT SELECT ON {name} TO {tables.BI_ROLE}"))


def _existing_views(connection: Connection) -> list[str]:
    return list(
        connection.execute(
            text("SELECT table_name FROM information_schema.views WHERE table_schema = :schema"),
            {"schema": tables.REPORTING},
        ).scalars()
    )


def sync_views(connection: Connection) -> bool:
    """Bring the reporting views in step with ``warehouse/views/``; True if any changed.

    Nothing is touched when every view is as its files describe (a run upgrades the warehouse
    each time): otherwise every view is dropped and made again, dependants first. Views of
    others in the schema are left alone.
    """
    wanted = catalogue()
    fingerprints = select(tables.reporting_views.c.view_name, tables.reporting_views.c.fingerprint)
    recorded: dict[str, str] = dict(connection.execute(fingerprints).tuples().all())
    existing = set(_existing_views(connection))
    if recorded == {view.name: view.fingerprint for view in wanted} and existing >= set(recorded):
        return False
    drop_views(connection)
    for view in wanted:
        _create(connection, view)
    connection.execute(
        insert(tables.reporting_views),
        [{"view_name": view.name, "fingerprint": view.fingerprint} for view in wanted],
    )
    return True


def drop_views(connection: Connection) -> None:
    """Drop every view made from the files, dependants first, and forget their fingerprints;
    a view made by an earlier version of the files and since removed goes first."""
    ours = [view.name for view in catalogue()]
    recorded = set(connection.execute(select(tables.reporting_views.c.view_name)).scalars())
    for name in [*sorted(recorded - set(ours)), *reversed(ours)]:
        connection.execute(text(f"DROP VIEW IF EXISTS {tables.REPORTING}.{name}"))
    connection.execute(delete(tables.reporting_views))


def _cell(value: str) -> str:
    return value.replace("|", "\\|")


def readme_section() -> str:
    """The README's table of reporting views and, folded under it, each view's columns."""
    lines = [README_START, "", "| view | one row per | what it says |", "|---|---|---|"]
    for view in catalogue():
        grain = view.grain.removeprefix("One row per ")
        lines.append(f"| `reporting.{view.name}` | {_cell(grain)} | {_cell(view.says)} |")
    for view in catalogue():
        lines += ["", f"<details><summary>Columns of <code>reporting.{view.name}</code></summary>"]
        lines += ["", "| column | meaning |", "|---|---|"]
        lines += [f"| `{c}` | {_cell(meaning)} |" for c, meaning in view.columns.items()]
        lines += ["", "</details>"]
    return "\n".join([*lines, "", README_END])


def with_readme_section(readme: str) -> str:
    """``readme`` with its section of reporting views replaced by the current one."""
    start, end = readme.index(README_START), readme.index(README_END) + len(README_END)
    return readme[:start] + readme_section() + readme[end:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="replace the section in this README")
    arguments = parser.parse_args()
    if arguments.write is None:
        print(readme_section())
        return
    readme: Path = arguments.write
    readme.write_text(with_readme_section(readme.read_text("utf-8")), "utf-8")


if __name__ == "__main__":
    main()
