"""Alembic environment: trialwright runs migrations in code (``trialwright.store.migrate``), on a connection
it passes in, so no alembic.ini or URL is read here."""

from __future__ import annotations

from alembic import context

import trialwright.store  # noqa: F401 - importing the package registers every table on metadata
from trialwright.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached if someone runs the alembic CLI by hand
    raise RuntimeError("run migrations through trialwright (trialwright init), not the alembic command")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
