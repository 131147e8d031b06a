"""Screening log, consents, participants and withdrawals.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "screenings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(8), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("screened_on", sa.Date(), nullable=False),
        sa.Column("screening_values", sa.Text(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("decision_detail", sa.Text(), nullable=False),
        sa.Column("protocol_version", sa.String(32), nullable=False),
        sa.Column("non_enrolment_reason", sa.String(32), nullable=True),
        sa.Column("non_enrolment_text", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["site"], ["sites.code"], name="fk_screenings_site_sites"),
        sa.PrimaryKeyConstraint("id", name="pk_screenings"),
        sa.UniqueConstraint("site", "number", name="uq_screenings_site_number"),
    )
    op.create_index("ix_screenings_site", "screenings", ["site"])
    op.create_index("ix_screenings_decision", "screenings", ["decision"])
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("screening_id", sa.Integer(), nullable=False),
        sa.Column("form_version", sa.String(32), nullable=False),
        sa.Column("given_by", sa.String(16), nullable=False),
        sa.Column("representative_name", sa.Text(), nullable=True),
        sa.Column("representative_relationship", sa.Text(), nullable=True),
        sa.Column("witness", sa.Text(), nullable=True),
        sa.Column("obtained_by", sa.Text(), nullable=False),
        sa.Column("obtained_at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["screening_id"], ["screenings.id"], name="fk_consents_screening_id_screenings"),
        sa.PrimaryKeyConstraint("id", name="pk_consents"),
    )
    op.create_index("ix_consents_screening_id", "consents", ["screening_id"])
    op.create_table(
        "participants",
        sa.Column("participant_id", sa.String(32), nullable=False),
        sa.Column("site", sa.String(8), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("screening_id", sa.Integer(), nullable=False),
        sa.Column("enrolled_at", UTCDateTime(), nullable=False),
        sa.Column("enrolled_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["site"], ["sites.code"], name="fk_participants_site_sites"),
        sa.ForeignKeyConstraint(["screening_id"], ["screenings.id"], name="fk_participants_screening_id_screenings"),
        sa.PrimaryKeyConstraint("participant_id", name="pk_participants"),
        sa.UniqueConstraint("screening_id", name="uq_participants_screening_id"),
        sa.UniqueConstraint("site", "number", name="uq_participants_site_number"),
    )
    op.create_index("ix_participants_site", "participants", ["site"])
    op.create_table(
        "withdrawals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.String(32), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("withdrawn_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["participant_id"], ["participants.participant_id"], name="fk_withdrawals_participant_id_participants"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_withdrawals"),
    )
    op.create_index("ix_withdrawals_participant_id", "withdrawals", ["participant_id"])


def downgrade() -> None:
    op.drop_index("ix_withdrawals_participant_id", "withdrawals")
    op.drop_table("withdrawals")
    op.drop_index("ix_participants_site", "participants")
    op.drop_table("participants")
    op.drop_index("ix_consents_screening_id", "consents")
    op.drop_table("consents")
    op.drop_index("ix_screenings_decision", "screenings")
    op.drop_index("ix_screenings_site", "screenings")
    op.drop_table("screenings")
