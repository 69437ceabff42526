"""Memory benchmark: read and check a large export in bounded memory (run by hand, not a test).

Writes a CSV export of about ``--size-mb`` megabytes (valid rows of many municipalities), then
reads it the way a large file is read — tasks.parse.iter_export_chunks, normalisation and the
row rules chunk by chunk, only the (kommun_kod, svar_id) keys kept across chunks for the
duplicate check — and prints the peak resident memory and the throughput. ``--whole`` reads
the same file with parse_export instead, to compare with holding it whole.

    .venv/bin/python -m bench.read_large_export --size-mb 1024
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from schemas.catalogue import Catalogue, default_catalogue
from schemas.exports import respondent_schema
from tasks.fetch import RawFile
from tasks.parse import iter_export_chunks, parse_export
from tasks.validate import normalise_frame

SURVEY, YEAR, ENKAT = "ifo", 2024, "EKB"
BATCH_ROWS = 50_000


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


def read_in_chunks(path: Path, catalogue: Catalogue, rows_per_chunk: int) -> tuple[int, int]:
    """Rows read and rows breaking a rule, keeping only the duplicate-check keys across chunks.

    A key is the 64-bit hash of (kommun_kod, svar_id): 8 bytes a row whatever the text.
    """
    rows = broken = 0
    keys: list[np.ndarray] = []
    for book, chunk in iter_export_chunks(
        str(path), SURVEY, YEAR, catalogue, rows_per_chunk=rows_per_chunk
    ):
        frame, _ = normalise_frame(chunk, book, SURVEY, catalogue)
        questions = [c for c in frame.columns if c in catalogue.scale_of]
        try:
            respondent_schema(SURVEY, YEAR, catalogue, questions).validate(frame, lazy=True)
        except pa.errors.SchemaErrors as err:
            broken += int(err.failure_cases["index"].nunique())
        keys.append(
            pd.util.hash_pandas_object(frame[["kommun_kod", "svar_id"]], index=False).to_numpy()
        )
        rows += len(frame)
    every_key = np.concatenate(keys)
    every_key.sort()  # in place: equal keys become neighbours, with no hash table beside them
    repeated = every_key[1:] == every_key[:-1]
    in_a_pair = np.zeros(len(every_key), dtype=bool)
    in_a_pair[1:] |= repeated
    in_a_pair[:-1] |= repeated
    return rows, broken + int(in_a_pair.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rows-per-chunk", type=int, default=100_000)
    parser.add_argument("--whole", action="store_true", help="read with parse_export instead")
    parser.add_argument("--file", type=Path, help="reuse (or keep) the export at this path")
    arguments = parser.parse_args()
    catalogue = default_catalogue()
    with tempfile.TemporaryDirectory() as scratch:
        path = arguments.file or Path(scratch) / "large_export.csv"
        if not path.exists():
            started = time.perf_counter()
            written = write_export(path, arguments.size_mb, catalogue)
            print(f"wrote {written:,} rows in {time.perf_counter() - started:.0f} s")
        size_mb = path.stat().st_size / 1024 / 1024
        before = peak_rss_mb()
        started = time.perf_counter()
        if arguments.whole:
            parsed = parse_export(
                RawFile(path.name, str(path), path.read_bytes()), SURVEY, YEAR, catalogue
            )
            rows, broken = len(parsed.frame), 0
        else:
            rows, broken = read_in_chunks(path, catalogue, arguments.rows_per_chunk)
        seconds = time.perf_counter() - started
        print(
            f"{'whole file' if arguments.whole else 'chunked'}: {size_mb:,.0f} MB, {rows:,} rows "
            f"({broken:,} breaking a rule) in {seconds:.1f} s = {size_mb / seconds:.1f} MB/s; "
            f"peak RSS {peak_rss_mb():,.0f} MB (before reading {before:,.0f} MB)"
        )


if __name__ == "__main__":
    main()
