"""Writes that do not grow with the trial (issue 22 item 4): the kit check, an adverse event's number and the safety
pause's read of related SAEs each find what they need by an index.

- ``administered_codes``: the preparation codes the administration records hold (``store/administered.py``), filled
  here from the existing form records by the rule the kit check used when this revision was written (the current
  protocol's ``analysis_plan.treatment`` form and ``code_field``, a value with status ``value``), frozen below rather
  than called (``store.administered.rebuild``), so later changes to the application leave this revision as it was.
- ``adverse_events.number``: the number of ``AE-0001`` as an integer, so the next one is the largest plus one (an
  index's last entry) instead of a count of every event; filled from ``ae_number``.
- ``ix_ae_reports_serious_related``: the reports that are serious and related, searched rather than scanned at each
  randomization.

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-06
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op
from ruamel.yaml import YAML

revision = "0041"
down_revision = "0040"
branch_labels = None
depends_on = None


# The tables as this revision reads and fills them, and the backfill as the code had it when the revision was written
# (``store.administered.rebuild`` with ``domain.treatment.kit_field`` and ``code_held``), frozen here: a migration
# never calls application code, which changes after it.
_FORM_RECORDS = sa.table("form_records", sa.column("id", sa.Integer()), sa.column("participant_id", sa.String()),
                         sa.column("form_id", sa.String()), sa.column("form_values", sa.Text()))  # fmt: skip
_ADMINISTERED = sa.table("administered_codes", sa.column("form_record_id", sa.Integer()),
                         sa.column("preparation_code", sa.Text()), sa.column("participant_id", sa.String()),
                         sa.column("form_id", sa.String()), sa.column("claim", sa.Text()))  # fmt: skip
_TRIAL = sa.table("trial", sa.column("current_protocol_version_id", sa.Integer()))
_PROTOCOL_VERSIONS = sa.table("protocol_versions", sa.column("id", sa.Integer()), sa.column("trial_id", sa.String()),
                              sa.column("source_text", sa.Text()))  # fmt: skip


def _kit(bind: sa.Connection) -> tuple[str, str] | None:
    """The kit form and code field (``analysis_plan.treatment``'s ``form`` and ``code_field``) of the protocol the
    trial runs under, read from its stored text (validated when it was stored); None before a trial, or without a
    code field."""
    source = bind.execute(
        sa.select(_PROTOCOL_VERSIONS.c.source_text, _PROTOCOL_VERSIONS.c.trial_id).join(
            _TRIAL, _PROTOCOL_VERSIONS.c.id == _TRIAL.c.current_protocol_version_id
        )
    ).first()
    if source is None:
        return None
    document = YAML(typ="safe", pure=True).load(source[0])
    plan = document.get("analysis_plan") if isinstance(document, dict) else None
    treatment = plan.get("treatment") if isinstance(plan, dict) else None
    if not isinstance(treatment, dict) or treatment.get("code_field") is None:
        return None
    form, field = treatment.get("form"), treatment.get("code_field")
    if not isinstance(form, str) or not isinstance(field, str):
        raise RuntimeError(f"<database: {source[1]}>: analysis_plan.treatment's form and code_field are not names")
    return form, field


def _code_held(stored: Any) -> str | None:
    """The code a stored code field holds: its value as text when its status is ``value`` (the default), else None."""
    if not isinstance(stored, dict):
        return None
    status, value = stored.get("status", "value"), stored.get("value")
    return None if status != "value" or value is None else str(value)


def _backfill(bind: sa.Connection) -> None:
    """One row per record of the kit form whose code field holds a code; the earliest record of a code claims it."""
    kit = _kit(bind)
    if kit is None:
        return
    form_id, field = kit
    rows: list[dict[str, Any]] = []
    claimed: set[str] = set()
    records = bind.execute(
        sa.select(_FORM_RECORDS.c.id, _FORM_RECORDS.c.participant_id, _FORM_RECORDS.c.form_values)
        .where(_FORM_RECORDS.c.form_id == form_id)
        .order_by(_FORM_RECORDS.c.id)
    )
    for record in records:
        code = _code_held(json.loads(record.form_values).get(field))
        if code is None:
            continue
        rows.append({"form_record_id": record.id, "preparation_code": code, "participant_id": record.participant_id,
                     "form_id": form_id, "claim": None if code in claimed else code})  # fmt: skip
        claimed.add(code)
    if rows:
        bind.execute(_ADMINISTERED.insert(), rows)


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
    _backfill(bind)

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
