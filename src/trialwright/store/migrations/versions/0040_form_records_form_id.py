"""Form records indexed by their form: the kit check (``services/forms/checks.py``) reads the administration form's
records of the other participants at every administration saved, which without it read every form record of the
trial (a cost that grew with the trial: docs/benchmarks.md, simulation at scale).

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0040"
down_revision = "0039"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_form_records_form_id", "form_records", ["form_id"])


def downgrade() -> None:
    op.drop_index("ix_form_records_form_id", table_name="form_records")
