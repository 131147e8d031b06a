"""The two-person rule and set-password tokens: requests about guarded accounts wait for a second person; new
accounts and resets get a one-time token instead of a password.

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("sites", sa.Text(), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_account_requests"),
    )
    op.create_index("ix_account_requests_username", "account_requests", ["username"])
    op.create_index("ix_account_requests_state", "account_requests", ["state"])
    op.create_table(
        "set_password_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("issued_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_set_password_tokens_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_set_password_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_set_password_tokens_token_hash"),
    )
    op.create_index("ix_set_password_tokens_user_id", "set_password_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_set_password_tokens_user_id", "set_password_tokens")
    op.drop_table("set_password_tokens")
    op.drop_index("ix_account_requests_state", "account_requests")
    op.drop_index("ix_account_requests_username", "account_requests")
    op.drop_table("account_requests")
