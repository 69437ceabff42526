"""A self-contained HTML report of one year: figures a director can read, charts included.

For a kommun: each survey's questions (the ``ALL`` group, everyone) against riket and against
last year, with n and the confidence interval; bar charts with interval whiskers and trend
lines are inline SVG, so the file opens anywhere without a network. Without a kommun the report
shows riket. Suppressed cells are shown as such, never as 0, and say why: too few answers (the
threshold recorded with the load that published them) or protecting another hidden figure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine, text

from schemas.catalogue import RIKET_CODE
from schemas.frames import FEW_ANSWERS, PROTECTS_OTHER
from tasks.press import headlines, press_statements
from tasks.rounding import half_up, whole_percent

OVERVIEW_GROUP = "ALL"  # the composite group of every enkät: the survey as a whole
SUPPRESSED_TEXT = "Visas ej"
HIDDEN_BECAUSE = {
    FEW_ANSWERS: "Visas ej (färre än {threshold} svar)",
    PROTECTS_OTHER: "Visas ej (skyddar en annan uppgift som har för få svar)",
}
BAR_COLOURS = {"area": "#1f5f8b", "riket": "#9bb7cc"}

FIGURES = text(
    """
    SELECT t.survey, s.name_sv AS survey_name, t.year, t.level, t.area_code, t.area_name,
        t.question_id, t.question_order, t.question_text, t.kolada_short, t.n_valid,
        t.pct_positive,
        r.ci_low, r.ci_high, t.suppressed, r.suppression_reason, t.prev_pct_positive,
        t.change_pp, t.significant
    FROM reporting.trends AS t
        JOIN reporting.results AS r ON r.survey = t.survey AND r.year = t.year
            AND r.level = t.level AND r.area_code = t.area_code
            AND r.verksamhet = t.verksamhet AND r.gender = t.gender
            AND r.question_id = t.question_id
        JOIN core.dim_survey AS s ON s.survey = t.survey
    WHERE t.verksamhet = :group AND t.gender = 'T' AND t.area_code IN (:area, :riket)
        AND t.year <= :year
    """
)

RESPONDENTS = text(
    """
    SELECT survey, area_code, n_respondents, response_rate, suppressed, suppression_reason
    FROM reporting.response_counts
    WHERE year = :year AND verksamhet = :group AND gender = 'T'
        AND area_code IN (:area, :riket)
    """
)

# The settings of the load that published each survey's year: the rules its figures follow.
LOAD_SETTINGS = text(
    """
    SELECT survey, settings FROM audit.loads
    WHERE load_id IN (
        SELECT MAX(load_id) FROM audit.loads
        WHERE year = :year AND status = 'published' GROUP BY survey
    )
    """
)


@dataclass(frozen=True)
class ReportData:
    """Everything one report shows: the area's and riket's figures of every year up to ``year``."""

    year: int
    area_code: str
    figures: pd.DataFrame  # one row per survey, year, area and question (FIGURES)
    respondents: pd.DataFrame  # one row per survey and area of ``year`` (RESPONDENTS)
    settings: Mapping[str, Mapping[str, Any]]  # survey → the statistical settings of its load
    press: Mapping[str, list[str]]  # survey → the press release's sentences (a kommun's report)


def read_report_data(engine: Engine, year: int, kommun: str | None = None) -> ReportData:
    """The published figures a report of ``kommun`` (riket when None) for ``year`` needs."""
    params = {"group": OVERVIEW_GROUP, "area": kommun or RIKET_CODE, "riket": RIKET_CODE}
    with engine.connect() as conn:
        figures = pd.read_sql(FIGURES, conn, params=params | {"year": year})
        respondents = pd.read_sql(RESPONDENTS, conn, params=params | {"year": year})
        settings = {
            survey: json.loads(recorded)
            for survey, recorded in conn.execute(LOAD_SETTINGS, {"year": year})
        }
        press = {
            survey: press_statements(conn, year, kommun, headline)
            for survey, headline in headlines().items()
            if kommun is not None and survey in settings
        }
    area_code = kommun or RIKET_CODE
    if not ((figures["year"] == year) & (figures["area_code"] == area_code)).any():
        where = f"kommun {kommun}" if kommun else "riket"
        raise LookupError(f"no published figures for {where} in {year}")
    return ReportData(year, area_code, figures, respondents, settings, press)


def _percent(value: float | None) -> str:
    """A share as Swedish text: whole percent, or the suppression note."""
    return SUPPRESSED_TEXT if value is None or pd.isna(value) else f"{whole_percent(value)} %"


def hidden_text(reason: str | None, threshold: int) -> str:
    """Why a figure is not shown, in the reader's words."""
    if isinstance(reason, str) and reason in HIDDEN_BECAUSE:
        return HIDDEN_BECAUSE[reason].format(threshold=threshold)
    return SUPPRESSED_TEXT


