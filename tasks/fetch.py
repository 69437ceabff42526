"""Fetch: list and read one survey-year's export files from any fsspec source."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath

import fsspec
from prefect import task
from prefect.cache_policies import NO_CACHE

EXPORT_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".xlsx")
DISTRIBUTED_FILE = "utdelade.csv"


class SourceError(RuntimeError):
    """The source cannot be read at all (missing folder, unreachable host)."""


@dataclass(frozen=True)
class RawFile:
    """One file exactly as fetched: its bytes and where they came from."""

    source_file: str  # path relative to the survey-year folder, e.g. "ifo_2024_0880.csv"
    source_url: str
    content: bytes
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class SurveyYearFiles:
    """Everything one survey-year folder holds: the exports and the optional hand-out counts."""

    exports: list[RawFile]
    distributed: RawFile | None


def survey_year_url(source: str, survey: str, year: int) -> str:
    return f"{source.rstrip('/')}/{survey}/{year}"


def fetch_survey_year(source: str, survey: str, year: int) -> SurveyYearFiles:
    """Read every export of ``SOURCE/{survey}/{year}/`` (recursively), sorted by path."""
    url = survey_year_url(source, survey, year)
    fs, base = fsspec.core.url_to_fs(url)
    if not fs.isdir(base):
        raise SourceError(f"{url}: no such folder")
    exports: list[RawFile] = []
    distributed: RawFile | None = None
    for path in sorted(fs.find(base)):
        relative = str(PurePosixPath(path).relative_to(PurePosixPath(base)))
        name = relative.lower()
        if name == DISTRIBUTED_FILE:
            distributed = RawFile(relative, fs.unstrip_protocol(path), fs.cat_file(path))
        elif name.endswith(EXPORT_SUFFIXES):
            exports.append(RawFile(relative, fs.unstrip_protocol(path), fs.cat_file(path)))
    if not exports:
        raise SourceError(f"{url}: no export files ({', '.join(EXPORT_SUFFIXES)})")
    return SurveyYearFiles(exports=exports, distributed=distributed)


fetch_task = task(
    name="fetch",
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=lambda _task, _run, state: (
        not isinstance(state.result(raise_on_failure=False), SourceError)
    ),
    cache_policy=NO_CACHE,
)(fetch_survey_year)
