"""Where a flow's per-file steps run: in the flow's own process, or on a Dask cluster.

``BRUKARDATA_DASK_ADDRESS`` names a running cluster's scheduler (workers on several machines,
each with the project installed and the same warehouse URL); ``BRUKARDATA_DASK_WORKERS`` starts
a local cluster of that many worker processes for the run. Neither: threads in the flow's
process, as Prefect does by default. The choice is made when a flow run starts, from the
settings of the process that runs it (a command, or a deployment's worker), never at import.
"""

from __future__ import annotations

from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from flows.settings import Settings


def task_runner(settings: Settings) -> Any:
    """The task runner the settings ask for (Dask's is imported only when asked for: a run
    without it starts sooner)."""
    if not (settings.dask_address or settings.dask_workers):
        return ThreadPoolTaskRunner()
    from prefect_dask.task_runners import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": settings.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )


class _RunnerFromSettings(ThreadPoolTaskRunner[Any]):
    """A flow's task runner: threads, unless the settings read when a run starts ask for Dask.

    Prefect takes a copy of the flow's task runner (``duplicate``) for each run: that copy is
    the runner the settings ask for at that moment.
    """

    def duplicate(self) -> Any:
        return task_runner(Settings())


def runner_from_settings() -> Any:
    """The task runner of a flow's decorator: chosen by the settings when each run starts."""
    return _RunnerFromSettings()


def parallelism(settings: Settings) -> int:
    """How many batches to split per-file work into: one per worker."""
    return settings.dask_workers or (4 if settings.dask_address else 1)
