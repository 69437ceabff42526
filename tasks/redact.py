"""Credentials out of everything stored, logged or shown: URLs without passwords or tokens.

A source or warehouse URL may carry a credential (``user:password@host``, ``?token=…``). Such
text is kept only where a connection is made; wherever it is written down (the audit tables,
the reporting views readable by BI users, logs, run summaries, notices) it goes through
``redacted``, which also finds URLs inside a longer message such as an error.
"""

from __future__ import annotations

import re

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

HIDDEN = "***"
# Query parameters whose value is a credential: tokens, keys, signatures (also presigned
# cloud URLs' X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, sig, …).
_SECRET_WORD = r"(?:token|key|apikey|secret|passw(?:or)?d|pwd|sig|signature|credentials?|auth)"
_SECRET_PARAMETER = rf"(?:[\w.-]*[-_.])?{_SECRET_WORD}(?:[-_.][\w.-]*)?"
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/?#\s@]+)@")
_SECRET_QUERY = re.compile(rf"(?P<name>[?&;]{_SECRET_PARAMETER}=)[^&#\s]*", re.IGNORECASE)


def redacted(text: str) -> str:
    """``text`` with every URL's user info and every secret query value replaced by ``***``."""
    text = _USERINFO.sub(lambda match: f"{match['scheme']}{HIDDEN}@", text)
    return _SECRET_QUERY.sub(lambda match: f"{match['name']}{HIDDEN}", text)


def masked_warehouse(url: str) -> str:
    """A warehouse URL fit to show: its password hidden, the user and host kept."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL SQLAlchemy can read: hide whatever looks like a secret
        return redacted(url)


def has_credentials(text: str) -> bool:
    """Whether ``text`` holds anything ``redacted`` would hide."""
    return redacted(text) != text
