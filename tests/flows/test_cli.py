"""The ``brukardata`` command as a user runs it: a process, its stderr and its exit status.

Every command is given a bad argument and an unreachable resource: each must say so in one
line on stderr, without a traceback, with the README's exit status, and read-only commands
must leave no warehouse behind. A real run must read well in 80 columns and end without
DuckDB's leak report, and ``--help`` must not import the heavy libraries.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shlex
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from sample.generate import generate_exports
from tests.flows.conftest import BRUKARDATA, free_port

USAGE_OR_ENVIRONMENT = 2
CLOSED = free_port()  # nothing listens there
UNREACHABLE_POSTGRES = f"postgresql+psycopg://nobody@127.0.0.1:{CLOSED}/brukardata"
TEST_SETTINGS = ("BRUKARDATA_", "PREFECT_API")
TERMINAL_SETTINGS = ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "TERM")
PREFECT_LOG_LINES = ("Task run '", "Flow run '", "Finished in state")
STYLE = re.compile(r"\x1b\[[0-9;?]*m")
CURSOR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # moves and erases: a redrawn line starts anew


def user_env(folder: Path, columns: int) -> dict[str, str]:
    """A user's shell in ``folder``: no settings of the tests, ``columns`` wide."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(TEST_SETTINGS)}
    return env | {"PREFECT_HOME": str(folder / ".prefect"), "COLUMNS": str(columns)}


