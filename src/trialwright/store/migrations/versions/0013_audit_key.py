"""Keyed audit trail: a MAC per audit entry, where keying began, and a keyed digest per allocation entry.

Entries written before this revision (or before a key was configured) carry no MAC; keying begins with the
first entry written with a key, and ``audit_keying`` records that sequence number and the key's check value
(never the key). Columns are added in place (no table rebuild), so the append-only triggers stay.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_entries", sa.Column("mac", sa.String(64), nullable=True))
    op.add_column("allocation_entries", sa.Column("digest", sa.String(64), nullable=True))
    op.create_table(
        "audit_keying",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("keyed_from", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key_check", sa.String(64), nullable=False),
        sa.Column("keyed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_keying"),
    )


def downgrade() -> None:
    op.drop_table("audit_keying")
    with op.batch_alter_table("allocation_entries") as batch:
        batch.drop_column("digest")
    op.drop_column("audit_entries", "mac")
