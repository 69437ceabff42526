"""Flows: the pipeline's compositions (annual run) and the ``brukardata`` command line.

Prefect's settings are given defaults here, before Prefect is imported anywhere, so a user
never has to set them: Prefect keeps its state in ``./.prefect`` (not the home folder),
sends no analytics, and allows the temporary local server time to start on small machines.
"""

import os
from pathlib import Path

PREFECT_DEFAULTS: dict[str, str] = {
    "PREFECT_HOME": str(Path.cwd() / ".prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_SERVER_LEVEL": "WARNING",
    # Pauses before the retries of a transient fault (unreachable source or database): tasks
    # that retry take this default, and bad data is never retried at all.
    "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS": "2,10,30",
}
for _name, _value in PREFECT_DEFAULTS.items():
    os.environ.setdefault(_name, _value)

# Prefect's home holds its database of flow runs, their parameters and logs: readable by its
# owner only, created so before Prefect writes there, and narrowed if it was made wider.
_home = Path(os.environ["PREFECT_HOME"]).expanduser()
_home.mkdir(mode=0o700, parents=True, exist_ok=True)
if _home.stat().st_uid == os.getuid():
    _home.chmod(0o700)
