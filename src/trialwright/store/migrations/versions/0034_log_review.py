"""Queries, source data verification and signatures on log entries (issue 25): a query may name a log entry
(``queries.log_entry_id``) instead of a form record, and a log entry keeps who verified it and who signed it (with
the signature's meaning), as a form record does; an amendment or removal clears both (audited).

Revision ID: 0034
Revises: 0032
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0034"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queries") as batch:
        batch.add_column(sa.Column("log_entry_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_queries_log_entry_id_log_entries", "log_entries", ["log_entry_id"], ["id"])
        batch.create_index("ix_queries_log_entry_id", ["log_entry_id"])
    with op.batch_alter_table("log_entries") as batch:
        batch.add_column(sa.Column("verified_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("verified_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("signed_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("signed_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("signature_meaning", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("log_entries") as batch:
        for column in ("signature_meaning", "signed_by", "signed_at", "verified_by", "verified_at"):
            batch.drop_column(column)
    with op.batch_alter_table("queries") as batch:
        batch.drop_index("ix_queries_log_entry_id")
        batch.drop_constraint("fk_queries_log_entry_id_log_entries", type_="foreignkey")
        batch.drop_column("log_entry_id")
