"""Codebooks: each shipped layout reads, names and labels map to codes, a new layout is a file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.catalogue import Catalogue
from schemas.codebook import (
    CodebookError,
    HeaderError,
    codebooks,
    match_codebook,
)
from schemas.defaults import DEFAULT_CODEBOOK_DIR
from tasks.fetch import RawFile, SurveyYearFiles
from tasks.parse import ExportError, parse_export, parse_survey_year
from tasks.validate import validate_survey_year

BRUKARDATA = str(Path(sys.executable).with_name("brukardata"))


def raw(name: str, text: str, encoding: str = "utf-8") -> RawFile:
    return RawFile(source_file=name, source_url=f"memory://{name}", content=text.encode(encoding))


def question_text(catalogue: Catalogue, question_id: str) -> str:
    questions = catalogue.questions
    return str(questions.loc[questions["question_id"] == question_id, "text_sv"].iloc[0])


def ifo_questions(catalogue: Catalogue, year: int) -> list[str]:
    return catalogue.questions_asked("ifo", "EKB", year)


def swedish_export(catalogue: Catalogue, year: int, rows: list[list[str]]) -> str:
    """A ;-separated export with Swedish headers and each question headed by its text."""
    header = ["Kommun", "Enkät", "Löpnummer", "Kön"]
    header += [question_text(catalogue, q) for q in ifo_questions(catalogue, year)]
    return "".join(";".join(line) + "\n" for line in [header, *rows])


def test_every_shipped_codebook_is_well_formed() -> None:
    names = {book.name for book in codebooks()}
    assert {"canonical", "svenska_rubriker"} <= names


def test_swedish_headers_names_and_labels_read_as_codes(catalogue: Catalogue) -> None:
    questions = ifo_questions(catalogue, 2024)
    labels = {q: str(catalogue.scale(catalogue.scale_of[q])["label_sv"].iloc[0]) for q in questions}
    first_codes = {
        q: int(catalogue.scale(catalogue.scale_of[q])["code"].iloc[0]) for q in questions
    }
    text = swedish_export(
        catalogue,
        2024,
        [
            [
                "Kalmar",
                "Ekonomiskt bistånd",
                "1",
                "Kvinna",
                *(labels[q].upper() for q in questions),
            ],
            ["880", "ekb", "2", "Man", *(labels[q] for q in questions)],
        ],
    )
    files = SurveyYearFiles(exports=[raw("svenska.csv", text)], distributed=None)
    parsed = parse_survey_year(files, "ifo", 2024, catalogue)
    assert parsed.exports[0].codebook.name == "svenska_rubriker"
    validated = validate_survey_year(parsed, "ifo", 2024, catalogue)
    assert validated.quarantine.empty
    respondents = validated.respondents
    assert respondents["kommun_kod"].tolist() == ["0880", "0880"]  # Kalmar's code, by hand
    assert respondents["verksamhet"].tolist() == ["EKB", "EKB"]
    assert respondents["gender"].tolist() == ["K", "M"]
    answers = validated.answers.set_index(["respondent_id", "question_id"])["answer_code"]
    for question in questions:
        assert answers[(0, question)] == answers[(1, question)] == first_codes[question]


def test_a_codebooks_own_answer_spellings_are_read(catalogue: Catalogue) -> None:
    # JA_NEJ_VETEJ's option 9 is labelled "Vet ej"; the Swedish layout also accepts "vet inte".
    question = next(
        q for q in ifo_questions(catalogue, 2024) if catalogue.scale_of[q] == "JA_NEJ_VETEJ"
    )
    cells = ["Vet inte" if q == question else "1" for q in ifo_questions(catalogue, 2024)]
    text = swedish_export(catalogue, 2024, [["0880", "EKB", "1", "K", *cells]])
    files = SurveyYearFiles(exports=[raw("svenska.csv", text)], distributed=None)
    validated = validate_survey_year(
        parse_survey_year(files, "ifo", 2024, catalogue), "ifo", 2024, catalogue
    )
    answers = validated.answers.set_index("question_id")["answer_code"]
    assert answers[question] == 9


def test_a_kommun_name_that_is_not_in_the_catalogue_is_quarantined_as_written(
    catalogue: Catalogue,
) -> None:
    cells = ["1"] * len(ifo_questions(catalogue, 2024))
    text = swedish_export(catalogue, 2024, [["Atlantis", "EKB", "1", "K", *cells]])
    files = SurveyYearFiles(exports=[raw("svenska.csv", text)], distributed=None)
    validated = validate_survey_year(
        parse_survey_year(files, "ifo", 2024, catalogue), "ifo", 2024, catalogue
    )
    assert validated.quarantine["reasons"].tolist() == [
        "kommun_kod: unknown kommun_kod ('Atlantis')"
    ]


def test_headers_of_two_layouts_mixed_are_refused(catalogue: Catalogue) -> None:
    header = ["kommun_kod", "Enkät", "svar_id", "kon", *ifo_questions(catalogue, 2024)]
    with pytest.raises(HeaderError, match="unknown column"):
        match_codebook(header, "ifo", 2024, catalogue)


@pytest.fixture
def codebook_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped codebooks that the test may add to."""
    directory = tmp_path / "codebooks"
    shutil.copytree(DEFAULT_CODEBOOK_DIR, directory)
    monkeypatch.setenv("BRUKARDATA_CODEBOOK_DIR", str(directory))  # for the command line
    return directory


