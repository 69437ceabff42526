"""The sample-export generator, checked by reading its files back as a user would.

Every expectation is derived from the files on disk and the reference catalogue: the rules a
row breaks are re-checked here by a small validator of the test's own, so the manifest is
compared with what the files really hold, not with the generator's own bookkeeping.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest

from sample.generate import (
    ENKATER_WITHOUT_UNIT,
    MEAN_RESPONDENTS,
    MISSING_UNIT_SHARE,
    GeneratedExports,
    choose_kommuner,
    generate_exports,
)
from schemas.catalogue import SURVEYS, Catalogue
from schemas.exports import (
    DUPLICATE_SVAR_ID,
    NO_ANSWER,
    NOT_ASKED,
    OUTSIDE_SCALE,
    UNKNOWN_KOMMUN,
    UNKNOWN_VERKSAMHET,
)
from tasks.aggregate import aggregate
from tasks.fetch import fetch_survey_year
from tasks.parse import parse_survey_year
from tasks.validate import ValidatedSurveyYear, validate_survey_year

YEARS = (2023, 2024)
FIXED_COLUMNS = {"ifo": ["kommun_kod", "verksamhet", "svar_id", "kon"]}
FIXED_COLUMNS["fh"] = ["kommun_kod", "verksamhet", "enhet_id", "svar_id", "kon"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> GeneratedExports:
    """20 kommuner × two years, with defects: the sample most tests read."""
    return generate_exports(
        tmp_path_factory.mktemp("sample"), YEARS, n_kommuner=20, seed=0, catalogue=catalogue
    )


@pytest.fixture(scope="module")
def manifest(sample: GeneratedExports) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((sample.out / "manifest.json").read_text("utf-8"))
    return manifest


@pytest.fixture(scope="module")
def answers(sample: GeneratedExports, manifest: dict[str, Any]) -> pd.DataFrame:
    """Every row of every answer file, all cells as text, with its file, survey, year and row."""
    return read_answers(sample.out, manifest)


def answer_entries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry for entry in manifest["files"] if entry["kind"] == "answers"]


def read_table(out: Path, entry: dict[str, Any]) -> pd.DataFrame:
    """One file as the manifest describes it; every cell as text ("" = empty)."""
    path = out / entry["path"]
    if entry["format"] == "xlsx":
        sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
        header, *body = list(sheet.iter_rows(values_only=True))
        table = pd.DataFrame(body, columns=header, dtype=object)
        assert all(isinstance(code, int) for code in table["kommun_kod"])  # a number, as in Excel
        table["kommun_kod"] = table["kommun_kod"].astype(str).str.zfill(4)
        return table.map(lambda cell: "" if cell is None else str(cell)).astype(str)
    content = path.read_bytes()
    if entry["format"] == "csv.gz":
        content = gzip.decompress(content)
    assert content.startswith(codecs.BOM_UTF8) == (entry["encoding"] == "utf-8-sig")
    return pd.read_csv(
        io.StringIO(content.decode(entry["encoding"])),
        sep=entry["delimiter"],
        dtype=str,
        keep_default_na=False,
    )


def read_answers(out: Path, manifest: dict[str, Any]) -> pd.DataFrame:
    frames = [
        read_table(out, entry).assign(
            path=entry["path"],
            survey=entry["survey"],
            year=entry["year"],
            row=lambda table: range(2, len(table) + 2),  # the header is row 1
        )
        for entry in answer_entries(manifest)
    ]
    return pd.concat(frames, ignore_index=True).fillna("")


def expected_columns(catalogue: Catalogue, survey: str, year: int) -> list[str]:
    """The canonical header: fixed columns, then every question some enkät of the year asks."""
    enkater = catalogue.enkater(survey, year)
    questions = [
        q
        for q in catalogue.survey_questions(survey)
        if any(q in catalogue.questions_asked(survey, e, year) for e in enkater)
    ]
    return FIXED_COLUMNS[survey] + [q.lower() for q in questions]


def broken_rules(rows: pd.DataFrame, catalogue: Catalogue) -> pd.DataFrame:
    """path, row, rule for every rule a row of one (survey, year) breaks, found independently."""
    survey, year = rows["survey"].iloc[0], int(rows["year"].iloc[0])
    enkater = catalogue.enkater(survey, year)
    questions = [q for q in catalogue.survey_questions(survey) if q.lower() in rows.columns]
    found: list[pd.DataFrame] = []

    def note(mask: pd.Series, rule: str) -> None:
        found.append(rows.loc[mask, ["path", "row"]].assign(rule=rule))

    note(~rows["kommun_kod"].isin(catalogue.kommun_codes), UNKNOWN_KOMMUN)
    note(~rows["verksamhet"].isin(enkater), UNKNOWN_VERKSAMHET)
    cells = rows[[q.lower() for q in questions]]
    note(cells.isin([""]).all(axis=1), NO_ANSWER)
    note(rows.duplicated(["kommun_kod", "svar_id"], keep=False), DUPLICATE_SVAR_ID)
    known_enkat = rows["verksamhet"].isin(enkater)
    for question in questions:
        answer = rows[question.lower()]
        asks = rows["verksamhet"].isin(
            [e for e in enkater if question in catalogue.questions_asked(survey, e, year)]
        )
        on_scale = answer.str.lower().isin(catalogue.answer_lookup(question))
        note(known_enkat & asks & answer.ne("") & ~on_scale, OUTSIDE_SCALE)
        note(known_enkat & ~asks & answer.ne(""), NOT_ASKED)
    return pd.concat(found, ignore_index=True)


def declared_defects(manifest: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"path": entry["path"], "row": defect["row"], "rule": defect["rule"]}
            for entry in answer_entries(manifest)
            for defect in entry["defect_rows"]
        ],
        columns=["path", "row", "rule"],
    )


def valid_rows(answers: pd.DataFrame, manifest: dict[str, Any]) -> pd.DataFrame:
    declared = declared_defects(manifest)
    key = pd.MultiIndex.from_frame(answers[["path", "row"]])
    return answers[~key.isin(pd.MultiIndex.from_frame(declared[["path", "row"]]))]


def test_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    def contents(out: Path, seed: int) -> dict[str, bytes]:
        generate_exports(out, [2024], n_kommuner=8, seed=seed)
        return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    first = contents(tmp_path / "first", seed=0)
    again = contents(tmp_path / "again", seed=0)
    other = contents(tmp_path / "other", seed=1)

    assert any(name.endswith(".xlsx") for name in first)  # workbooks carry no timestamp
    assert any(name.endswith(".csv.gz") for name in first)  # nor do gzip headers
    assert first == again
    shared = (set(first) & set(other)) - {"manifest.json"}
    assert shared
    assert all(first[name] != other[name] for name in shared)
    assert first["manifest.json"] != other["manifest.json"]


def test_files_carry_no_time_of_writing(sample: GeneratedExports, manifest: dict[str, Any]) -> None:
    """Same bytes on every run need workbooks, zip entries and gzip headers without "now"."""
    paths = {
        kind: [sample.out / entry["path"] for entry in answer_entries(manifest)
               if entry["format"] == kind]
        for kind in ("xlsx", "csv.gz")
    }  # fmt: skip
    assert all(paths.values()), paths  # the sample holds files of both kinds
    for path in paths["xlsx"]:
        dates = {info.date_time for info in zipfile.ZipFile(path).infolist()}
        properties = openpyxl.load_workbook(path).properties
        assert dates == {(1980, 1, 1, 0, 0, 0)}  # the earliest date a zip entry can hold
        assert properties.modified == properties.created
    for path in paths["csv.gz"]:
        assert path.read_bytes()[4:8] == bytes(4)  # gzip MTIME 0: no time stored


def test_the_manifest_lists_exactly_the_files_written(
    sample: GeneratedExports, manifest: dict[str, Any]
) -> None:
    on_disk = {p for p in sample.out.rglob("*") if p.is_file()}
    listed = {sample.out / entry["path"] for entry in manifest["files"]}

    assert set(sample.files) == on_disk == listed | {sample.out / "manifest.json"}
    assert len(sample.files) == len(on_disk)


def test_every_file_reads_back_as_its_manifest_entry_says(
    sample: GeneratedExports, manifest: dict[str, Any], catalogue: Catalogue
) -> None:
    formats = set()
    for entry in answer_entries(manifest):
        table = read_table(sample.out, entry)
        formats.add((entry["format"], entry["encoding"], entry["delimiter"]))
        expected_name = (
            f"{entry['survey']}_{entry['year']}_samlad.csv"
            if len(entry["kommuner"]) > 1
            else f"{entry['survey']}_{entry['year']}_{entry['kommuner'][0]}.{entry['format']}"
        )

        assert Path(entry["path"]).name == expected_name
        assert list(table.columns) == expected_columns(catalogue, entry["survey"], entry["year"])
        assert len(table) == entry["rows"] == entry["valid_rows"] + len(entry["defect_rows"])
        assert set(table["kommun_kod"]) - {"9999"} == set(entry["kommuner"])

    assert formats == {
        ("csv", "utf-8", ";"),
        ("csv", "utf-8-sig", ";"),
        ("csv", "windows-1252", ","),
        ("csv.gz", "utf-8", ";"),
        ("xlsx", None, None),
    }


def test_excel_loses_the_leading_zero_of_kommun_kod(
    sample: GeneratedExports, manifest: dict[str, Any]
) -> None:
    xlsx = [entry for entry in answer_entries(manifest) if entry["format"] == "xlsx"]
    codes = {
        code
        for entry in xlsx
        for (code,) in openpyxl.load_workbook(sample.out / entry["path"], read_only=True)
        .worksheets[0]
        .iter_rows(min_row=2, max_col=1, values_only=True)
    }
    written_with_zero = {k for entry in xlsx for k in entry["kommuner"] if k.startswith("0")}

    assert written_with_zero  # the sample must exercise the lost zero
    assert {int(k) for entry in xlsx for k in entry["kommuner"]} == codes
    assert all(code < 1000 for code in map(int, written_with_zero))


def test_each_kommun_is_in_exactly_one_file_per_survey_year(
    manifest: dict[str, Any], catalogue: Catalogue
) -> None:
    kommuner = manifest["kommuner"]

    assert len(kommuner) == 20
    assert {"0880", "0180"} <= set(kommuner) <= catalogue.kommun_codes
    assert len({catalogue.lan_of[k] for k in kommuner}) >= 10  # spread over the country
    for survey in SURVEYS:
        for year in YEARS:
            per_file = [
                entry["kommuner"]
                for entry in answer_entries(manifest)
                if (entry["survey"], entry["year"]) == (survey, year)
            ]
            combined = [kommuner_in for kommuner_in in per_file if len(kommuner_in) > 1]
            every = [k for kommuner_in in per_file for k in kommuner_in]

            assert sorted(every) == kommuner
            assert len(combined) == 1


def test_only_the_declared_rows_break_a_rule(
    answers: pd.DataFrame, manifest: dict[str, Any], sample: GeneratedExports, catalogue: Catalogue
) -> None:
    found = pd.concat(
        [broken_rules(rows, catalogue) for _, rows in answers.groupby(["survey", "year"])]
    )
    declared = declared_defects(manifest)

    def as_set(frame: pd.DataFrame) -> set[tuple[str, int, str]]:
        return set(zip(frame["path"], frame["row"].astype(int), frame["rule"], strict=True))

    assert as_set(found) == as_set(declared)
    assert not declared.duplicated(["path", "row"]).any()  # each defect breaks one rule only
    for survey in SURVEYS:
        for year in YEARS:
            in_survey_year = declared["path"].str.startswith(f"{survey}/{year}/")
            rules = set(declared.loc[in_survey_year, "rule"])
            rows = answers[(answers["survey"] == survey) & (answers["year"] == year)]

            assert {OUTSIDE_SCALE, UNKNOWN_KOMMUN, UNKNOWN_VERKSAMHET, NO_ANSWER} <= rules
            assert (declared.loc[in_survey_year, "rule"] == DUPLICATE_SVAR_ID).sum() == 2
            assert sample.defects[(survey, year)] == in_survey_year.sum()
            assert sample.respondents[(survey, year)] == len(rows) - in_survey_year.sum()
    # funktionshinder enkäter differ in their questions, so that rule can be broken there
    assert NOT_ASKED in set(declared["rule"])
    formats = {entry["path"]: entry["format"] for entry in answer_entries(manifest)}
    assert all(formats[path] != "xlsx" for path in set(declared["path"]))


def test_answers_are_codes_or_labels_of_the_scale_as_each_file_says(
    answers: pd.DataFrame, manifest: dict[str, Any], catalogue: Catalogue
) -> None:
    rows = valid_rows(answers, manifest)
    style = {entry["path"]: entry for entry in answer_entries(manifest)}
    labels = set(catalogue.answer_scales["label_sv"])
    for path, file_rows in rows.groupby("path"):
        entry = style[str(path)]
        survey = entry["survey"]
        columns = expected_columns(catalogue, survey, entry["year"])[len(FIXED_COLUMNS[survey]) :]
        written = set(file_rows[columns].stack()) - {""}
        genders = set(file_rows["kon"])

        if entry["answers_as"] == "label":
            assert written & labels  # labels exactly as in answer_scales.csv
            assert written <= labels | {str(c) for c in catalogue.answer_scales["code"]}
        else:
            assert all(cell.isdigit() for cell in written)
        words = {"Kvinna", "Man"} if entry["kon_as"] == "word" else {"K", "M"}
        assert genders <= words | {"", "X"}
        assert words <= genders


def test_svar_id_is_unique_within_kommun_apart_from_the_declared_duplicates(
    answers: pd.DataFrame, manifest: dict[str, Any]
) -> None:
    rows = valid_rows(answers, manifest)

    assert rows["svar_id"].ne("").all()
    assert not rows.duplicated(["survey", "year", "kommun_kod", "svar_id"]).any()


def test_utdelade_covers_the_respondents_of_each_kommun_and_enkat(
    sample: GeneratedExports, answers: pd.DataFrame, manifest: dict[str, Any]
) -> None:
    rows = valid_rows(answers, manifest)
    utdelade = [entry for entry in manifest["files"] if entry["kind"] == "utdelade"]
    assert utdelade
    for entry in utdelade:
        handed_out = read_table(sample.out, entry).astype({"antal_utdelade": int})
        in_survey_year = rows[(rows["survey"] == entry["survey"]) & (rows["year"] == entry["year"])]
        returned = in_survey_year.groupby(["kommun_kod", "verksamhet"]).size().rename("returned")
        reported = returned[returned.index.get_level_values(0).isin(entry["kommuner"])]
        joined = handed_out.join(reported, on=["kommun_kod", "verksamhet"], how="right")

        assert list(handed_out.columns) == ["kommun_kod", "verksamhet", "antal_utdelade"]
        assert entry["rows"] == len(handed_out) == len(reported)
        assert (joined["antal_utdelade"] >= joined["returned"]).all()
        assert 1 <= len(set(manifest["kommuner"]) - set(entry["kommuner"])) <= 2
        # response rates of 40–80 % (defect rows were handed out too, so a little lower)
        assert 0.3 < joined["returned"].sum() / joined["antal_utdelade"].sum() < 0.8


def test_the_sample_looks_like_real_survey_data(
    answers: pd.DataFrame, manifest: dict[str, Any], catalogue: Catalogue
) -> None:
    rows = valid_rows(answers, manifest)
    per_cell = rows.groupby(["survey", "year", "kommun_kod", "verksamhet"]).size()
    per_kommun = rows.groupby(["survey", "year", "kommun_kod"]).size().groupby("survey").mean()
    missing_gender = rows["kon"].isin(["", "X"]).mean()

    assert per_cell.between(1, 4).any()  # tiny cells exercise suppression
    for survey, mean in MEAN_RESPONDENTS.items():
        assert 0.8 * mean < per_kommun[survey] < 1.2 * mean
    assert 0.01 < missing_gender < 0.06

    long = pd.concat(
        [
            answered_cells(survey_rows, catalogue)
            for _, survey_rows in rows.groupby(["survey", "year"])
        ]
    )
    blank_share = long["answer"].eq("").mean()
    valid = long[long["role"].ne("excluded") & long["answer"].ne("")]
    positive = valid.groupby(["survey", "year", "kommun_kod", "verksamhet"])["role"].agg(
        lambda role: role.eq("positive").mean()
    )
    big = valid.groupby(["survey", "year", "kommun_kod", "verksamhet"]).size() >= 50
    by_year = positive[big].unstack("year").dropna()

    assert 0.03 < blank_share < 0.07
    assert long["role"].eq("excluded").any()
    assert 0.7 < valid["role"].eq("positive").mean() < 0.95
    assert positive[big].std() > 0.03  # kommuner and enkäter differ
    assert np.corrcoef(by_year[YEARS[0]], by_year[YEARS[1]])[0, 1] > 0.3  # years resemble


def answered_cells(rows: pd.DataFrame, catalogue: Catalogue) -> pd.DataFrame:
    """survey, year, kommun_kod, verksamhet, answer, role of every asked question of each row."""
    survey, year = rows["survey"].iloc[0], int(rows["year"].iloc[0])
    cells = []
    for enkat in catalogue.enkater(survey, year):
        of_enkat = rows[rows["verksamhet"] == enkat]
        for question in catalogue.questions_asked(survey, enkat, year):
            roles = catalogue.roles[catalogue.roles["question_id"] == question]
            role_of = dict(zip(roles["answer_code"], roles["role"], strict=True))
            lookup = catalogue.answer_lookup(question)
            answer = of_enkat[question.lower()]
            cells.append(
                of_enkat[["survey", "year", "kommun_kod", "verksamhet"]].assign(
                    answer=answer,
                    role=answer.str.lower().map(lookup).map(role_of).fillna(""),
                )
            )
    return pd.concat(cells, ignore_index=True)


def test_fh_rows_name_their_unit_except_where_the_enkat_has_none_and_a_few_others(
    answers: pd.DataFrame, manifest: dict[str, Any]
) -> None:
    fh = valid_rows(answers, manifest).query("survey == 'fh'")
    without_unit = fh["verksamhet"].isin(ENKATER_WITHOUT_UNIT)
    in_units = fh[~without_unit]
    units = in_units.groupby(["year", "kommun_kod", "verksamhet"])["enhet_id"].nunique()
    named = in_units["enhet_id"].ne("")

    assert fh.loc[without_unit, "enhet_id"].eq("").all()
    assert in_units.loc[named, "enhet_id"].str.fullmatch(r"[A-Z]+\d{2}").all()
    assert 0 < (~named).mean() < 2 * MISSING_UNIT_SHARE  # a few rows name no unit
    assert units.max() > 1  # larger kommuner have several units per enkät


def test_older_and_newer_years_follow_the_catalogue(tmp_path: Path, catalogue: Catalogue) -> None:
    result = generate_exports(tmp_path, [2016, 2025], n_kommuner=8, seed=5)
    manifest = json.loads((tmp_path / "manifest.json").read_text("utf-8"))
    rows = valid_rows(read_answers(tmp_path, manifest), manifest)

    headers = {}
    for entry in answer_entries(manifest):
        header = list(read_table(tmp_path, entry).columns)
        assert header == expected_columns(catalogue, entry["survey"], entry["year"])
        headers[(entry["survey"], entry["year"])] = header
    for survey in SURVEYS:
        for year in (2016, 2025):
            survey_year = rows[(rows["survey"] == survey) & (rows["year"] == year)]
            assert set(survey_year["verksamhet"]) == set(catalogue.enkater(survey, year))
            assert result.respondents[(survey, year)] == len(survey_year)
    enkater = rows.groupby(["survey", "year"])["verksamhet"].agg(set)
    # examples from the reference data: a question added in 2018, enkäter ended and begun
    assert "fh_forstar" not in headers[("fh", 2016)]
    assert "fh_forstar" in headers[("fh", 2025)]
    assert "BOU_ENS" in enkater[("ifo", 2016)]
    assert "BOU_ENS" not in enkater[("ifo", 2025)]
    assert "LSS_PA" not in enkater[("fh", 2016)]
    assert "LSS_PA" in enkater[("fh", 2025)]


def test_without_defects_every_row_is_valid(tmp_path: Path, catalogue: Catalogue) -> None:
    result = generate_exports(tmp_path, [2024], n_kommuner=6, seed=2, defects=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text("utf-8"))
    rows = read_answers(tmp_path, manifest)

    assert declared_defects(manifest).empty
    assert set(result.defects.values()) == {0}
    for _, survey_year in rows.groupby(["survey", "year"]):
        assert broken_rules(survey_year, catalogue).empty


def test_progress_is_told_of_every_file(tmp_path: Path) -> None:
    told: list[Path] = []
    result = generate_exports(tmp_path, [2024], n_kommuner=3, progress=told.append)

    assert told == result.files


def test_refuses_to_mix_with_files_of_another_sample(tmp_path: Path) -> None:
    stray = tmp_path / "ifo" / "2024" / "ifo_2024_0114.csv"
    stray.parent.mkdir(parents=True)
    stray.write_text("kommun_kod;verksamhet\n", encoding="utf-8")

    with pytest.raises(FileExistsError, match=r"ifo_2024_0114\.csv"):
        generate_exports(tmp_path, [2024], n_kommuner=3)
    assert not (tmp_path / "manifest.json").exists()


def test_rerunning_with_the_same_arguments_overwrites_in_place(tmp_path: Path) -> None:
    first = generate_exports(tmp_path, [2024], n_kommuner=4, seed=9)
    again = generate_exports(tmp_path, [2024], n_kommuner=4, seed=9)

    assert first.files == again.files


@pytest.mark.parametrize("n", [0, 291])
def test_kommun_count_must_be_possible(tmp_path: Path, n: int) -> None:
    with pytest.raises(ValueError, match="n_kommuner"):
        generate_exports(tmp_path, [2024], n_kommuner=n)


def test_kommuner_spread_over_every_lan_before_repeating_one(catalogue: Catalogue) -> None:
    n_lan = catalogue.kommuner["lan_kod"].nunique()
    chosen = choose_kommuner(catalogue, n_lan, np.random.default_rng(4))

    assert choose_kommuner(catalogue, 2, np.random.default_rng(4)) == ["0180", "0880"]
    assert choose_kommuner(catalogue, 1, np.random.default_rng(4)) == ["0880"]
    # Kalmar and Stockholm lie in different län, so the rest fill the other län one each
    assert len({catalogue.lan_of[k] for k in chosen}) == n_lan


HISTORY = tuple(range(2016, 2026))


@pytest.fixture(scope="module", params=["canonical", "svenska_rubriker"])
def history(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue
) -> tuple[GeneratedExports, dict[tuple[str, int], ValidatedSurveyYear]]:
    """Every year from 2016 on in one layout, through fetch, parse and validation."""
    out = tmp_path_factory.mktemp(f"history_{request.param}")
    sample = generate_exports(
        out, HISTORY, n_kommuner=5, seed=3, layout=request.param, catalogue=catalogue
    )
    validated = {
        (survey, year): validate_survey_year(
            parse_survey_year(fetch_survey_year(str(out), survey, year), survey, year, catalogue),
            survey,
            year,
            catalogue,
        )
        for survey in SURVEYS
        for year in HISTORY
    }
    return sample, validated


def test_every_year_since_2016_loads_in_every_layout(
    history: tuple[GeneratedExports, dict[tuple[str, int], ValidatedSurveyYear]],
) -> None:
    sample, validated = history
    manifest = json.loads((sample.out / "manifest.json").read_text("utf-8"))
    declared = {
        (entry["survey"], entry["year"], entry["path"].split("/", 2)[2], row["row"])
        for entry in answer_entries(manifest)
        for row in entry["defect_rows"]
    }
    for (survey, year), outcome in validated.items():
        assert outcome.refused == []
        assert len(outcome.respondents) == sample.respondents[(survey, year)]
        quarantined = {
            (survey, year, file, row)
            for file, row in zip(
                outcome.quarantine["source_file"], outcome.quarantine["row_number"], strict=True
            )
        }
        assert quarantined == {key for key in declared if key[:2] == (survey, year)}


def test_a_question_not_asked_that_year_is_absent_not_zero(
    history: tuple[GeneratedExports, dict[tuple[str, int], ValidatedSurveyYear]],
    catalogue: Catalogue,
) -> None:
    _, validated = history
    seen: dict[tuple[str, int], set[str]] = {}
    for (survey, year), outcome in validated.items():
        results = aggregate(
            outcome.respondents,
            outcome.answers,
            outcome.distributed,
            survey=survey,
            year=year,
            catalogue=catalogue,
        ).results
        enkater = set(catalogue.enkater(survey, year))
        assert set(outcome.respondents["verksamhet"]) == enkater
        published = results[results["verksamhet"].isin(enkater)]
        pairs = set(zip(published["verksamhet"], published["question_id"], strict=True))
        expected = {(e, q) for e in enkater for q in catalogue.questions_asked(survey, e, year)}
        assert pairs == expected
        seen[(survey, year)] = set(results["question_id"])
    # examples from the reference data, by hand: FH_FORSTAR from 2018, BOU_ENS until 2020
    assert "FH_FORSTAR" not in seen[("fh", 2017)]
    assert "FH_FORSTAR" in seen[("fh", 2018)]
    assert "FH_PA_GORA" not in seen[("fh", 2016)]
    assert "FH_PA_GORA" in seen[("fh", 2017)]
