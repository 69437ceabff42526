"""A run's progress in words the user knows, one line per step of a survey-year.

The flows say what each step did ("ifo 2024: 183 files read, 11,204 rows checked, 6
quarantined (1.2 s)") on the ``brukardata.progress`` logger; the command line shows those
lines while Prefect's own logs go to its UI and log file.

Each record carries an ``Event`` (its ``progress`` attribute): when a step starts, each file a
parse task has read, and what a step did. A terminal draws them live (flows/display.py); a pipe
or a log gets the plain lines only (the events with ``plain`` set). Events are logged in the
flow's process: the flow itself, or a task in one of its threads. A task on a Dask worker logs
into the worker's process, where nobody listens, so the flow also says how many files its
finished parse tasks have read.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

PROGRESS = logging.getLogger("brukardata.progress")


@dataclass(frozen=True)
class Event:
    """One thing a step of a survey-year did."""

    survey: str
    year: int
    step: str  # fetch, read, validate, aggregate, stage, audit, publish
    state: str  # started, advanced, done; "said" for a plain line of no step of its own
    words: tuple[str, ...] = ()
    seconds: float | None = None  # done: how long the step took
    advance: int = 0  # advanced: files read since the last event of this kind
    completed: int | None = None  # advanced: files read in all, as the flow counts them
    total: int | None = None  # started: how many files the step reads
    plain: bool = False  # one of the plain lines (a pipe, a log)


def tell(event: Event, message: str) -> None:
    PROGRESS.info("%s", message, extra={"progress": event})


class Step:
    """One step of a survey-year, timed from its creation until ``done`` says what it did."""

    def __init__(self, survey: str, year: int, step: str, *, total: int | None = None) -> None:
        self.survey, self.year, self.step = survey, year, step
        self.started = time.perf_counter()
        tell(Event(survey, year, step, "started", total=total), f"{survey} {year}: {step}")

    def reached(self, completed: int) -> None:
        """The files read so far, counted by the flow as its parse tasks finish."""
        event = Event(self.survey, self.year, self.step, "advanced", completed=completed)
        tell(event, f"{self.survey} {self.year}: {completed} files read")

    def done(self, *words: str, plain: bool = True) -> None:
        """What the step did; ``plain``: also one of the plain lines."""
        seconds = time.perf_counter() - self.started
        say(
            self.survey,
            self.year,
            words,
            seconds=seconds,
            step=self.step,
            state="done",
            plain=plain,
        )


def say(
    survey: str,
    year: int,
    words: tuple[str, ...],
    *,
    seconds: float,
    step: str = "",
    state: str = "said",
    plain: bool = True,
) -> None:
    """The line "ifo 2024: what was done (1.2 s)" with its event."""
    event = Event(survey, year, step, state, words, seconds=seconds, plain=plain)
    tell(event, f"{survey} {year}: {', '.join(words)} ({seconds:.1f} s)")


@dataclass(frozen=True)
class FileRead:
    """Called by a parse task with each file it has read: one step forward of the bar.

    Plain data, so that it reaches a Dask worker too (where it tells nobody)."""

    survey: str
    year: int

    def __call__(self, source_file: str) -> None:
        tell(
            Event(self.survey, self.year, "read", "advanced", advance=1),
            f"{self.survey} {self.year}: {source_file} read",
        )
