"""Disclosure control at national volume: what is hidden and why, what an analyst could still read
off the published cells, and, where ``pytauargus`` is installed, the field's standard engine
τ-Argus on the same table as a yardstick for how much is hidden (printed, never asserted).

    .venv/bin/python -m bench.disclosure [--work /tmp/brukardata-bench] [--source DIR]

The year is the benchmark's national generated year (or ``--source``), read by the pipeline's
own fetch, parse and validation. The yardstick table is, per survey, every kommun (within its
län, within riket) × gender (T = K + M + unknown) of respondents to any enkät, protected by our
``suppress`` and by τ-Argus' modular method with the frequency rule (``FREQ(5,0)``, ``MOD(1)``);
cells of unknown gender are cells of the table for both and are counted apart, as they are never
published.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.data import generated
from bench.stages import SUPPRESSION, suppression_timed
from schemas.catalogue import RIKET_CODE, SURVEYS, default_catalogue
from schemas.frames import FEW_ANSWERS
from tasks.aggregate import aggregate
from tasks.fetch import fetch_survey_year
from tasks.parse import parse_survey_year
from tasks.suppression import Hierarchy, suppress
from tasks.validate import ValidatedSurveyYear, validate_survey_year
from tests import disclosure

YEAR = 2024
THRESHOLD = 5


def validated_year(source: Path, survey: str) -> ValidatedSurveyYear:
    """The year's exports of ``survey`` as the pipeline reads and checks them."""
    catalogue = default_catalogue()
    files = fetch_survey_year(str(source), survey, YEAR)
    return validate_survey_year(
        parse_survey_year(files, survey, YEAR, catalogue), survey, YEAR, catalogue
    )


def hidden_and_exposed(source: Path) -> pd.DataFrame:
    """Per survey and figure: cells, hidden as too small, hidden as complements, groups of
    1..threshold-1 the subtract-and-narrow attack reads off, and the suppression seconds."""
    catalogue = default_catalogue()
    rows = []
    for survey in SURVEYS:
        validated = validated_year(source, survey)
        times: dict[str, float] = {SUPPRESSION: 0.0}
        with suppression_timed(times):
            figures = aggregate(
                validated.respondents,
                validated.answers,
                validated.distributed,
                survey=survey,
                year=YEAR,
                catalogue=catalogue,
                threshold=THRESHOLD,
            )
        composites = catalogue.composites(survey, YEAR)
        for name, frame, value, extra in [
            ("results.n_valid", figures.results, "n_valid", ["question_id"]),
            ("response_counts.n_respondents", figures.response_counts, "n_respondents", []),
        ]:
            table = disclosure.Table(
                frame.astype({value: "float64"}), value, composites=composites, extra_keys=extra
            )
            reason = frame["suppression_reason"]
            rows.append(
                {
                    "survey": survey,
                    "figure": name,
                    "cells": len(frame),
                    "few_answers": int((reason == FEW_ANSWERS).sum()),
                    "protects_other": int((reason.notna() & (reason != FEW_ANSWERS)).sum()),
                    "exposed groups": len(disclosure.attack(table, THRESHOLD)),
                    "suppression s": round(times[SUPPRESSION], 2),
                }
            )
    return pd.DataFrame(rows)


def respondent_table(source: Path, survey: str) -> pd.DataFrame:
    """One row per respondent of the year: kommun, län and gender (X: unknown)."""
    return (
        validated_year(source, survey).respondents[["kommun_kod", "lan_kod", "gender"]].astype(str)
    )


