"""The forms a masked data manager's lock was made over without seeing them (``trial_locks.withheld``): the forms
that reveal the arm, kept from them (``domain.masking.kept_forms``). Before it, such a lock with no blocker visible
to the locker stored nothing, so no banner said that those forms were never reviewed by the locker. A comma-joined
list of form ids ('' none, written by a lock under a protocol with such forms, whose override count leaves them
out); NULL: a lock made before this revision (or under a protocol with no such form), whose count was of every
blocker.

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0042"
down_revision = "0041"
branch_labels = None
depends_on = None

#: The table as this revision knows it (its own definition: no import of today's models).
trial_locks = sa.table("trial_locks", sa.column("id", sa.Integer), sa.column("withheld", sa.Text))


def upgrade() -> None:
    with op.batch_alter_table("trial_locks") as batch:
        batch.add_column(sa.Column("withheld", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trial_locks") as batch:
        batch.drop_column("withheld")
