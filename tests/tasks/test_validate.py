"""Validating real fixture files: each file's fate, each quarantined row's reasons."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sample.generate import generate_exports
from schemas.catalogue import Catalogue
from tasks.fetch import fetch_survey_year
from tasks.parse import parse_survey_year
from tasks.validate import ValidatedSurveyYear, validate_survey_year
from tests.conftest import FIXTURES

EXPORTS = FIXTURES / "exports"
EXPECTED: dict[str, dict[str, object]] = yaml.safe_load(
    (EXPORTS / "expected.yaml").read_text("utf-8")
)


def validated(
    catalogue: Catalogue, survey: str, source: Path = EXPORTS, year: int = 2024
) -> ValidatedSurveyYear:
    files = fetch_survey_year(str(source), survey, year)
    return validate_survey_year(
        parse_survey_year(files, survey, year, catalogue), survey, year, catalogue
    )


@pytest.fixture(scope="module")
def outcomes(catalogue: Catalogue) -> dict[str, ValidatedSurveyYear]:
    return {survey: validated(catalogue, survey) for survey in ("ifo", "fh")}


def test_every_fixture_file_has_an_expected_outcome(
    outcomes: dict[str, ValidatedSurveyYear],
) -> None:
    seen = {
        f"{survey}/2024/{name}" for survey, v in outcomes.items() for name in v.files["source_file"]
    }
    assert seen == set(EXPECTED)


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_fixture_outcome(outcomes: dict[str, ValidatedSurveyYear], path: str) -> None:
    survey, _, name = path.split("/")
    expected = EXPECTED[path]
    outcome = outcomes[survey]
    report = outcome.files.set_index("source_file").loc[name]
    assert report["status"] == expected["status"]
    if expected["status"] == "refused":
        assert str(expected["error"]) in report["error"]
        assert report["rows_loaded"] == report["rows_quarantined"] == 0
        assert name not in set(outcome.respondents["source_file"])
        return
    quarantined = outcome.quarantine[outcome.quarantine["source_file"] == name]
    reasons = {
        int(row): reason.split("; ")
        for row, reason in zip(quarantined["row_number"], quarantined["reasons"], strict=True)
    }
    assert reasons == {int(k): v for k, v in expected["quarantined"].items()}
    assert report["rows_read"] == expected["rows_read"]
    assert report["kommun_kod_padded"] == expected.get("padded", 0)
    loaded = outcome.respondents[outcome.respondents["source_file"] == name]
    assert len(loaded) == report["rows_loaded"] == report["rows_read"] - report["rows_quarantined"]
    assert set(loaded["row_number"]).isdisjoint(reasons)


def test_quarantine_keeps_the_original_cells(outcomes: dict[str, ValidatedSurveyYear]) -> None:
    quarantine = outcomes["ifo"].quarantine.set_index(["source_file", "row_number"])
    original = json.loads(quarantine.loc[("bad_rows.csv", 12), "original"])
    assert original["IFO_KONTAKT"] == "=1+1"
    assert original["svar_id"] == "r9"


def test_labels_codes_and_gender_are_normalised(outcomes: dict[str, ValidatedSurveyYear]) -> None:
    v = outcomes["ifo"]
    respondents = v.respondents.set_index("svar_id")
    assert respondents.loc["c2", "kommun_kod"] == "0880"  # "880" had lost its leading zero
    assert respondents.loc[["g1", "b1", "c1", "b2", "c2"], "gender"].tolist() == [
        "K",
        "K",
        "M",
        "X",
        "X",
    ]
    answers = v.answers.merge(v.respondents[["respondent_id", "svar_id"]]).set_index(
        ["svar_id", "question_id"]
    )
    # "Mycket lätt;Ganska svårt;Ingen alls;Nej;Inte alls;Mycket missnöjd;Något sämre" → codes
    g2 = answers.loc["g2", "answer_code"]
    assert g2.to_dict() == {
        "IFO_FORANDRING": 4,
        "IFO_FORSTAELSE": 4,
        "IFO_INFO": 3,
        "IFO_KONTAKT": 1,
        "IFO_NOJD": 4,
        "IFO_PAVERKA": 4,
        "IFO_SYNPUNKTER": 2,
    }
    assert answers.loc[("c2", "IFO_INFO"), "answer_code"] == 9  # "VET EJ", any case


def test_blank_answers_have_no_row(tmp_path: Path, catalogue: Catalogue) -> None:
    folder = tmp_path / "ifo" / "2024"
    folder.mkdir(parents=True)
    header = (EXPORTS / "ifo" / "2024" / "good_utf8.csv").read_text("utf-8").splitlines()[0]
    (folder / "a.csv").write_text(header + "\n0880;EKB;1;K;1;;;;;;2\n", "utf-8")
    v = validated(catalogue, "ifo", tmp_path)
    assert v.answers[["question_id", "answer_code"]].values.tolist() == [
        ["IFO_FORANDRING", 2],
        ["IFO_KONTAKT", 1],
    ]


def test_duplicates_across_files_of_one_kommun_are_all_quarantined(
    tmp_path: Path, catalogue: Catalogue
) -> None:
    folder = tmp_path / "ifo" / "2024"
    folder.mkdir(parents=True)
    header = (EXPORTS / "ifo" / "2024" / "good_utf8.csv").read_text("utf-8").splitlines()[0]
    (folder / "a.csv").write_text(
        header + "\n0880;EKB;7;K;1;1;1;1;1;1;1\n0880;EKB;8;K;1;1;1;1;1;1;1\n", "utf-8"
    )
    (folder / "b.csv").write_text(
        header + "\n0880;MOB;7;M;1;1;1;1;1;1;1\n0114;MOB;7;M;1;1;1;1;1;1;1\n", "utf-8"
    )
    v = validated(catalogue, "ifo", tmp_path)
    assert sorted(zip(v.quarantine["source_file"], v.quarantine["row_number"], strict=True)) == [
        ("a.csv", 2),
        ("b.csv", 2),
    ]
    assert sorted(v.respondents["svar_id"] + "@" + v.respondents["kommun_kod"]) == [
        "7@0114",
        "8@0880",
    ]


def test_files_validated_together_keep_their_own_rows_units_and_padding(
    tmp_path: Path, catalogue: Catalogue
) -> None:
    """Files joined for validation: each bad row is named by its own file and row, a file
    without enhet_id names no unit beside one that has it, and padding is counted per file."""
    folder = tmp_path / "fh" / "2024"
    folder.mkdir(parents=True)
    header = (EXPORTS / "fh" / "2024" / "not_asked.csv").read_text("utf-8").splitlines()[0]
    answers = ";1" * 9 + ";"  # LSS_GRUPP does not ask the last question
    (folder / "a.csv").write_text(
        f"{header}\n0880;LSS_GRUPP;G1;a1;K{answers}\n0880;LSS_GRUPP;G1;a2;Q{answers}\n", "utf-8"
    )
    (folder / "b.csv").write_text(
        f"{header.replace(';enhet_id', '')}\n"
        f"880;LSS_GRUPP;b1;Q{answers}\n880;LSS_GRUPP;b2;M{answers}\n880;LSS_GRUPP;b3;K{answers}\n",
        "utf-8",
    )
    v = validated(catalogue, "fh", tmp_path)
    assert sorted(zip(v.quarantine["source_file"], v.quarantine["row_number"], strict=True)) == [
        ("a.csv", 3),
        ("b.csv", 2),
    ]
    assert list(v.respondents[["source_file", "row_number", "enhet_id"]].itertuples(False)) == [
        ("a.csv", 2, "G1"),
        ("b.csv", 3, ""),
        ("b.csv", 4, ""),
    ]
    assert v.files.set_index("source_file")["kommun_kod_padded"].to_dict() == {
        "a.csv": 0,
        "b.csv": 3,
    }


def test_distributed_counts_are_read_and_accounted(tmp_path: Path, catalogue: Catalogue) -> None:
    folder = tmp_path / "ifo" / "2024"
    folder.mkdir(parents=True)
    header = (EXPORTS / "ifo" / "2024" / "good_utf8.csv").read_text("utf-8").splitlines()[0]
    (folder / "a.csv").write_text(header + "\n0880;EKB;1;K;1;1;1;1;1;1;1\n", "utf-8")
    (folder / "utdelade.csv").write_text(
        "kommun_kod;verksamhet;antal_utdelade\n880;ekb;12\n", "utf-8"
    )
    v = validated(catalogue, "ifo", tmp_path)
    assert v.distributed is not None
    assert v.distributed.to_dict(orient="records") == [
        {"kommun_kod": "0880", "verksamhet": "EKB", "antal_utdelade": 12}
    ]
    assert v.files.set_index("source_file").loc["utdelade.csv", "status"] == "loaded"


def test_a_bad_distributed_count_refuses_the_file_naming_row_and_column(
    tmp_path: Path, catalogue: Catalogue
) -> None:
    folder = tmp_path / "ifo" / "2024"
    folder.mkdir(parents=True)
    header = (EXPORTS / "ifo" / "2024" / "good_utf8.csv").read_text("utf-8").splitlines()[0]
    (folder / "a.csv").write_text(header + "\n0880;EKB;1;K;1;1;1;1;1;1;1\n", "utf-8")
    (folder / "utdelade.csv").write_text(
        "kommun_kod,verksamhet,antal_utdelade\n0880,EKB,12\n0880,MOB,tolv\n", "utf-8"
    )
    v = validated(catalogue, "ifo", tmp_path)
    assert v.distributed is None
    assert v.refused == [
        "utdelade.csv: row 3, column antal_utdelade: not a whole number ≥ 0 ('tolv'); "
        "1 row(s) in all"
    ]
    assert len(v.respondents) == 1


def test_rows_read_equal_rows_loaded_plus_quarantined(
    outcomes: dict[str, ValidatedSurveyYear],
) -> None:
    for v in outcomes.values():
        loaded = v.files[v.files["status"] == "loaded"]
        exports = loaded[loaded["source_file"] != "utdelade.csv"]
        assert (exports["rows_read"] == exports["rows_loaded"] + exports["rows_quarantined"]).all()
        assert exports["rows_loaded"].sum() == len(v.respondents)
        assert exports["rows_quarantined"].sum() == len(v.quarantine)
        assert pd.Index(v.answers["respondent_id"]).isin(v.respondents["respondent_id"]).all()


def every_outcome(validated: ValidatedSurveyYear) -> dict[str, pd.DataFrame]:
    """The frames of an outcome, files by name and without the fetch time (each fetch has its
    own; a file whose long row is found while reading is refused in validation, not parsing)."""
    return {
        "respondents": validated.respondents,
        "answers": validated.answers,
        "quarantine": validated.quarantine,
        "problems": validated.problems,
        "files": validated.files.drop(columns="fetched_at")
        .sort_values("source_file")
        .reset_index(drop=True),
    }


@pytest.mark.parametrize("survey", ["ifo", "fh"])
def test_files_too_large_to_hold_validate_as_held_ones(
    catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, survey: str
) -> None:
    """Streamed files, read two rows at a time and checked three rows at a time, end exactly
    as files held whole: the same rows, ids, quarantine, reasons and accounting — duplicate
    svar_ids across chunks and files included."""
    generate_exports(tmp_path, [2024], n_kommuner=4, seed=11)
    for fixture in (EXPORTS / survey / "2024").glob("*.*"):
        shutil.copy(fixture, tmp_path / survey / "2024" / fixture.name)
    held = validated(catalogue, survey, tmp_path)
    assert held.quarantine["reasons"].str.contains("duplicate svar_id").any()
    # checked in batches with files of other columns, each fixture row ends as it does alone
    for path, expected in EXPECTED.items():
        if path.startswith(survey) and expected["status"] == "loaded":
            name = path.rsplit("/", 1)[1]
            rows = held.quarantine.loc[held.quarantine["source_file"] == name, "row_number"]
            assert set(rows) == set(expected.get("quarantined") or {}), name
    monkeypatch.setattr("tasks.parse.CHUNK_ROWS", 2)
    monkeypatch.setattr("tasks.validate.BATCH_ROWS", 3)
    files = fetch_survey_year(str(tmp_path), survey, 2024, stream_above=0)
    assert all(raw.content is None for raw in files.exports)
    parsed = parse_survey_year(files, survey, 2024, catalogue)
    streamed = validate_survey_year(parsed, survey, 2024, catalogue)
    for name, frame in every_outcome(held).items():
        pd.testing.assert_frame_equal(every_outcome(streamed)[name], frame, obj=name)
    counted = validate_survey_year(parsed, survey, 2024, catalogue, keep_rows=False)
    assert counted.respondents.empty
    assert counted.answers.empty
    pd.testing.assert_frame_equal(counted.quarantine, held.quarantine)
    pd.testing.assert_frame_equal(every_outcome(counted)["files"], every_outcome(held)["files"])
