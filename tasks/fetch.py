"""Fetch: list and read one survey-year's export files from any fsspec source, and archive them.

Each file fetched is copied, unchanged, to the landing area under its sha256
(``{landing}/{survey}/{year}/{sha256}/{name}``) and never overwritten there: the same path always
holds the same bytes, so every published figure can be traced to the exact file it came from.
A file of ``stream_above`` bytes or more is never held in memory: it is hashed and copied block
by block, and later read from its landing copy in chunks.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import uuid
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import fsspec
from prefect import task
from prefect.cache_policies import NO_CACHE

from schemas.defaults import STREAM_ABOVE_BYTES

EXPORT_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".xlsx")
DISTRIBUTED_FILE = "utdelade.csv"
COPY_BLOCK_BYTES = 16 * 1024 * 1024


class SourceError(RuntimeError):
    """The source cannot be read at all (missing folder, unreachable host)."""


@dataclass(frozen=True)
class RawFile:
    """One file exactly as fetched: its bytes (or, for a large file, where they lie) and origin."""

    source_file: str  # path relative to the survey-year folder, e.g. "ifo_2024_0880.csv"
    source_url: str
    content: bytes | None  # None: too large to hold; read from ``location`` when needed
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    landing_url: str | None = None  # the archived copy, once archived
    sha256: str = ""  # computed from ``content`` when not given
    size_bytes: int = 0

    def __post_init__(self) -> None:
        if self.content is not None and not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.content).hexdigest())
            object.__setattr__(self, "size_bytes", len(self.content))

    @property
    def location(self) -> str:
        """Where the bytes can be read again: the landing copy, else the source."""
        return self.landing_url or self.source_url

    def read(self) -> bytes:
        """All the bytes: for a large file only where a format cannot be read in parts."""
        if self.content is not None:
            return self.content
        with fsspec.open(self.location, "rb") as handle:
            return handle.read()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SurveyYearFiles:
    """Everything one survey-year folder holds: the exports and the optional hand-out counts."""

    exports: list[RawFile]
    distributed: RawFile | None

    def only(self, source_files: Collection[str]) -> SurveyYearFiles:
        """The exports named in ``source_files`` (in folder order), with the hand-out counts."""
        wanted = set(source_files)
        return replace(self, exports=[raw for raw in self.exports if raw.source_file in wanted])

    @property
    def every_file(self) -> list[RawFile]:
        """The exports, then the hand-out counts if the folder has them."""
        return [*self.exports, *([] if self.distributed is None else [self.distributed])]


def survey_year_url(source: str, survey: str, year: int) -> str:
    return f"{source.rstrip('/')}/{survey}/{year}"


def _landing_url(landing: str, survey: str, year: int, sha256: str, name: str) -> str:
    return f"{landing.rstrip('/')}/{survey}/{year}/{sha256}/{name}"


def archive(raw: RawFile, landing: str, survey: str, year: int) -> RawFile:
    """``raw`` with its landing copy: written once; an existing copy of the same bytes is kept.

    A copy already at that path whose size differs is not ours to replace: it is an error.
    """
    if raw.content is None:
        raise ValueError(f"{raw.source_file}: a streamed file is archived while it is fetched")
    url = _landing_url(landing, survey, year, raw.sha256, raw.source_file)
    fs, path = fsspec.core.url_to_fs(url)
    if not _kept(fs, path, raw.size_bytes, url):
        fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
        fs.pipe_file(path, raw.content)
    return replace(raw, landing_url=url)


def _kept(fs: Any, path: str, size: int, url: str) -> bool:
    """Whether the landing copy is already there; one of another size is an error."""
    if not fs.exists(path):
        return False
    if fs.size(path) != size:
        raise SourceError(f"{url}: an archived copy with other bytes is in the way")
    return True


def _streamed(fs: Any, path: str, name: str, landing: tuple[str, str, int] | None) -> RawFile:
    """A file too large to hold: hashed block by block and, with ``landing`` (root, survey,
    year), copied there on the way under a temporary name, then moved to its sha256 path."""
    digest = hashlib.sha256()
    size = 0
    incoming = None
    if landing is not None:
        root, survey, year = landing
        incoming = f"{root.rstrip('/')}/{survey}/{year}/.incoming/{uuid.uuid4().hex}"
        landing_fs, incoming_path = fsspec.core.url_to_fs(incoming)
        landing_fs.makedirs(str(PurePosixPath(incoming_path).parent), exist_ok=True)
    try:
        with fs.open(path, "rb") as source, contextlib.ExitStack() as stack:
            copy = stack.enter_context(fsspec.open(incoming, "wb")) if incoming else None
            while block := source.read(COPY_BLOCK_BYTES):
                digest.update(block)
                size += len(block)
                if copy is not None:
                    copy.write(block)
    except BaseException:
        if incoming is not None and landing_fs.exists(incoming_path):
            landing_fs.rm(incoming_path)  # a half-copied file is nobody's bytes
        raise
    raw = RawFile(name, fs.unstrip_protocol(path), None, sha256=digest.hexdigest(), size_bytes=size)
    if landing is None or incoming is None:
        return raw
    url = _landing_url(*landing, raw.sha256, name)
    final_fs, final_path = fsspec.core.url_to_fs(url)
    if _kept(final_fs, final_path, size, url):
        landing_fs.rm(incoming_path)
    else:
        final_fs.makedirs(str(PurePosixPath(final_path).parent), exist_ok=True)
        landing_fs.mv(incoming_path, final_path)
    return replace(raw, landing_url=url)


def is_distributed(source_file: str) -> bool:
    """Whether a file holds the hand-out counts: named ``utdelade.csv`` in any folder, any case.

    The one rule for fetching, parsing and accounting, so that a file is never counted as
    questionnaires in one place and as hand-out counts in another."""
    return PurePosixPath(source_file).name.lower() == DISTRIBUTED_FILE


def _is_fetched(name: str) -> bool:
    return is_distributed(name) or name.lower().endswith(EXPORT_SUFFIXES)


def _sorted_files(raws: list[RawFile], where: str) -> SurveyYearFiles:
    """Exports and the hand-out counts apart; a folder without any export is a source error."""
    exports = [raw for raw in raws if not is_distributed(raw.source_file)]
    distributed = [raw for raw in raws if is_distributed(raw.source_file)]
    if not exports:
        raise SourceError(f"{where}: no export files ({', '.join(EXPORT_SUFFIXES)})")
    if len(distributed) > 1:
        names = ", ".join(raw.source_file for raw in distributed)
        raise SourceError(f"{where}: more than one {DISTRIBUTED_FILE} ({names})")
    return SurveyYearFiles(exports=exports, distributed=distributed[0] if distributed else None)


def _fetched(
    fs: Any, path: str, name: str, stream_above: int, landing: tuple[str, str, int] | None
) -> RawFile:
    """One file, held in memory or (``stream_above`` bytes or more, unpacked for a gzip file)
    streamed; archived in ``landing`` (root, survey, year) when given. A size the source does
    not tell is held."""
    size = fs.size(path)
    if size is not None and size >= stream_above:
        return _streamed(fs, path, name, landing)
    content = fs.cat_file(path)
    if name.lower().endswith(".gz") and _unpacks_to(content, stream_above):
        return _streamed(fs, path, name, landing)
    raw = RawFile(name, fs.unstrip_protocol(path), content)
    return raw if landing is None else archive(raw, *landing)


def _unpacks_to(packed: bytes, size: int) -> bool:
    """Whether gzip bytes unpack to ``size`` bytes or more: counted block by block, so a small
    archive of a huge file (a "gzip bomb") is never unpacked into memory. Bytes that are not
    a readable archive are left for parsing to refuse."""
    unpacked = 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(packed)) as stream:
            while unpacked < size and (block := stream.read(COPY_BLOCK_BYTES)):
                unpacked += len(block)
    except (OSError, EOFError, zlib.error):
        return False
    return unpacked >= size


def fetch_survey_year(
    source: str,
    survey: str,
    year: int,
    landing: str | None = None,
    stream_above: int = STREAM_ABOVE_BYTES,
) -> SurveyYearFiles:
    """Read every export of ``SOURCE/{survey}/{year}/`` (recursively), sorted by path.

    With ``landing`` (any fsspec URL), each file is archived there before it is handed on.
    Files of ``stream_above`` bytes or more stay out of memory (see ``RawFile.content``).
    """
    url = survey_year_url(source, survey, year)
    fs, base = fsspec.core.url_to_fs(url)
    if not fs.isdir(base):
        raise SourceError(f"{url}: no such folder")
    raws: list[RawFile] = []
    for path in sorted(fs.find(base)):
        relative = str(PurePosixPath(path).relative_to(PurePosixPath(base)))
        if _is_fetched(relative):
            where = None if landing is None else (landing, survey, year)
            raws.append(_fetched(fs, path, relative, stream_above, where))
    return _sorted_files(raws, url)


def fetch_paths(paths: Sequence[str], stream_above: int = STREAM_ABOVE_BYTES) -> SurveyYearFiles:
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
            if name not in raws:
                raws[name] = _fetched(fs, path, name, stream_above, None)
    return _sorted_files(list(raws.values()), ", ".join(paths))


fetch_task = task(
    name="fetch",
    retries=3,
    retry_condition_fn=lambda _task, _run, state: (
        not isinstance(state.result(raise_on_failure=False), SourceError)
    ),
    cache_policy=NO_CACHE,
)(fetch_survey_year)
