"""Kolada's published figures: fetch the catalogue's KPIs for a year, and reconcile them.

Kolada (``/v2/data/kpi/{ids}/year/{year}``) answers ``{"values": [{"kpi", "municipality",
"period", "values": [{"gender", "value", "count", "status"}]}], "next_page"}`` with at most
5,000 items a page; v3 names the next page ``next_url``. The client batches KPI ids so that no
URL grows past what proxies accept, follows every page, waits out 429 (``Retry-After``) and 5xx
answers with backoff a bounded number of times, and then fails with one clear error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine, text
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from tasks.load import is_transient_db_error
from warehouse.kolada import store_kolada_values

API_VERSIONS = ("v2", "v3")
MAX_URL_LENGTH = 2000  # a URL longer than this is refused by some proxies and servers
VALUE_COLUMNS = ("kpi", "municipality_id", "year", "gender", "value", "count", "status")


class KoladaError(RuntimeError):
    """Kolada could not be read: the URL, the last status or fault, and how often it was tried."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often a request is tried and how long to wait between tries.

    The wait doubles from ``backoff_seconds`` after each 5xx or network fault; after a 429 the
    server's ``Retry-After`` is honoured (at most ``max_wait_seconds``).
    """

    attempts: int = 5
    backoff_seconds: float = 1.0
    max_wait_seconds: float = 60.0

    def backoff(self, attempt: int) -> float:
        return float(min(self.backoff_seconds * 2**attempt, self.max_wait_seconds))


def kpi_batches(
    kpi_ids: Sequence[str], base_url: str, year: int, api_version: str = "v2"
) -> list[list[str]]:
    """KPI ids in order, grouped so that every batch's data URL stays within MAX_URL_LENGTH."""
    batches: list[list[str]] = []
    for kpi_id in kpi_ids:
        candidate = [*batches[-1], kpi_id] if batches else [kpi_id]
        if batches and len(data_url(base_url, candidate, year, api_version)) <= MAX_URL_LENGTH:
            batches[-1] = candidate
        else:
            batches.append([kpi_id])
    return batches


def data_url(base_url: str, kpi_ids: Sequence[str], year: int, api_version: str = "v2") -> str:
    """The first page of the values of ``kpi_ids`` for every area in ``year``."""
    if api_version not in API_VERSIONS:
        raise ValueError(f"Kolada API version must be one of {API_VERSIONS}, not {api_version!r}")
    return f"{base_url.rstrip('/')}/{api_version}/data/kpi/{','.join(kpi_ids)}/year/{year}"


def _retry_after(response: httpx.Response, policy: RetryPolicy, attempt: int) -> float:
    """Seconds to wait after a 429: the server's Retry-After (seconds or a date), else backoff."""
    header = response.headers.get("Retry-After")
    if header is None:
        return policy.backoff(attempt)
    try:
        seconds = float(header)
    except ValueError:
        seconds = (parsedate_to_datetime(header) - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), policy.max_wait_seconds)


def _shortened(url: str, limit: int = 100) -> str:
    """A URL fit for a one-line message: a batch of KPI ids can make it 2,000 characters long."""
    return url if len(url) <= limit else f"{url[: limit - 1]}…"


class _TransientError(Exception):
    """A fault worth another try: a 429, a 5xx or a network fault (its one-line message)."""

    def __init__(self, problem: str, response: httpx.Response | None = None) -> None:
        super().__init__(problem)
        self.response = response


def _get_once(client: httpx.Client, url: str) -> dict[str, Any]:
    """One GET of ``url`` as JSON; a fault worth another try is raised as ``_TransientError``."""
    try:
        response = client.get(url)
    except httpx.TransportError as err:
        raise _TransientError(f"{type(err).__name__}: {err}") from err
    if response.status_code == httpx.codes.OK:
        body: dict[str, Any] = response.json()
        return body
    problem = f"HTTP {response.status_code}"
    if response.status_code == httpx.codes.TOO_MANY_REQUESTS:
        raise _TransientError(problem, response)
    if response.status_code >= httpx.codes.INTERNAL_SERVER_ERROR:
        raise _TransientError(problem)
    raise KoladaError(f"Kolada refused {_shortened(url)}: {problem}")


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    """After a 429 the server's Retry-After, after any other fault the policy's backoff."""

    def wait(state: RetryCallState) -> float:
        attempt = state.attempt_number - 1
        fault = state.outcome.exception() if state.outcome is not None else None
        if isinstance(fault, _TransientError) and fault.response is not None:
            return _retry_after(fault.response, policy, attempt)
        return policy.backoff(attempt)

    return wait