@pytest.fixture
def installed(codebook_dir: Path) -> Catalogue:
    """The catalogue a run reads with the codebooks of ``codebook_dir``."""
    return Catalogue.load(codebook_dir=codebook_dir)


OLD_SUPPLIER = """
name: leverantor_2017
description: One supplier's export of 2016-2017
surveys: [ifo]
first_year: 2016
last_year: 2017
columns:
  kommun_kod: [Kommunnr]
  verksamhet: [Undersökning]
  svar_id: [Respondent]
  kon: [Kon_kod]
question_columns: question_id
gender:
  K: ["1"]
  M: ["2"]
  X: ["", "3"]
"""


def test_adding_a_layout_is_adding_a_codebook_file(
    codebook_dir: Path, installed: Catalogue
) -> None:
    catalogue = installed
    questions = ifo_questions(catalogue, 2017)
    text = "".join(
        ";".join(line) + "\n"
        for line in [
            ["Kommunnr", "Undersökning", "Respondent", "Kon_kod", *questions],
            ["0880", "EKB", "7", "2", *["1"] * len(questions)],
        ]
    )
    with pytest.raises(ExportError, match="unknown column"):
        parse_export(raw("old.csv", text), "ifo", 2017, catalogue)
    (codebook_dir / "leverantor_2017.yaml").write_text(OLD_SUPPLIER, encoding="utf-8")
    parsed = parse_export(raw("old.csv", text), "ifo", 2017, catalogue)
    assert parsed.codebook.name == "leverantor_2017"
    validated = validate_survey_year(
        parse_survey_year(SurveyYearFiles([raw("old.csv", text)], None), "ifo", 2017, catalogue),
        "ifo",
        2017,
        catalogue,
    )
    assert validated.respondents["gender"].tolist() == ["M"]
    # The layout's years come from the file: in 2018 the same header is not explained.
    with pytest.raises(ExportError, match="unknown column"):
        parse_export(raw("old.csv", text), "ifo", 2018, catalogue)


def test_a_header_two_codebooks_explain_is_refused_naming_both(
    codebook_dir: Path, installed: Catalogue
) -> None:
    catalogue = installed
    copy = (codebook_dir / "canonical.yaml").read_text(encoding="utf-8")
    (codebook_dir / "kopia.yaml").write_text(
        copy.replace("name: canonical", "name: kopia"), "utf-8"
    )
    header = ["kommun_kod", "verksamhet", "svar_id", "kon", *ifo_questions(catalogue, 2024)]
    with pytest.raises(HeaderError, match=r"more than one codebook \(canonical and kopia\)"):
        match_codebook(header, "ifo", 2024, catalogue)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("kon: [kon]", "gender_code: [kon]"), "unknown canonical column 'gender_code'"),
        (("question_columns: question_id", "question_columns: kolada_short"), "question_columns"),
        (
            ("  verksamhet: [verksamhet]\n# gender", "  verksamhet: [members]\n# gender"),
            "'members'",
        ),
        (("name: canonical\n", ""), "KeyError"),
    ],
)
def test_a_broken_codebook_is_an_installation_error(
    codebook_dir: Path, catalogue: Catalogue, change: tuple[str, str], problem: str
) -> None:
    path = codebook_dir / "canonical.yaml"
    text = path.read_text(encoding="utf-8")
    assert change[0] in text
    path.write_text(text.replace(*change), encoding="utf-8")
    with pytest.raises(CodebookError, match=problem):
        codebooks(codebook_dir)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            'name: x\nrun: !!python/object/apply:os.system ["touch {marker}"]\n',
            "line 2, column 6: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system'",
        ),
        (
            "name: x\nsurveys: [ifo\n",
            "line 3, column 1: expected ',' or ']', but got '<stream end>'",
        ),
        ("name: x\n  surveys: ifo\n", "line 2, column 10: mapping values are not allowed here"),
    ],
)
def test_a_codebook_that_is_not_yaml_is_one_line_naming_file_and_line(
    codebook_dir: Path, tmp_path: Path, text: str, problem: str
) -> None:
    marker = tmp_path / "executed"
    (codebook_dir / "zz_bad.yaml").write_text(text.format(marker=marker), encoding="utf-8")
    with pytest.raises(CodebookError) as refused:
        codebooks(codebook_dir)
    assert str(refused.value) == f"zz_bad.yaml: {problem}"
    assert not marker.exists()


def test_validate_with_a_broken_codebook_prints_one_line_and_no_traceback(
    codebook_dir: Path, tmp_path: Path
) -> None:
    (codebook_dir / "zz_bad.yaml").write_text("name: x\nsurveys: [ifo\n", encoding="utf-8")
    export = tmp_path / "a.csv"
    export.write_text(
        ";".join(["kommun_kod", "verksamhet", "svar_id", "kon", "IFO_KONTAKT"]) + "\n", "utf-8"
    )
    done = subprocess.run(
        [BRUKARDATA, "validate", str(export), "--survey", "ifo", "--year", "2024", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["files"][0]["error"] == (
        "zz_bad.yaml: line 3, column 1: expected ',' or ']', but got '<stream end>'"
    )
