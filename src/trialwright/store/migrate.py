"""Creating and upgrading the schema with the one Alembic tree shipped inside the package."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

__all__ = ["current_revision", "head_revision", "migrate", "upgrade"]

_SCRIPTS = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def head_revision() -> str:
    """The newest revision of the migration tree."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, to: str = "head") -> str:
    """Bring the schema to the newest revision, or to ``to`` (idempotent); returns the revision reached.

    On SQLite, a migration that changes a column rebuilds the table (Alembic's batch mode), which
    foreign-key enforcement would refuse for a table other rows point to; enforcement is switched off
    for the migration alone (outside its transaction, as SQLite requires), every foreign key is checked
    before the migration commits, and enforcement is switched on again.
    """
    migrate(engine, lambda config: command.upgrade(config, to))
    return head_revision() if to == "head" else to


def migrate(engine: Engine, step: Callable[[Config], None], *, check_foreign_keys: bool = True) -> None:
    """Run one Alembic command (``step``, given the tree's configuration bound to the connection) in one
    transaction, on SQLite with foreign-key enforcement off around it and, with ``check_foreign_keys``, every
    foreign key checked before it commits (``upgrade``; a test's downgrade, ``tests/migrations.py``, too)."""
    config = _config()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        if sqlite:
            raw.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with conn.begin():
                config.attributes["connection"] = conn
                step(config)
                if sqlite and check_foreign_keys:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