def _interval(low: float | None, high: float | None) -> str:
    """An interval as Swedish text; no interval where the cell is suppressed."""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return "–"
    return f"{whole_percent(low)}–{whole_percent(high)} %"


def _count(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else str(int(value))


def _change(value: float | None) -> str:
    if value is None or pd.isna(value):
        return "–"
    points = whole_percent(value)
    unit = "procentenhet" if abs(points) == 1 else "procentenheter"
    return f"{points:+d} {unit}".replace("-", "−")


def _confidence(level: float) -> str:
    """A confidence level as Swedish text: 0.95 → "95 %", 0.995 → "99,5 %"."""
    return f"{half_up(100 * level, 1).normalize():f} %".replace(".", ",")


def _sides(area_code: str) -> tuple[str, ...]:
    """Whose figures a chart draws: the area and riket, or riket once in a report of riket."""
    return ("area",) if area_code == RIKET_CODE else ("area", "riket")


def _coordinate(value: float) -> str:
    return f"{value:.1f}"


def bar_chart(rows: pd.DataFrame, area_name: str, area_code: str) -> dict[str, Any]:
    """Where the bars go (the charts.j2 ``bar_chart`` macro draws them): per question the
    area's bar, and riket's beside it, with whiskers for the interval."""
    sides = _sides(area_code)
    width, label_width, bar_height = 760, 230, 12
    scale = (width - label_width - 20) / 100
    group_height = len(sides) * bar_height + 16
    height = group_height * len(rows) + 40
    compared = "" if len(sides) == 1 else " och riket"

    def bar(who: str, y: int, pct: float, low: float, high: float) -> dict[str, Any]:
        if pd.isna(pct):
            return {"hidden": True, "text_y": y + bar_height - 2}
        x1, x2 = label_width + low * scale, label_width + high * scale
        whisker = (
            None
            if pd.isna(low)
            else {
                "x1": _coordinate(x1),
                "x2": _coordinate(x2),
                "middle": y + (bar_height - 2) / 2,
                "top": y + 1,
                "bottom": y + bar_height - 3,
            }
        )
        return {
            "hidden": False,
            "y": y,
            "width": _coordinate(pct * scale),
            "colour": BAR_COLOURS[who],
            "whisker": whisker,
        }

    groups = []
    for index, row in enumerate(rows.itertuples()):
        top = index * group_height + 6
        bars = [
            bar(
                who,
                top + offset * bar_height,
                *(getattr(row, f"{who}_{name}") for name in ("pct", "low", "high")),
            )
            for offset, who in enumerate(sides)
        ]
        groups.append(
            {"label": str(row.kolada_short), "label_y": top + bar_height + 4, "bars": bars}
        )
    return {
        "width": width,
        "height": height,
        "label_width": label_width,
        "bar_height": bar_height,
        "label": f"Andel positiva svar per fråga, {area_name}{compared}",
        "hidden_text": SUPPRESSED_TEXT,
        "ticks": [
            {"x": _coordinate(label_width + tick * scale), "text": f"{tick} %"}
            for tick in range(0, 101, 25)
        ],
        "groups": groups,
    }


def trend_chart(history: pd.DataFrame, area_code: str) -> dict[str, Any]:
    """Where one question's share by year goes (the charts.j2 ``trend_chart`` macro draws it):
    the area's line and riket's; suppressed years leave gaps."""
    width, height, margin = 360, 150, 34
    years = sorted(history["year"].unique())
    step = (width - 2 * margin) / max(len(years) - 1, 1)

    def x(year: int) -> float:
        return margin + years.index(year) * step

    def y(pct: float) -> float:
        return height - margin - pct * (height - 2 * margin) / 100

    lines = []
    for who in reversed(_sides(area_code)):  # riket first, so the area's line is drawn on top
        code = RIKET_CODE if who == "riket" else area_code
        line = history[history["area_code"] == code].sort_values("year")
        points = [
            (_coordinate(x(int(year))), _coordinate(y(float(pct))))
            for year, pct in zip(line["year"], line["pct_positive"], strict=True)
            if not pd.isna(pct)
        ]
        lines.append({"colour": BAR_COLOURS[who], "points": points})
    return {
        "width": width,
        "height": height,
        "margin": margin,
        "years": [{"x": _coordinate(x(year)), "text": year} for year in years],
        "lines": lines,
    }


def _side_by_side(figures: pd.DataFrame, year: int, area_code: str) -> pd.DataFrame:
    """One row per question of ``year``, in the questionnaire's order: the area's figures
    beside riket's."""
    this_year = figures[figures["year"] == year]
    columns = {"pct_positive": "pct", "ci_low": "low", "ci_high": "high"}
    keys = ["question_id", "question_order", "question_text", "kolada_short"]
    area = this_year[this_year["area_code"] == area_code]
    riket = this_year[this_year["area_code"] == RIKET_CODE]
    merged = area[
        [
            *keys,
            "n_valid",
            *columns,
            "suppression_reason",
            "prev_pct_positive",
            "change_pp",
            "significant",
        ]
    ].rename(columns={name: f"area_{short}" for name, short in columns.items()})
    merged = merged.merge(
        riket[["question_id", *columns]].rename(
            columns={name: f"riket_{short}" for name, short in columns.items()}
        ),
        on="question_id",
        how="left",
    )
    return merged.sort_values("question_order").reset_index(drop=True)


def render_report(data: ReportData) -> str:
    """The report as one HTML document with inline CSS and SVG."""
    environment = Environment(
        loader=PackageLoader("tasks", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    environment.filters["percent"] = _percent
    environment.filters["change"] = _change
    environment.filters["count"] = _count
    environment.globals["interval"] = _interval
    this_year = data.figures[data.figures["year"] == data.year]
    area_rows = this_year[this_year["area_code"] == data.area_code]
    area_name = str(area_rows["area_name"].iloc[0]) if len(area_rows) else "Riket"
    surveys = []
    for survey, figures in data.figures.groupby("survey", sort=True):
        rows = _side_by_side(figures, data.year, data.area_code)
        if rows.empty:
            continue
        respondents = data.respondents[
            (data.respondents["survey"] == survey)
            & (data.respondents["area_code"] == data.area_code)
        ]
        threshold = data.settings[str(survey)]["suppression_threshold"]
        surveys.append(
            {
                "name": str(figures["survey_name"].iloc[0]),
                "hidden": lambda reason, threshold=threshold: hidden_text(reason, threshold),
                "rows": rows.to_dict("records"),
                "respondents": respondents.to_dict("records"),
                "press": data.press.get(str(survey), []),
                "respondents_label": headlines()[str(survey)].respondents_label,
                "threshold": threshold,
                "confidence": _confidence(data.settings[str(survey)]["confidence_level"]),
                "bars": bar_chart(rows, area_name, data.area_code),
                "trends": [
                    {"title": row["kolada_short"], "chart": trend_chart(history, data.area_code)}
                    for row in rows.to_dict("records")
                    for history in [figures[figures["question_id"] == row["question_id"]]]
                ],
            }
        )
    return environment.get_template("report.html.j2").render(
        year=data.year,
        area_name=area_name,
        is_riket=data.area_code == RIKET_CODE,
        surveys=surveys,
        colours=BAR_COLOURS,
    )


def write_report(engine: Engine, year: int, out: Path, kommun: str | None = None) -> Path:
    """Write the report of ``kommun`` (riket when None) for ``year`` to ``out``; returns it."""
    html = render_report(read_report_data(engine, year, kommun))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


write_report_task = task(name="write-report", cache_policy=NO_CACHE)(write_report)
