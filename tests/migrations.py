"""Taking a test trial's schema back to an earlier revision (Alembic's downgrade of the one migration tree), so that a
spec can put data there as an older release held it and then upgrade it as ``trialwright init`` would."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine

from trialwright.store.migrate import migrate


def downgrade(engine: Engine, to: str) -> None:
    """Run the migrations' downgrades to revision ``to`` through the store's own runner (``store.migrate.migrate``:
    on SQLite with foreign keys off while the tables are rebuilt, as ``upgrade`` does; no foreign-key check after, as
    before); the engine's pooled connections are dropped after."""
    migrate(engine, lambda config: command.downgrade(config, to), check_foreign_keys=False)
    engine.dispose()
