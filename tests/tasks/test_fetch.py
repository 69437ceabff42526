"""Fetching from every kind of source, and the immutable landing copy of each file fetched."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.local import LocalFileOpener

from tasks.fetch import SourceError, archive, fetch_paths, fetch_survey_year

FILES = {
    "ifo/2024/a.csv": b"kommun_kod;verksamhet;svar_id;kon\n",
    "ifo/2024/sub/b.csv.gz": b"\x1f\x8b not really gzip",
    "ifo/2024/utdelade.csv": b"kommun_kod,verksamhet,antal_utdelade\n",
    "ifo/2024/notes.txt": b"not an export",
    "ifo/2023/old.csv": b"another year",
}


def write_tree(root: Path) -> None:
    for relative, content in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


@pytest.fixture
def local_source(tmp_path: Path) -> str:
    write_tree(tmp_path / "source")
    return str(tmp_path / "source")


@pytest.fixture
def memory_source() -> Iterator[str]:
    fs = fsspec.filesystem("memory")
    for relative, content in FILES.items():
        fs.pipe_file(f"/fetch-test/{relative}", content)
    yield "memory://fetch-test"
    fs.rm("/fetch-test", recursive=True)


@pytest.fixture
def http_source(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving directory index pages, as a web folder does."""
    write_tree(tmp_path / "web")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "web"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("source_fixture", ["local_source", "memory_source", "http_source"])
def test_every_source_scheme_gives_the_same_files(
    request: pytest.FixtureRequest, source_fixture: str
) -> None:
    source: str = request.getfixturevalue(source_fixture)
    files = fetch_survey_year(source, "ifo", 2024)
    assert [raw.source_file for raw in files.exports] == ["a.csv", "sub/b.csv.gz"]
    assert [raw.content for raw in files.exports] == [
        FILES["ifo/2024/a.csv"],
        FILES["ifo/2024/sub/b.csv.gz"],
    ]
    assert files.distributed is not None
    assert files.distributed.content == FILES["ifo/2024/utdelade.csv"]
    assert files.exports[0].source_url.endswith("/ifo/2024/a.csv")
    assert all(raw.landing_url is None for raw in files.exports)


@pytest.mark.parametrize("source_fixture", ["local_source", "memory_source", "http_source"])
def test_a_missing_survey_year_is_a_source_error(
    request: pytest.FixtureRequest, source_fixture: str
) -> None:
    source: str = request.getfixturevalue(source_fixture)
    with pytest.raises(SourceError, match=r"/fh/2024: no such folder$"):
        fetch_survey_year(source, "fh", 2024)


