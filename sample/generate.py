"""Generate: realistic sample raw exports for the demo and for end-to-end tests.

The files exercise what real exports throw at the pipeline — several encodings and delimiters,
gzip, Excel's lost leading zeros, answer labels instead of codes, one combined file holding
several municipalities, tiny cells that must be suppressed — and, on request, a handful of
deliberately broken rows. ``manifest.json`` records every file and every broken row with the
rule it breaks, so a test can check that exactly those rows end in quarantine.

Which enkäter exist, which questions they ask and which answers a scale offers all come from
the catalogue, so any year it describes can be generated. Files are written in the layout of
one of the codebooks (``layout``): its first spelling of each column, its naming of question
columns (id or text), and enkäter by name where it accepts names.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.writer.excel import ExcelWriter

from schemas.catalogue import SURVEYS, Catalogue, default_catalogue
from schemas.codebook import Codebook, codebooks
from schemas.exports import (
    DUPLICATE_SVAR_ID,
    FRAME_RULE_COLUMN,
    NO_ANSWER,
    NOT_ASKED,
    OUTSIDE_SCALE,
    UNKNOWN_KOMMUN,
    UNKNOWN_VERKSAMHET,
)

# Kalmar and Stockholm are always part of a sample, so examples can name them.
ALWAYS_INCLUDED: tuple[str, ...] = ("0880", "0180")
# National mean of respondents per kommun and year, over all enkäter of the survey.
MEAN_RESPONDENTS: dict[str, float] = {"ifo": 85.0, "fh": 170.0}
# Relative size of an enkät within its survey (others count 1): ekonomiskt bistånd is the
# largest IFO enkät, daglig verksamhet and gruppbostad the largest funktionshinder ones.
RELATIVE_ENKAT_SIZE: dict[str, float] = {
    "EKB": 4.0,
    "BOU_VH": 2.0,
    "MOB": 1.2,
    "BOU_ENS": 0.6,
    "LSS_DV": 3.0,
    "LSS_GRUPP": 2.5,
    "SOL_BOSTOD": 1.5,
    "LSS_PA": 1.5,
}
ENKATER_WITHOUT_UNIT = frozenset({"SOL_BOSTOD"})  # boendestöd is given at home, not in a unit
UNKNOWN_KOMMUN_CODE = "9999"
UNKNOWN_VERKSAMHET_CODE = "OKAND"
OUT_OF_SCALE_FROM = 7  # the first code tried as an answer outside a scale

BLANK_SHARE = 0.05  # questions left unanswered
EXCLUDED_SHARE = 0.05  # "vet ej" and the like, among the answered
MISSING_GENDER_SHARE = 0.03
MISSING_UNIT_SHARE = 0.03  # FH rows of an enkät given in units that name none
LABEL_FILE_SHARE = 0.3  # CSV files writing answer labels instead of codes
GENDER_WORD_FILE_SHARE = 0.3  # files writing Kvinna/Man instead of K/M
POSITIVE_LOGIT = 1.9  # about 87 % positive before kommun, enkät, question and person effects
TAPER = 0.6  # within the positive (or the other) options, each is this much rarer than the last

# Written into every workbook and zip entry instead of "now", so files are byte-identical.
FIXED_TIMESTAMP = datetime(2000, 1, 1)
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
ROW_NUMBERING = "rows of the file; the header is row 1"


@dataclass(frozen=True)
class GeneratedExports:
    out: Path
    files: list[Path]  # every file written
    respondents: dict[tuple[str, int], int]  # (survey, year) → valid rows written
    defects: dict[tuple[str, int], int]  # (survey, year) → deliberately bad rows written


@dataclass(frozen=True)
class _FileStyle:
    """How one export file is written."""

    name: str
    format: str  # "csv", "csv.gz" or "xlsx"; also the file extension
    encoding: str | None  # Python codec name; None for xlsx
    delimiter: str | None
    line_end: str = "\n"


UTF8 = _FileStyle("utf8", "csv", "utf-8", ";")
UTF8_BOM = _FileStyle("utf8_bom", "csv", "utf-8-sig", ";")
WINDOWS = _FileStyle("windows_1252", "csv", "windows-1252", ",", line_end="\r\n")
GZIP = _FileStyle("gzip", "csv.gz", "utf-8", ";")
XLSX = _FileStyle("xlsx", "xlsx", None, None)
COMBINED = _FileStyle("samlad", "csv", "utf-8", ";")  # the one file holding several kommuner
# Municipalities, shuffled, take the styles in turn: every style appears from 7 kommuner on.
FILE_CYCLE: tuple[_FileStyle, ...] = (
    UTF8,
    COMBINED,
    UTF8_BOM,
    WINDOWS,
    COMBINED,
    GZIP,
    XLSX,
    COMBINED,
)
STYLES: dict[str, _FileStyle] = {style.name: style for style in FILE_CYCLE}


@dataclass(frozen=True)
class _PlannedFile:
    relative_path: str
    content: bytes
    manifest: dict[str, Any]


@dataclass(frozen=True)
class _SurveySample:
    """What stays fixed for one survey across the years of a sample."""

    survey: str
    kommuner: list[str]
    size: np.ndarray  # per kommun, mean 1: scales its respondents
    question_effect: pd.Series  # question_id → shift of the logit of a positive answer


def generate_exports(
    out: Path,
    years: Sequence[int],
    *,
    n_kommuner: int = 20,
    seed: int = 0,
    defects: bool = True,
    layout: str = "canonical",
    catalogue: Catalogue | None = None,
    progress: Callable[[Path], None] | None = None,
) -> GeneratedExports:
    """Write sample exports of both surveys for ``years`` under ``out``, and a manifest.

    ``layout`` names the codebook whose layout the answer files take; a layout that names
    questions by their text writes every answer as its label, as such exports do.

    The same arguments give byte-identical files. Files of an earlier run are never deleted:
    a survey-year folder holding files this run would not write is an error, so a sample is
    never silently mixed with another. ``progress`` is called with each file written.
    """
    catalogue = catalogue or default_catalogue()
    wanted_years = sorted(set(years))
    if not wanted_years:
        raise ValueError("generate: give at least one year")
    unknown = [y for y in wanted_years if not any(catalogue.enkater(s, y) for s in SURVEYS)]
    if unknown:
        raise ValueError(
            f"generate: the reference catalogue has no enkäter in {', '.join(map(str, unknown))}"
        )
    book = layout_codebook(layout)
    rng = np.random.default_rng(seed)
    kommuner = choose_kommuner(catalogue, n_kommuner, rng)
    # A kommun's size is shared by both surveys: a large kommun has many clients in each.
    size = np.exp(rng.normal(0.0, 0.8, len(kommuner)))
    size = size / size.mean()

    planned: list[_PlannedFile] = []
    respondents: dict[tuple[str, int], int] = {}
    defect_counts: dict[tuple[str, int], int] = {}
    for survey in SURVEYS:
        questions = catalogue.survey_questions(survey)
        sample = _SurveySample(
            survey=survey,
            kommuner=kommuner,
            size=size,
            question_effect=pd.Series(rng.normal(0.0, 0.5, len(questions)), index=questions),
        )
        every_enkat = [e for y in wanted_years for e in catalogue.enkater(survey, y)]
        latent = _initial_satisfaction(kommuner, list(dict.fromkeys(every_enkat)), rng)
        for year in wanted_years:
            # The year after resembles the year before: satisfaction drifts, it does not jump.
            latent = latent + rng.normal(0.0, 0.15, latent.shape)
            rows = _survey_year_rows(
                catalogue, sample, year, latent=latent, with_defects=defects, rng=rng
            )
            planned.extend(_export_files(catalogue, book, survey, year, rows))
            planned.append(_distributed_file(survey, year, rows, rng))
            is_defect = rows["defect"].ne("")
            respondents[(survey, year)] = int((~is_defect).sum())
            defect_counts[(survey, year)] = int(is_defect.sum())

    _refuse_stale_files(out, planned)
    manifest = {
        "layout": book.name,
        "seed": seed,
        "years": wanted_years,
        "kommuner": kommuner,
        "row_numbering": ROW_NUMBERING,
        "files": [file.manifest for file in planned],
    }
    manifest_text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
    planned.append(_PlannedFile("manifest.json", manifest_text.encode("utf-8"), {}))
    written: list[Path] = []
    for file in planned:
        path = out / file.relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.content)
        written.append(path)
        if progress is not None:
            progress(path)
    return GeneratedExports(out=out, files=written, respondents=respondents, defects=defect_counts)


def layout_codebook(layout: str) -> Codebook:
    """The installed codebook named ``layout``."""
    by_name = {book.name: book for book in codebooks()}
    if layout not in by_name:
        raise ValueError(f"generate: no layout {layout!r} (one of {', '.join(sorted(by_name))})")
    return by_name[layout]


def choose_kommuner(catalogue: Catalogue, n: int, rng: np.random.Generator) -> list[str]:
    """``n`` municipality codes, spread over as many län as possible, sorted.

    Kalmar and Stockholm come first; the rest are drawn one per län in turn, starting with
    the län that have none yet.
    """
    every = catalogue.kommuner[["kommun_kod", "lan_kod"]]
    if not 1 <= n <= len(every):
        raise ValueError(f"generate: n_kommuner must be between 1 and {len(every)}, not {n}")
    required = every["kommun_kod"].isin(ALWAYS_INCLUDED[:n])
    others = every[~required]
    ordered = pd.concat([every[required], others.iloc[rng.permutation(len(others))]])
    turn = ordered.groupby("lan_kod").cumcount().to_numpy()
    chosen = ordered["kommun_kod"].iloc[np.argsort(turn, kind="stable")].head(n)
    return sorted(chosen)


def question_columns(catalogue: Catalogue, survey: str, year: int) -> list[str]:
    """Question ids asked by at least one enkät of the year, in catalogue order."""
    asked = {
        question
        for enkat in catalogue.enkater(survey, year)
        for question in catalogue.questions_asked(survey, enkat, year)
    }
    return [q for q in catalogue.survey_questions(survey) if q in asked]


def _initial_satisfaction(
    kommuner: list[str], enkater: list[str], rng: np.random.Generator
) -> pd.DataFrame:
    """Logit of a positive answer per kommun × enkät: a kommun effect plus its enkät's own."""
    kommun_effect = rng.normal(0.0, 0.35, (len(kommuner), 1))
    enkat_effect = rng.normal(0.0, 0.45, (len(kommuner), len(enkater)))
    logit = POSITIVE_LOGIT + kommun_effect + enkat_effect
    return pd.DataFrame(logit, index=kommuner, columns=enkater)


