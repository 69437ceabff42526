"""Parsing real files: encodings, delimiters, workbooks, archives and what must be refused."""

from __future__ import annotations

import gzip
import io
import tracemalloc
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from schemas.catalogue import Catalogue
from tasks.fetch import RawFile, fetch_paths
from tasks.parse import ExportError, decide_encoding, parse_export

HEADER = [
    "kommun_kod",
    "verksamhet",
    "svar_id",
    "kon",
    "IFO_KONTAKT",
    "IFO_INFO",
    "IFO_FORSTAELSE",
    "IFO_SYNPUNKTER",
    "IFO_PAVERKA",
    "IFO_NOJD",
    "IFO_FORANDRING",
]
ROW = ["0880", "EKB", "s1", "K", "1", "2", "1", "1", "2", "1", "3"]


def raw(name: str, content: bytes) -> RawFile:
    return RawFile(source_file=name, source_url=f"memory://{name}", content=content)


def csv_bytes(
    delimiter: str = ";", encoding: str = "utf-8", rows: list[list[str]] | None = None
) -> bytes:
    lines = [HEADER, *(rows if rows is not None else [ROW])]
    return "".join(delimiter.join(line) + "\n" for line in lines).encode(encoding)


@pytest.mark.parametrize(
    ("content", "text", "encoding"),
    [
        ("Mycket lätt".encode(), "Mycket lätt", "utf-8"),
        (b"\xef\xbb\xbfMycket l\xc3\xa4tt", "Mycket lätt", "utf-8-sig"),
        ("Mycket lätt".encode("cp1252"), "Mycket lätt", "windows-1252"),
        (b"plain ascii", "plain ascii", "utf-8"),
    ],
)
def test_the_encoding_is_decided(content: bytes, text: str, encoding: str) -> None:
    assert decide_encoding([content]) == encoding
    assert content.decode(encoding) == text


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("text".encode("utf-16"), "UTF-16"),
        (b"a;b\x00c", "NUL bytes"),
        ("lätt".encode() + "lätt".encode("cp1252"), "mixed encodings"),
        (b"abc\x81def", "neither UTF-8 nor Windows-1252"),
        (b"\xef\xbb\xbfabc\xff", "byte-order mark"),
        (b"abc\xe5\x01", "control character"),
    ],
)
def test_an_encoding_that_cannot_be_decided_is_refused(content: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        decide_encoding([content])


@pytest.mark.parametrize("delimiter", [";", ","])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_csv_of_every_accepted_encoding_and_delimiter(
    catalogue: Catalogue, delimiter: str, encoding: str
) -> None:
    parsed = parse_export(raw("a.csv", csv_bytes(delimiter, encoding)), "ifo", 2024, catalogue)
    assert list(parsed.frame.columns) == ["source_file", "row_number", *HEADER]
    assert parsed.frame.iloc[0][HEADER].tolist() == ROW
    assert parsed.frame["row_number"].tolist() == [2]


def test_header_is_matched_trimmed_and_case_insensitively(catalogue: Catalogue) -> None:
    content = (
        csv_bytes().replace(b"kommun_kod;", b" Kommun_Kod ;").replace(b"IFO_NOJD", b"ifo_nojd")
    )
    parsed = parse_export(raw("a.csv", content), "ifo", 2024, catalogue)
    assert "kommun_kod" in parsed.frame.columns
    assert "IFO_NOJD" in parsed.frame.columns


def test_gzip_export(catalogue: Catalogue) -> None:
    parsed = parse_export(raw("a.csv.gz", gzip.compress(csv_bytes())), "ifo", 2024, catalogue)
    assert parsed.frame.iloc[0]["svar_id"] == "s1"


def test_corrupt_gzip_is_refused(catalogue: Catalogue) -> None:
    with pytest.raises(ExportError, match=r"^a\.csv\.gz: not a readable gzip file"):
        parse_export(raw("a.csv.gz", gzip.compress(csv_bytes())[:20]), "ifo", 2024, catalogue)


def test_workbook_keeps_cells_as_text(catalogue: Catalogue) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append([880, "EKB", "s1", "M", 1, 2, 1, 1, 2, 1, 3])
    book.create_sheet("other").append(["ignored"])
    buffer = io.BytesIO()
    book.save(buffer)
    parsed = parse_export(raw("a.xlsx", buffer.getvalue()), "ifo", 2024, catalogue)
    row = parsed.frame.iloc[0]
    assert (row["kommun_kod"], row["IFO_INFO"], row["row_number"]) == ("880", "2", 2)


def test_row_numbers_follow_records_not_lines(catalogue: Catalogue) -> None:
    second = [*ROW[:2], '"s2\nwith a line break"', *ROW[3:]]
    parsed = parse_export(raw("a.csv", csv_bytes(rows=[ROW, second, ROW])), "ifo", 2024, catalogue)
    assert parsed.frame["row_number"].tolist() == [2, 3, 4]
    assert parsed.frame["svar_id"].tolist()[1] == "s2\nwith a line break"


def test_trailing_delimiters_are_not_columns(catalogue: Catalogue) -> None:
    content = b"".join(line + b";\n" for line in csv_bytes().splitlines())
    parsed = parse_export(raw("a.csv", content), "ifo", 2024, catalogue)
    assert list(parsed.frame.columns)[2:] == HEADER


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (csv_bytes().replace(b"IFO_INFO", b"IFO_KONTAKT"), "given more than once: IFO_KONTAKT"),
        (csv_bytes().replace(b"kon;", b"gender;"), "unknown column(s) 'gender'"),
        (b"hello world\n1\n", "header matches no codebook"),
        (csv_bytes(rows=[]), "no data rows"),
        (b"   \n", "empty file"),
    ],
)
def test_refused_files_say_why_in_one_line(
    catalogue: Catalogue, content: bytes, problem: str
) -> None:
    with pytest.raises(ExportError) as refused:
        parse_export(raw("bad.csv", content), "ifo", 2024, catalogue)
    message = str(refused.value)
    assert message.startswith("bad.csv: ")
    assert problem in message
    assert "\n" not in message


