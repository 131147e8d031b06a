"""The one Alembic migration tree of the trial database."""