def test_every_file_is_archived_under_its_sha256(local_source: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    files = fetch_survey_year(local_source, "ifo", 2024, landing=str(landing))
    for raw in [*files.exports, files.distributed]:
        assert raw is not None
        digest = hashlib.sha256(FILES[f"ifo/2024/{raw.source_file}"]).hexdigest()
        archived = landing / "ifo" / "2024" / digest / raw.source_file
        assert raw.landing_url is not None
        assert Path(raw.landing_url) == archived
        assert archived.read_bytes() == raw.content


def test_the_landing_area_may_be_any_fsspec_url(memory_source: str) -> None:
    files = fetch_survey_year(memory_source, "ifo", 2024, landing="memory://landing-test")
    fs = fsspec.filesystem("memory")
    first = files.exports[0]
    assert first.landing_url == f"memory://landing-test/ifo/2024/{first.sha256}/a.csv"
    assert fs.cat_file(f"/landing-test/ifo/2024/{first.sha256}/a.csv") == first.content
    fs.rm("/landing-test", recursive=True)


def test_an_archived_copy_is_never_rewritten(local_source: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    first = fetch_survey_year(local_source, "ifo", 2024, landing=str(landing)).exports[0]
    assert first.landing_url is not None
    archived = Path(first.landing_url)
    written = archived.stat().st_mtime_ns
    again = fetch_survey_year(local_source, "ifo", 2024, landing=str(landing)).exports[0]
    assert again.landing_url == first.landing_url
    assert archived.stat().st_mtime_ns == written
    archived.write_bytes(b"tampered")  # other bytes where these bytes belong
    with pytest.raises(SourceError, match="archived copy with other bytes"):
        archive(first, str(landing), "ifo", 2024)


def test_a_folder_without_exports_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "ifo" / "2024").mkdir(parents=True)
    (tmp_path / "ifo" / "2024" / "readme.txt").write_text("nothing here")
    with pytest.raises(SourceError, match="no export files"):
        fetch_survey_year(str(tmp_path), "ifo", 2024)


def test_fetch_paths_takes_files_and_folders_once(local_source: str) -> None:
    folder = f"{local_source}/ifo/2024"
    single = f"{folder}/a.csv"
    files = fetch_paths([single, folder, single])
    assert [raw.source_file for raw in files.exports] == [single, f"{folder}/sub/b.csv.gz"]
    assert files.distributed is not None
    with pytest.raises(SourceError, match="no such file or folder"):
        fetch_paths([f"{folder}/missing.csv"])


@pytest.mark.parametrize("source_fixture", ["local_source", "memory_source", "http_source"])
def test_a_file_too_large_to_hold_is_streamed_to_the_landing_area(
    request: pytest.FixtureRequest, source_fixture: str, tmp_path: Path
) -> None:
    """Not held in memory, hashed and archived on the way, readable again from its copy."""
    source: str = request.getfixturevalue(source_fixture)
    landing = tmp_path / "landing"
    files = fetch_survey_year(source, "ifo", 2024, landing=str(landing), stream_above=0)
    for raw in [*files.exports, files.distributed]:
        assert raw is not None
        assert raw.content is None
        expected = FILES[f"ifo/2024/{raw.source_file}"]
        assert raw.sha256 == hashlib.sha256(expected).hexdigest()
        assert raw.size_bytes == len(expected)
        assert raw.landing_url == str(landing / "ifo" / "2024" / raw.sha256 / raw.source_file)
        assert raw.location == raw.landing_url
        assert raw.read() == expected
    assert not any((landing / "ifo" / "2024" / ".incoming").iterdir())  # nothing left half-way


def test_a_streamed_file_keeps_its_archived_copy(local_source: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    first = fetch_survey_year(local_source, "ifo", 2024, landing=str(landing), stream_above=0)
    archived = Path(str(first.exports[0].landing_url))
    written = archived.stat().st_mtime_ns
    again = fetch_survey_year(local_source, "ifo", 2024, landing=str(landing), stream_above=0)
    assert again.exports[0].landing_url == first.exports[0].landing_url
    assert archived.stat().st_mtime_ns == written
    archived.write_bytes(b"tampered")
    with pytest.raises(SourceError, match="archived copy with other bytes"):
        fetch_survey_year(local_source, "ifo", 2024, landing=str(landing), stream_above=0)


def test_held_and_streamed_files_name_the_same_bytes(local_source: str) -> None:
    held = fetch_paths([f"{local_source}/ifo/2024"])
    streamed = fetch_paths([f"{local_source}/ifo/2024"], stream_above=0)
    for small, large in zip(held.exports, streamed.exports, strict=True):
        assert (large.source_file, large.sha256, large.size_bytes) == (
            small.source_file,
            small.sha256,
            small.size_bytes,
        )
        assert large.content is None
        assert large.location == large.source_url
        assert large.read() == small.content


def test_a_stream_cut_short_leaves_no_partial_copy(
    local_source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source that fails part-way fails the fetch and leaves nothing half-copied behind."""
    monkeypatch.setattr("tasks.fetch.COPY_BLOCK_BYTES", 8)
    reads = iter(range(1_000))

    def failing_read(self: LocalFileOpener, length: int = -1) -> bytes:
        if next(reads) == 2:
            raise OSError("connection reset by peer")
        return bytes(self.f.read(length))

    monkeypatch.setattr(LocalFileOpener, "read", failing_read)
    landing = tmp_path / "landing"
    with pytest.raises(OSError, match="connection reset"):
        fetch_survey_year(local_source, "ifo", 2024, landing=str(landing), stream_above=0)
    assert [path for path in landing.rglob("*") if path.is_file()] == []
