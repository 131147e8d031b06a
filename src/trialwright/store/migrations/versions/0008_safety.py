"""Adverse events, their reports, submissions and DSMB decisions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "adverse_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ae_number", sa.String(16), nullable=False),
        sa.Column("participant_id", sa.String(32), nullable=False),
        sa.Column("site", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["participant_id"], ["participants.participant_id"], name="fk_adverse_events_participant_id_participants"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_adverse_events"),
        sa.UniqueConstraint("ae_number", name="uq_adverse_events_ae_number"),
    )
    op.create_index("ix_adverse_events_participant_id", "adverse_events", ["participant_id"])
    op.create_index("ix_adverse_events_site", "adverse_events", ["site"])
    op.create_table(
        "ae_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("assessment", sa.Text(), nullable=False),
        sa.Column("aware_at", UTCDateTime(), nullable=False),
        sa.Column("serious", sa.Boolean(), nullable=False),
        sa.Column("related", sa.Boolean(), nullable=False),
        sa.Column("expected", sa.Boolean(), nullable=False),
        sa.Column("susar", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
        sa.Column("reported_by", sa.String(64), nullable=False),
        sa.Column("protocol_version", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["adverse_events.id"], name="fk_ae_reports_event_id_adverse_events"),
        sa.PrimaryKeyConstraint("id", name="pk_ae_reports"),
        sa.UniqueConstraint("event_id", "sequence", name="uq_ae_reports_event_sequence"),
    )
    op.create_index("ix_ae_reports_event_id", "ae_reports", ["event_id"])
    op.create_table(
        "ae_submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["adverse_events.id"], name="fk_ae_submissions_event_id_adverse_events"),
        sa.PrimaryKeyConstraint("id", name="pk_ae_submissions"),
        sa.UniqueConstraint("event_id", "kind", name="uq_ae_submissions_event_kind"),
    )
    op.create_index("ix_ae_submissions_event_id", "ae_submissions", ["event_id"])
    op.create_table(
        "dsmb_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("related_saes", sa.Integer(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dsmb_decisions"),
    )


def downgrade() -> None:
    op.drop_table("dsmb_decisions")
    op.drop_index("ix_ae_submissions_event_id", "ae_submissions")
    op.drop_table("ae_submissions")
    op.drop_index("ix_ae_reports_event_id", "ae_reports")
    op.drop_table("ae_reports")
    op.drop_index("ix_adverse_events_site", "adverse_events")
    op.drop_index("ix_adverse_events_participant_id", "adverse_events")
    op.drop_table("adverse_events")
