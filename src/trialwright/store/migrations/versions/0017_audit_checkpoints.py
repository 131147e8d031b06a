"""Verification checkpoints: the audit page verifies only the entries after the last one.

``audit_checkpoints`` records up to which entry the chain was verified (its sequence and hash), when, by whom,
signed with the audit key; a full ``trialwright audit verify`` also records its outcome there, which the audit page
shows instead of running the verification and the replay itself (see ``trialwright.services.audit_checkpoints``).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("seq", _ID, nullable=True),
        sa.Column("hash", sa.String(64), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("chain_ok", sa.Boolean(), nullable=True),
        sa.Column("problem", sa.String(16), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("entries", _ID, nullable=True),
        sa.Column("allocations", sa.Integer(), nullable=True),
        sa.Column("replay_ok", sa.Boolean(), nullable=True),
        sa.Column("replay_disagreements", sa.Integer(), nullable=True),
        sa.Column("replay_rows", _ID, nullable=True),
        sa.Column("mac", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_checkpoints"),
    )
    op.create_index("ix_audit_checkpoints_seq", "audit_checkpoints", ["seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_checkpoints_seq", table_name="audit_checkpoints")
    op.drop_table("audit_checkpoints")
