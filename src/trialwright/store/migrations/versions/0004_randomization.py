"""The sealed allocation list.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "allocation_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("generator", sa.Text(), nullable=False),
        sa.Column("seed_sha256", sa.String(64), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("generated_at", UTCDateTime(), nullable=False),
        sa.Column("generated_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_allocation_lists"),
    )
    op.create_table(
        "allocation_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("stratum", sa.String(128), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("block_size", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("arm", sa.String(8), nullable=False),
        sa.Column("preparation_code", sa.String(16), nullable=False),
        sa.Column("participant_id", sa.String(32), nullable=True),
        sa.Column("randomization_number", sa.Integer(), nullable=True),
        sa.Column("randomized_at", UTCDateTime(), nullable=True),
        sa.Column("randomized_by", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["list_id"], ["allocation_lists.id"], name="fk_allocation_entries_list_id_allocation_lists"
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.participant_id"],
            name="fk_allocation_entries_participant_id_participants",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_allocation_entries"),
        sa.UniqueConstraint("preparation_code", name="uq_allocation_entries_preparation_code"),
        sa.UniqueConstraint("participant_id", name="uq_allocation_entries_participant_id"),
        sa.UniqueConstraint("randomization_number", name="uq_allocation_entries_randomization_number"),
        sa.UniqueConstraint("stratum", "sequence", name="uq_allocation_entries_stratum_sequence"),
    )


def downgrade() -> None:
    op.drop_table("allocation_entries")
    op.drop_table("allocation_lists")
