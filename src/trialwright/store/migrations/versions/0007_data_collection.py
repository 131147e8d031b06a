"""Visits held, case report forms, queries and the trial lock.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "visit_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.String(32), nullable=False),
        sa.Column("visit_id", sa.String(64), nullable=False),
        sa.Column("visit_date", sa.Date(), nullable=True),
        sa.Column("missed_reason", sa.Text(), nullable=True),
        sa.Column("unscheduled", sa.Boolean(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["participant_id"], ["participants.participant_id"], name="fk_visit_records_participant_id_participants"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_visit_records"),
        sa.UniqueConstraint("participant_id", "visit_id", name="uq_visit_records_participant_visit"),
    )
    op.create_index("ix_visit_records_participant_id", "visit_records", ["participant_id"])
    op.create_table(
        "form_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.String(32), nullable=False),
        sa.Column("visit_record_id", sa.Integer(), nullable=False),
        sa.Column("form_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_before_lock", sa.String(16), nullable=True),
        sa.Column("form_values", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("protocol_version", sa.String(32), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
        sa.Column("verified_by", sa.String(64), nullable=True),
        sa.Column("signed_at", UTCDateTime(), nullable=True),
        sa.Column("signed_by", sa.String(64), nullable=True),
        sa.Column("signature_meaning", sa.Text(), nullable=True),
        sa.Column("locked_at", UTCDateTime(), nullable=True),
        sa.Column("locked_by", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["participant_id"], ["participants.participant_id"], name="fk_form_records_participant_id_participants"
        ),
        sa.ForeignKeyConstraint(
            ["visit_record_id"], ["visit_records.id"], name="fk_form_records_visit_record_id_visit_records"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_form_records"),
        sa.UniqueConstraint("visit_record_id", "form_id", name="uq_form_records_visit_form"),
    )
    op.create_index("ix_form_records_participant_id", "form_records", ["participant_id"])
    op.create_index("ix_form_records_visit_record_id", "form_records", ["visit_record_id"])
    op.create_table(
        "queries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.String(32), nullable=False),
        sa.Column("site", sa.String(8), nullable=False),
        sa.Column("form_record_id", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(64), nullable=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("check_id", sa.String(64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("raised_by", sa.String(64), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.Column("answered_by", sa.String(64), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("close_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["participant_id"], ["participants.participant_id"], name="fk_queries_participant_id_participants"
        ),
        sa.ForeignKeyConstraint(["form_record_id"], ["form_records.id"], name="fk_queries_form_record_id_form_records"),
        sa.PrimaryKeyConstraint("id", name="pk_queries"),
    )
    for column in ("participant_id", "site", "form_record_id", "status"):
        op.create_index(f"ix_queries_{column}", "queries", [column])
    op.create_table(
        "trial_locks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_trial_locks"),
    )


def downgrade() -> None:
    op.drop_table("trial_locks")
    for column in ("status", "form_record_id", "site", "participant_id"):
        op.drop_index(f"ix_queries_{column}", "queries")
    op.drop_table("queries")
    op.drop_index("ix_form_records_visit_record_id", "form_records")
    op.drop_index("ix_form_records_participant_id", "form_records")
    op.drop_table("form_records")
    op.drop_index("ix_visit_records_participant_id", "visit_records")
    op.drop_table("visit_records")
