"""Prefect's environment for a ``brukardata`` command, set by the command before Prefect loads.

A user never has to set these: Prefect keeps its state in ``./.prefect`` (not the home folder),
sends no analytics, allows the temporary local server time to start on small machines and
pauses before the retries of a transient fault. A value the user set is kept.
"""

from __future__ import annotations

import os
from pathlib import Path

PREFECT_DEFAULTS: dict[str, str] = {
    "PREFECT_HOME": ".prefect",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_SERVER_LEVEL": "WARNING",
    # Tasks that retry (an unreachable source or database) pause this long before each retry;
    # bad data is never retried at all.
    "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS": "2,10,30",
}


def prefect_environment() -> Path:
    """Give Prefect's settings their defaults in this process's environment (inherited by the
    servers and workers it starts) and return Prefect's home.

    The home holds Prefect's database of flow runs, their parameters and logs: it is made
    readable by its owner only before Prefect writes there, and narrowed if it was made wider.
    """
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    home = Path(os.environ["PREFECT_HOME"]).expanduser().absolute()
    os.environ["PREFECT_HOME"] = str(home)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if home.stat().st_uid == os.getuid():
        home.chmod(0o700)
    return home


def prefect_home() -> Path:
    """Prefect's home of this command (after ``prefect_environment``)."""
    return Path(os.environ["PREFECT_HOME"])
