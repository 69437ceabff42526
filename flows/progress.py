"""A run's progress in words the user knows, one line per step of a survey-year.

The flows say what each step did ("ifo 2024: 183 files read, 11,204 rows checked, 6
quarantined (1.2 s)") on the ``brukardata.progress`` logger; the command line shows those
lines while Prefect's own logs go to its UI and log file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

PROGRESS = logging.getLogger("brukardata.progress")


@contextmanager
def step(survey: str, year: int) -> Iterator[list[str]]:
    """Time a step; the words appended to the yielded list are said with its duration."""
    said: list[str] = []
    started = time.perf_counter()
    yield said
    if said:
        seconds = time.perf_counter() - started
        PROGRESS.info("%s %s: %s (%.1f s)", survey, year, ", ".join(said), seconds)
