"""Taking a test trial's schema back to an earlier revision (Alembic's downgrade of the one migration tree), so that a
spec can put data there as an older release held it and then upgrade it as ``trialwright init`` would."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine

from trialwright.store.migrate import _config


def downgrade(engine: Engine, to: str) -> None:
    """Run the migrations' downgrades to revision ``to`` (on SQLite with foreign keys off while the tables are
    rebuilt, as ``store.migrate.upgrade`` does); the engine's pooled connections are dropped after."""
    config = _config()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        if sqlite:
            raw.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with conn.begin():
                config.attributes["connection"] = conn
                command.downgrade(config, to)
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
    engine.dispose()
