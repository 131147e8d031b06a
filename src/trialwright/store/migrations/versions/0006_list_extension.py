"""List extensions, the sealed seed, and minimization decisions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("allocation_lists") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="generated"))
        batch.add_column(sa.Column("seed", sa.Text(), nullable=True))
        batch.add_column(sa.Column("extends", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("stratum", sa.String(128), nullable=True))
        batch.add_column(sa.Column("extension_number", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.create_foreign_key(
            "fk_allocation_lists_extends_allocation_lists", "allocation_lists", ["extends"], ["id"]
        )
    with op.batch_alter_table("allocation_entries") as batch:
        batch.alter_column("block", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("block_size", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("position", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("decision", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("allocation_entries") as batch:
        batch.drop_column("decision")
    with op.batch_alter_table("allocation_lists") as batch:
        batch.drop_constraint("fk_allocation_lists_extends_allocation_lists", type_="foreignkey")
        for name in ("reason", "extension_number", "stratum", "extends", "seed", "kind"):
            batch.drop_column(name)
