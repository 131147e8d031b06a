"""The write path without a global lock: a table of audit entries not chained yet, a sequence of randomization numbers.

On PostgreSQL a user's transaction writes its audit entries here, each signed with the audit key; a single
chainer moves them into ``audit_entries`` (sequence, previous hash, hash, MAC) right after the commit, in a short
transaction of its own (see ``trialwright.services.audit``). Randomization numbers come from the sequence
``randomization_numbers`` (PostgreSQL; it continues from the largest number given), so that concurrent
randomizations lock only their own list entry.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_pending",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("role", sa.String(64), nullable=True),
        sa.Column("site", sa.String(8), nullable=True),
        sa.Column("participant", sa.String(32), nullable=True),
        sa.Column("form", sa.String(64), nullable=True),
        sa.Column("field", sa.String(64), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("old_value", sa.Text, nullable=True),
        sa.Column("new_value", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("mac", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_pending"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE randomization_numbers")
        op.execute(
            "SELECT setval('randomization_numbers', "
            "(SELECT coalesce(max(randomization_number), 0) + 1 FROM allocation_entries), false)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE randomization_numbers")
    op.drop_table("audit_pending")
