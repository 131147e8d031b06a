"""Adverse events, their reports (initial and follow-ups), submissions to the sponsor, and DSMB decisions.

An adverse event is one row; each report about it (the initial one, then follow-ups) is a row of
``ae_reports`` holding the whole assessment as then known, so the event's history is its reports in order
and its current state is the last one. Every report is also audited field by field.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from trialwright.store.coltypes import UTCDateTime
from trialwright.store.tables import metadata

__all__ = ["adverse_events", "ae_reports", "ae_submissions", "criteria_text", "dsmb_decisions"]


def criteria_text(criteria: Iterable[str]) -> str:
    """A report's seriousness criteria as ``ae_reports.criteria`` stores them: space-separated, with a space at
    either end, so that "has criterion X" is ``criteria LIKE '% X %'`` on every database."""
    return f" {' '.join(criteria)} "

#: One adverse event of one participant, numbered AE-0001, AE-0002, ... across the trial.
adverse_events = Table(
    "adverse_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ae_number", String(16), nullable=False, unique=True),
    # The number of ``ae_number`` (AE-0001: 1): the next event's is the largest plus one, read from this index's
    # last entry rather than by counting every event (``services/safety/reports.py``).
    Column("number", Integer, nullable=False, index=True),
    Column("participant_id", String(32), ForeignKey("participants.participant_id"), nullable=False, index=True),
    Column("site", String(32), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(64), nullable=False),
)

#: A report about an adverse event: sequence 0 is the initial report, then follow-ups.
ae_reports = Table(
    "ae_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Integer, ForeignKey("adverse_events.id"), nullable=False, index=True),
    Column("sequence", Integer, nullable=False),
    Column("assessment", Text, nullable=False),  # the whole assessment as JSON
    Column("aware_at", UTCDateTime(), nullable=False),
    Column("serious", Boolean, nullable=False),
    Column("related", Boolean, nullable=False),
    Column("expected", Boolean, nullable=False),
    Column("susar", Boolean, nullable=False),
    Column("reason", Text, nullable=True),
    Column("reported_at", UTCDateTime(), nullable=False),
    Column("reported_by", String(64), nullable=False),
    Column("protocol_version", String(32), nullable=False),
    # What classification and the safety tables read, out of the assessment (so SQL can count them): the
    # grade, the causality and expected-event codes, and the criteria as `` death hospitalisation ``.
    Column("grade", Integer, nullable=False),
    Column("causality", Text, nullable=False),
    Column("expected_event", Text, nullable=True),
    Column("criteria", Text, nullable=False),
    UniqueConstraint("event_id", "sequence", name="uq_ae_reports_event_sequence"),
    # The serious related reports, searched at every randomization (the safety pause: ``dsmb_pause.py``).
    Index("ix_ae_reports_serious_related", "serious", "related"),
)

#: A report sent on (an SAE to the sponsor, a SUSAR's initial or complete report), with when.
ae_submissions = Table(
    "ae_submissions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Integer, ForeignKey("adverse_events.id"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("submitted_at", UTCDateTime(), nullable=False),
    Column("note", Text, nullable=True),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("recorded_by", String(64), nullable=False),
    UniqueConstraint("event_id", "kind", name="uq_ae_submissions_event_kind"),
)

#: The DSMB's decisions on the safety pause: resume, pause or stop, with the reason.
dsmb_decisions = Table(
    "dsmb_decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("decision", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("related_saes", Integer, nullable=False),  # the count the decision was made on
    Column("decided_at", UTCDateTime(), nullable=False),
    Column("decided_by", String(64), nullable=False),
)
