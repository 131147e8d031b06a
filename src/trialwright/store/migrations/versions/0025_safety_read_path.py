"""The safety page and the screening log read in SQL (issue 23): each adverse event report carries the parts of
its assessment that the safety tables count and the overdue-deadline query needs (grade, causality code, expected
event code, seriousness criteria), so that classification by the current protocol is a SQL expression instead of
parsing every report's JSON; and the screening log's order has an index.

``criteria`` holds the report's seriousness criteria as one space-separated text with a space at either end
(`` death hospitalisation ``), so that "has criterion X" is ``criteria LIKE '% X %'`` on every database.

Revision ID: 0025
Revises: 0021
Create Date: 2026-12-04
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0021"
branch_labels = None
depends_on = None

_COLUMNS = ("grade", "causality", "expected_event", "criteria")


def criteria_text(criteria: list[str]) -> str:
    """The stored form of a report's seriousness criteria (see the module's docstring)."""
    return f" {' '.join(criteria)} "


def upgrade() -> None:
    op.add_column("ae_reports", sa.Column("grade", sa.Integer(), nullable=True))
    op.add_column("ae_reports", sa.Column("causality", sa.Text(), nullable=True))
    op.add_column("ae_reports", sa.Column("expected_event", sa.Text(), nullable=True))
    op.add_column("ae_reports", sa.Column("criteria", sa.Text(), nullable=True))
    bind = op.get_bind()
    reports = sa.table(
        "ae_reports",
        sa.column("id", sa.Integer()),
        sa.column("assessment", sa.Text()),
        *(sa.column(name) for name in _COLUMNS),
    )
    rows = bind.execute(sa.select(reports.c.id, reports.c.assessment)).all()
    for row in rows:  # every report, from the assessment it stores: none is left without its columns
        data = json.loads(row.assessment)
        bind.execute(
            reports.update()
            .where(reports.c.id == row.id)
            .values(
                grade=int(data["grade"]),
                causality=data["causality"],
                expected_event=data.get("expected_event"),
                criteria=criteria_text(list(data["seriousness_criteria"])),
            )
        )
    with op.batch_alter_table("ae_reports") as batch:
        batch.alter_column("grade", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("causality", existing_type=sa.Text(), nullable=False)
        batch.alter_column("criteria", existing_type=sa.Text(), nullable=False)
    op.create_index("ix_screenings_screened_on_id", "screenings", ["screened_on", "id"])


def downgrade() -> None:
    op.drop_index("ix_screenings_screened_on_id", table_name="screenings")
    with op.batch_alter_table("ae_reports") as batch:
        for name in _COLUMNS:
            batch.drop_column(name)
