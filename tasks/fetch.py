"""Fetch: list and read one survey-year's export files from any fsspec source, and archive them.

Each file fetched is copied, unchanged, to the landing area under its sha256
(``{landing}/{survey}/{year}/{sha256}/{name}``) and never overwritten there: the same path always
holds the same bytes, so every published figure can be traced to the exact file it came from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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
    landing_url: str | None = None  # the archived copy, once archived

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


def archive(raw: RawFile, landing: str, survey: str, year: int) -> RawFile:
    """``raw`` with its landing copy: written once; an existing copy of the same bytes is kept.

    A copy already at that path whose size differs is not ours to replace: it is an error.
    """
    url = f"{landing.rstrip('/')}/{survey}/{year}/{raw.sha256}/{raw.source_file}"
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        if fs.size(path) != len(raw.content):
            raise SourceError(f"{url}: an archived copy with other bytes is in the way")
    else:
        fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
        fs.pipe_file(path, raw.content)
    return replace(raw, landing_url=url)


def _is_fetched(name: str) -> bool:
    lowered = name.lower()
    return PurePosixPath(lowered).name == DISTRIBUTED_FILE or lowered.endswith(EXPORT_SUFFIXES)


def _sorted_files(raws: list[RawFile], where: str) -> SurveyYearFiles:
    """Exports and the hand-out counts apart; a folder without any export is a source error."""
    is_distributed = [PurePosixPath(r.source_file).name.lower() == DISTRIBUTED_FILE for r in raws]
    exports = [raw for raw, counts in zip(raws, is_distributed, strict=True) if not counts]
    distributed = [raw for raw, counts in zip(raws, is_distributed, strict=True) if counts]
    if not exports:
        raise SourceError(f"{where}: no export files ({', '.join(EXPORT_SUFFIXES)})")
    if len(distributed) > 1:
        names = ", ".join(raw.source_file for raw in distributed)
        raise SourceError(f"{where}: more than one {DISTRIBUTED_FILE} ({names})")
    return SurveyYearFiles(exports=exports, distributed=distributed[0] if distributed else None)


def fetch_survey_year(
    source: str, survey: str, year: int, landing: str | None = None
) -> SurveyYearFiles:
    """Read every export of ``SOURCE/{survey}/{year}/`` (recursively), sorted by path.

    With ``landing`` (any fsspec URL), each file is archived there before it is handed on.
    """
    url = survey_year_url(source, survey, year)
    fs, base = fsspec.core.url_to_fs(url)
    if not fs.isdir(base):
        raise SourceError(f"{url}: no such folder")
    raws: list[RawFile] = []
    for path in sorted(fs.find(base)):
        relative = str(PurePosixPath(path).relative_to(PurePosixPath(base)))
        if _is_fetched(relative):
            raw = RawFile(relative, fs.unstrip_protocol(path), fs.cat_file(path))
            raws.append(raw if landing is None else archive(raw, landing, survey, year))
    return _sorted_files(raws, url)


def fetch_paths(paths: Sequence[str]) -> SurveyYearFiles:
    """Read files and folders given by the user (local paths or fsspec URLs), each once.

    A file is named as given; a folder's exports are named by their path under it. Nothing is
    archived: this is for looking at files, not for loading them.
    """
    raws: dict[str, RawFile] = {}
    for given in dict.fromkeys(paths):
        fs, base = fsspec.core.url_to_fs(given)
        if fs.isdir(base):
            found = [
                (f"{given.rstrip('/')}/{PurePosixPath(p).relative_to(PurePosixPath(base))}", p)
                for p in sorted(fs.find(base))
            ]
            found = [(name, path) for name, path in found if _is_fetched(name)]
        elif fs.isfile(base):
            found = [(given, base)]
        else:
            raise SourceError(f"{given}: no such file or folder")
        for name, path in found:
            raws.setdefault(name, RawFile(name, fs.unstrip_protocol(path), fs.cat_file(path)))
    return _sorted_files(list(raws.values()), ", ".join(paths))


fetch_task = task(
    name="fetch",
    retries=3,
    retry_condition_fn=lambda _task, _run, state: (
        not isinstance(state.result(raise_on_failure=False), SourceError)
    ),
    cache_policy=NO_CACHE,
)(fetch_survey_year)
