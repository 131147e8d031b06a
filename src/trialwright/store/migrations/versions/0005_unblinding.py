"""Preparations, emergency unblindings and notifications.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "preparations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("preparation_code", sa.String(16), nullable=False),
        sa.Column("product_lot", sa.String(64), nullable=False),
        sa.Column("particles", sa.Text(), nullable=True),
        sa.Column("volume_ml", sa.Text(), nullable=False),
        sa.Column("prepared_at", UTCDateTime(), nullable=False),
        sa.Column("prepared_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["preparation_code"],
            ["allocation_entries.preparation_code"],
            name="fk_preparations_preparation_code_allocation_entries",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_preparations"),
        sa.UniqueConstraint("preparation_code", name="uq_preparations_preparation_code"),
    )
    op.create_table(
        "unblindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.String(32), nullable=False),
        sa.Column("unblinded_by", sa.String(64), nullable=False),
        sa.Column("unblinded_at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["participant_id"], ["participants.participant_id"], name="fk_unblindings_participant_id_participants"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_unblindings"),
    )
    op.create_index("ix_unblindings_participant_id", "unblindings", ["participant_id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("participant_id", sa.String(32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
    )
    op.create_index("ix_notifications_role", "notifications", ["role"])


def downgrade() -> None:
    op.drop_index("ix_notifications_role", "notifications")
    op.drop_table("notifications")
    op.drop_index("ix_unblindings_participant_id", "unblindings")
    op.drop_table("unblindings")
    op.drop_table("preparations")
