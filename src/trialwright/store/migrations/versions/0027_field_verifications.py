"""Source data verification by field (issue 24): the monitor marks single fields of a form as verified against
source; each row keeps the stored value it verified, so a verification stands only while the field holds it.

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0027"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "field_verifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("form_record_id", sa.Integer(), sa.ForeignKey("form_records.id"), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("verified_value", sa.Text(), nullable=False),
        sa.Column("verified_at", UTCDateTime(), nullable=False),
        sa.Column("verified_by", sa.String(64), nullable=False),
        sa.UniqueConstraint("form_record_id", "field", name="uq_field_verifications_form_field"),
    )
    op.create_index("ix_field_verifications_form_record_id", "field_verifications", ["form_record_id"])


def downgrade() -> None:
    op.drop_index("ix_field_verifications_form_record_id", table_name="field_verifications")
    op.drop_table("field_verifications")
