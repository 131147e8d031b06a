"""Rate limits shared by every worker: ``rate_limits`` holds each limiter's count per key and window.

Before, each process counted in its own memory, so N workers allowed N times the limit (a sign-in brute force got
twice the guesses with two workers). See ``trialwright.services.ratelimit``.

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("limiter", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("window_start", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("limiter", "key", name="pk_rate_limits"),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
