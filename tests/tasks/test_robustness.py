"""Hostile input: whatever bytes arrive, the pipeline refuses or quarantines, never crashes
with a traceback and never loads a row with a meaning other than the one written."""

from __future__ import annotations

import csv
import gzip
import io

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.catalogue import Catalogue, default_catalogue
from tasks.fetch import RawFile, SurveyYearFiles
from tasks.parse import ExportError, parse_export, parse_survey_year
from tasks.safe_csv import neutralise_formulas
from tasks.validate import ValidatedSurveyYear, validate_survey_year

SURVEY, YEAR, ENKAT = "ifo", 2024, "EKB"
CATALOGUE = default_catalogue()
QUESTIONS = CATALOGUE.questions_asked(SURVEY, ENKAT, YEAR)
HEADER = ["kommun_kod", "verksamhet", "svar_id", "kon", *QUESTIONS]
FORMULAS = ["=1+1", "+46", "-2", "@SUM(A1)", '=HYPERLINK("x")', "-", "+", "="]
LONG_CELL = "x" * 100_000
HYPOTHESIS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(files: list[RawFile], catalogue: Catalogue = CATALOGUE) -> ValidatedSurveyYear:
    parsed = parse_survey_year(SurveyYearFiles(files, None), SURVEY, YEAR, catalogue)
    return validate_survey_year(parsed, SURVEY, YEAR, catalogue)


def export(rows: list[list[str]], header: list[str] = HEADER, delimiter: str = ";") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows([header, *rows])
    return buffer.getvalue().encode("utf-8")


def valid_row(number: int) -> list[str]:
    return ["0880", ENKAT, f"s{number}", "K", *("1" for _ in QUESTIONS)]


def assert_accounted(outcome: ValidatedSurveyYear) -> None:
    """Every file is loaded or refused with a one-line reason, and every row is accounted for."""
    files = outcome.files
    assert files["status"].isin(["loaded", "refused"]).all()
    refused = files[files["status"] == "refused"]
    assert refused["error"].str.len().gt(0).all()
    assert not refused["error"].str.contains("\n").any()
    loaded = files[files["status"] == "loaded"]
    assert (loaded["rows_read"] == loaded["rows_loaded"] + loaded["rows_quarantined"]).all()


@HYPOTHESIS
@given(content=st.binary(max_size=3000), suffix=st.sampled_from([".csv", ".csv.gz", ".xlsx"]))
def test_arbitrary_bytes_are_refused_or_accounted_never_a_crash(
    content: bytes, suffix: str
) -> None:
    assert_accounted(run([RawFile(f"any{suffix}", "memory://any", content)]))


@HYPOTHESIS
@given(
    prefix=st.sampled_from([b"", gzip.compress(export([valid_row(1)]))[:10]]),
    noise=st.binary(min_size=1, max_size=200),
    position=st.integers(min_value=0, max_value=400),
)
def test_a_good_file_with_noise_spliced_in_never_crashes(
    prefix: bytes, noise: bytes, position: int
) -> None:
    good = export([valid_row(n) for n in range(5)])
    content = prefix + good[:position] + noise + good[position:]
    assert_accounted(run([RawFile("noisy.csv", "memory://noisy", content)]))


GOOD = export([valid_row(n) for n in range(1, 6)])


@HYPOTHESIS
@given(cut=st.integers(min_value=0, max_value=len(GOOD) - 1))
def test_a_truncated_file_never_loads_a_row_it_does_not_hold_in_full(cut: int) -> None:
    outcome = run([RawFile("cut.csv", "memory://cut", GOOD[:cut])])
    assert_accounted(outcome)
    answers = outcome.answers.merge(outcome.respondents, on="respondent_id")
    # Every loaded row must be one of the original rows, unchanged: svar_id s<n>, all answers 1.
    assert outcome.respondents["svar_id"].isin([f"s{n}" for n in range(1, 6)]).all()
    assert answers.groupby("svar_id")["answer_code"].agg(list).map(len).eq(len(QUESTIONS)).all()
    assert answers["answer_code"].eq(1).all()


def cell_strategy(question: str) -> st.SearchStrategy[str]:
    options = CATALOGUE.scale(CATALOGUE.scale_of[question])
    valid = [str(c) for c in options["code"]] + [
        spelling
        for label in options["label_sv"]
        for spelling in (label, label.upper(), f" {label} ")
    ]
    return st.one_of(
        st.sampled_from(["", *valid]),
        st.sampled_from(FORMULAS),
        st.text(max_size=12),
    )


