"""An unmasked reviewer's recorded review of the forms kept from a masked reader of the lock readiness
(``withheld_reviews``): who found them ready, when, which forms, under which protocol version and why, and a salted
digest of those forms as they were, so a later change on them ends the review (``services.readiness``). Before it,
nothing recorded that the reviewer the lock's banner names had ever looked.

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0043"
down_revision = "0042"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "withheld_reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("forms", sa.Text(), nullable=False),
        sa.Column("protocol_version", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("nonce", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("withheld_reviews")
