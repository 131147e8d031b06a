"""Pending audit entries carry a nonce, a chained nonce is never chained again, a rejected entry is kept aside.

Each pending entry (PostgreSQL) gets a random ``nonce`` covered by its MAC; ``audit_nonces`` holds every nonce the
chainer has chained, so a copy of a genuine pending entry (read from the table, or from a backup) is refused as a
replay. Just before the writer's commit, its entries get ``ord`` from the sequence ``audit_order`` (PostgreSQL)
and the chainer chains in that order, so a transaction that waited for another's row lock is chained after it,
as it committed. A pending entry the chainer refuses (altered, without its MAC on a keyed trail, replayed) is moved to
``audit_pending_rejected`` with the reason, and an ``audit.pending_rejected`` entry is chained in its place: one bad
row no longer stops the chain (see ``trialwright.services.audit``).

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.store.coltypes import UTCDateTime

revision = "0021"
down_revision = "0019"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.add_column("audit_pending", sa.Column("nonce", sa.String(32), nullable=True))
    op.add_column("audit_pending", sa.Column("ord", _ID, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE audit_order")
    op.create_table(
        "audit_nonces",
        sa.Column("nonce", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name="pk_audit_nonces"),
    )
    op.create_table(
        "audit_pending_rejected",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("pending_id", _ID, nullable=False),
        sa.Column("rejected_at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("row", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_pending_rejected"),
    )


def downgrade() -> None:
    op.drop_table("audit_pending_rejected")
    op.drop_table("audit_nonces")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE audit_order")
    op.drop_column("audit_pending", "ord")
    op.drop_column("audit_pending", "nonce")
