"""One settings object for the whole pipeline, read from ``BRUKARDATA_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_WAREHOUSE = "duckdb:///brukardata.duckdb"


class Settings(BaseSettings):
    """Where data comes from and goes, and the statistical choices recorded with every load."""

    model_config = SettingsConfigDict(env_prefix="BRUKARDATA_")

    warehouse: str = DEFAULT_WAREHOUSE
    source: str | None = None
    suppression_threshold: int = Field(default=5, ge=1)
    confidence_level: float = Field(default=0.95, gt=0, lt=1)

    def statistical_settings(self) -> dict[str, float | int]:
        """The choices a published figure depends on, stored with each load."""
        return {
            "suppression_threshold": self.suppression_threshold,
            "confidence_level": self.confidence_level,
        }
