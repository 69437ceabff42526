"""Tables a person can read in any terminal width, in a pipe and in a log.

A table is printed as a table when its columns fit the width at their natural size; otherwise
each row becomes a block of ``column: value`` lines. Nothing is ever cut short: a file name or
a row number that does not fit one line goes on the next.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text


def print_records(
    console: Console,
    title: str,
    rows: Sequence[dict[str, str]],
    *,
    left: Collection[str] = (),
    styles: Mapping[str, str] | None = None,
    wrap_headers: bool = False,
) -> None:
    """``rows`` (column → text) under ``title``; columns in ``left`` are aligned left, cells of
    a column in ``styles`` get its style. With ``wrap_headers`` a column's name may take more
    than one line, its words whole, so that a table of many columns fits a narrow terminal.
    Text is shown as written, never read as markup (it may come from a file or from Kolada)."""
    styles = styles or {}
    columns = list(rows[0]) if rows else []
    widths = _widths(columns, rows, wrap_headers)
    table = Table(title=title)
    for column, width in zip(columns, widths, strict=True):
        table.add_column(
            column,
            justify="left" if column in left else "right",
            overflow="fold",
            width=width if wrap_headers else None,
        )
    for row in rows:
        table.add_row(*(Text(value, style=styles.get(column, "")) for column, value in row.items()))
    if sum(widths) + 3 * len(columns) + 1 <= console.width:  # cells, padding and rules
        console.print(table)
        return
    console.print(title, style="bold", markup=False, highlight=False)
    width = max(map(len, columns), default=0)
    for number, row in enumerate(rows, start=1):
        console.print(f"[{number}]", style="bold", markup=False, highlight=False)
        for column, value in row.items():
            line = Text(f"  {column:<{width}}  ")
            line.append(value, style=styles.get(column, ""))
            console.print(line, highlight=False)


def _widths(
    columns: Sequence[str], rows: Sequence[dict[str, str]], wrap_headers: bool
) -> list[int]:
    """Each column's width with no cell wrapped: its widest cell, and its name whole (or, with
    ``wrap_headers``, the longest word of its name)."""
    return [
        max(
            [
                max(map(cell_len, column.split()), default=0) if wrap_headers else cell_len(column),
                *(cell_len(row[column]) for row in rows),
            ]
        )
        for column in columns
    ]
