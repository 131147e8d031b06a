"""Writes that do not grow with the trial (issue 22 item 4): the kit check, an adverse event's number and the safety
pause's read of related SAEs each find what they need by an index.

- ``administered_codes``: the preparation codes the administration records hold (``store/administered.py``), filled
  here from the existing form records by the rule the kit check uses (the current protocol's
  ``analysis_plan.treatment`` form and ``code_field``: ``domain.treatment.kit_field`` and ``code_held``).
- ``adverse_events.number``: the number of ``AE-0001`` as an integer, so the next one is the largest plus one (an
  index's last entry) instead of a count of every event; filled from ``ae_number``.
- ``ix_ae_reports_serious_related``: the reports that are serious and related, searched rather than scanned at each
  randomization.

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from trialwright.domain.treatment import kit_field
from trialwright.protocol import load_protocol_text
from trialwright.store.administered import rebuild

revision = "0041"
down_revision = "0040"
branch_labels = None
depends_on = None


def _kit(bind: sa.Connection) -> tuple[str, str] | None:
    """The kit form and code field of the protocol the trial runs under (None before a trial, or without one)."""
    source = bind.execute(
        sa.text(
            "SELECT protocol_versions.source_text, protocol_versions.trial_id FROM trial JOIN protocol_versions "
            "ON protocol_versions.id = trial.current_protocol_version_id"
        )
    ).first()
    if source is None:
        return None
    return kit_field(load_protocol_text(source[0], source=f"<database: {source[1]}>", stored=True).protocol)


def upgrade() -> None:
    op.create_table(
        "administered_codes",
        sa.Column("form_record_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("preparation_code", sa.Text(), nullable=False),
        sa.Column("participant_id", sa.String(32), nullable=False),
        sa.Column("form_id", sa.String(64), nullable=False),
        sa.Column("claim", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["form_record_id"], ["form_records.id"], name="fk_administered_codes_form_record_id_form_records"
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.participant_id"],
            name="fk_administered_codes_participant_id_participants",
        ),
        sa.PrimaryKeyConstraint("form_record_id", name="pk_administered_codes"),
        sa.UniqueConstraint("claim", name="uq_administered_codes_claim"),
    )
    op.create_index("ix_administered_codes_preparation_code", "administered_codes", ["preparation_code"])
    bind = op.get_bind()
    rebuild(bind, _kit(bind))

    op.add_column("adverse_events", sa.Column("number", sa.Integer(), nullable=True))
    events = sa.table("adverse_events", sa.column("id", sa.Integer()), sa.column("ae_number", sa.String()),
                      sa.column("number", sa.Integer()))  # fmt: skip
    for row in bind.execute(sa.select(events.c.id, events.c.ae_number)).all():  # every event: AE-0001 -> 1
        bind.execute(events.update().where(events.c.id == row.id).values(number=int(row.ae_number.removeprefix("AE-"))))
    with op.batch_alter_table("adverse_events") as batch:
        batch.alter_column("number", existing_type=sa.Integer(), nullable=False)
    op.create_index("ix_adverse_events_number", "adverse_events", ["number"])
    op.create_index("ix_ae_reports_serious_related", "ae_reports", ["serious", "related"])


def downgrade() -> None:
    op.drop_index("ix_ae_reports_serious_related", table_name="ae_reports")
    op.drop_index("ix_adverse_events_number", table_name="adverse_events")
    with op.batch_alter_table("adverse_events") as batch:
        batch.drop_column("number")
    op.drop_index("ix_administered_codes_preparation_code", table_name="administered_codes")
    op.drop_table("administered_codes")
