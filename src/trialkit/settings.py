"""Run-time settings, read from the environment (prefix ``TRIALKIT_``) or passed in explicitly.

Settings are built by the edges (CLI, web) and handed down; no module reads them at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_DATABASE_URL", "Settings"]

#: The embedded database used when nothing else is configured: a SQLite file in the working folder.
DEFAULT_DATABASE_URL = "sqlite:///trialkit.db"


class Settings(BaseSettings):
    """Every setting trialkit reads. Each one is documented in docs/settings.md (a test keeps it so)."""

    model_config = SettingsConfigDict(env_prefix="TRIALKIT_", extra="ignore", frozen=True)

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the trial database: sqlite:///FILE (embedded) or "
        "postgresql+psycopg://USER@HOST:PORT/DB.",
    )
    protocol_file: Path | None = Field(
        default=None,
        description="Protocol file used by commands that create a trial when none is named.",
    )
