"""CSV the project writes for people: cells a spreadsheet would run as a formula are defused.

A cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return, which some
spreadsheets skip before reading one of those) is executed as a formula when the file is opened
in Excel or LibreOffice. Quarantined rows hold whatever a supplier wrote, so every CSV written
from them is passed through here: such a cell is prefixed with an apostrophe, which spreadsheets
show as text and never run. A plain number (``-3``, ``+46``) is left as it is.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMULA_START = r"^[=+\-@\t\r]"
PLAIN_NUMBER = r"^[+-]?\d+(?:[.,]\d+)?$"


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells cannot be read as spreadsheet formulas."""
    safe = frame.copy()
    for column in safe.columns:
        cells = safe[column]
        if not pd.api.types.is_string_dtype(cells):
            continue
        text = cells.astype(str)
        risky = text.str.contains(FORMULA_START) & ~text.str.fullmatch(PLAIN_NUMBER)
        safe[column] = cells.mask(risky & cells.notna(), "'" + text)
    return safe


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as CSV for Swedish Excel, formulas defused: UTF-8 with a BOM (so Excel
    reads å, ä, ö) and separated by ``;`` (the list separator of Swedish Excel, whose decimal
    comma rules out ``,``), so a double-click opens it in columns."""
    neutralise_formulas(frame).to_csv(path, index=False, encoding="utf-8-sig", sep=";")