def meaning(question: str, cell: str) -> int | None:
    """The test's own reading of one cell: the code it names, None for blank; KeyError if none."""
    options = CATALOGUE.scale(CATALOGUE.scale_of[question])
    spelled = {str(c): int(c) for c in options["code"]}
    spelled |= {
        str(label).casefold(): int(c)
        for c, label in zip(options["code"], options["label_sv"], strict=True)
    }
    text = " ".join(cell.split()).casefold()
    return None if text == "" else spelled[text]


@HYPOTHESIS
@given(rows=st.lists(st.tuples(*(cell_strategy(q) for q in QUESTIONS)), min_size=1, max_size=6))
def test_a_row_loads_only_with_exactly_the_answers_written(rows: list[tuple[str, ...]]) -> None:
    content = export([["0880", ENKAT, f"s{i}", "K", *cells] for i, cells in enumerate(rows)])
    outcome = run([RawFile("cells.csv", "memory://cells", content)])
    assert_accounted(outcome)
    if (outcome.files["status"] == "refused").any():
        # only control characters (NUL, a lone carriage return, ...) make this file unreadable
        assert any(
            char < " " or char == "\x7f" for cells in rows for cell in cells for char in cell
        )
        return
    loaded = outcome.answers.merge(outcome.respondents, on="respondent_id")
    got = {
        (s, q): c
        for s, q, c in zip(
            loaded["svar_id"], loaded["question_id"], loaded["answer_code"], strict=True
        )
    }
    for i, cells in enumerate(rows):
        try:
            codes = {q: meaning(q, cell) for q, cell in zip(QUESTIONS, cells, strict=True)}
        except KeyError:
            assert f"s{i}" not in set(outcome.respondents["svar_id"])  # quarantined
            continue
        expected = {(f"s{i}", q): code for q, code in codes.items() if code is not None}
        assert {key: code for key, code in got.items() if key[0] == f"s{i}"} == expected


@pytest.mark.parametrize("delimiter", ["\t", "|", ":"])
def test_a_wrong_delimiter_refuses_the_file(delimiter: str) -> None:
    content = export([valid_row(1)], delimiter=delimiter)
    with pytest.raises(ExportError, match="header matches no codebook"):
        parse_export(RawFile("tab.csv", "memory://tab", content), SURVEY, YEAR, CATALOGUE)


@HYPOTHESIS
@given(repeated=st.sampled_from(HEADER), at=st.integers(min_value=0, max_value=len(HEADER)))
def test_a_duplicate_header_refuses_the_file(repeated: str, at: int) -> None:
    header = [*HEADER[:at], repeated.upper(), *HEADER[at:]]
    row = [*valid_row(1)[:at], "1", *valid_row(1)[at:]]
    with pytest.raises(ExportError, match=f"given more than once: {repeated}"):
        parse_export(
            RawFile("dup.csv", "memory://dup", export([row], header)), SURVEY, YEAR, CATALOGUE
        )


def test_mixed_encodings_refuse_the_file() -> None:
    utf8_row = [*valid_row(1)[:4], "Mycket lätt", *valid_row(1)[5:]]
    cp1252_row = ";".join([*valid_row(2)[:4], "Mycket lätt", *valid_row(2)[5:]]) + "\n"
    content = export([utf8_row]) + cp1252_row.encode("cp1252")
    with pytest.raises(ExportError, match="mixed encodings"):
        parse_export(RawFile("mixed.csv", "memory://mixed", content), SURVEY, YEAR, CATALOGUE)


def test_a_100000_character_cell_is_kept_whole_or_quarantined_whole() -> None:
    in_id = [*valid_row(1)[:2], LONG_CELL, *valid_row(1)[3:]]
    in_answer = [*valid_row(2)[:4], LONG_CELL, *valid_row(2)[5:]]
    outcome = run([RawFile("long.csv", "memory://long", export([in_id, in_answer]))])
    assert outcome.respondents["svar_id"].tolist() == [LONG_CELL]
    assert outcome.quarantine["row_number"].tolist() == [3]
    assert outcome.quarantine["reasons"].str.startswith(f"{QUESTIONS[0]}: answer outside").all()


@HYPOTHESIS
@given(cells=st.lists(st.one_of(st.sampled_from(FORMULAS), st.text(max_size=20)), min_size=1))
def test_no_written_csv_cell_can_start_a_formula(cells: list[str]) -> None:
    safe = neutralise_formulas(pd.DataFrame({"cell": pd.Series(cells, dtype=str)}))["cell"]
    plain_number = safe.str.fullmatch(r"[+-]?\d+(?:[.,]\d+)?")
    assert not (safe.str.match(r"[=+\-@\t\r]") & ~plain_number).any()
    # a defused cell still reads as what was written, after the apostrophe spreadsheets hide
    assert (safe.where(safe.eq(pd.Series(cells)), safe.str[1:]) == pd.Series(cells)).all()
