"""The flows' progress on the user's screen: live on a terminal, plain lines elsewhere.

On a terminal (``Console.is_terminal``, not ``TERM=dumb``) a run shows, per survey-year, a bar
of the files read out of the total, then each step (validate, aggregate, stage, audit,
publish) with a spinner while it runs and its time and what it did once done. In a pipe, a
log file or CI it prints the plain lines of flows/progress.py, one per step, as they come.
Colours follow ``NO_COLOR`` (Rich's console does). The events come on the
``brukardata.progress`` logger, from the flow's thread or its tasks' threads alike.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from flows.progress import Event

BAR_WIDTH = 20
REFRESH_PER_SECOND = 8


@dataclass
class _Row:
    """One step of a survey-year on the screen."""

    survey: str
    year: int
    step: str
    started: float = field(default_factory=time.monotonic)
    total: int | None = None
    told: int = 0  # files read, one event per file (tasks in the flow's process)
    completed: int = 0  # files read, as the flow counts its finished tasks
    words: tuple[str, ...] = ()
    seconds: float | None = None  # set when done
    spinner: Spinner = field(default_factory=lambda: Spinner("dots", style="cyan"))

    def files_read(self) -> int:
        return max(self.told, self.completed)


class ProgressDisplay(logging.Handler):
    """A handler of the progress logger: plain lines on ``plain`` (stderr), or, inside
    ``live()`` on a terminal, a live display on ``screen``."""

    def __init__(self, plain: Console, screen: Console) -> None:
        super().__init__(logging.INFO)
        self._plain, self._screen = plain, screen
        self._rows: dict[tuple[str, int, str], _Row] = {}
        self._rows_lock = threading.Lock()
        self._live: Live | None = None
        self._stopped = False

    @property
    def is_live(self) -> bool:
        """Whether ``live()`` draws: a terminal that can redraw lines."""
        return self._screen.is_terminal and not self._screen.is_dumb_terminal

    def emit(self, record: logging.LogRecord) -> None:
        event: Event | None = getattr(record, "progress", None)
        if self._live is None:
            if event is None or event.plain:
                self._plain.print(f"  {record.getMessage()}", style="dim")
            return
        if event is None:
            self._live.console.print(f"  {record.getMessage()}", style="dim", markup=False)
            return
        with self._rows_lock:
            self._update(event)

    def _update(self, event: Event) -> None:
        key = (event.survey, event.year, event.step)
        if event.state == "started":
            self._rows[key] = _Row(event.survey, event.year, event.step, total=event.total)
            return
        row = self._rows.get(key)
        if row is None:  # "said": a plain line, already shown by the steps' rows
            return
        if event.state == "advanced":
            row.told += event.advance
            row.completed = max(row.completed, event.completed or 0)
        elif event.state == "done":
            row.words, row.seconds = event.words, event.seconds

    @contextmanager
    def live(self) -> Iterator[None]:
        """Draw the events live while the block runs (on a terminal; else plain lines)."""
        if not self.is_live:
            yield
            return
        with self._rows_lock:
            self._rows.clear()
            self._stopped = False
        live = Live(
            console=self._screen,
            get_renderable=self._render,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=False,
        )
        with live:
            self._live = live
            try:
                yield
            finally:
                self._live = None
                with self._rows_lock:
                    self._stopped = True  # steps never done stop spinning in the last frame

    def _render(self) -> RenderableType:
        with self._rows_lock:
            rows = list(self._rows.values())
            stopped = self._stopped
        if not rows:
            return Group()
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)  # ✓ or spinner
        grid.add_column(no_wrap=True)  # ifo 2024
        grid.add_column(no_wrap=True)  # step
        grid.add_column()  # what it did: wraps between words, never cut
        grid.add_column(justify="right", no_wrap=True)  # seconds
        now = time.monotonic()
        for row in rows:
            grid.add_row(*self._cells(row, now, stopped))
        return grid

    @staticmethod
    def _cells(row: _Row, now: float, stopped: bool) -> tuple[RenderableType, ...]:
        done = row.seconds is not None
        status: RenderableType
        if done:
            status = Text("✓", style="green")
        elif stopped:
            status = Text("–", style="yellow")
        else:
            status = row.spinner
        seconds = row.seconds if row.seconds is not None else now - row.started
        what: RenderableType = Text(", ".join(row.words))
        if row.total is not None:  # reading files: the bar, then how many of how many
            counted = Table.grid(padding=(0, 1))
            counted.add_row(
                ProgressBar(total=max(row.total, 1), completed=row.files_read(), width=BAR_WIDTH),
                Text(f"{row.files_read()}/{row.total} files read"),
            )
            what = counted
        return (
            status,
            Text(f"{row.survey} {row.year}", style="bold"),
            Text(row.step),
            what,
            Text(f"{seconds:.1f} s", style="dim"),
        )
