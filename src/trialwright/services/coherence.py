"""The coherence rules on save (``trialwright.domain.coherence``): the participant's events read once, the
hard rules checked before anything is written, a breach refused naming the field, the value and the rule; and the
whole-trial re-check of what is stored (``recheck_trial``), which the lock readiness report lists."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from trialwright.domain.coherence import ParticipantFacts, hard_breaches
from trialwright.domain.forms import StoredValue
from trialwright.protocol import Protocol
from trialwright.services.bulk_reads import once
from trialwright.services.trial import current_protocol
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import allocation_entries, preparations
from trialwright.store.screening_tables import consents, participants

__all__ = ["StoredBreach", "facts_of", "participant_facts", "recheck_trial", "refused_breaches"]


def participant_facts(session: Session, protocol: Protocol, participant: Any) -> ParticipantFacts:
    """The participant's first consent given, enrolment, randomization and dose prepared, and the site's zone."""
    return once(session, ("facts", participant.participant_id), lambda: _facts(session, protocol, participant))


def _facts(session: Session, protocol: Protocol, participant: Any) -> ParticipantFacts:
    # The three times in one statement (each a scalar subquery: NULL when there is none).
    consented = select(func.min(consents.c.obtained_at)).where(
        consents.c.screening_id == participant.screening_id, consents.c.decision == "consent"
    )
    randomized = (
        select(allocation_entries.c.randomized_at)
        .where(allocation_entries.c.participant_id == participant.participant_id)
        .limit(1)
    )
    prepared = (
        select(preparations.c.prepared_at)
        .join(allocation_entries, allocation_entries.c.preparation_code == preparations.c.preparation_code)
        .where(allocation_entries.c.participant_id == participant.participant_id)
        .limit(1)
    )
    row = session.execute(
        select(
            consented.scalar_subquery().label("consented"),
            randomized.scalar_subquery().label("randomized"),
            prepared.scalar_subquery().label("prepared"),
        )
    ).one()
    return facts_of(protocol, participant, row.consented, row.randomized, row.prepared)


def facts_of(
    protocol: Protocol,
    participant: Any,
    consented: dt.datetime | None,
    randomized: dt.datetime | None,
    prepared: dt.datetime | None,
) -> ParticipantFacts:
    """The facts of a participant's row and the times read for them (one participant's read, or a batch's)."""
    return ParticipantFacts(
        timezone=ZoneInfo(protocol.site(participant.site).timezone),
        consented_at=consented,
        enrolled_at=participant.enrolled_at,
        randomized_at=randomized,
        prepared_at=prepared,
    )


def refused_breaches(
    session: Session,
    protocol: Protocol,
    participant: Any,
    form_id: str,
    forms: Mapping[str, Mapping[str, StoredValue]],
    changed: Mapping[str, Sequence[str]],
) -> list[str]:
    """What the hard rules refuse in this save (empty: nothing): one message per breach."""
    facts = participant_facts(session, protocol, participant)
    breaches = hard_breaches(protocol, form_id, forms, facts, lambda f, name: name in changed.get(f, ()))
    return [b.message for b in breaches]


@dataclass(frozen=True)
class StoredBreach:
    """A hard rule that stored data break (found by a whole-trial re-check, e.g. data saved before the rule)."""

    participant_id: str
    site: str
    visit_id: str
    rule: str
    fields: tuple[str, ...]
    message: str


def recheck_trial(engine: Engine, participant_ids: Collection[str] | None = None) -> tuple[StoredBreach, ...]:
    """Every hard rule over every stored form, per participant and visit (or only the participants given): what
    the stored data break, in participant and visit order. Nothing is changed."""
    protocol = current_protocol(engine).protocol
    known = {f.id for f in protocol.forms}
    out: list[StoredBreach] = []
    with session_scope(engine) as session:
        people = session.execute(select(participants).order_by(participants.c.participant_id)).all()
        visits = session.execute(select(visit_records.c.id, visit_records.c.participant_id, visit_records.c.visit_id))
        visit_of = {v.id: (v.participant_id, v.visit_id) for v in visits}
        stored: dict[str, dict[str, dict[str, dict[str, StoredValue]]]] = {}
        for r in session.execute(select(form_records.c.visit_record_id, form_records.c.form_id,
                                        form_records.c.form_values)):  # fmt: skip
            if r.form_id not in known:
                continue
            pid, visit_id = visit_of[r.visit_record_id]
            values = {k: StoredValue.from_json(v) for k, v in json.loads(r.form_values).items()}
            stored.setdefault(pid, {}).setdefault(visit_id, {})[r.form_id] = values
        for person in people:
            if participant_ids is not None and person.participant_id not in participant_ids:
                continue
            if person.participant_id not in stored:
                continue
            facts = participant_facts(session, protocol, person)
            for visit_id, forms in sorted(stored[person.participant_id].items()):
                seen: set[str] = set()
                for form_id in forms:
                    for b in hard_breaches(protocol, form_id, forms, facts):
                        if b.message not in seen:
                            seen.add(b.message)
                            out.append(StoredBreach(person.participant_id, person.site, visit_id, b.rule, b.fields,
                                                    b.message))  # fmt: skip
    return tuple(out)