def brukardata(
    folder: Path, *args: str, columns: int = 80, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``brukardata`` in ``folder`` as a user's shell would: no settings of the tests."""
    env = user_env(folder, columns)
    return subprocess.run(
        [BRUKARDATA, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# (command line with {tmp} for an empty folder, what the one line on stderr says)
FAILURES = {
    "run, unknown survey": ("run --year 2024 --survey nope --source {tmp}", "--survey"),
    "run, not a URL": ("run --year 2024 --source {tmp} --warehouse notaurl", "not a warehouse URL"),
    "run, missing source": ("run --year 2024 --source {tmp}/missing", "is not a folder"),
    "run, warehouse down": (
        f"run --year 2024 --source {{tmp}} --warehouse {UNREACHABLE_POSTGRES}",
        "unreachable",
    ),
    "run, no such folder": (
        "run --year 2024 --source {tmp} --warehouse duckdb:///{tmp}/missing/x.duckdb",
        "does not exist",
    ),
    "rerun, empty reason": ("rerun --survey ifo --year 2024 --reason ' ' --source {tmp}", "reason"),
    "rerun, no warehouse": (
        "rerun --survey ifo --year 2024 --reason r --source {tmp}",
        "no warehouse at duckdb:///brukardata.duckdb",
    ),
    "validate, unknown survey": ("validate {tmp} --survey nope --year 2024", "--survey"),
    "validate, missing path": (
        "validate {tmp}/missing.csv --survey ifo --year 2024",
        "cannot read",
    ),
    "validate, csv into a missing folder": (
        "validate {tmp} --survey ifo --year 2024 --quarantine-csv {tmp}/missing/q.csv",
        "does not exist",
    ),
    "history, bad limit": ("history --limit 0", "--limit"),
    "history, no warehouse": (
        "history --warehouse duckdb:///{tmp}/never.duckdb",
        "no warehouse at duckdb:///",
    ),
    "kolada, bad year": ("kolada --year 1999", "--year"),
    "kolada, no warehouse": ("kolada --year 2024", "no warehouse at"),
    "report, unknown kommun": ("report --year 2024 --kommun 9999", "unknown kommun '9999'"),
    "report, as in the README": ("report --year 2024 --kommun 0880", "no warehouse at"),
    "db upgrade, not a URL": ("db upgrade --warehouse notaurl", "not a warehouse URL"),
    "db upgrade, warehouse down": (f"db upgrade --warehouse {UNREACHABLE_POSTGRES}", "unreachable"),
    "server, bad port": ("server --port 0", "--port"),
    "server, missing source": ("server --source {tmp}/missing", "is not a folder"),
    "generate, year before the surveys": ("generate --out {tmp}/g --years 2015", "2015"),
    "generate, unknown layout": ("generate --out {tmp}/g --years 2024 --layout nope", "'nope'"),
    "generate, unwritable": ("generate --out /proc/brukardata --years 2024", "/proc/brukardata"),
    "demo, too few kommuner": ("demo --kommuner 1", "--kommuner"),
    "demo, unwritable": ("demo --out /proc/brukardata", "/proc/brukardata"),
}


@pytest.mark.parametrize("case", FAILURES)
def test_every_command_fails_in_one_line_with_the_documented_status(
    case: str, tmp_path: Path
) -> None:
    command, says = FAILURES[case]
    done = brukardata(tmp_path, *shlex.split(command.format(tmp=tmp_path)))
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert says.format(tmp=tmp_path) in lines[0]
    assert done.returncode == USAGE_OR_ENVIRONMENT
    # nothing created: no warehouse, no folder tree for one
    assert sorted(p.name for p in tmp_path.iterdir()) == [".prefect"]


def test_help_imports_none_of_the_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "from flows import cli\n"
        "for command in ([], ['run'], ['rerun'], ['validate'], ['report'], ['db', 'upgrade']):\n"
        "    sys.argv = ['brukardata', *command, '--help']\n"
        "    try:\n"
        "        cli.main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('prefect', 'pandas', 'great_expectations', 'duckdb', 'sqlalchemy')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.splitlines()[-1] == "[]"


def test_a_run_reads_in_80_columns_and_ends_without_leak_reports(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    generate_exports(exports, [2024], n_kommuner=3, seed=3)
    warehouse = f"duckdb:///{tmp_path / 'w.duckdb'}"
    run = brukardata(
        tmp_path, "run", "--year", "2024", "--survey", "ifo", "--source", str(exports),
        "--warehouse", warehouse,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "leaked" not in run.stderr, run.stderr
    assert "nanobind" not in run.stderr
    assert "Task run" not in run.stdout + run.stderr  # Prefect's logs go to its UI and log file
    history = brukardata(tmp_path, "history", "--warehouse", warehouse)
    validate = brukardata(
        tmp_path, "validate", str(exports / "ifo" / "2024"), "--survey", "ifo", "--year", "2024"
    )
    for output in (run.stdout, history.stdout, validate.stdout):
        assert "…" not in output
        assert max(map(len, output.splitlines())) <= 80
    for column in ("survey", "refused", "rows read", "quarantined", "suppressed cells", "status"):
        assert f"  {column} " in run.stdout  # whole, in the narrow layout
    files = json.loads(brukardata(tmp_path, "history", "--warehouse", warehouse, "--json").stdout)
    assert files
    assert all(f"  source_file       {f['source_file']}" in history.stdout for f in files)
    summary = json.loads(
        brukardata(
            tmp_path, "run", "--year", "2024", "--survey", "ifo", "--source", str(exports),
            "--warehouse", warehouse, "--json",
        ).stdout
    )  # fmt: skip
    assert [(o["survey"], o["status"]) for o in summary["outcomes"]] == [("ifo", "ok")]


def on_a_terminal(folder: Path, *args: str, timeout: float = 300) -> tuple[int, str]:
    """Run ``brukardata`` in ``folder`` on a pseudo-terminal of 80 × 24: its status and all it
    wrote there (stdout and stderr), escape codes and all."""
    env = {k: v for k, v in user_env(folder, 80).items() if k not in TERMINAL_SETTINGS}
    env |= {"TERM": "xterm-256color", "LINES": "24"}
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    with subprocess.Popen(
        [BRUKARDATA, *args], cwd=folder, env=env, stdin=terminal, stdout=terminal, stderr=terminal
    ) as process:
        os.close(terminal)
        written = bytearray()
        while True:  # read as it comes, or the command blocks on a full terminal
            ready, _, _ = select.select([controller], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the command has ended and closed the terminal
                break
            if not chunk:
                break
            written += chunk
        status = process.wait(timeout=timeout)
    os.close(controller)
    return status, written.decode("utf-8", errors="replace")


def screen_lines(written: str) -> list[str]:
    """What a terminal shows of ``written``, line by line as each was drawn, without styles."""
    return re.split(r"\r\n|\r|\n", CURSOR.sub("\n", STYLE.sub("", written)))


@pytest.fixture(scope="module")
def exports_to_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with sample exports of 2024; the runs of this module share its Prefect home."""
    folder = tmp_path_factory.mktemp("runs")
    generate_exports(folder / "exports", [2024], n_kommuner=3, seed=3)
    return folder


def test_a_run_on_a_terminal_shows_its_progress_live(exports_to_run: Path) -> None:
    folder = exports_to_run
    files = len(list((folder / "exports" / "ifo" / "2024").iterdir()))
    status, written = on_a_terminal(
        folder, "run", "--year", "2024", "--survey", "ifo", "--source", "exports",
        "--warehouse", "duckdb:///terminal.duckdb",
    )  # fmt: skip
    lines = screen_lines(written)
    shown = "\n".join(lines)
    assert status == 0, shown
    assert "\x1b[2K" in written  # lines redrawn in place: a live display
    assert f"{files}/{files} files read" in shown  # the bar reached the total
    drawn = {line.split()[3]: line for line in lines if line.startswith("✓ ifo 2024 ")}
    assert list(drawn) == ["fetch", "read", "validate", "aggregate", "stage", "audit", "publish"]
    assert re.search(r"validate\s+[\d,]+ rows checked, \d+ quarantined, 0 files refused", shown)
    assert re.search(r"publish\s+audit passed, load 1 published\s+\d+\.\d s$", drawn["publish"])
    assert "brukardata run" in shown  # then the summary
    assert "  status            ok" in lines
    for prefect_says in PREFECT_LOG_LINES:
        assert prefect_says not in shown
    assert max(len(line) for line in lines if not line.startswith("Starting a temporary")) <= 80


def test_a_run_in_a_pipe_prints_plain_progress_lines(exports_to_run: Path) -> None:
    folder = exports_to_run
    run = brukardata(
        folder, "run", "--year", "2024", "--survey", "ifo", "--source", "exports",
        "--warehouse", "duckdb:///pipe.duckdb",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    for output in (run.stdout, run.stderr):
        assert "\x1b" not in output  # no escape codes
        assert "\r" not in output  # no line redrawn
    progress = [line for line in run.stderr.splitlines() if line.startswith("  ifo 2024: ")]
    plain = r"  ifo 2024: (.+) \(\d+\.\d s\)"
    said = [re.fullmatch(plain, line)[1] for line in progress]
    assert len(said) == 4, run.stderr
    assert said[0].endswith("files fetched")
    assert re.fullmatch(
        r"\d+ files read, [\d,]+ rows checked, \d+ quarantined, 0 files refused", said[1]
    )
    assert said[2].endswith("figures computed")
    assert said[3] == "audit passed, load 1 published"
    for prefect_says in PREFECT_LOG_LINES:
        assert prefect_says not in run.stdout + run.stderr
