"""Run-time settings, read from the environment (prefix ``TRIALWRIGHT_``) or passed in explicitly.

Settings are built by the edges (CLI, web) and handed down; no module reads them at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_DATABASE_URL", "Settings"]

#: The embedded database used when nothing else is configured: a SQLite file in the working folder.
DEFAULT_DATABASE_URL = "sqlite:///trialwright.db"


class Settings(BaseSettings):
    """Every setting trialwright reads. Each one is documented in docs/settings.md (a test keeps it so)."""

    model_config = SettingsConfigDict(env_prefix="TRIALWRIGHT_", extra="ignore", frozen=True)

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the trial database: sqlite:///FILE (embedded) or "
        "postgresql+psycopg://USER@HOST:PORT/DB.",
    )
    lockout_threshold: int = Field(
        default=5, ge=1, description="Failed sign-ins in a row after which an account is locked."
    )
    lockout_minutes: int = Field(default=15, ge=1, description="How long a locked account stays locked.")
    session_idle_minutes: int = Field(
        default=30, ge=1, description="A browser session ends after this many minutes without a request."
    )
    session_hours: int = Field(default=12, ge=1, description="A browser session ends this long after sign-in.")
    secure_cookies: bool = Field(
        default=False, description="Send cookies only over HTTPS (turn on behind TLS in production)."
    )
    protocol_file: Path | None = Field(
        default=None,
        description="Protocol file used by commands that create a trial when none is named.",
    )
