"""A run's progress in words the user knows, one line per step of a survey-year.

The flows say what each step did ("ifo 2024: 183 files read, 11,204 rows checked, 6
quarantined (1.2 s)") on the ``brukardata.progress`` logger; the command line shows those
lines while Prefect's own logs go to its UI and log file.
"""

from __future__ import annotations

import logging
import time

PROGRESS = logging.getLogger("brukardata.progress")


class Step:
    """One step of a survey-year, timed from its creation until ``done`` says what it did."""

    def __init__(self, survey: str, year: int) -> None:
        self.survey, self.year = survey, year
        self.started = time.perf_counter()

    def done(self, *words: str) -> None:
        seconds = time.perf_counter() - self.started
        PROGRESS.info("%s %s: %s (%.1f s)", self.survey, self.year, ", ".join(words), seconds)