def get_json(client: httpx.Client, url: str, policy: RetryPolicy) -> dict[str, Any]:
    """GET ``url`` as JSON, retrying 429, 5xx and network faults; other 4xx fail at once."""
    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_wait(policy),
        retry=retry_if_exception_type(_TransientError),
        reraise=True,
    )
    try:
        return retrying(_get_once, client, url)
    except _TransientError as err:
        raise KoladaError(
            f"Kolada did not answer {_shortened(url)} after {policy.attempts} tries: {err}"
        ) from err


def _pages(client: httpx.Client, url: str, policy: RetryPolicy) -> Iterator[dict[str, Any]]:
    """Every page from ``url`` on, following ``next_page`` (v2) or ``next_url`` (v3)."""
    next_url: str | None = url
    while next_url:
        page = get_json(client, next_url, policy)
        yield page
        next_url = page.get("next_page") or page.get("next_url")


def values_frame(pages: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per KPI, area, year and gender; ``value: null`` stays missing, never 0."""
    rows = [
        {
            "kpi": item["kpi"],
            "municipality_id": item["municipality"],
            "year": int(item["period"]),
            "gender": entry["gender"],
            "value": entry.get("value"),
            "count": entry.get("count"),
            "status": entry.get("status") or None,
        }
        for page in pages
        for item in page.get("values", [])
        for entry in item.get("values", [])
    ]
    frame = pd.DataFrame(rows, columns=list(VALUE_COLUMNS))
    return frame.astype(
        {
            "kpi": "str",
            "municipality_id": "str",
            "year": "int64",
            "gender": "str",
            "value": "float64",
            "count": "Int64",
            "status": "str",
        }
    )


def fetch_kolada_values(
    kpi_ids: Sequence[str],
    year: int,
    *,
    base_url: str,
    api_version: str = "v2",
    policy: RetryPolicy | None = None,
    timeout_seconds: float = 30.0,
) -> pd.DataFrame:
    """The published values of ``kpi_ids`` for ``year``, every area and gender, all pages."""
    policy = policy or RetryPolicy()
    with httpx.Client(timeout=timeout_seconds, headers={"Accept": "application/json"}) as client:
        pages = [
            page
            for batch in kpi_batches(kpi_ids, base_url, year, api_version)
            for page in _pages(client, data_url(base_url, batch, year, api_version), policy)
        ]
    return values_frame(pages)


def require_published_year(engine: Engine, year: int) -> None:
    """Refuse a year the warehouse has no figures of, before asking Kolada for anything."""
    query = text("SELECT COUNT(*) FROM reporting.results WHERE year = :year")
    with engine.connect() as conn:
        if not conn.execute(query, {"year": year}).scalar_one():
            raise LookupError(f"no published figures for {year} in the warehouse")


def reconciliation(engine: Engine, year: int) -> pd.DataFrame:
    """``reporting.kolada_comparison`` for ``year``: where our figures and Kolada's differ first."""
    query = text(
        "SELECT * FROM reporting.kolada_comparison WHERE year = :year "
        "ORDER BY differs DESC, kpi, municipality_id, gender"
    )
    with engine.connect() as conn:
        return pd.read_sql(query, conn, params={"year": year})


# the client retries transient faults itself, honouring Retry-After
fetch_kolada_values_task = task(name="fetch-kolada", cache_policy=NO_CACHE)(fetch_kolada_values)
reconciliation_task = task(name="reconcile-kolada", cache_policy=NO_CACHE)(reconciliation)
store_kolada_values_task = task(
    name="store-kolada",
    retries=3,
    retry_delay_seconds=[1, 5, 20],
    retry_condition_fn=is_transient_db_error,
    cache_policy=NO_CACHE,
)(store_kolada_values)
