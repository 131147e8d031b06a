"""A participant's death as the records say it (``trialwright.domain.deaths``), read in the caller's session."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trialwright.domain.deaths import Death, earliest_death
from trialwright.protocol import Protocol
from trialwright.services.bulk_reads import forget, held, once
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.safety_tables import adverse_events, ae_reports

__all__ = ["death_forms", "death_of", "forms_written"]


def death_of(session: Session, protocol: Protocol, participant_id: str) -> Death | None:
    """The earliest death any record of the participant gives: the latest report of each adverse event, the
    death record and the vital-status fields the protocol declares."""
    forms = death_forms(protocol)
    by_visit: dict[str, dict[str, Any]] = {}
    if forms:
        rows = held(
            session,
            _forms_key(participant_id),
            lambda: session.execute(
                select(visit_records.c.visit_id, form_records.c.form_id, form_records.c.form_values)
                .join(visit_records, visit_records.c.id == form_records.c.visit_record_id)
                .where(form_records.c.participant_id == participant_id, form_records.c.form_id.in_(sorted(forms)))
                .order_by(form_records.c.id)
            ).all(),
        )
        for visit_id, form_id, stored in rows:
            plain = by_visit.setdefault(visit_id, {})
            for name, value in json.loads(stored).items():
                if value.get("status", "value") in {"value", "derived"}:
                    plain[f"{form_id}.{name}"] = value.get("value")
    latest: dict[str, Any] = {}
    reports = once(
        session,
        ("ae_reports", participant_id),
        lambda: session.execute(
            select(adverse_events.c.ae_number, ae_reports.c.assessment)
            .join(adverse_events, adverse_events.c.id == ae_reports.c.event_id)
            .where(adverse_events.c.participant_id == participant_id)
            .order_by(ae_reports.c.event_id, ae_reports.c.sequence)
        ).all(),
    )
    for number, assessment in reports:
        latest[number] = json.loads(assessment)
    fatal = [
        Death(dt.date.fromisoformat(body.get("death_date") or body["onset"]), f"adverse event {number}")
        for number, body in latest.items()
        if body.get("outcome") == "fatal"
    ]
    return earliest_death(protocol, by_visit, fatal)


def death_forms(protocol: Protocol) -> frozenset[str]:
    """The forms whose values can say a participant died: the death record and the vital-status fields' forms."""
    forms = {f.partition(".")[0] for v in protocol.safety.vital_status for f in (v.field, v.date_field)}
    if protocol.safety.death_record is not None:
        forms.add(protocol.safety.death_record.form)
    return frozenset(forms)


def forms_written(session: Session, protocol: Protocol, participant_id: str, form_ids: Iterable[str]) -> None:
    """A save wrote these forms of the participant: if one can record a death, the next ``death_of`` in a bulk
    block reads the records again."""
    if not death_forms(protocol).isdisjoint(form_ids):
        forget(session, _forms_key(participant_id))


def _forms_key(participant_id: str) -> tuple[str, str]:
    return ("death_forms", participant_id)
