"""Lock readiness: a trial lock records how many blockers its override left open; soft locks per site or
participant.

Locks recorded before this revision keep no count (NULL): they were made before the readiness check, and reports
made from them print no override banner rather than guessing one.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trial_locks") as batch:
        batch.add_column(sa.Column("open_blockers", sa.Integer(), nullable=True))
    op.create_table(
        "soft_locks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_soft_locks_target", "soft_locks", ["target"])


def downgrade() -> None:
    op.drop_index("ix_soft_locks_target", table_name="soft_locks")
    op.drop_table("soft_locks")
    with op.batch_alter_table("trial_locks") as batch:
        batch.drop_column("open_blockers")
