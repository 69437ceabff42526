"""Memory benchmark: a very large export through the real steps, in bounded memory (by hand
or ``make bench``; figures printed, never asserted).

Writes a CSV export of about ``--size-mb`` megabytes (valid rows of every municipality) as a
survey-year folder, then, each in a fresh process so that each peak is its own:

- ``validate``: what ``brukardata validate`` does — fetch (the file is over the hold limit, so
  it is streamed), parse, validate counting the valid rows, not keeping them;
- ``run``: the run's first steps — fetch streaming the file to a landing area, parse, validate
  keeping every valid row as respondents and answers (the input of aggregation);
- ``whole`` (``--whole``, for comparison on a smaller file): the same with the file held whole.

    .venv/bin/python -m bench.read_large_export --size-mb 1024
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from schemas.catalogue import Catalogue, default_catalogue
from schemas.defaults import STREAM_ABOVE_BYTES
from tasks.fetch import fetch_survey_year
from tasks.parse import parse_survey_year
from tasks.validate import validate_survey_year

SURVEY, YEAR, ENKAT = "ifo", 2024, "EKB"
BATCH_ROWS = 50_000
MODES = ("validate", "run", "whole")
MB = 1024 * 1024


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_export(path: Path, size_mb: int, catalogue: Catalogue) -> int:
    """A ;-separated UTF-8 export of about ``size_mb`` MB; returns the number of rows."""
    questions = catalogue.questions_asked(SURVEY, ENKAT, YEAR)
    kommuner = np.array(sorted(catalogue.kommun_codes))
    labels = {q: catalogue.scale(catalogue.scale_of[q])["label_sv"].to_numpy() for q in questions}
    rng = np.random.default_rng(0)
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(";".join(["kommun_kod", "verksamhet", "svar_id", "kon", *questions]) + "\n")
        while handle.tell() < size_mb * 1024 * 1024:
            batch = pd.DataFrame(
                {
                    "kommun_kod": kommuner[rng.integers(len(kommuner), size=BATCH_ROWS)],
                    "verksamhet": ENKAT,
                    "svar_id": np.char.add("r", np.arange(rows, rows + BATCH_ROWS).astype(str)),
                    "kon": rng.choice(["Kvinna", "Man", ""], size=BATCH_ROWS),
                    **{q: rng.choice(labels[q], size=BATCH_ROWS) for q in questions},
                }
            )
            batch.to_csv(handle, sep=";", header=False, index=False, lineterminator="\n")
            rows += BATCH_ROWS
    return rows


def measure(mode: str, source: Path, work: Path, hold_mb: float) -> str:
    """One mode's line: rows, seconds, peak RSS (before reading, and at the end)."""
    catalogue = default_catalogue()
    before = peak_rss_mb()
    started = time.perf_counter()
    stream_above = 2**62 if mode == "whole" else int(hold_mb * MB)
    landing = None if mode == "validate" else str(work / f"landing-{mode}")
    files = fetch_survey_year(str(source), SURVEY, YEAR, landing=landing, stream_above=stream_above)
    parsed = parse_survey_year(files, SURVEY, YEAR, catalogue)
    validated = validate_survey_year(parsed, SURVEY, YEAR, catalogue, keep_rows=mode != "validate")
    seconds = time.perf_counter() - started
    report = validated.files.iloc[0]
    size_mb = report["size_bytes"] / 1024 / 1024
    return (
        f"{mode:>8}: {size_mb:,.0f} MB, {report['rows_read']:,} rows "
        f"({report['rows_quarantined']:,} quarantined; {len(validated.answers):,} answers kept) "
        f"in {seconds:.1f} s = {size_mb / seconds:.1f} MB/s; peak RSS {peak_rss_mb():,.0f} MB "
        f"(before reading {before:,.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--whole", action="store_true", help="also read the file held whole")
    parser.add_argument("--work", type=Path, help="reuse (or keep) the export under this folder")
    parser.add_argument(
        "--hold-mb", type=float, default=STREAM_ABOVE_BYTES / MB, help="the hold limit (MB)"
    )
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one measurement
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = arguments.work or Path(scratch)
        source = work / f"source-{arguments.size_mb}mb"
        if arguments.mode:
            print(measure(arguments.mode, source, work, arguments.hold_mb), flush=True)
            return
        path = source / SURVEY / str(YEAR) / "large_export.csv"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            written = write_export(path, arguments.size_mb, default_catalogue())
            print(f"wrote {written:,} rows in {time.perf_counter() - started:.0f} s")
        for mode in MODES if arguments.whole else MODES[:2]:
            subprocess.run(
                [sys.executable, "-m", "bench.read_large_export", "--size-mb",
                 str(arguments.size_mb), "--work", str(work), "--hold-mb",
                 str(arguments.hold_mb), "--mode", mode],
                check=True,
            )  # fmt: skip


if __name__ == "__main__":
    main()
