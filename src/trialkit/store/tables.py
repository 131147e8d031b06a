"""The trial database's tables, all on one ``metadata``.

Each capability declares its tables in its own module under ``trialkit.store`` on this ``metadata``;
the single Alembic tree in ``trialkit/store/migrations`` creates them. Times are stored timezone-aware
in UTC.
"""

from __future__ import annotations

from sqlalchemy import MetaData

__all__ = ["metadata"]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
