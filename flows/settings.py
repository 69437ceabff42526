"""One settings object for the whole pipeline, read from ``BRUKARDATA_*`` environment variables.

A command builds it before anything else, so this module imports nothing heavy: a wrong
setting or flag is refused at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import make_url

from flows.defaults import DEFAULT_KOLADA_URL, DEFAULT_WAREHOUSE
from flows.problems import CommandError
from schemas.defaults import DEFAULT_CODEBOOK_DIR, DEFAULT_REFERENCE_DIR, STREAM_ABOVE_BYTES
from tasks.redact import has_credentials

if TYPE_CHECKING:
    from schemas.catalogue import Catalogue

MB = 1024 * 1024


class Settings(BaseSettings):
    """Where data comes from and goes, and the statistical choices recorded with every load."""

    model_config = SettingsConfigDict(env_prefix="BRUKARDATA_")

    warehouse: str = DEFAULT_WAREHOUSE
    source: str | None = None
    # Where fetched files are archived (any fsspec URL); unset: ``landing/`` beside a DuckDB
    # warehouse file, else ``./landing``.
    landing: str | None = None
    suppression_threshold: int = Field(default=5, ge=1)
    confidence_level: float = Field(default=0.95, gt=0, lt=1)
    significance_level: float = Field(default=0.05, gt=0, lt=1)
    kolada_url: str = DEFAULT_KOLADA_URL
    # v3 is Kolada's current API (its clients have moved off v2); v2 stays for mirrors of it.
    kolada_api_version: Literal["v2", "v3"] = "v3"
    # Where a failed run is announced (a JSON POST), e.g. a chat or incident webhook.
    notify_webhook: str | None = None
    # Scale-out (flows/runners.py): a Dask scheduler's address, or local Dask worker processes.
    dask_address: str | None = None
    dask_workers: int = Field(default=0, ge=0)
    # The audit: where Data Docs go (unset: ``data-docs`` beside a DuckDB warehouse file, else
    # ``./data-docs``) and how many percentage points a kommun figure may move in a year
    # before the audit warns.
    data_docs: Path | None = None
    max_change_points: float = Field(default=15.0, gt=0)
    # How long a load waits for another load of the same survey and year to finish.
    load_lock_timeout: float = Field(default=3600.0, gt=0)
    # Files of this many MB or more are never held in memory: streamed to the landing area,
    # then read in chunks of rows. 0 streams every file.
    stream_above_mb: float = Field(default=STREAM_ABOVE_BYTES / MB, ge=0)
    # The reference tables (kommuner, enkäter, questions, answer scales) and the codebooks of
    # the export layouts: a corrected copy is used by pointing these at it.
    reference_dir: Path = DEFAULT_REFERENCE_DIR
    codebook_dir: Path = DEFAULT_CODEBOOK_DIR

    @classmethod
    def given(cls, **values: Any) -> Settings:
        """The ``BRUKARDATA_*`` environment's settings with ``values`` over them; a value of
        None is not given (the environment's, else the default, stands)."""
        return cls(**{name: value for name, value in values.items() if value is not None})

    def catalogue(self) -> Catalogue:
        """The reference catalogue of ``reference_dir`` with the codebooks of ``codebook_dir``."""
        from schemas.catalogue import load_catalogue

        return load_catalogue(self.reference_dir, self.codebook_dir)

    @property
    def stream_above(self) -> int:
        """``stream_above_mb`` in bytes."""
        return int(self.stream_above_mb * MB)

    def _beside_warehouse(self, name: str) -> Path:
        """``name`` in the folder of a DuckDB warehouse file, else in the working folder."""
        url = make_url(self.warehouse)
        if url.get_backend_name() == "duckdb" and url.database not in (None, "", ":memory:"):
            return Path(url.database).expanduser().parent / name
        return Path(name)

    def landing_root(self) -> str:
        """The landing area in force: the setting, or a folder beside the DuckDB file."""
        return self.landing or str(self._beside_warehouse("landing"))

    def reports_dir(self) -> Path:
        """Where runs write their HTML reports: beside the Data Docs."""
        return self.data_docs_dir().parent / "reports"

    def data_docs_dir(self) -> Path:
        """The Data Docs folder in force: the setting, else beside a DuckDB file, else here."""
        return self.data_docs or self._beside_warehouse("data-docs")

    def statistical_settings(self) -> dict[str, Any]:
        """The choices a published figure depends on, stored with each load.

        ``z_critical`` is derived from ``significance_level`` and stored beside it because the
        reporting views read it from the load (SQL has no portable inverse normal function).
        ``answer_roles`` (scale → role → answer codes) is the reference data's reading of which
        answers count as positive, so a figure can be recomputed after the data is corrected.
        """
        from tasks.statistics import critical_z
        from tasks.suppression import METHOD as SUPPRESSION_METHOD

        scales = self.catalogue().answer_scales
        return {
            "suppression_threshold": self.suppression_threshold,
            "suppression_method": SUPPRESSION_METHOD,
            "confidence_level": self.confidence_level,
            "significance_level": self.significance_level,
            "z_critical": critical_z(self.significance_level),
            "answer_roles": {
                scale: {
                    role: sorted(codes["code"].tolist()) for role, codes in by_scale.groupby("role")
                }
                for scale, by_scale in scales.groupby("scale_id")
            },
        }


def command_settings(**flags: Any) -> Settings:
    """A command's settings, built once: the flags it was given (those not None) over the
    ``BRUKARDATA_*`` environment; a setting that does not parse is one line naming it."""
    try:
        return Settings.given(**flags)
    except ValidationError as err:
        problem = err.errors()[0]
        name = ".".join(map(str, problem["loc"]))
        prefix = Settings.model_config["env_prefix"]
        raise CommandError(f"setting {prefix}{name.upper()}: {problem['msg']}") from err


def as_parameter(value: str | None, setting: str) -> str | None:
    """``value`` to pass to a flow as a parameter, or None when it holds a credential.

    Prefect stores flow parameters in clear text and failure notices repeat them, so a URL
    with a password or token goes to the run through its ``BRUKARDATA_*`` setting in this
    process's environment instead, where ``Settings`` reads it and nothing records it.
    """
    if value is None or not has_credentials(value):
        return value
    os.environ[f"{Settings.model_config['env_prefix']}{setting.upper()}"] = value
    return None
