"""Parse: turn the bytes of one export into a table with canonical column names.

Nothing is guessed: an encoding, a delimiter or a header that cannot be decided is a
file-level ``ExportError`` that names the file and the problem in one line. Cell values stay
exactly as written (text); interpreting them is validation's job.
"""

from __future__ import annotations

import codecs
import csv
import functools
import gzip
import io
import itertools
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, TextIO, cast

import fsspec
import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from schemas.catalogue import SURVEYS, Catalogue
from schemas.codebook import Codebook, HeaderError, closest, header_key, match_codebook
from schemas.frames import Distributed
from tasks.fetch import RawFile, SurveyYearFiles

DELIMITERS: tuple[str, ...] = (";", ",")
# A UTF-8 multi-byte sequence inside a file that is not valid UTF-8 as a whole: two encodings mixed.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}")


class ExportError(ValueError):
    """A whole file is refused; the message is one line naming the file and the problem."""

    def __init__(self, source_file: str, problem: str, rows_read: int = 0) -> None:
        super().__init__(f"{source_file}: {problem}")
        self.source_file = source_file
        self.problem = problem
        self.rows_read = rows_read


CHUNK_ROWS = 100_000  # rows of a large export read at a time


@dataclass(frozen=True)
class ParsedExport:
    """One readable export: its rows under canonical column names, all cells as text.

    A file held in memory is read whole into ``frame``; a large one (``RawFile.content`` None)
    keeps only how it is read, ``layout``, and gives its rows through ``chunks``.
    """

    raw: RawFile
    codebook: Codebook
    encoding: str
    frame: pd.DataFrame | None  # canonical columns + source_file + row_number (header is row 1)
    layout: CsvLayout | None = None

    def chunks(self, rows_per_chunk: int | None = None) -> Iterator[pd.DataFrame]:
        """The rows in frames: the whole frame, or a large file read chunk by chunk
        (``CHUNK_ROWS`` rows at a time unless told).

        Raises ExportError for a value under no header, found only while reading.
        """
        if self.frame is not None:
            yield self.frame
        elif self.layout is not None:
            yield from _chunks(self.raw, self.layout, rows_per_chunk or CHUNK_ROWS)


_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
BLOCK_BYTES = 16 * 1024 * 1024  # how much of a large file is looked at at once


def _first_match(
    pattern: re.Pattern[bytes], block: bytes, offset: int, found: tuple[int, int] | None
) -> tuple[int, int] | None:
    """(position in the file, byte) of the first match, keeping one found in an earlier block."""
    if found is not None:
        return found
    match = pattern.search(block)
    return None if match is None else (offset + match.start(), block[match.start()])


@dataclass
class _EncodingScan:
    """What one pass over a file's bytes found, by position in the file."""

    with_bom: bool = False
    utf8_error: int | None = None  # counted after a byte-order mark, as the text starts there
    utf8_text: tuple[int, int] | None = None
    cp1252_undefined: tuple[int, int] | None = None
    control: tuple[int, int] | None = None


