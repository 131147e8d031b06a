"""Log forms (issue 25 items 1 and 5): log entries per participant, the WHO ATC index and each entry's coding.

Revision ID: 0032
Revises: 0029
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0032"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.String(32), nullable=False),
        sa.Column("log_id", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("entry_values", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("protocol_version", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("removed_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["participant_id"], ["participants.participant_id"], name="fk_log_entries_participant_id_participants"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_log_entries"),
        sa.UniqueConstraint("participant_id", "log_id", "sequence", name="uq_log_entries_participant_log_sequence"),
    )
    op.create_index("ix_log_entries_participant_id", "log_entries", ["participant_id"])
    op.create_table(
        "atc_releases",
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("loaded_at", UTCDateTime(), nullable=False),
        sa.Column("loaded_by", sa.String(64), nullable=False),
        sa.Column("files", sa.Text(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_atc_releases"),
    )
    op.create_table(
        "atc_codes",
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("code", sa.String(7), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("search_name", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(["version"], ["atc_releases.version"], name="fk_atc_codes_version_atc_releases"),
        sa.PrimaryKeyConstraint("version", "code", name="pk_atc_codes"),
    )
    op.create_table(
        "log_codings",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("dictionary", sa.String(16), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("verbatim", sa.Text(), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("coded_at", UTCDateTime(), nullable=False),
        sa.Column("coded_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["log_entries.id"], name="fk_log_codings_entry_id_log_entries"),
        sa.PrimaryKeyConstraint("entry_id", name="pk_log_codings"),
    )


def downgrade() -> None:
    op.drop_table("log_codings")
    op.drop_table("atc_codes")
    op.drop_table("atc_releases")
    op.drop_index("ix_log_entries_participant_id", table_name="log_entries")
    op.drop_table("log_entries")
