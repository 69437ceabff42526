"""Small hand-built loads that meet the frame contracts, and the views' stable columns.

The figures in these loads are inputs to the warehouse, not statistics under test: they only
have to be consistent with the answers they stand for and valid against ``schemas.frames``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from schemas import frames

SURVEY = "fh"
KOMMUN = "0880"
LAN = "08"
ENHET = "G01"
VERKSAMHET = "LSS_GRUPP"
QUESTION = "FH_BESTAMMA"  # scale JA_IBLAND_NEJ: 1 Ja (positive), 2 Ibland, 3 Nej, 9 Vet inte
VALID_CODES = (1, 2, 3)
EXCLUDED_CODE = 9
SOURCE_FILE = "kalmar.csv"
DISTRIBUTED = 10
GENDERS = ("T", "K", "M")
SHARES = ("pct_positive", "ci_low", "ci_high", "pct", "response_rate")

# The reporting views' columns, in order: the stable names BI tools rely on
VIEW_COLUMNS = {
    "results": [
        "survey", "year", "level", "area_code", "area_name", "kommun_kod", "lan_kod",
        "verksamhet", "verksamhet_name", "gender", "question_id", "question_text",
        "kolada_short", "quality_area", "n_valid", "n_positive", "pct_positive", "ci_low",
        "ci_high", "suppressed", "suppression_reason", "aggregation", "kommun_mean_pct",
        "n_kommuner_in_mean", "lan_name", "gender_label", "question_order",
    ],
    "answer_distribution": [
        "survey", "year", "level", "area_code", "area_name", "kommun_kod", "lan_kod",
        "verksamhet", "verksamhet_name", "gender", "question_id", "question_text",
        "kolada_short", "quality_area", "answer_code", "answer_label", "role", "n", "pct",
        "suppressed", "suppression_reason", "lan_name", "gender_label", "question_order",
    ],
    "response_counts": [
        "survey", "year", "level", "area_code", "area_name", "kommun_kod", "lan_kod",
        "verksamhet", "verksamhet_name", "gender", "n_respondents", "n_distributed",
        "response_rate", "suppressed", "suppression_reason", "n_respondents_with_distributed",
        "lan_name", "gender_label",
    ],
    "load_history": [
        "load_id", "survey", "year", "flow_run_id", "load_status", "source_file", "file_kind",
        "source_url", "fetched_at", "landing_url",
        "sha256", "rows_read", "rows_loaded", "rows_quarantined", "status", "error",
        "load_error", "loaded_at", "started_at", "finished_at",
    ],
    "trends": [
        "survey", "year", "level", "area_code", "area_name", "kommun_kod", "lan_kod",
        "verksamhet", "verksamhet_name", "gender", "question_id", "question_text",
        "kolada_short", "quality_area", "n_valid", "n_positive", "pct_positive", "suppressed",
        "prev_n_valid", "prev_n_positive", "prev_pct_positive", "prev_suppressed", "change_pp",
        "comparable", "z_score", "z_critical", "significant", "lan_name", "gender_label",
        "question_order", "ci_low", "ci_high", "prev_ci_low", "prev_ci_high",
        "change_ci_low_pp", "change_ci_high_pp",
    ],
    "quality_areas": [
        "survey", "year", "level", "area_code", "area_name", "kommun_kod", "lan_kod",
        "verksamhet", "verksamhet_name", "gender", "quality_area", "n_area_questions",
        "n_questions", "n_published", "unweighted_mean_pct", "not_applicable", "suppressed",
        "lan_name", "gender_label",
    ],
    "kolada_comparison": [
        "kpi", "kpi_title", "year", "municipality_id", "level", "area_code", "area_name",
        "gender", "survey", "verksamhet", "question_id", "measure", "published_status",
        "published_value", "our_value", "difference", "differs", "gender_label",
    ],
    "rankings": [
        "survey", "year", "kommun_kod", "area_name", "verksamhet", "verksamhet_name", "gender",
        "measure", "question_id", "kolada_short", "value", "rank", "n_ranked", "band",
        "gender_label", "question_order",
    ],
    "verksamhet_means": [
        "survey", "year", "level", "area_code", "area_name", "kommun_kod", "lan_kod", "gender",
        "question_id", "kolada_short", "n_verksamheter", "n_published", "mean_of_pct_positive",
        "suppressed", "lan_name", "gender_label", "question_order",
    ],
    "all_answers": [
        "survey", "year", "level", "area_code", "area_name", "kommun_kod", "lan_kod",
        "verksamhet", "verksamhet_name", "gender", "n_questions", "n_valid", "n_positive",
        "pct_positive", "suppressed", "lan_name", "gender_label",
    ],
    "gender_differences": [
        "survey", "year", "level", "area_code", "area_name", "kommun_kod", "lan_kod",
        "verksamhet", "verksamhet_name", "question_id", "question_text", "kolada_short",
        "women_n_valid", "women_n_positive", "women_pct_positive", "men_n_valid",
        "men_n_positive", "men_pct_positive", "z_critical", "difference_pp", "z_score",
        "significant", "lan_name", "question_order",
    ],
}  # fmt: skip

# (level, area_code, kommun_kod, lan_kod) of every area the Kalmar answers count in
AREAS = (
    ("enhet", f"{KOMMUN}-{ENHET}", KOMMUN, LAN),
    ("kommun", KOMMUN, KOMMUN, LAN),
    ("lan", LAN, None, LAN),
    ("riket", "0000", None, None),
)


@dataclass(frozen=True)
class Load:
    """The frames ``warehouse.load.publish`` takes for one (survey, year)."""

    files: pd.DataFrame
    respondents: pd.DataFrame
    answers: pd.DataFrame
    quarantine: pd.DataFrame
    results: pd.DataFrame
    distribution: pd.DataFrame
    response_counts: pd.DataFrame

    def frames(self) -> dict[str, pd.DataFrame]:
        return asdict(self)


def _cells(per_cell: int = 1) -> pd.DataFrame:
    """The cell keys of every area × gender, each repeated ``per_cell`` times."""
    rows = [(*area, gender) for area in AREAS for gender in GENDERS for _ in range(per_cell)]
    columns = ["level", "area_code", "kommun_kod", "lan_kod", "gender"]
    return pd.DataFrame(rows, columns=columns, dtype="str").assign(verksamhet=VERKSAMHET)


def _with_figures(cells: pd.DataFrame, **figures: Any) -> pd.DataFrame:
    """Figures for gender T; K and M are suppressed (too few answers), their figures missing."""
    published = cells["gender"] == "T"
    reason = pd.Series(frames.FEW_ANSWERS, index=cells.index, dtype="str")
    frame = cells.assign(
        **figures, suppressed=~published, suppression_reason=reason.mask(published)
    )
    for column in figures:
        frame[column] = frame[column].where(published)
        frame[column] = frame[column].astype(float if column in SHARES else "Int64")
    return frame


def build_load(codes: list[int], kon: list[str]) -> Load:
    """A load of one file: respondent i answered ``codes[i]`` and has gender ``kon[i]``.

    Gender T is published; K and M are suppressed (too few answers each), so their figures
    are missing. One further row of the file is quarantined, and a second file is refused.
    """
    n = len(codes)
    ids = list(range(n))
    respondents = pd.DataFrame(
        {
            "respondent_id": ids,
            "source_file": [SOURCE_FILE] * n,
            "row_number": [i + 1 for i in ids],
            "kommun_kod": [KOMMUN] * n,
            "lan_kod": [LAN] * n,
            "verksamhet": [VERKSAMHET] * n,
            "enhet_id": [ENHET] * n,
            "svar_id": [f"S{i}" for i in ids],
            "gender": kon,
        }
    )
    answers = pd.DataFrame(
        {"respondent_id": ids, "question_id": [QUESTION] * n, "answer_code": codes}
    ).astype({"question_id": "category"})
    quarantine = pd.DataFrame(
        {
            "source_file": [SOURCE_FILE],
            "row_number": [n + 1],
            "kommun_kod": [KOMMUN],
            "svar_id": ["S-bad"],
            "reasons": [f"{QUESTION}: outside its scale (7)"],
            "original": [json.dumps({QUESTION: "7"})],
        }
    )
    files = pd.DataFrame(
        {
            "source_file": [SOURCE_FILE, "trasig.csv"],
            "kind": ["answers", "answers"],
            "fetched_at": pd.Timestamp("2025-02-15 06:00", tz="UTC").as_unit("us"),
            "landing_url": [None, None],
            "source_url": [f"file:///exports/fh/{SOURCE_FILE}", "file:///exports/trasig.csv"],
            "sha256": [hashlib.sha256(name.encode()).hexdigest() for name in "ab"],
            "size_bytes": [100 * n, 0],
            "rows_read": [n + 1, 0],
            "rows_loaded": [n, 0],
            "rows_quarantined": [1, 0],
            "kommun_kod_padded": [0, 0],
            "status": ["loaded", "refused"],
            "error": [None, "trasig.csv: the file has no rows"],
        }
    )

    n_valid = sum(code != EXCLUDED_CODE for code in codes)
    n_by_code = [codes.count(code) for code in VALID_CODES]
    pct_positive = 100 * codes.count(1) / n_valid
    results = _with_figures(
        _cells().assign(question_id=QUESTION),
        n_valid=n_valid,
        n_positive=codes.count(1),
        pct_positive=pct_positive,
        ci_low=pct_positive / 2,
        ci_high=(100 + pct_positive) / 2,
    )
    distribution = _with_figures(
        _cells(len(VALID_CODES)).assign(
            question_id=QUESTION, answer_code=list(VALID_CODES) * 3 * len(AREAS)
        ),
        n=n_by_code * 3 * len(AREAS),
        pct=[100 * count / n_valid for count in n_by_code] * 3 * len(AREAS),
    )
    response_counts = _with_figures(
        _cells(),
        n_respondents=n,
        n_distributed=DISTRIBUTED,
        n_covered=n,
        response_rate=100 * n / DISTRIBUTED,
    )
    return Load(
        files=frames.FileReport.validate(files),
        respondents=frames.Respondents.validate(respondents),
        answers=frames.Answers.validate(answers),
        quarantine=frames.Quarantine.validate(quarantine),
        results=frames.Results.validate(results),
        distribution=frames.AnswerDistribution.validate(distribution),
        response_counts=frames.ResponseCounts.validate(response_counts),
    )
