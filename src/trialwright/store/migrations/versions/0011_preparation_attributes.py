"""Preparations record the attributes each arm's protocol declares, as JSON.

Rows recorded before this revision had three fixed columns; their values move into the JSON under the same
names (``product_lot``, ``volume_ml``, ``particles``; numbers as numbers, a particle count that was not a number
kept as its text), so they stay readable. A protocol that declares attributes with these ids reads them as its
own.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import json
import math

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _number_or_text(text: str) -> float | str:
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def upgrade() -> None:
    with op.batch_alter_table("preparations") as batch:
        batch.add_column(sa.Column("attributes", sa.Text(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, product_lot, volume_ml, particles FROM preparations")).all()
    for row in rows:
        values: dict[str, float | str] = {"product_lot": row.product_lot, "volume_ml": _number_or_text(row.volume_ml)}
        if row.particles is not None and row.particles.strip():
            values["particles"] = _number_or_text(row.particles.strip())
        bind.execute(
            sa.text("UPDATE preparations SET attributes = :a WHERE id = :id"), {"a": json.dumps(values), "id": row.id}
        )
    with op.batch_alter_table("preparations") as batch:
        batch.alter_column("attributes", existing_type=sa.Text(), nullable=False)
        batch.drop_column("product_lot")
        batch.drop_column("particles")
        batch.drop_column("volume_ml")


def downgrade() -> None:
    """Back to the three columns: values under those names return; any other attribute is refused, not dropped."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, attributes FROM preparations")).all()
    for row in rows:
        keys = set(json.loads(row.attributes))
        extra, missing = keys - {"product_lot", "volume_ml", "particles"}, {"product_lot", "volume_ml"} - keys
        if extra or missing:
            raise RuntimeError(
                f"preparation {row.id} holds {', '.join(sorted(keys)) or 'no value'}: revision 0010 keeps exactly "
                "product_lot, volume_ml and particles"
            )
    with op.batch_alter_table("preparations") as batch:
        batch.add_column(sa.Column("product_lot", sa.String(64), nullable=True))
        batch.add_column(sa.Column("particles", sa.Text(), nullable=True))
        batch.add_column(sa.Column("volume_ml", sa.Text(), nullable=True))
    for row in rows:
        values = json.loads(row.attributes)
        bind.execute(
            sa.text("UPDATE preparations SET product_lot = :lot, volume_ml = :vol, particles = :p WHERE id = :id"),
            {
                "lot": values["product_lot"],
                "vol": f"{values['volume_ml']:g}" if isinstance(values["volume_ml"], float) else values["volume_ml"],
                "p": None if values.get("particles") is None else str(values["particles"]),
                "id": row.id,
            },
        )
    with op.batch_alter_table("preparations") as batch:
        batch.alter_column("product_lot", existing_type=sa.String(64), nullable=False)
        batch.alter_column("volume_ml", existing_type=sa.Text(), nullable=False)
        batch.drop_column("attributes")
