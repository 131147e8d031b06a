"""Verified allocations (issue 23): the tables by arm verify only the allocation entries added or changed since
their last load. ``verified_allocations`` keeps each entry as a load last verified it against its keyed digest;
``allocation_checkpoints`` records, signed with the audit key, up to which audit entry the trail's randomizations
were matched to entries (see ``trialwright.services.allocation_checkpoints``).

Revision ID: 0038
Revises: 0034
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0038"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "verified_allocations",
        sa.Column("entry_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("stratum", sa.String(128), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("block", sa.Integer(), nullable=True),
        sa.Column("block_size", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("arm", sa.String(8), nullable=False),
        sa.Column("preparation_code", sa.String(16), nullable=False),
        sa.Column("participant_id", sa.String(32), nullable=True),
        sa.Column("randomization_number", sa.Integer(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("digest", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("entry_id", name="pk_verified_allocations"),
    )
    op.create_table(
        "allocation_checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("mac", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_allocation_checkpoints"),
    )


def downgrade() -> None:
    op.drop_table("allocation_checkpoints")
    op.drop_table("verified_allocations")
