"""Adverse events whole, for an export that carries them exactly (``ExportSource.adverse_events``: the ODM file).

Each event comes with its row (number, participant, site, who reported it first and when), every report as
``ae_reports`` holds it (the assessment JSON and the classification stored with it), the reports due (kind and due
time, computed from the reports and the protocol's deadlines as the safety pages compute them), the submissions
recorded, and its MedDRA coding as ``ae_codings`` holds it (a stale coding too: it is the event's row). Nothing here
reads an allocation: adverse events carry no arm.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

from sqlalchemy import ColumnElement, Engine, select
from sqlalchemy.orm import Session

from trialwright.domain.safety import DeadlineKind, classify, deadlines
from trialwright.exports.base import AdverseEventHistory, AeReportRecord, AeSubmissionRecord
from trialwright.protocol import Protocol
from trialwright.services.safety.common import _assessment, _tz
from trialwright.store.coding_tables import ae_codings
from trialwright.store.engine import read_scope
from trialwright.store.safety_tables import adverse_events, ae_reports, ae_submissions

__all__ = ["CODING_COLUMNS", "adverse_event_histories", "due_reports"]

#: The columns of ``ae_codings`` an export carries (all but the event's database id), in this order.
CODING_COLUMNS = tuple(c.name for c in ae_codings.c if c.name != "event_id")


def due_reports(protocol: Protocol, site: str, reports: list[AeReportRecord],
                submitted: dict[DeadlineKind, Any]) -> tuple[tuple[str, Any], ...]:  # fmt: skip
    """The reports due for an event (kind, due time), from its reports in order, as the safety pages compute them."""
    history = []
    for r in reports:
        a = _assessment(json.dumps(dict(r.assessment)))
        history.append((a, classify(a, protocol.safety)))
    return tuple((d.kind.value, d.due_at) for d in deadlines(history, protocol.safety, _tz(protocol, site), submitted))


def adverse_event_histories(
    engine: Engine | Session, protocol: Protocol, site_filter: ColumnElement[bool]
) -> Iterator[AdverseEventHistory]:
    """Every adverse event of the sites ``site_filter`` admits, by participant and AE number (read in the given
    session's snapshot, or in a read transaction of its own)."""
    scope = nullcontext(engine) if isinstance(engine, Session) else read_scope(engine)
    with scope as session:
        events = session.execute(
            select(adverse_events).where(site_filter)
            .order_by(adverse_events.c.participant_id, adverse_events.c.ae_number)
        ).all()  # fmt: skip
        reports: dict[int, list[AeReportRecord]] = {}
        for r in session.execute(select(ae_reports).order_by(ae_reports.c.event_id, ae_reports.c.sequence)):
            reports.setdefault(r.event_id, []).append(AeReportRecord(
                r.sequence, json.loads(r.assessment), r.serious, r.related, r.expected, r.susar, r.reason,
                r.reported_at, r.reported_by, r.protocol_version,
            ))  # fmt: skip
        sent: dict[int, list[AeSubmissionRecord]] = {}
        order = [k.value for k in DeadlineKind]
        rows = session.execute(select(ae_submissions)).all()
        for s in sorted(rows, key=lambda s: (s.event_id, order.index(s.kind) if s.kind in order else len(order))):
            sent.setdefault(s.event_id, []).append(
                AeSubmissionRecord(s.kind, s.submitted_at, s.note, s.recorded_at, s.recorded_by)
            )
        coded = {r.event_id: {c: getattr(r, c) for c in CODING_COLUMNS} for r in session.execute(select(ae_codings))}
    for e in events:
        history = reports.get(e.id, [])
        if not history:
            raise ValueError(f"adverse event {e.ae_number}: has no report")
        submitted = {DeadlineKind(s.kind): s.submitted_at for s in sent.get(e.id, []) if s.kind in order}
        yield AdverseEventHistory(
            ae_number=e.ae_number,
            participant_id=e.participant_id,
            site=e.site,
            created_at=e.created_at,
            created_by=e.created_by,
            reports=tuple(history),
            due=due_reports(protocol, e.site, history, submitted),
            submissions=tuple(sent.get(e.id, [])),
            coding=coded.get(e.id),
        )