def ours(people: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Our suppression of kommun/län/riket × T/K/M/X: the cells with their reason (``reason``),
    and the seconds."""
    by_gender = people.groupby(["lan_kod", "kommun_kod", "gender"]).size().rename("n").reset_index()
    kommun = pd.concat(
        [
            by_gender,
            by_gender.groupby(["lan_kod", "kommun_kod"])["n"]
            .sum()
            .reset_index()
            .assign(gender="T"),
        ]
    ).assign(level="kommun", area_code=lambda f: f["kommun_kod"])
    lan = kommun.groupby(["lan_kod", "gender"])["n"].sum().reset_index()
    lan = lan.assign(level="lan", area_code=lan["lan_kod"], kommun_kod="")
    riket = kommun.groupby("gender")["n"].sum().reset_index()
    riket = riket.assign(level="riket", area_code=RIKET_CODE, kommun_kod="", lan_kod="")
    cells = pd.concat([kommun, lan, riket], ignore_index=True)
    started = time.perf_counter()
    reason = suppress(
        cells,
        cells[["n"]],
        keys=["level", "area_code", "gender"],
        hierarchies=[
            Hierarchy(cells["level"] == "kommun", {"level": "lan", "area_code": cells["lan_kod"]}),
            Hierarchy(cells["level"] == "lan", {"level": "riket", "area_code": RIKET_CODE}),
            Hierarchy(cells["gender"] != "T", {"gender": "T"}),
        ],
        threshold=THRESHOLD,
        unpublished=cells["gender"] == "X",
    )
    return cells.assign(reason=reason), time.perf_counter() - started


def tau_argus(people: pd.DataFrame, work: Path) -> tuple[pd.DataFrame, float]:
    """τ-Argus' modular method on the same table: each cell's status (U primary, M secondary)."""
    import pytauargus  # an optional yardstick, not a dependency of the pipeline
    from pytauargus.hrc import write_hrc

    micro = people.rename(columns={"kommun_kod": "kommun", "lan_kod": "lan"}).assign(one=1)
    hierarchy = write_hrc(
        {column: micro[column].tolist() for column in ("kommun", "lan")},
        ["kommun", "lan"],
        hrc_filename=str(work / "kommun.hrc"),
    )
    started = time.perf_counter()
    with contextlib.chdir(work):  # the engine leaves its log and solver files where it runs
        result = pytauargus.protect(
            micro[["kommun", "gender", "one"]],
            [["kommun", "gender"]],
            "one",
            safety_rules="FREQ(5,0)",
            suppress="MOD(1)",
            hrc={"kommun": hierarchy},
            workdir=str(work / "tau-argus"),
        )
    return result.tables[0].dataframe(), time.perf_counter() - started


def yardstick(source: Path, work: Path) -> pd.DataFrame:
    rows = []
    for survey in SURVEYS:
        people = respondent_table(source, survey)
        cells, seconds = ours(people)
        published = cells["gender"] != "X"
        row = {
            "survey": survey,
            "published cells": int(published.sum()),
            "ours: few": int((cells["reason"] == FEW_ANSWERS).where(published, False).sum()),
            "ours: complements": int(
                (cells["reason"].notna() & (cells["reason"] != FEW_ANSWERS) & published).sum()
            ),
            "ours: hidden respondents": int(
                cells.loc[published & cells["reason"].notna(), "n"].sum()
            ),
            "ours s": round(seconds, 3),
        }
        try:
            tau, tau_seconds = tau_argus(people, work)
        except ImportError:
            rows.append(row)
            continue
        shown = tau["gender"] != "X"
        row |= {
            "τ-Argus: few": int(((tau["status"] == "U") & shown).sum()),
            "τ-Argus: complements": int(((tau["status"] == "M") & shown).sum()),
            "τ-Argus: hidden respondents": int(
                tau.loc[shown & tau["status"].isin(["U", "M"]), "freq"].sum()
            ),
            "τ-Argus s": round(tau_seconds, 3),
        }
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "brukardata-bench"
    )
    parser.add_argument("--source", type=Path, help="a source of the year (default: national)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    source = args.source or generated(args.work, [YEAR])
    print(f"disclosure control, {YEAR}, threshold {THRESHOLD}:")
    print(hidden_and_exposed(source).to_string(index=False))
    print("\nkommun × gender of all respondents, ours against τ-Argus MOD(1), FREQ(5,0):")
    print(yardstick(source, args.work).T.to_string())


if __name__ == "__main__":
    main()