def chunked(path: Path, catalogue: Catalogue, rows_per_chunk: int) -> pd.DataFrame:
    """The file fetched as one too large to hold, parsed, and its chunks joined."""
    (large,) = fetch_paths([str(path)], stream_above=0).exports
    assert large.content is None
    parsed = parse_export(large, "ifo", 2024, catalogue)
    assert parsed.frame is None
    return pd.concat(list(parsed.chunks(rows_per_chunk)), ignore_index=True)


def assert_same_rows(path: Path, content: bytes, catalogue: Catalogue) -> None:
    path.write_bytes(content)
    whole = parse_export(raw(str(path), content), "ifo", 2024, catalogue).frame
    for rows_per_chunk in (1, 3, 100):
        pd.testing.assert_frame_equal(chunked(path, catalogue, rows_per_chunk), whole)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
@pytest.mark.parametrize("name", ["large.csv", "large.csv.gz"])
def test_a_large_file_read_in_chunks_gives_the_same_rows(
    tmp_path: Path, catalogue: Catalogue, encoding: str, name: str
) -> None:
    rows = [[*ROW[:2], f"s{n}", "Kvinna", "Mycket lätt", *ROW[5:]] for n in range(7)]
    content = csv_bytes(encoding=encoding, rows=rows)
    assert_same_rows(
        tmp_path / name, gzip.compress(content) if name.endswith(".gz") else content, catalogue
    )


@pytest.mark.parametrize(
    "content",
    [
        csv_bytes(rows=[ROW, ROW]) + b"\n",  # the blank line a spreadsheet leaves at the end
        csv_bytes(rows=[ROW]) + b"\n" + csv_bytes(rows=[ROW]).split(b"\n", 1)[1],  # one inside
        csv_bytes(rows=[]) + b"\n\n",  # only blank lines under the header
    ],
)
def test_blank_lines_read_in_chunks_as_in_a_whole_file(
    tmp_path: Path, catalogue: Catalogue, content: bytes
) -> None:
    assert_same_rows(tmp_path / "blank.csv", content, catalogue)


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (csv_bytes(rows=[ROW, ROW[:5]]), "bad.csv"),  # a short row
        (csv_bytes(rows=[ROW, [*ROW, "1"]]), "bad.csv"),  # a long row
        (csv_bytes()[:-3], "bad.csv"),  # no line break at the end
        (csv_bytes() + "lätt\n".encode("cp1252") + "lätt\n".encode(), "bad.csv"),  # mixed
        (b"", "bad.csv"),
        (b"  \n \n", "bad.csv"),
        (csv_bytes(rows=[]), "bad.csv"),  # header only
        (csv_bytes().replace(b"kon;", b"gender;"), "bad.csv"),
        (b"\x1f\x8b not really gzip", "bad.csv.gz"),
        (gzip.compress(csv_bytes())[:-10], "bad.csv.gz"),  # a cut archive
    ],
)
def test_the_chunked_reader_refuses_as_the_whole_file_reader_does(
    tmp_path: Path, catalogue: Catalogue, content: bytes, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ExportError) as whole:
        parse_export(raw(str(path), content), "ifo", 2024, catalogue)
    with pytest.raises(ExportError) as in_chunks:
        chunked(path, catalogue, 1)
    assert str(in_chunks.value) == str(whole.value)


