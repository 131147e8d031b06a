"""Run-time settings, read from the environment (prefix ``TRIALWRIGHT_``) or passed in explicitly.

Settings are built by the edges (CLI, web) and handed down; no module reads them at import time. The
variables' names from before the rename are still read for one release, with a warning naming the new
variable (``trialwright.legacy``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from trialwright.legacy import ENV_PREFIX, legacy_value

__all__ = ["DEFAULT_DATABASE_FILE", "DEFAULT_DATABASE_URL", "Settings"]

#: The embedded database used when nothing else is configured: a SQLite file in the working folder.
DEFAULT_DATABASE_FILE = "trialwright.db"
DEFAULT_DATABASE_URL = f"sqlite:///{DEFAULT_DATABASE_FILE}"


class _LegacyEnvironment(PydanticBaseSettingsSource):
    """The old names of the variables, read only where the new name is not set (with a warning)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found = {name: legacy_value(name.upper()) for name in self.settings_cls.model_fields}
        return {name: value for name, value in found.items() if value is not None}


class Settings(BaseSettings):
    """Every setting trialwright reads. Each one is documented in docs/settings.md (a test keeps it so)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        legacy = _LegacyEnvironment(settings_cls)
        return init_settings, env_settings, legacy, dotenv_settings, file_secret_settings

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL of the trial database: sqlite:///FILE (embedded) or "
        "postgresql+psycopg://USER@HOST:PORT/DB.",
    )
    read_database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of a read replica of the trial database (PostgreSQL streaming replica), read by "
        "the analysis and the exports only; every write stays on database_url. A read waits until the replica has "
        "replayed the primary's latest audit entry (at most 10 seconds, else it is refused). Unset: everything "
        "reads database_url.",
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
        default=False,
        description="Mark every cookie Secure, even on a request that did not arrive over HTTPS (cookies on an "
        "HTTPS request are always Secure).",
    )
    api_docs: bool = Field(
        default=False,
        description="Serve the interactive API documentation (Swagger UI) at /docs, from files shipped in the "
        "package (no CDN, no inline script). The OpenAPI description itself is always at /openapi.json.",
    )
    api_token_days: int = Field(
        default=90,
        ge=1,
        description="How long an API token lives: the default life of a new token and the longest one may ask for.",
    )
    rate_limit_window_seconds: int = Field(
        default=60,
        ge=1,
        description="The window the rate limits count in, and the window refused API tokens are audited per.",
    )
    rate_limit_sign_in: int = Field(
        default=10,
        ge=0,
        description="Failed sign-ins allowed per client address and per username in a window; past it the "
        "sign-in answers 429 with Retry-After (0: no limit).",
    )
    rate_limit_reentry: int = Field(
        default=30,
        ge=0,
        description="Password re-entries (signing, unblinding, lock override, DSMB and data access decisions) "
        "allowed per client address and per user in a window; past it 429 (0: no limit).",
    )
    rate_limit_token_refusals: int = Field(
        default=30,
        ge=0,
        description="Refused API tokens (unknown, expired, revoked) allowed per client address in a window; past "
        "it the API answers 429 instead of 401 (0: no limit).",
    )
    audit_key_file: Path | None = Field(
        default=None,
        description="File holding the audit key that signs the audit trail (created 0600 by init if missing, never "
        "overwritten). Default: beside a SQLite file (trialwright.db.key); for PostgreSQL "
        "$XDG_DATA_HOME/trialwright/audit/HOST-PORT-DATABASE.key (~/.local/share when XDG_DATA_HOME is unset).",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        description="The audit key itself (64 hexadecimal digits), given as a secret instead of a key file; "
        "takes precedence over audit_key_file.",
    )
    audit_anchor_file: Path | None = Field(
        default=None,
        description="File the signed anchors of the audit trail are appended to (created 0600). Default: beside "
        "the key file, with .anchors for .key (trialwright.db.anchors).",
    )
    smtp_host: str | None = Field(
        default=None,
        description="The mail server e-mail notifications are sent through. Unset: no e-mail is sent (the "
        "notifications stay in the app and in the outbox, and `trialwright email status` says so).",
    )
    smtp_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="The mail server's port. Default: 587 (starttls), 465 (ssl), 25 (none).",
    )
    smtp_security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls",
        description="How the connection to the mail server is protected: starttls (upgrade a plain connection, "
        "certificate checked), ssl (TLS from the start, certificate checked) or none (only for a relay on the same "
        "host or a test server).",
    )
    smtp_user: str | None = Field(
        default=None, description="The account to sign in to the mail server as (unset: none)."
    )
    smtp_password: SecretStr | None = Field(
        default=None, description="The mail server account's password, given as a secret."
    )
    smtp_password_file: Path | None = Field(
        default=None,
        description="A file holding the mail server account's password (its first line); smtp_password takes "
        "precedence.",
    )
    email_from: str | None = Field(
        default=None,
        description="The From address of every e-mail (e.g. trialwright@hospital.example); needed with smtp_host.",
    )
    email_max_attempts: int = Field(
        default=8,
        ge=1,
        description="Attempts to deliver one message before it is recorded as failed (retried with growing waits: "
        "1, 2, 4 ... minutes, at most 6 hours apart).",
    )
    email_reminder_fraction: float = Field(
        default=0.25,
        gt=0,
        lt=1,
        description="A reporting deadline's reminder is sent when this fraction of its time is left (0.25: 6 hours "
        "before a 24-hour deadline); a second one when it is overdue.",
    )
    export_dir: Path | None = Field(
        default=None,
        description="Folder the export jobs of the REST API (POST /api/v1/exports) write their files into, shared by "
        "every web worker (created 0700). Default: beside a SQLite file (trialwright.db.exports); for PostgreSQL "
        "$XDG_DATA_HOME/trialwright/exports/HOST-PORT-DATABASE (~/.local/share when XDG_DATA_HOME is unset).",
    )
    export_retention_hours: int = Field(
        default=24,
        ge=1,
        description="How long an export job's file is kept after the job ends; then the file and the job are "
        "deleted (audited), as DELETE /api/v1/exports/{job_id} does at once.",
    )
    protocol_file: Path | None = Field(
        default=None,
        description="Protocol file used by commands that create a trial when none is named.",
    )
