"""Benchmark data: ``brukardata generate`` with a fixed seed, rewritten as plain CSV at any scale.

The generator writes national volume (every kommun, its mean number of respondents) in the mixed
formats real exports come in (xlsx, gzip, Windows-1252, answer labels). Every contender of the
benchmark — our pipeline, the plain DuckDB script, the pandas alternative — must read the same
files, and a plain SQL script cannot read workbooks or labels, so the generated year is read once
by our own parser, normalised to codes, and written as UTF-8 ``;`` CSV, one file per copy and
survey holding every kommun. A larger scale is ``copies`` of the national year with the copy
number appended to each ``svar_id`` (ids stay unique within survey, year and kommun), so the
figures' shares stay those of the national year while every count grows by ``copies``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from sample.generate import generate_exports
from schemas.catalogue import SURVEYS, default_catalogue
from tasks.fetch import fetch_survey_year
from tasks.parse import parse_export
from tasks.validate import normalise_frame

SEED = 20240215
KEYS = ["kommun_kod", "verksamhet", "enhet_id", "svar_id", "kon"]


def generated(work: Path, years: list[int]) -> Path:
    """National sample exports of ``years`` (every kommun, no defects), generated once."""
    out = work / f"generated-{years[0]}-{years[-1]}"
    if not (out / "manifest.json").is_file():
        shutil.rmtree(out, ignore_errors=True)
        n_kommuner = len(default_catalogue().kommuner)
        generate_exports(out, years, n_kommuner=n_kommuner, seed=SEED, defects=False)
    return out


def canonical_frames(source: Path, year: int) -> dict[str, pd.DataFrame]:
    """survey → every respondent of ``year`` as canonical codes (KEYS + question columns)."""
    catalogue = default_catalogue()
    frames: dict[str, pd.DataFrame] = {}
    for survey in SURVEYS:
        files = fetch_survey_year(str(source), survey, year)
        parsed = [parse_export(raw, survey, year, catalogue) for raw in files.exports]
        parts = [
            normalise_frame(chunk, export.codebook, survey, catalogue)[0]
            for export in parsed
            for chunk in export.chunks()
        ]
        frame = pd.concat(parts, ignore_index=True).drop(columns=["source_file", "row_number"])
        questions = [c for c in frame.columns if c not in KEYS]
        frames[survey] = frame[KEYS + questions].fillna("")
    return frames


def write_scaled(source: Path, year: int, out: Path, copies: int) -> int:
    """Write ``copies`` of ``year``'s respondents under ``out/{survey}/{year}/`` as CSV, with
    the hand-out counts multiplied alike; returns the number of respondents written."""
    if (out / "done").is_file():
        return int((out / "done").read_text())
    shutil.rmtree(out, ignore_errors=True)
    written = 0
    for survey, frame in canonical_frames(source, year).items():
        folder = out / survey / str(year)
        folder.mkdir(parents=True)
        svar_id = frame["svar_id"]
        for copy in range(copies):
            frame["svar_id"] = svar_id + f"-{copy}"
            frame.to_csv(folder / f"{survey}_{year}_{copy:03d}.csv", sep=";", index=False)
            written += len(frame)
        distributed = pd.read_csv(
            source / survey / str(year) / "utdelade.csv", sep=";", dtype={"kommun_kod": str}
        )
        distributed["antal_utdelade"] *= copies
        distributed.to_csv(folder / "utdelade.csv", sep=";", index=False)
    (out / "done").write_text(str(written))
    return written
