"""API tokens expire: each token records the time from which it answers no request.

Tokens issued before this revision never expired; they are given the default life, 90 days from their issue
(a token older than that is expired at once, and its owner issues a new one).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_DEFAULT_LIFE = dt.timedelta(days=90)


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", UTCDateTime(), nullable=True))
    tokens = sa.table(
        "api_tokens", sa.column("id", sa.Integer()), sa.column("created_at", UTCDateTime()),
        sa.column("expires_at", UTCDateTime()),
    )  # fmt: skip
    bind = op.get_bind()
    for token_id, created_at in bind.execute(sa.select(tokens.c.id, tokens.c.created_at)).all():
        bind.execute(tokens.update().where(tokens.c.id == token_id).values(expires_at=created_at + _DEFAULT_LIFE))
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("expires_at", existing_type=UTCDateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
