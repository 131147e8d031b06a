"""A participant's death as the records say it (``trialwright.domain.deaths``), read in the caller's session.

``death_of`` reads one participant's records in Python; ``death_days`` says the same for every participant in
SQL (a subquery of participant and day), so that lists over the whole trial (the visits due and overdue) leave out
the visits on or after the day of a death without reading any participant into Python.
``tests/spec/worklist/test_after_death.py`` holds the two together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, String, Subquery, and_, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from trialwright.domain.deaths import Death, death_forms, earliest_death, fatal_death, plain_values
from trialwright.protocol import Protocol
from trialwright.services.bulk_reads import forget, held, once
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.safety_tables import adverse_events, ae_reports
from trialwright.store.sql_functions import json_scalar

__all__ = ["death_days", "death_forms", "death_of", "forms_written"]


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
            by_visit.setdefault(visit_id, {}).update(plain_values(form_id, json.loads(stored)))
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
    fatal = [d for number, body in latest.items() if (d := fatal_death(number, body)) is not None]
    return earliest_death(protocol, by_visit, fatal)


def forms_written(session: Session, protocol: Protocol, participant_id: str, form_ids: Iterable[str]) -> None:
    """A save wrote these forms of the participant: if one can record a death, the next ``death_of`` in a bulk
    block reads the records again."""
    if not death_forms(protocol).isdisjoint(form_ids):
        forget(session, _forms_key(participant_id))


def _forms_key(participant_id: str) -> tuple[str, str]:
    return ("death_forms", participant_id)


def death_days(protocol: Protocol) -> Subquery:
    """Each participant's earliest day of death (``participant_id``, ``died_on`` as ISO text), in SQL, by the
    rules of ``death_of``: the current report of a fatal adverse event (its death date, else its onset), the
    death record at its visit and the vital-status fields at any visit (a value held as a value or derived, the
    date an ISO date)."""
    from trialwright.services.safety.sql import current_reports  # here: safety imports forms, which import this

    current = current_reports().subquery("current_reports")
    death_date = func.nullif(json_scalar(current.c.assessment, "death_date"), "")
    parts: list[Any] = [
        select(
            adverse_events.c.participant_id.label("participant_id"),
            func.substr(func.coalesce(death_date, json_scalar(current.c.assessment, "onset")), 1, 10).label("day"),
        )
        .select_from(current.join(adverse_events, adverse_events.c.id == current.c.event_id))
        .where(json_scalar(current.c.assessment, "outcome") == "fatal")
    ]
    sources: list[tuple[str, str, list[str], str, str | None]] = []
    record = protocol.safety.death_record
    if record is not None:
        sources.append((record.form, record.status_field, [record.status_value], record.date_field, record.visit))
    for v in protocol.safety.vital_status:
        form, _, name = v.field.partition(".")
        sources.append((form, name, list(v.died_values), v.date_field.partition(".")[2], None))
    for form, field, died, date_field, only_at in sources:
        values = form_records.c.form_values
        day = json_scalar(values, date_field, "value")
        where = [
            form_records.c.form_id == form,
            json_scalar(values, field, "value").in_(died),
            _plain(values, field),
            _plain(values, date_field),
            day.like("____-__-__%"),
        ]
        if only_at is not None:
            where.append(visit_records.c.visit_id == only_at)
        parts.append(
            select(form_records.c.participant_id.label("participant_id"), func.substr(day, 1, 10).label("day"))
            .select_from(form_records.join(visit_records, visit_records.c.id == form_records.c.visit_record_id))
            .where(and_(*where))
        )
    every = union_all(*parts).subquery("deaths")
    return (
        select(every.c.participant_id, func.min(every.c.day).label("died_on"))
        .group_by(every.c.participant_id)
        .subquery("death_days")
    )


def _plain(values: Any, field: str) -> ColumnElement[bool]:
    """The field is held as a value or derived (not "not done", "unknown", ...)."""
    status = json_scalar(values, field, "status")
    return or_(status.is_(None), status.in_([literal("value", String), literal("derived", String)]))