LONG_FIRST_ROW = csv_bytes(rows=[[*ROW, "EXTRA"], [*ROW[:2], "s2", *ROW[3:]]])


@pytest.mark.parametrize("name", ["long.csv", "long.csv.gz"])
def test_a_first_row_longer_than_the_header_is_refused_with_its_row(
    tmp_path: Path, catalogue: Catalogue, name: str
) -> None:
    """Extra fields must not be taken as an index, shifting every column of every row."""
    content = gzip.compress(LONG_FIRST_ROW) if name.endswith(".gz") else LONG_FIRST_ROW
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ExportError) as whole:
        parse_export(raw(str(path), content), "ifo", 2024, catalogue)
    assert str(whole.value) == (
        f"{path}: malformed CSV: row 2 has 12 field(s), the header 11 (1 long row(s) in all)"
    )
    with pytest.raises(ExportError) as in_chunks:
        chunked(path, catalogue, 1)
    assert str(in_chunks.value) == str(whole.value)


def test_a_workbook_row_longer_than_the_header_is_refused_with_its_row(
    catalogue: Catalogue,
) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append(ROW)
    sheet.append([*ROW, "EXTRA"])
    buffer = io.BytesIO()
    book.save(buffer)
    with pytest.raises(ExportError) as refused:
        parse_export(raw("a.xlsx", buffer.getvalue()), "ifo", 2024, catalogue)
    assert str(refused.value) == (
        "a.xlsx: row 3 has a value in column 12, which has no header (1 row(s) in all)"
    )


@pytest.mark.parametrize("extra", [500, 10_000])
def test_many_unknown_columns_are_named_briefly_split_by_the_files_delimiter(
    tmp_path: Path, catalogue: Catalogue, extra: int
) -> None:
    names = [f"x{n}" for n in range(extra)]
    content = csv_bytes(rows=[]).replace(b"\n", ";".join(["", *names]).encode() + b"\n")
    content += ";".join([*ROW, *("" for _ in names)]).encode() + b"\n"
    path = tmp_path / "wide.csv"
    path.write_bytes(content)
    with pytest.raises(ExportError) as refused:
        parse_export(raw(str(path), content), "ifo", 2024, catalogue)
    assert str(refused.value) == (
        f"{path}: header matches no codebook: unknown column(s) 'x0', 'x1', 'x2', 'x3', 'x4' "
        f"and {extra - 5} more"
    )
    with pytest.raises(ExportError) as in_chunks:
        chunked(path, catalogue, 1)
    assert str(in_chunks.value) == str(refused.value)


def test_a_very_long_unknown_column_name_is_cut_short(catalogue: Catalogue) -> None:
    content = csv_bytes().replace(b"kon;", b"k" + b"o" * 10_000 + b"n;")
    with pytest.raises(ExportError) as refused:
        parse_export(raw("a.csv", content), "ifo", 2024, catalogue)
    assert str(refused.value) == (
        "a.csv: header matches no codebook: unknown column(s) 'k" + "o" * 38 + "…'"
    )


def test_a_gzip_bomb_is_refused_without_being_unpacked_into_memory(
    tmp_path: Path, catalogue: Catalogue
) -> None:
    """A small archive of 200 MB of zeros: held by its packed size, it must be streamed by its
    unpacked size and refused at its first block of binary content."""
    bomb = tmp_path / "bomb.csv.gz"
    block = bytes(1024 * 1024)
    with gzip.open(bomb, "wb", compresslevel=1) as packed:
        for _ in range(200):
            packed.write(block)
    assert bomb.stat().st_size < 1024 * 1024
    tracemalloc.start()
    try:
        (fetched,) = fetch_paths([str(bomb)], stream_above=32 * 1024 * 1024).exports
        with pytest.raises(ExportError) as refused:
            parse_export(fetched, "ifo", 2024, catalogue)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(refused.value) == f"{bomb}: binary content (NUL bytes): not a CSV file"
    assert fetched.content is None
    assert peak < 100 * 1024 * 1024
