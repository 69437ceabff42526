"""The sentences of a municipality's press release, from published figures only.

Each survey's headline question (``schemas/headlines.csv``) is stated for the kommun: its share
with its rank among the kommuner with a published share, the respondents with their rank, the
mean over the survey's verksamheter, positive answers among all answers, and women against
men. A figure that is hidden is not stated; ranks come from ``reporting.rankings``, which ranks
published figures only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, text

from tasks.rounding import whole_percent
from tasks.summary import headline_definitions

OVERALL = "ALL"  # the composite group of every enkät: the survey as a whole

# Kolada's bands, as a sentence ends
BAND_TEXT = {
    "best_quartile": "bland den bästa fjärdedelen",
    "middle_half": "i den mittersta hälften",
    "lowest_quartile": "bland den lägsta fjärdedelen",
}

FIGURES = {
    "share": """
        SELECT r.pct_positive, r.n_valid, k.rank, k.n_ranked, k.band
        FROM reporting.results AS r
            LEFT JOIN reporting.rankings AS k ON k.survey = r.survey AND k.year = r.year
                AND k.kommun_kod = r.area_code AND k.verksamhet = r.verksamhet
                AND k.gender = r.gender AND k.measure = 'pct_positive'
                AND k.question_id = r.question_id
        WHERE r.survey = :survey AND r.year = :year AND r.level = 'kommun'
            AND r.area_code = :kommun AND r.verksamhet = :group AND r.gender = 'T'
            AND r.question_id = :question AND r.pct_positive IS NOT NULL""",
    "respondents": """
        SELECT c.n_respondents, c.n_distributed, c.response_rate, k.rank, k.n_ranked, k.band
        FROM reporting.response_counts AS c
            LEFT JOIN reporting.rankings AS k ON k.survey = c.survey AND k.year = c.year
                AND k.kommun_kod = c.area_code AND k.verksamhet = c.verksamhet
                AND k.gender = c.gender AND k.measure = 'n_respondents'
        WHERE c.survey = :survey AND c.year = :year AND c.level = 'kommun'
            AND c.area_code = :kommun AND c.verksamhet = :group AND c.gender = 'T'
            AND c.n_respondents IS NOT NULL""",
    "mean": """
        SELECT mean_of_pct_positive, n_verksamheter
        FROM reporting.verksamhet_means
        WHERE survey = :survey AND year = :year AND level = 'kommun' AND area_code = :kommun
            AND gender = 'T' AND question_id = :question AND mean_of_pct_positive IS NOT NULL""",
    "all_answers": """
        SELECT pct_positive, n_positive, n_valid, n_questions
        FROM reporting.all_answers
        WHERE survey = :survey AND year = :year AND level = 'kommun' AND area_code = :kommun
            AND verksamhet = :group AND gender = 'T' AND pct_positive IS NOT NULL""",
    "gender": """
        SELECT women_pct_positive, women_n_valid, men_pct_positive, men_n_valid,
            difference_pp, significant
        FROM reporting.gender_differences
        WHERE survey = :survey AND year = :year AND level = 'kommun' AND area_code = :kommun
            AND verksamhet = :group AND question_id = :question
            AND difference_pp IS NOT NULL""",
}


@dataclass(frozen=True)
class Headline:
    """How a survey's headline is worded (a row of ``schemas/headlines.csv``)."""

    survey: str
    question_id: str
    measure_label: str  # "nöjda", "trivs alltid"
    respondents_label: str  # "svarande"; FH counts questionnaires: "enkätsvar"


def headlines() -> dict[str, Headline]:
    """Each survey's headline, by survey."""
    definitions = headline_definitions()
    overall = definitions[definitions["verksamhet"] == OVERALL]
    columns = ["survey", "question_id", "measure_label", "respondents_label"]
    return {
        str(row["survey"]): Headline(*(str(row[column]) for column in columns))
        for row in overall[columns].to_dict("records")
    }


def press_statements(conn: Connection, year: int, kommun: str, headline: Headline) -> list[str]:
    """The sentences a press release of ``kommun`` can state for the headline's survey."""
    params: dict[str, str | int] = {
        "survey": headline.survey,
        "year": year,
        "kommun": kommun,
        "group": OVERALL,
        "question": headline.question_id,
    }
    found = {name: pd.read_sql(text(query), conn, params=params) for name, query in FIGURES.items()}
    figures = {
        name: {str(column): value for column, value in frame.iloc[0].items()}
        for name, frame in found.items()
        if len(frame)
    }
    writers = {
        "share": _share,
        "respondents": _respondents,
        "mean": _mean,
        "all_answers": _all_answers,
        "gender": _gender,
    }
    return [writers[name](figures[name], headline) for name in writers if name in figures]


def _n(value: Any) -> str:
    """A count with Swedish thousands spacing: 26 000."""
    return f"{int(value):,}".replace(",", "\u00a0")


def _rank(row: dict[str, Any], what: str) -> str:
    """E.g. "Det är plats 8 av 290 kommuner …"; nothing where the figure is not ranked."""
    if pd.isna(row["rank"]):
        return ""
    band = "" if pd.isna(row["band"]) else f", {BAND_TEXT[row['band']]}"
    return (
        f" Det är plats {int(row['rank'])} av {int(row['n_ranked'])} kommuner med "
        f"publicerat {what}{band}."
    )


def _share(row: dict[str, Any], headline: Headline) -> str:
    return (
        f"{whole_percent(row['pct_positive'])} procent {headline.measure_label} "
        f"(n = {_n(row['n_valid'])} giltiga svar)." + _rank(row, "resultat")
    )


def _respondents(row: dict[str, Any], headline: Headline) -> str:
    rate = (
        ""
        if pd.isna(row["response_rate"])
        else f", en svarsfrekvens på {whole_percent(row['response_rate'])} procent"
    )
    return f"Antal {headline.respondents_label}: {_n(row['n_respondents'])}{rate}." + _rank(
        row, "antal"
    )


def _mean(row: dict[str, Any], headline: Headline) -> str:
    return (
        f"I genomsnitt över de {int(row['n_verksamheter'])} verksamheterna: "
        f"{whole_percent(row['mean_of_pct_positive'])} procent {headline.measure_label} "
        "(medelvärdet av verksamheternas andelar, inte en andel av de svarande)."
    )


def _all_answers(row: dict[str, Any], headline: Headline) -> str:
    return (
        f"{whole_percent(row['pct_positive'])} procent av alla svar är positiva "
        f"({_n(row['n_positive'])} av {_n(row['n_valid'])} giltiga svar på "
        f"{int(row['n_questions'])} frågor)."
    )


def _gender(row: dict[str, Any], headline: Headline) -> str:
    women, men = whole_percent(row["women_pct_positive"]), whole_percent(row["men_pct_positive"])
    return (
        f"Kvinnor: {women} procent {headline.measure_label} (n = {_n(row['women_n_valid'])}); "
        f"män: {men} procent (n = {_n(row['men_n_valid'])}). "
        f"{_verdict(row['significant'])}"
    )


def _verdict(significant: Any) -> str:
    """Whether a difference is significant, or that it could not be tested."""
    if significant is None or pd.isna(significant):
        return "Skillnaden har inte kunnat prövas statistiskt."
    if significant:
        return "Skillnaden är statistiskt säkerställd."
    return "Skillnaden är inte statistiskt säkerställd."
