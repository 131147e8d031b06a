"""A child's assent on the consent record: given, dissent or not sought, who sought it, when, on which assent form
version, or why it was not sought (protocol ``eligibility.assent``). Records before it hold none.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0039"
down_revision = "0038"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("assent", sa.String(16), nullable=True))
        batch.add_column(sa.Column("assent_obtained_by", sa.Text(), nullable=True))
        batch.add_column(sa.Column("assent_obtained_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("assent_form_version", sa.String(32), nullable=True))
        batch.add_column(sa.Column("assent_not_sought_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        for name in ("assent_not_sought_reason", "assent_form_version", "assent_obtained_at", "assent_obtained_by",
                     "assent"):  # fmt: skip
            batch.drop_column(name)