def _file_plan(
    survey: str, year: int, kommuner: list[str], rng: np.random.Generator
) -> pd.DataFrame:
    """Per kommun_kod: its file, the file's style, and how it writes answers, kon and svar_id."""
    shuffled = pd.Series(kommuner, dtype=str).iloc[rng.permutation(len(kommuner))]
    cycle = pd.Series([style.name for style in FILE_CYCLE], dtype=str)
    style = cycle.iloc[np.arange(len(kommuner)) % len(cycle)].set_axis(shuffled.index)
    extension = style.map({name: s.format for name, s in STYLES.items()})
    own_file = f"{survey}_{year}_" + shuffled + "." + extension
    combined_file = f"{survey}_{year}_{COMBINED.name}.{COMBINED.format}"
    file = own_file.where(style.ne(COMBINED.name), combined_file)
    plan = pd.DataFrame({"kommun_kod": shuffled, "style": style, "file": file})
    files = plan.drop_duplicates("file")[["file", "style"]]
    labels = rng.random(len(files)) < LABEL_FILE_SHARE
    files["answers_as_labels"] = labels & files["style"].ne(XLSX.name)
    files["kon_as_words"] = rng.random(len(files)) < GENDER_WORD_FILE_SHARE
    plan = plan.merge(files.drop(columns="style"), on="file")
    plan["random_svar_id"] = rng.random(len(plan)) < 0.5
    return plan.set_index("kommun_kod")


