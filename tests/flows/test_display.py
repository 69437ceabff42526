"""The progress display: what it draws from the flows' events, on a terminal and in a pipe."""

from __future__ import annotations

import io
import logging
import pickle
import re
from collections.abc import Iterator

import pytest
from rich.console import Console

from flows.display import ProgressDisplay
from flows.progress import PROGRESS, FileRead, Step, say

STYLE = re.compile(r"\x1b\[[0-9;?]*m")
CURSOR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def consoles(**screen: object) -> tuple[io.StringIO, io.StringIO, ProgressDisplay]:
    plain, drawn = io.StringIO(), io.StringIO()
    display = ProgressDisplay(
        plain=Console(file=plain, width=80, soft_wrap=True, markup=False, highlight=False),
        screen=Console(file=drawn, width=80, **screen),
    )
    return plain, drawn, display


@pytest.fixture
def listening() -> Iterator[list[ProgressDisplay]]:
    """Handlers added to the progress logger, removed after the test."""
    added: list[ProgressDisplay] = []
    level = PROGRESS.level
    PROGRESS.setLevel(logging.INFO)
    yield added
    for handler in added:
        PROGRESS.removeHandler(handler)
    PROGRESS.setLevel(level)


def a_survey_year(*, per_file: bool) -> None:
    """The events of a read and a validate of 3 files; per file, or (as from Dask workers,
    whose events never reach this process) only the flow's count of finished batches."""
    reading = Step("ifo", 2024, "read", total=3)
    for name in ("a.csv", "b.csv", "c.csv"):
        if per_file:
            FileRead("ifo", 2024)(name)
    reading.reached(3)
    reading.done("3 files read", plain=False)
    validating = Step("ifo", 2024, "validate")
    checked = ("1,204 rows checked", "6 quarantined", "0 files refused")
    validating.done(*checked, plain=False)
    say("ifo", 2024, ("3 files read", *checked), seconds=0.5)  # the plain line of both


@pytest.mark.parametrize("per_file", [True, False])
def test_a_terminal_draws_the_bar_to_the_total_and_each_step(
    listening: list[ProgressDisplay], per_file: bool
) -> None:
    plain, drawn, display = consoles(force_terminal=True)
    PROGRESS.addHandler(display)
    listening.append(display)
    with display.live():
        a_survey_year(per_file=per_file)
    shown = CURSOR.sub("\n", STYLE.sub("", drawn.getvalue()))
    assert "3/3 files read" in shown
    assert re.search(r"✓ ifo 2024 validate\s+1,204 rows checked, 6 quarantined, 0 files", shown)
    assert plain.getvalue() == ""


def test_no_terminal_or_a_dumb_one_gets_the_plain_lines(listening: list[ProgressDisplay]) -> None:
    for screen in (
        {"force_terminal": False},
        {"force_terminal": True, "_environ": {"TERM": "dumb"}},
    ):
        plain, drawn, display = consoles(**screen)
        PROGRESS.addHandler(display)
        listening.append(display)
        with display.live():
            Step("ifo", 2024, "fetch").done("3 files fetched")
            a_survey_year(per_file=True)
        PROGRESS.removeHandler(display)
        assert drawn.getvalue() == ""
        lines = plain.getvalue().splitlines()
        assert [re.sub(r" \(\d+\.\d s\)$", "", line) for line in lines] == [
            "  ifo 2024: 3 files fetched",
            "  ifo 2024: 3 files read, 1,204 rows checked, 6 quarantined, 0 files refused",
        ]


def test_a_file_read_reaches_a_worker_in_another_process() -> None:
    told = FileRead("ifo", 2024)
    assert pickle.loads(pickle.dumps(told)) == told
