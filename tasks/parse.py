"""Parse: turn the bytes of one export into a table with canonical column names.

Nothing is guessed: an encoding, a delimiter or a header that cannot be decided is a
file-level ``ExportError`` that names the file and the problem in one line. Cell values stay
exactly as written (text); interpreting them is validation's job.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import zipfile
from dataclasses import dataclass

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from schemas.catalogue import Catalogue
from schemas.codebook import Codebook, HeaderError, header_key, match_codebook
from schemas.frames import Distributed
from tasks.fetch import RawFile, SurveyYearFiles

DELIMITERS: tuple[str, ...] = (";", ",")
# A UTF-8 multi-byte sequence inside a file that is not valid UTF-8 as a whole: two encodings mixed.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class ExportError(ValueError):
    """A whole file is refused; the message is one line naming the file and the problem."""

    def __init__(self, source_file: str, problem: str, rows_read: int = 0) -> None:
        super().__init__(f"{source_file}: {problem}")
        self.source_file = source_file
        self.problem = problem
        self.rows_read = rows_read


@dataclass(frozen=True)
class ParsedExport:
    """One readable export: its rows under canonical column names, all cells as text."""

    raw: RawFile
    codebook: Codebook
    encoding: str
    frame: pd.DataFrame  # canonical columns + source_file + row_number (header is row 1)


def decode(content: bytes) -> tuple[str, str]:
    """Text and encoding of a CSV file: UTF-8 (with or without BOM) or Windows-1252.

    Raises ValueError where the encoding cannot be decided rather than guessing.
    """
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValueError("UTF-16 text is not supported: save the file as UTF-8")
    if b"\x00" in content:
        raise ValueError("binary content (NUL bytes): not a CSV file")
    if content.startswith(codecs.BOM_UTF8):
        try:
            return content[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as err:
            raise ValueError(
                f"starts with a UTF-8 byte-order mark but byte {err.start} is not UTF-8"
            ) from err
    try:
        return content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        mixed = _UTF8_SEQUENCE.search(content)
        if mixed:
            raise ValueError(
                f"encoding cannot be decided: UTF-8 text at byte {mixed.start()} but invalid "
                f"UTF-8 at byte {utf8_error.start} (mixed encodings)"
            ) from utf8_error
        try:
            text = content.decode("cp1252")
        except UnicodeDecodeError as err:
            raise ValueError(
                "encoding cannot be decided: neither UTF-8 nor Windows-1252 "
                f"(byte 0x{content[err.start]:02x} at {err.start})"
            ) from err
    control = _CONTROL_CHARS.search(text)
    if control:
        raise ValueError(f"control character at character {control.start()}: not a text file")
    return text, "windows-1252"


def _header_cells(text: str, delimiter: str) -> list[str]:
    first_record = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    return [cell.strip() for cell in first_record]


def _read_delimited(text: str, delimiter: str, width: int) -> pd.DataFrame:
    """Data rows as text, positional columns; a row wider than the header is an error."""
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=None,
            skiprows=1,
            names=range(width),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
        )
    except pd.errors.ParserError as err:
        message = str(err).strip().rstrip(".").removeprefix("Error tokenizing data. C error: ")
        raise ValueError(f"malformed CSV: {message}") from err
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=range(width), dtype=str)
    # A file ending in a blank line yields one empty trailing row: it is not a data row.
    if len(frame) and frame.iloc[-1].eq("").all() and text.endswith(("\n\n", "\r\n\r\n")):
        frame = frame.iloc[:-1]
    return frame


def _read_workbook(content: bytes) -> tuple[list[str], pd.DataFrame]:
    """Header and data of the first sheet of an .xlsx workbook, every cell as text."""
    if not zipfile.is_zipfile(io.BytesIO(content)):
        raise ValueError("not an .xlsx workbook (not a zip archive)")
    try:
        sheet = pd.read_excel(
            io.BytesIO(content),
            sheet_name=0,
            header=None,
            dtype=str,
            na_filter=False,
            engine="openpyxl",
        )
    except Exception as err:  # openpyxl raises many types for damaged workbooks
        raise ValueError(f"unreadable .xlsx workbook ({type(err).__name__}: {err})") from err
    if sheet.empty:
        raise ValueError("the first sheet is empty")
    header = [str(cell).strip() for cell in sheet.iloc[0]]
    return header, sheet.iloc[1:].reset_index(drop=True).set_axis(range(len(header)), axis=1)


def _drop_unnamed_empty_columns(
    header: list[str], data: pd.DataFrame
) -> tuple[list[str], pd.DataFrame]:
    """Columns with neither a name nor any value (a trailing delimiter, a blank Excel column)."""
    keep = [i for i, name in enumerate(header) if name or data[i].str.strip().ne("").any()]
    return [header[i] for i in keep], data[keep].set_axis(range(len(keep)), axis=1)


def _csv_text(raw: RawFile) -> tuple[str, str]:
    content = raw.content
    if raw.source_file.lower().endswith(".gz"):
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError) as err:
            raise ValueError(f"not a readable gzip file ({err})") from err
    if not content.strip():
        raise ValueError("empty file")
    return decode(content)


def parse_export(raw: RawFile, survey: str, year: int, catalogue: Catalogue) -> ParsedExport:
    """Read one export and map its header through the codebook that explains it.

    Raises ExportError (file-level refusal) for anything that cannot be decided.
    """
    try:
        if raw.source_file.lower().endswith(".xlsx"):
            header, data = _read_workbook(raw.content)
            encoding = "xlsx"
        else:
            text, encoding = _csv_text(raw)
            delimiter = _choose_delimiter(text, survey, year, catalogue)
            header = _header_cells(text, delimiter)
            data = _read_delimited(text, delimiter, len(header))
        header, data = _drop_unnamed_empty_columns(header, data)
        book, columns = match_codebook(header, survey, year, catalogue)
    except (ValueError, HeaderError) as err:
        raise ExportError(raw.source_file, str(err)) from err
    if data.empty:
        raise ExportError(raw.source_file, "no data rows (header only)")
    frame = data.set_axis(columns, axis=1)
    frame.insert(0, "row_number", range(2, len(frame) + 2))
    frame.insert(0, "source_file", raw.source_file)
    return ParsedExport(raw=raw, codebook=book, encoding=encoding, frame=frame)


def _choose_delimiter(text: str, survey: str, year: int, catalogue: Catalogue) -> str:
    """The delimiter whose header split a codebook explains; both or neither is an error."""
    fits: list[str] = []
    complaints: list[str] = []
    for delimiter in DELIMITERS:
        header = [cell for cell in _header_cells(text, delimiter) if cell]
        try:
            match_codebook(header, survey, year, catalogue)
        except HeaderError as err:
            complaints.append(str(err))
        else:
            fits.append(delimiter)
    if len(fits) > 1:
        raise ValueError("delimiter cannot be decided: the header reads with both ';' and ','")
    if not fits:
        raise HeaderError(f"header matches no codebook: {min(complaints, key=len)}")
    return fits[0]


def parse_distributed(raw: RawFile, catalogue: Catalogue) -> pd.DataFrame:
    """``utdelade.csv``: questionnaires handed out per (kommun, enkät); any bad row refuses it.

    Response rates are only as good as every count, so one bad row refuses the file rather
    than publishing rates for some municipalities and silently not for others.
    """
    try:
        text, _ = _csv_text(raw)
        expected = set(Distributed.to_schema().columns)
        delimiter = next(
            (d for d in DELIMITERS if {header_key(h) for h in _header_cells(text, d)} >= expected),
            None,
        )
        if delimiter is None:
            raise ValueError(f"header must name {', '.join(sorted(expected))}")
        header = [header_key(h) for h in _header_cells(text, delimiter)]
        frame = _read_delimited(text, delimiter, len(header)).set_axis(header, axis=1)
    except ValueError as err:
        raise ExportError(raw.source_file, str(err)) from err
    frame = frame[list(Distributed.to_schema().columns)].apply(lambda column: column.str.strip())
    frame["kommun_kod"] = frame["kommun_kod"].str.zfill(4)
    frame["verksamhet"] = frame["verksamhet"].str.upper()
    counts = pd.to_numeric(frame["antal_utdelade"], errors="coerce")
    problems = [
        (
            frame.index[~frame["kommun_kod"].isin(catalogue.kommun_codes)],
            "kommun_kod",
            "unknown kommun_kod",
        ),
        (
            frame.index[counts.isna() | (counts < 0) | (counts % 1 != 0)],
            "antal_utdelade",
            "not a whole number ≥ 0",
        ),
        (
            frame.index[frame.duplicated(["kommun_kod", "verksamhet"], keep=False)],
            "verksamhet",
            "given twice",
        ),
    ]
    for rows, column, rule in problems:
        if len(rows):
            first = int(rows[0])
            raise ExportError(
                raw.source_file,
                f"row {first + 2}, column {column}: {rule} ({frame.at[first, column]!r}); "
                f"{len(rows)} row(s) in all",
                rows_read=len(frame),
            )
    return Distributed.validate(frame.assign(antal_utdelade=counts.astype(int)))


@dataclass(frozen=True)
class ParsedSurveyYear:
    """One survey-year's readable exports, its refused files with why, and the hand-out counts."""

    exports: list[ParsedExport]
    refused: list[tuple[RawFile, ExportError]]
    distributed: tuple[RawFile, pd.DataFrame] | None


def parse_survey_year(
    files: SurveyYearFiles, survey: str, year: int, catalogue: Catalogue
) -> ParsedSurveyYear:
    """Parse every file; a refused file is recorded and the others go on."""
    exports: list[ParsedExport] = []
    refused: list[tuple[RawFile, ExportError]] = []
    for raw in files.exports:
        try:
            exports.append(parse_export(raw, survey, year, catalogue))
        except ExportError as err:
            refused.append((raw, err))
    distributed = None
    if files.distributed is not None:
        try:
            distributed = (files.distributed, parse_distributed(files.distributed, catalogue))
        except ExportError as err:
            refused.append((files.distributed, err))
    return ParsedSurveyYear(exports=exports, refused=refused, distributed=distributed)


parse_task = task(name="parse", cache_policy=NO_CACHE)(parse_survey_year)