def _survey_year_rows(
    catalogue: Catalogue,
    sample: _SurveySample,
    year: int,
    *,
    latent: pd.DataFrame,
    with_defects: bool,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Every row of a survey-year with its answers, its file and its place in it.

    ``latent`` is the logit of a positive answer per kommun × enkät this year. Besides the
    written columns, a row carries ``defect`` (the rule it breaks, "" for a valid row).
    """
    survey, kommuner = sample.survey, sample.kommuner
    enkater = catalogue.enkater(survey, year)
    columns = question_columns(catalogue, survey, year)
    plan = _file_plan(survey, year, kommuner, rng)
    asked = {e: catalogue.questions_asked(survey, e, year) for e in enkater}

    weight = np.array([RELATIVE_ENKAT_SIZE.get(e, 1.0) for e in enkater])
    expected = MEAN_RESPONDENTS[survey] * np.outer(sample.size, weight / weight.sum())
    counts = rng.poisson(expected * np.exp(rng.normal(0.0, 0.1, expected.shape)))
    smallest, largest = np.argmin(sample.size), np.argmax(sample.size)
    counts[smallest, np.argmin(weight)] = rng.integers(1, 5)  # a tiny cell to suppress
    counts[largest] = np.maximum(counts[largest], 1)  # every enkät of the year is answered
    cells = pd.DataFrame(
        {
            "kommun_kod": np.repeat(kommuner, len(enkater)),
            "verksamhet": np.tile(enkater, len(kommuner)),
        }
    )
    rows = cells.loc[cells.index.repeat(counts.ravel())].reset_index(drop=True)
    rows["defect"] = ""
    rows["defect_column"] = ""
    rows["defect_code"] = pd.Series(pd.NA, index=rows.index, dtype="Int64")
    if with_defects:
        csv_kommuner = plan.index[plan["style"].ne(XLSX.name)].tolist()
        specs = _defect_specs(catalogue, asked, columns, csv_kommuner, rng)
        rows = pd.concat([rows, specs], ignore_index=True)

    asks = pd.DataFrame({q: [q in asked[e] for e in enkater] for q in columns}, index=enkater)
    cell_logit = latent.stack().reindex(
        pd.MultiIndex.from_frame(rows[["kommun_kod", "verksamhet"]])
    )
    person_logit = cell_logit.to_numpy() + rng.normal(0.0, 0.7, len(rows))
    answers = _answers(
        catalogue,
        columns,
        asked=asks.loc[rows["verksamhet"]].to_numpy(),
        person_logit=person_logit,
        question_effect=sample.question_effect,
        rng=rng,
    )
    rows = pd.concat([rows, answers], axis=1)
    rows["kon"] = _genders(len(rows), rng)
    if survey in catalogue.surveys_with_units:
        rows["enhet_id"] = _units(rows, rng)
    rows = _apply_defects(rows, columns)
    return _order_and_identify(rows, plan, rng)


def _defect_specs(
    catalogue: Catalogue,
    asked: dict[str, list[str]],
    columns: list[str],
    csv_kommuner: list[str],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """One row per rule the parser must catch (two sharing a svar_id for the duplicate rule).

    Each is an ordinary questionnaire of a kommun written to a CSV file, broken in one way;
    ``asked`` maps each enkät of the year to its questions. The rule of an answer to a
    question the enkät does not ask is left out in a year where every enkät asks everything.
    """
    enkater = list(asked)
    unasked = {e: [q for q in columns if q not in asked[e]] for e in enkater}
    with_unasked = [e for e in enkater if unasked[e]]

    def pick(options: Sequence[str]) -> str:
        return options[int(rng.integers(len(options)))]

    def spec(rule: str, enkat: str, column: str, code: int | None = None) -> dict[str, Any]:
        return {
            "kommun_kod": pick(csv_kommuner),
            "verksamhet": enkat,
            "defect": rule,
            "defect_column": column,
            "defect_code": code,
        }

    def codes_of(question: str) -> list[int]:
        return [int(c) for c in catalogue.scale(catalogue.scale_of[question])["code"]]

    outside_enkat = pick(enkater)
    outside_question = pick(asked[outside_enkat])
    in_scale = set(codes_of(outside_question))
    outside_code = min(
        set(range(OUT_OF_SCALE_FROM, OUT_OF_SCALE_FROM + len(in_scale) + 1)) - in_scale
    )
    specs = [
        spec(OUTSIDE_SCALE, outside_enkat, outside_question, outside_code),
        spec(UNKNOWN_KOMMUN, pick(enkater), "kommun_kod"),
        spec(UNKNOWN_VERKSAMHET, pick(enkater), "verksamhet"),
        spec(NO_ANSWER, pick(enkater), FRAME_RULE_COLUMN[NO_ANSWER]),
    ]
    if with_unasked:
        not_asked_enkat = pick(with_unasked)
        not_asked_question = pick(unasked[not_asked_enkat])
        specs.append(
            spec(NOT_ASKED, not_asked_enkat, not_asked_question, codes_of(not_asked_question)[0])
        )
    duplicate = spec(DUPLICATE_SVAR_ID, pick(enkater), FRAME_RULE_COLUMN[DUPLICATE_SVAR_ID])
    specs += [duplicate, duplicate]
    frame = pd.DataFrame(specs)
    frame["defect_code"] = frame["defect_code"].astype("Int64")
    return frame


def _answers(
    catalogue: Catalogue,
    columns: list[str],
    *,
    asked: np.ndarray,
    person_logit: np.ndarray,
    question_effect: pd.Series,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Answer codes (Int64; NA = blank or not asked) of every row to every question column.

    ``asked`` is rows × columns. A row keeps at least one answer: a questionnaire with none
    is a defect, not a respondent.
    """
    n_rows = len(person_logit)
    codes = np.zeros((n_rows, len(columns)), dtype=np.int64)
    for position, question in enumerate(columns):
        options = catalogue.scale(catalogue.scale_of[question])
        p_positive = 1.0 / (1.0 + np.exp(-(person_logit + question_effect[question])))
        probabilities = _option_probabilities(options["role"].to_numpy(), p_positive)
        drawn = (rng.random((n_rows, 1)) > probabilities.cumsum(axis=1)).sum(axis=1)
        codes[:, position] = options["code"].to_numpy()[np.minimum(drawn, len(options) - 1)]
    blank = rng.random(codes.shape) < BLANK_SHARE
    left_empty = ~(asked & ~blank).any(axis=1) & asked.any(axis=1)
    blank[left_empty, asked[left_empty].argmax(axis=1)] = False
    answered = asked & ~blank
    return pd.DataFrame(
        {
            question: pd.Series(codes[:, i], dtype="Int64").where(answered[:, i])
            for i, question in enumerate(columns)
        }
    )


def _option_probabilities(roles: np.ndarray, p_positive: np.ndarray) -> np.ndarray:
    """rows × options: P(option) given each row's chance of a positive answer."""

    def tapered(mask: np.ndarray) -> np.ndarray:
        weights: np.ndarray = np.where(mask, TAPER ** (np.cumsum(mask) - 1), 0.0)
        return weights / weights.sum() if weights.any() else weights

    positive = roles == "positive"
    excluded = roles == "excluded"
    substantive = np.outer(p_positive, tapered(positive)) + np.outer(
        1 - p_positive, tapered(~positive & ~excluded)
    )
    excluded_share = excluded / excluded.sum() if excluded.any() else np.zeros(len(roles))
    probabilities = (1 - EXCLUDED_SHARE) * substantive + EXCLUDED_SHARE * excluded_share
    normalised: np.ndarray = probabilities / probabilities.sum(axis=1, keepdims=True)
    return normalised


def _genders(n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """K or M, with a few missing (empty) or X (annat, vill ej uppge)."""
    u = rng.random(n_rows)
    missing = np.where(u < MISSING_GENDER_SHARE / 2, "", "X")
    return np.where(u < MISSING_GENDER_SHARE, missing, np.where(u < 0.53, "K", "M"))


def _units(rows: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
    """A unit (e.g. ``DV02``) per row: a few per kommun and enkät, some busier than others,
    and a few rows that name no unit."""
    cell_size = rows.groupby(["kommun_kod", "verksamhet"])["verksamhet"].transform("size")
    n_units = np.clip(1 + cell_size.to_numpy() // 12, 1, 5)
    draw = rng.random(len(rows))
    number = pd.Series(1 + (draw**1.5 * n_units).astype(int), index=rows.index)
    prefix = rows["verksamhet"].str.split("_").str[-1]
    units = prefix + number.astype(str).str.zfill(2)
    named = ~rows["verksamhet"].isin(ENKATER_WITHOUT_UNIT) & (draw >= MISSING_UNIT_SHARE)
    return units.where(named, "")


def _apply_defects(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Break each defect row the way its rule says (the duplicate svar_id comes later)."""
    rows = rows.copy()
    rows.loc[rows["defect"].eq(NO_ANSWER), columns] = pd.NA
    for question in columns:
        target = rows["defect_column"].eq(question)
        rows.loc[target, question] = rows.loc[target, "defect_code"]
    rows["kommun_written"] = rows["kommun_kod"].where(
        rows["defect"].ne(UNKNOWN_KOMMUN), UNKNOWN_KOMMUN_CODE
    )
    rows["verksamhet_written"] = rows["verksamhet"].where(
        rows["defect"].ne(UNKNOWN_VERKSAMHET), UNKNOWN_VERKSAMHET_CODE
    )
    return rows


def _order_and_identify(
    rows: pd.DataFrame, plan: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """Shuffle rows within their kommun, number them within their file, and give svar_ids."""
    rows = rows.join(plan, on="kommun_kod")
    rows["shuffle"] = rng.permutation(len(rows))
    rows = rows.sort_values(["file", "kommun_kod", "shuffle"]).reset_index(drop=True)
    rows["row_number"] = rows.groupby("file").cumcount() + 2
    running_number = (rows.groupby("kommun_kod").cumcount() + 1).astype(str).str.zfill(4)
    running = rows["kommun_kod"] + "-" + running_number
    random_ids = pd.Series(rng.choice(900_000, len(rows), replace=False) + 100_000).astype(str)
    rows["svar_id"] = random_ids.where(rows["random_svar_id"], running)
    duplicated = rows["defect"].eq(DUPLICATE_SVAR_ID)
    if duplicated.any():
        rows["svar_id"] = rows["svar_id"].mask(duplicated, rows.loc[duplicated, "svar_id"].iloc[0])
    return rows


def _export_files(
    catalogue: Catalogue, book: Codebook, survey: str, year: int, rows: pd.DataFrame
) -> list[_PlannedFile]:
    """The answer files of one survey-year in the layout of ``book``, with manifest entries."""
    columns = question_columns(catalogue, survey, year)
    unit = ["enhet_id"] if survey in catalogue.surveys_with_units else []
    fixed = rows[["kommun_written", "verksamhet_written", *unit, "svar_id", "kon"]].rename(
        columns={"kommun_written": "kommun_kod", "verksamhet_written": "verksamhet"}
    )
    fixed["kon"] = fixed["kon"].mask(
        rows["kon_as_words"], fixed["kon"].replace({"K": "Kvinna", "M": "Man"})
    )
    if "name_sv" in book.values.get("verksamhet", ()):
        enkat_names = catalogue.verksamheter[catalogue.verksamheter["survey"] == survey]
        names = dict(zip(enkat_names["verksamhet"], enkat_names["name_sv"], strict=True))
        fixed["verksamhet"] = fixed["verksamhet"].map(names).fillna(fixed["verksamhet"])
    fixed = fixed.rename(columns={column: book.columns[column][0] for column in fixed.columns})
    by_text = book.question_columns == "text_sv"
    question_header = _question_headers(catalogue, book, columns)
    # Both spellings of every answer once for the whole survey-year; each file takes one.
    as_codes = rows[columns].rename(columns=question_header)
    as_labels = pd.DataFrame(
        {
            question_header[question]: rows[question]
            .map(_label_map(catalogue, question))
            .fillna(rows[question].astype(str))
            for question in columns
        }
    )
    files = []
    for name, file_rows in rows.groupby("file", sort=True):
        first = file_rows.iloc[0]
        style = STYLES[first["style"]]
        with_labels = bool(first["answers_as_labels"]) or by_text
        answers = as_labels if with_labels else as_codes
        table = pd.concat([fixed.loc[file_rows.index], answers.loc[file_rows.index]], axis=1)
        content = (
            _xlsx_bytes(table, book.columns["kommun_kod"][0])
            if style == XLSX
            else _csv_bytes(table, style)
        )
        defect_rows = file_rows[file_rows["defect"].ne("")]
        path = f"{survey}/{year}/{name}"
        manifest = {
            **_manifest_entry(survey, year, path, style, file_rows["kommun_kod"]),
            "kind": "answers",
            "layout": book.name,
            "answers_as": "label" if with_labels else "code",
            "kon_as": "word" if first["kon_as_words"] else "code",
            "rows": len(file_rows),
            "valid_rows": len(file_rows) - len(defect_rows),
            "defect_rows": [
                {"row": int(row), "rule": rule, "column": column}
                for row, rule, column in zip(
                    defect_rows["row_number"],
                    defect_rows["defect"],
                    defect_rows["defect_column"],
                    strict=True,
                )
            ],
        }
        files.append(_PlannedFile(path, content, manifest))
    return files


def _distributed_file(
    survey: str, year: int, rows: pd.DataFrame, rng: np.random.Generator
) -> _PlannedFile:
    """``utdelade.csv``: questionnaires handed out per kommun and enkät (40–80 % come back).

    From ten kommuner on, one or two of them report nothing, as happens.
    """
    returned = rows.groupby(["kommun_kod", "verksamhet"]).size().rename("returned").reset_index()
    kommuner = returned["kommun_kod"].unique()
    silent = rng.choice(kommuner, min(2, len(kommuner) // 10), replace=False)
    returned = returned[~returned["kommun_kod"].isin(silent)]
    response_rate = rng.uniform(0.4, 0.8, len(returned))
    handed_out = np.ceil(returned["returned"].to_numpy() / response_rate).astype(int)
    table = returned[["kommun_kod", "verksamhet"]].assign(antal_utdelade=handed_out)
    path = f"{survey}/{year}/utdelade.csv"
    manifest = {
        **_manifest_entry(survey, year, path, UTF8, table["kommun_kod"]),
        "kind": "utdelade",
        "rows": len(table),
        "valid_rows": len(table),
        "defect_rows": [],
    }
    return _PlannedFile(path, _csv_bytes(table, UTF8), manifest)


def _manifest_entry(
    survey: str, year: int, path: str, style: _FileStyle, kommuner: pd.Series
) -> dict[str, Any]:
    return {
        "survey": survey,
        "year": year,
        "path": path,
        "format": style.format,
        "encoding": style.encoding,
        "delimiter": style.delimiter,
        "kommuner": sorted(kommuner.unique().tolist()),
    }


def _question_headers(catalogue: Catalogue, book: Codebook, columns: list[str]) -> dict[str, str]:
    """question_id → its column header in the layout: the id in lower case, or its text."""
    if book.question_columns == "question_id":
        return {question: question.lower() for question in columns}
    texts = catalogue.questions.set_index("question_id")[book.question_columns]
    return {question: str(texts[question]) for question in columns}


def _label_map(catalogue: Catalogue, question: str) -> dict[int, str]:
    options = catalogue.scale(catalogue.scale_of[question])
    return dict(zip(options["code"].astype(int), options["label_sv"], strict=True))


def _csv_bytes(table: pd.DataFrame, style: _FileStyle) -> bytes:
    if style.encoding is None or style.delimiter is None:
        raise ValueError(f"generate: style {style.name} does not write CSV")
    text = table.to_csv(index=False, sep=style.delimiter, lineterminator=style.line_end)
    data = text.encode(style.encoding)
    return gzip.compress(data, mtime=0) if style == GZIP else data


def _xlsx_bytes(table: pd.DataFrame, kommun_column: str) -> bytes:
    """First sheet of a workbook; kommun_kod and answers as numbers, as Excel leaves them."""
    cells = table.assign(**{kommun_column: table[kommun_column].astype(int)}).astype(object)
    cells = cells.where(cells.notna() & ~cells.isin([""]), None)
    workbook = Workbook()
    workbook.properties.created = FIXED_TIMESTAMP
    workbook.properties.modified = FIXED_TIMESTAMP
    sheet = workbook.active
    sheet.title = "Svar"
    sheet.append(list(table.columns))
    for values in cells.itertuples(index=False, name=None):
        sheet.append(values)
    buffer = io.BytesIO()
    # ExcelWriter rather than Workbook.save, which stamps "modified" with the current time.
    ExcelWriter(workbook, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED)).save()
    return _with_fixed_zip_timestamps(buffer.getvalue())


def _with_fixed_zip_timestamps(content: bytes) -> bytes:
    """The same zip archive with every entry dated ``ZIP_TIMESTAMP`` instead of now."""
    source = zipfile.ZipFile(io.BytesIO(content))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for entry in source.infolist():
            fixed = zipfile.ZipInfo(entry.filename, date_time=ZIP_TIMESTAMP)
            target.writestr(fixed, source.read(entry), compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _refuse_stale_files(out: Path, planned: list[_PlannedFile]) -> None:
    """Stop before writing if a survey-year folder holds files this run would not write."""
    planned_paths = {out / file.relative_path for file in planned}
    stale = sorted(
        path
        for folder in {path.parent for path in planned_paths}
        if folder.is_dir()
        for path in folder.iterdir()
        if path not in planned_paths
    )
    if stale:
        names = ", ".join(path.name for path in stale)
        raise FileExistsError(
            f"generate: {stale[0].parent} holds files of another sample ({names}); "
            "remove them or choose another folder"
        )
