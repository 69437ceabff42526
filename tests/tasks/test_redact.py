"""Credentials are hidden from URLs and messages, and nothing else is changed."""

from __future__ import annotations

import pytest

from tasks.redact import masked_warehouse, redacted


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("http://srcuser:SrcToken123@host/exports", "http://***@host/exports"),
        ("https://ghp_token@host/a?b=1", "https://***@host/a?b=1"),
        (
            "s3://b/x?X-Amz-Signature=abc&prefix=a&X-Amz-Security-Token=z",
            "s3://b/x?X-Amz-Signature=***&prefix=a&X-Amz-Security-Token=***",
        ),
        (
            "simplecache::https://h/a?api_key=4&monkey=5",
            "simplecache::https://h/a?api_key=***&monkey=5",
        ),
        ("cannot read https://u:p@h/x: 404", "cannot read https://***@h/x: 404"),
        ("/srv/exports/ifo/2024", "/srv/exports/ifo/2024"),
        ("mail me at user@example.org", "mail me at user@example.org"),
    ],
)
def test_redacted_hides_user_info_and_secret_query_values(given: str, shown: str) -> None:
    assert redacted(given) == shown


def test_a_warehouse_url_keeps_its_user_and_hides_its_password() -> None:
    assert masked_warehouse("postgresql+psycopg://loader:Hunter2@db:5432/w") == (
        "postgresql+psycopg://loader:***@db:5432/w"
    )
    assert masked_warehouse("duckdb:///w.duckdb") == "duckdb:///w.duckdb"


def test_a_failure_notice_repeats_no_credential_of_its_parameters() -> None:
    from flows.notify import failure_message

    notice = failure_message(
        "annual-run",
        "run",
        "id",
        "source http://u:tok@h/ unreachable after retries",
        {"warehouse": "postgresql+psycopg://loader:Hunter2@db/w", "year": 2024},
    )
    assert "Hunter2" not in str(notice)
    assert "tok" not in str(notice)
    assert notice["parameters"]["year"] == 2024
