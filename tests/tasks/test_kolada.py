"""The Kolada client against recorded responses served by a real local HTTP server.

``tests/fixtures/kolada/exchanges.json`` scripts the server: for each requested path, the
answers in order (the last one repeats). The recorded pages follow Kolada's documented format.
``{base_url}`` in a page (and ``{kpis}``, the requested ids, in a path) is filled in when served.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pandas as pd
import pytest

from tasks.kolada import (
    MAX_URL_LENGTH,
    KoladaError,
    RetryPolicy,
    data_url,
    fetch_kolada_values,
    kpi_batches,
)
from tests.conftest import FIXTURES

KOLADA_FIXTURES = FIXTURES / "kolada"
FAST = RetryPolicy(attempts=3, backoff_seconds=0.01)


@dataclass
class KoladaReplay:
    """A local Kolada that answers from recorded exchanges and logs every request."""

    exchanges_file: str = "exchanges.json"
    kpis: str = ""
    base_url: str = ""
    requests: list[str] = field(default_factory=list)
    served: dict[str, int] = field(default_factory=dict)

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        self.requests.append(path)
        recorded: dict[str, list[dict[str, Any]]] = json.loads(
            (KOLADA_FIXTURES / self.exchanges_file).read_text(encoding="utf-8")
        )
        exchanges = {key.replace("{kpis}", self.kpis): script for key, script in recorded.items()}
        if path not in exchanges:
            return 404, {}, b'{"error": "not recorded"}'
        script = exchanges[path]
        turn = min(self.served.get(path, 0), len(script) - 1)
        self.served[path] = turn + 1
        exchange = script[turn]
        body = b"{}"
        if "body" in exchange:
            text = (KOLADA_FIXTURES / exchange["body"]).read_text(encoding="utf-8")
            body = text.replace("{base_url}", self.base_url).replace("{kpis}", self.kpis).encode()
        return exchange["status"], exchange.get("headers", {}), body


@contextmanager
def serving(replay: KoladaReplay) -> Iterator[KoladaReplay]:
    """``replay`` as a real HTTP server on 127.0.0.1, on a free port, until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = replay.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test asserts on ``replay.requests`` instead."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    replay.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield replay
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def kolada() -> Iterator[KoladaReplay]:
    """The replaying server of ``exchanges.json``, for one test."""
    with serving(KoladaReplay()) as replay:
        yield replay


def test_v2_follows_pages_and_retries_429_and_500(kolada: KoladaReplay) -> None:
    values = fetch_kolada_values(["U30447", "U30900"], 2024, base_url=kolada.base_url, policy=FAST)
    first = "/v2/data/kpi/U30447,U30900/year/2024"
    second = f"{first}?page=2&per_page=2"
    # 429 then the page; 500 then the page
    assert kolada.requests == [first, first, second, second]
    # page 1: 0880 K, M, T and 0000 T; page 2: 0008 T and U30900 0880 T
    assert len(values) == 6
    by_key = values.set_index(["kpi", "municipality_id", "gender"])
    assert by_key.loc[("U30447", "0880", "T"), "value"] == 75.0
    assert by_key.loc[("U30447", "0000", "T"), "count"] == 290
    assert by_key.loc[("U30447", "0008", "T"), "value"] == 66.0
    # value: null stays missing, never 0
    assert pd.isna(by_key.loc[("U30447", "0880", "K"), "value"])
    assert pd.isna(by_key.loc[("U30900", "0880", "T"), "value"])
    assert by_key.loc[("U30900", "0880", "T"), "status"] == "Saknas"
    assert set(values["year"]) == {2024}


def test_v3_follows_next_url(kolada: KoladaReplay) -> None:
    values = fetch_kolada_values(
        ["U30447", "U30900"], 2024, base_url=kolada.base_url, api_version="v3", policy=FAST
    )
    assert kolada.requests == [
        "/v3/data/kpi/U30447,U30900/year/2024",
        "/v3/data/kpi/U30447,U30900/year/2024?page=2",
    ]
    assert sorted(zip(values["kpi"], values["value"], strict=True)) == [
        ("U30447", 75.0),
        ("U30900", 40.0),
    ]


def test_a_server_that_keeps_failing_gives_one_clear_error(kolada: KoladaReplay) -> None:
    with pytest.raises(KoladaError, match=r"after 3 tries: HTTP 503") as raised:
        fetch_kolada_values(["U30453"], 2024, base_url=kolada.base_url, policy=FAST)
    assert "/v2/data/kpi/U30453/year/2024" in str(raised.value)
    assert len(kolada.requests) == FAST.attempts


def test_a_refusal_is_not_retried(kolada: KoladaReplay) -> None:
    with pytest.raises(KoladaError, match=r"refused .* HTTP 404"):
        fetch_kolada_values(["N00000"], 2024, base_url=kolada.base_url, policy=FAST)
    assert len(kolada.requests) == 1


def test_kpi_ids_are_batched_so_no_url_is_too_long() -> None:
    base = "https://api.kolada.se"
    kpi_ids = [f"U{number:05d}" for number in range(1000)]
    batches = kpi_batches(kpi_ids, base, 2024)
    assert [kpi for batch in batches for kpi in batch] == kpi_ids
    lengths = [len(data_url(base, batch, 2024)) for batch in batches]
    assert max(lengths) <= MAX_URL_LENGTH
    # a batch is closed only when the next id would not fit: every batch but the last is full
    overflow = [len(data_url(base, [*batch, "U99999"], 2024)) for batch in batches[:-1]]
    assert min(overflow) > MAX_URL_LENGTH


def test_unknown_api_version_is_refused() -> None:
    with pytest.raises(ValueError, match="v2"):
        data_url("https://api.kolada.se", ["U30447"], 2024, "v9")