def _with_whole_start(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The same bytes, the first block long enough to hold any byte-order mark."""
    start = b""
    iterator = iter(blocks)
    for block in iterator:
        start += block
        if len(start) >= len(codecs.BOM_UTF8) + 1:
            break
    if start:
        yield start
    yield from iterator


def _scan(blocks: Iterable[bytes]) -> _EncodingScan:
    scan = _EncodingScan()
    decoder = codecs.getincrementaldecoder("utf-8")()
    bom = len(codecs.BOM_UTF8)
    offset = 0
    tail = b""
    for number, block in enumerate(_with_whole_start(blocks)):
        if number == 0:
            if block.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                raise ValueError("UTF-16 text is not supported: save the file as UTF-8")
            scan.with_bom = block.startswith(codecs.BOM_UTF8)
        if b"\x00" in block:  # binary: refused at once, not after reading a file of any size
            raise ValueError("binary content (NUL bytes): not a CSV file")
        # a multi-byte sequence may span two blocks: look again at the previous block's tail
        scan.utf8_text = _first_match(
            _UTF8_SEQUENCE, tail + block, offset - len(tail), scan.utf8_text
        )
        tail = (tail + block)[-2:]
        scan.cp1252_undefined = _first_match(
            _CP1252_UNDEFINED, block, offset, scan.cp1252_undefined
        )
        scan.control = _first_match(_CONTROL_BYTES, block, offset, scan.control)
        skip = bom if number == 0 and scan.with_bom else 0
        text_offset = offset - (bom if scan.with_bom and number else 0)
        if scan.utf8_error is None:
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(block[skip:])
            except UnicodeDecodeError as err:
                scan.utf8_error = text_offset - pending + err.start
        offset += len(block)
    if scan.utf8_error is None:
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            scan.utf8_error = offset - pending - (bom if scan.with_bom else 0)
    return scan


def decide_encoding(blocks: Iterable[bytes]) -> str:
    """The encoding of a CSV file read block by block: utf-8-sig, utf-8 or windows-1252.

    One pass in bounded memory, so a file of any size is decided the same way. Raises
    ValueError where the encoding cannot be decided rather than guessing.
    """
    scan = _scan(blocks)
    if scan.with_bom:
        if scan.utf8_error is not None:
            raise ValueError(
                f"starts with a UTF-8 byte-order mark but byte {scan.utf8_error} is not UTF-8"
            )
        return "utf-8-sig"
    if scan.utf8_error is None:
        return "utf-8"
    if scan.utf8_text is not None:
        raise ValueError(
            f"encoding cannot be decided: UTF-8 text at byte {scan.utf8_text[0]} but invalid "
            f"UTF-8 at byte {scan.utf8_error} (mixed encodings)"
        )
    if scan.cp1252_undefined is not None:
        position, byte = scan.cp1252_undefined
        raise ValueError(
            "encoding cannot be decided: neither UTF-8 nor Windows-1252 "
            f"(byte 0x{byte:02x} at {position})"
        )
    if scan.control is not None:
        raise ValueError(f"control character at character {scan.control[0]}: not a text file")
    return "windows-1252"


def _records(source: str | TextIO, delimiter: str) -> Iterator[list[str]]:
    """CSV records of a text or text stream; a quoting error is a malformed file, not a crash."""
    lines = io.StringIO(source, newline="") if isinstance(source, str) else source
    try:
        yield from csv.reader(lines, delimiter=delimiter)
    except csv.Error as err:
        raise ValueError(f"malformed CSV: {err}") from err


def _header_cells(text: str, delimiter: str) -> list[str]:
    first_record = next(_records(text, delimiter), [])
    return [cell.strip() for cell in first_record]


def _ends_with_blank_line(tail: bytes) -> bool:
    return tail.endswith((b"\n\n", b"\r\n\r\n"))


def _without_final_blank_row(frame: pd.DataFrame, ends_with_blank_line: bool) -> pd.DataFrame:
    """A file ending in a blank line yields one empty trailing row: it is not a data row."""
    if not ends_with_blank_line or not len(frame):
        return frame
    cells = frame.columns.drop(["source_file", "row_number"], errors="ignore")
    return frame.iloc[:-1] if frame[cells].iloc[-1].eq("").all() else frame


def _csv_options(delimiter: str, width: int) -> dict[str, Any]:
    """How pandas reads data rows: every cell as the text written, positional columns."""
    return {
        "sep": delimiter,
        "header": None,
        "skiprows": 1,
        "names": range(width),
        "index_col": False,  # extra leading fields of a long first row are never an index
        "dtype": str,
        "keep_default_na": False,
        "na_filter": False,
        "skip_blank_lines": False,
        "engine": "c",
    }


def _malformed(err: pd.errors.ParserError) -> ValueError:
    message = str(err).strip().rstrip(".").removeprefix("Error tokenizing data. C error: ")
    return ValueError(f"malformed CSV: {message}")


def _refuse_ragged_records(source: str | TextIO, delimiter: str, width: int) -> int:
    """A record with fewer or more fields than the header (not a blank line) refuses the file.

    The reader pads a short record with empty cells, which would load as unanswered questions:
    a file cut short, or a row that lost its delimiters, must not pass as a valid answer. A long
    record has no column for its extra fields, which must never be dropped or shift the others.
    Records are counted as they are read, so a file of any size is checked in bounded memory.
    Returns the number of records, blank lines and the header included.
    """
    records = _records(source, delimiter)
    seen = 0
    first: tuple[int, int] | None = None
    short_rows = long_rows = 0
    while len(fields := np.fromiter(map(len, itertools.islice(records, 100_000)), dtype=np.int64)):
        ragged = np.flatnonzero((fields > 0) & (fields != width))
        if len(ragged) and first is None:
            first = (seen + int(ragged[0]) + 1, int(fields[ragged[0]]))
        short_rows += int(((fields > 0) & (fields < width)).sum())
        long_rows += int((fields > width).sum())
        seen += len(fields)
    if first is None:
        return seen
    row, count = first
    if count > width:
        raise ValueError(
            f"malformed CSV: row {row} has {count} field(s), the header {width} "
            f"({long_rows} long row(s) in all)"
        )
    raise ValueError(
        f"malformed CSV: row {row} has {count} field(s), the header {width} "
        f"({short_rows} short row(s) in all; is the file cut short?)"
    )


def _read_workbook(content: bytes) -> tuple[list[str], pd.DataFrame]:
    """Header and data of the first sheet of an .xlsx workbook, every cell as text.

    Read with calamine (Rust): the same text as openpyxl, about seven times faster, which
    matters when a year's exports include a workbook per kommun."""
    if not zipfile.is_zipfile(io.BytesIO(content)):
        raise ValueError("not an .xlsx workbook (not a zip archive)")
    try:
        sheet = pd.read_excel(
            io.BytesIO(content),
            sheet_name=0,
            header=None,
            dtype=str,
            na_filter=False,
            engine="calamine",
        )
    except Exception as err:  # calamine raises several types for damaged workbooks
        raise ValueError(f"unreadable .xlsx workbook ({type(err).__name__}: {err})") from err
    if sheet.empty:
        raise ValueError("the first sheet is empty")
    header = [str(cell).strip() for cell in sheet.iloc[0]]
    return header, sheet.iloc[1:].reset_index(drop=True).set_axis(range(len(header)), axis=1)


def _drop_unnamed_empty_columns(
    header: list[str], data: pd.DataFrame
) -> tuple[list[str], pd.DataFrame]:
    """Columns with neither a name nor any value (a trailing delimiter, a blank Excel column);
    a value in a column without a name refuses the file (see ``_refuse_values_without_header``)."""
    keep = [i for i, name in enumerate(header) if name]
    _refuse_values_without_header(data, [i for i, name in enumerate(header) if not name], 2)
    return [header[i] for i in keep], data[keep].set_axis(range(len(keep)), axis=1)


def _refuse_values_without_header(data: pd.DataFrame, unnamed: list[int], first_row: int) -> None:
    """A value in a column the header does not name (a workbook row longer than its header)
    cannot be placed: the file is refused naming the first such row (``first_row`` is that of
    ``data``'s first row) and column, counted from 1."""
    if not unnamed:  # the common case, checked per file: no frame operation for nothing
        return
    filled = data[unnamed].apply(lambda column: column.str.strip().ne("")).to_numpy()
    rows = np.flatnonzero(filled.any(axis=1)) if filled.size else np.empty(0, dtype=np.int64)
    if len(rows):
        column = unnamed[int(np.flatnonzero(filled[rows[0]])[0])]
        raise ValueError(
            f"row {first_row + int(rows[0])} has a value in column {column + 1}, which has no "
            f"header ({len(rows)} row(s) in all)"
        )


def parse_export(raw: RawFile, survey: str, year: int, catalogue: Catalogue) -> ParsedExport:
    """Read one export and map its header through the codebook that explains it.

    A CSV file is read one way whatever its size (``_decide_layout``, then ``_chunks``): a file
    held in memory is its one chunk, read here; a large one is read chunk by chunk later.
    Raises ExportError (file-level refusal) for anything that cannot be decided.
    """
    if not raw.source_file.lower().endswith(".xlsx"):
        try:
            book, layout = _decide_layout(raw, survey, year, catalogue)
        except (ValueError, HeaderError) as err:
            raise ExportError(raw.source_file, str(err)) from err
        if raw.content is None:
            return ParsedExport(raw, book, layout.encoding, None, layout)
        (frame,) = _chunks(raw, layout, rows_per_chunk=None)
        return ParsedExport(raw, book, layout.encoding, frame)
    try:
        header, data = _drop_unnamed_empty_columns(*_read_workbook(raw.read()))
        book, columns = match_codebook(header, survey, year, catalogue)
    except (ValueError, HeaderError) as err:
        raise ExportError(raw.source_file, str(err)) from err
    if data.empty:
        raise ExportError(raw.source_file, "no data rows (header only)")
    frame = data.set_axis(columns, axis=1)
    frame.insert(0, "row_number", range(2, len(frame) + 2))
    frame.insert(0, "source_file", raw.source_file)
    return ParsedExport(raw=raw, codebook=book, encoding="xlsx", frame=frame)


def _choose_delimiter(text: str, survey: str, year: int, catalogue: Catalogue) -> str:
    """The delimiter whose header split a codebook explains; both or neither is an error.

    When neither does, the complaint is about the header as the delimiter splitting it into
    more cells reads it: the other one sees a single long name, not the columns at fault.
    """
    fits: list[str] = []
    complaints: list[tuple[int, HeaderError]] = []
    for delimiter in DELIMITERS:
        header = [cell for cell in _header_cells(text, delimiter) if cell]
        try:
            match_codebook(header, survey, year, catalogue)
        except HeaderError as err:
            complaints.append((len(header), err))
        else:
            fits.append(delimiter)
    if len(fits) > 1:
        raise ValueError("delimiter cannot be decided: the header reads with both ';' and ','")
    if not fits:
        widest = max(cells for cells, _ in complaints)
        complaint = closest([err for cells, err in complaints if cells == widest])
        raise HeaderError(
            f"header matches no codebook: {complaint}" + _header_hint(text, survey, year, catalogue)
        )
    return fits[0]


OTHER_DELIMITERS = {"|": "'|'", "\t": "tabs"}


def _header_hint(text: str, survey: str, year: int, catalogue: Catalogue) -> str:
    """Why a header no codebook explains may have failed: the file is separated by another
    delimiter than ';' or ',', or it is an export of the other survey."""
    first_line = text.split("\n", 1)[0]
    for delimiter, name in OTHER_DELIMITERS.items():
        if delimiter in first_line and not any(d in first_line for d in DELIMITERS):
            return f" (the columns are separated by {name}: an export must use ';' or ',')"
    for other in (other for other in SURVEYS if other != survey):
        for delimiter in DELIMITERS:
            header = [cell for cell in _header_cells(text, delimiter) if cell]
            try:
                match_codebook(header, other, year, catalogue)
            except HeaderError:
                continue
            return f" (it is the header of a {other} export: is it the wrong survey?)"
    return ""


@dataclass(frozen=True)
class CsvLayout:
    """How a large CSV export is read, decided once from all its bytes and its header."""

    encoding: str
    delimiter: str
    width: int  # fields in the header, the unnamed ones included
    named: list[int]  # positions of the named fields, in the order of ``columns``
    columns: list[str]  # their canonical names
    ends_with_blank_line: bool
    data_rows: int  # records under the header, a final blank line included


@dataclass
class _Seen:
    """What passed through ``seen``: whether any byte was not white space, and the last bytes."""

    text: bool = False
    tail: bytes = b""

    def seen(self, blocks: Iterator[bytes]) -> Iterator[bytes]:
        for block in blocks:
            self.text = self.text or bool(block.strip())
            self.tail = (self.tail + block)[-4:]
            yield block


def _open_bytes(raw: RawFile) -> BinaryIO:
    """The file's bytes, decompressed when its name says gzip: from memory when it is held,
    else read from where it lies."""
    if raw.content is None:
        return fsspec.open(raw.location, "rb", compression="infer").open()  # type: ignore[no-any-return]
    held = io.BytesIO(raw.content)
    if raw.source_file.lower().endswith(".gz"):
        return cast(BinaryIO, gzip.GzipFile(fileobj=held))
    return held


def _open_text(raw: RawFile, encoding: str) -> TextIO:
    """The file as text (see ``_open_bytes``), line breaks inside quoted cells kept."""
    return io.TextIOWrapper(_open_bytes(raw), encoding=encoding, newline="")


def _decide_layout(
    raw: RawFile, survey: str, year: int, catalogue: Catalogue
) -> tuple[Codebook, CsvLayout]:
    """How ``parse_export`` reads a CSV export: its codebook, and a layout whose header the
    codebook explains and which has data rows."""
    encoding, head, passed = _start(raw)
    delimiter = _choose_delimiter(head, survey, year, catalogue)
    header = _header_cells(head, delimiter)
    named = [i for i, cell in enumerate(header) if cell]
    book, columns = match_codebook([header[i] for i in named], survey, year, catalogue)
    layout = _layout(
        raw, encoding, passed, delimiter=delimiter, width=len(header), named=named, columns=columns
    )
    if layout.data_rows - layout.ends_with_blank_line <= 0:
        raise ValueError("no data rows (header only)")
    return book, layout


def _start(raw: RawFile) -> tuple[str, str, _Seen]:
    """The file's encoding, decided over every byte, and the text of its start (the header's
    and the delimiter's to decide); an empty file is refused."""
    passed = _Seen()
    try:
        with _open_bytes(raw) as handle:
            blocks = iter(functools.partial(handle.read, BLOCK_BYTES), b"")
            encoding = decide_encoding(passed.seen(blocks))
    except (OSError, EOFError) as err:
        if not raw.source_file.lower().endswith(".gz"):
            raise
        raise ValueError(f"not a readable gzip file ({err})") from err
    if not passed.text:
        raise ValueError("empty file")
    with _open_text(raw, encoding) as text:
        return encoding, text.read(1_000_000), passed


def _layout(
    raw: RawFile,
    encoding: str,
    passed: _Seen,
    *,
    delimiter: str,
    width: int,
    named: list[int],
    columns: list[str],
) -> CsvLayout:
    """The layout of a CSV file whose header is decided; a file with a short or long row or
    without its last line break is refused here, in one more pass. A value under no header is
    only found while reading: a consumer publishes nothing before the chunks are exhausted."""
    if not passed.tail.endswith((b"\n", b"\r")):
        raise ValueError("the last row has no line break: the file may be cut short")
    with _open_text(raw, encoding) as text:
        records = _refuse_ragged_records(text, delimiter, width)
    ends_with_blank_line = _ends_with_blank_line(passed.tail)
    return CsvLayout(encoding, delimiter, width, named, columns, ends_with_blank_line, records - 1)


def _chunks(raw: RawFile, layout: CsvLayout, rows_per_chunk: int | None) -> Iterator[pd.DataFrame]:
    """The rows of an export, ``rows_per_chunk`` at a time (None: all in one), as
    ``parse_export`` frames them."""
    unnamed = [i for i in range(layout.width) if i not in layout.named]
    next_row = 2
    with _open_text(raw, layout.encoding) as text:
        reader = pd.read_csv(
            text,
            chunksize=rows_per_chunk or max(layout.data_rows, 1),
            **_csv_options(layout.delimiter, layout.width),
        )
        previous: pd.DataFrame | None = None  # held back: the last may end in a blank row
        try:
            for data in reader:
                try:
                    _refuse_values_without_header(data, unnamed, next_row)
                except ValueError as err:
                    raise ExportError(raw.source_file, str(err)) from err
                if previous is not None:
                    yield previous
                named = data if not unnamed else data[layout.named]
                previous = named.set_axis(layout.columns, axis=1)
                previous.insert(0, "row_number", range(next_row, next_row + len(previous)))
                previous.insert(0, "source_file", raw.source_file)
                next_row += len(previous)
        except pd.errors.ParserError as err:
            raise ExportError(raw.source_file, str(_malformed(err))) from err
    if previous is not None:
        yield _without_final_blank_row(previous, layout.ends_with_blank_line)


def parse_distributed(raw: RawFile, catalogue: Catalogue) -> pd.DataFrame:
    """``utdelade.csv``: questionnaires handed out per (kommun, enkät); any bad row refuses it.

    Response rates are only as good as every count, so one bad row refuses the file rather
    than publishing rates for some municipalities and silently not for others.
    """
    expected = set(Distributed.to_schema().columns)
    try:
        encoding, head, passed = _start(raw)
        delimiter = next(
            (d for d in DELIMITERS if {header_key(h) for h in _header_cells(head, d)} >= expected),
            None,
        )
        if delimiter is None:
            raise ValueError(f"header must name {', '.join(sorted(expected))}")
        header = [header_key(h) for h in _header_cells(head, delimiter)]
        columns = list(range(len(header)))
        layout = _layout(
            raw,
            encoding,
            passed,
            delimiter=delimiter,
            width=len(header),
            named=columns,
            columns=header,
        )
        chunks = list(_chunks(raw, layout, rows_per_chunk=None))
        frame = (
            pd.concat(chunks, ignore_index=True)
            if chunks
            else pd.DataFrame(columns=["source_file", "row_number", *header], dtype=str)
        )
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
    files: SurveyYearFiles,
    survey: str,
    year: int,
    catalogue: Catalogue,
    read: Callable[[str], None] | None = None,
) -> ParsedSurveyYear:
    """Parse every file; a refused file is recorded and the others go on. ``read`` is told the
    name of each file once it is read (a progress display)."""
    exports: list[ParsedExport] = []
    refused: list[tuple[RawFile, ExportError]] = []
    for raw in files.exports:
        try:
            exports.append(parse_export(raw, survey, year, catalogue))
        except ExportError as err:
            refused.append((raw, err))
        if read is not None:
            read(raw.source_file)
    distributed = None
    if files.distributed is not None:
        try:
            distributed = (files.distributed, parse_distributed(files.distributed, catalogue))
        except ExportError as err:
            refused.append((files.distributed, err))
        if read is not None:
            read(files.distributed.source_file)
    return ParsedSurveyYear(exports=exports, refused=refused, distributed=distributed)


parse_task = task(name="parse", cache_policy=NO_CACHE)(parse_survey_year)


def split_files(files: SurveyYearFiles, parts: int) -> list[SurveyYearFiles]:
    """The exports in ``parts`` consecutive batches (hand-out counts with the first), so that
    parsing can run on several workers and ``combine_parsed`` restores the original order."""
    parts = max(1, min(parts, len(files.exports)))
    bounds = [round(i * len(files.exports) / parts) for i in range(parts + 1)]
    return [
        SurveyYearFiles(
            exports=files.exports[start:end], distributed=files.distributed if i == 0 else None
        )
        for i, (start, end) in enumerate(itertools.pairwise(bounds))
    ]


def combine_parsed(parts: list[ParsedSurveyYear]) -> ParsedSurveyYear:
    """One survey-year again from the batches of ``split_files``, in their order."""
    distributed = [part.distributed for part in parts if part.distributed is not None]
    return ParsedSurveyYear(
        exports=[export for part in parts for export in part.exports],
        refused=[refusal for part in parts for refusal in part.refused],
        distributed=distributed[0] if distributed else None,
    )
