"""The coherence rules on save (``trialwright.domain.coherence``): the participant's events read once, the
hard rules checked before anything is written, a breach refused naming the field, the value and the rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trialwright.domain.coherence import ParticipantFacts, hard_breaches
from trialwright.domain.forms import StoredValue
from trialwright.protocol import Protocol
from trialwright.store.randomization_tables import allocation_entries, preparations
from trialwright.store.screening_tables import consents

__all__ = ["participant_facts", "refused_breaches"]


def participant_facts(session: Session, protocol: Protocol, participant: Any) -> ParticipantFacts:
    """The participant's first consent given, enrolment, randomization and dose prepared, and the site's zone."""
    consented = session.execute(
        select(func.min(consents.c.obtained_at)).where(
            consents.c.screening_id == participant.screening_id, consents.c.decision == "consent"
        )
    ).scalar()
    randomized = session.execute(
        select(allocation_entries.c.randomized_at).where(
            allocation_entries.c.participant_id == participant.participant_id
        )
    ).scalar()
    prepared = session.execute(
        select(preparations.c.prepared_at)
        .join(allocation_entries, allocation_entries.c.preparation_code == preparations.c.preparation_code)
        .where(allocation_entries.c.participant_id == participant.participant_id)
    ).scalar()
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
