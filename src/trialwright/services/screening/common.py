"""What the screening use cases share: their errors and reasons, the views of a screening, a consent and a
participant, reading them (a page's rows with one statement per kind), and finding a screening or participant
within the actor's sites.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.orm import Session

from trialwright.domain.eligibility import Decision, EligibilityDecision, ScreeningValueError, typed_values
from trialwright.domain.roles import Role, only_roles_may
from trialwright.protocol import Protocol
from trialwright.services import clock
from trialwright.services.bulk_reads import once
from trialwright.services.bulk_writes import row_type
from trialwright.services.errors import denied
from trialwright.services.users import UserView
from trialwright.store.engine import session_scope
from trialwright.store.prepared import Prepared
from trialwright.store.screening_tables import consents, participants, screenings, withdrawals

__all__ = [
    "READERS",
    "WRITERS",
    "ConsentView",
    "NonEnrolmentReason",
    "NotFound",
    "ParticipantView",
    "ScreeningError",
    "ScreeningValueError",
    "ScreeningView",
    "WithdrawalCause",
    "WithdrawalScope",
    "check_participant",
    "participant_row",
    "require_role",
    "screening_id_of",
]

#: Who screens, records consent, enrols and records non-enrolment (docs/roles.md, the route table); the rule lives
#: here, in the service, so the CLI, the API, the pages and the library refuse alike.
WRITERS: tuple[Role, ...] = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR)
#: Who reads the screening log and one screening: the writers, and the trial-wide roles that review it.
READERS: tuple[Role, ...] = (*WRITERS, Role.ADMINISTRATOR, Role.MONITOR, Role.DATA_MANAGER)


class ScreeningError(ValueError):
    """A screening, consent or enrolment request that breaks a rule; the message names field and rule."""


class NotFound(LookupError):
    """No such record within the user's sites (another site's record answers the same way)."""


class NonEnrolmentReason(StrEnum):
    """Why a screened patient was not enrolled (feeds CONSORT and the recruitment reports)."""

    NOT_ELIGIBLE = "not_eligible"
    DECLINED = "declined"
    CONSENT_NOT_OBTAINABLE = "consent_not_obtainable"
    OTHER_TRIAL = "other_trial"
    OTHER = "other"


class WithdrawalScope(StrEnum):
    """What a participant withdraws from."""

    INTERVENTION = "intervention"
    FOLLOW_UP = "follow_up"
    DATA_USE = "data_use"


class WithdrawalCause(StrEnum):
    """Why a participant left a scope, as CONSORT counts losses after allocation (the reason in words says more)."""

    WITHDREW_CONSENT = "withdrew_consent"  # the participant (or their representative) decided to stop
    LOST_TO_FOLLOW_UP = "lost_to_follow_up"  # could not be reached despite the site's attempts
    INVESTIGATOR_DECISION = "investigator_decision"  # the investigator stopped it (e.g. safety, a new condition)
    ADVERSE_EVENT = "adverse_event"  # stopped because of an adverse event
    OTHER = "other"


#: A cause that only makes sense for some scopes: one is lost to follow-up, not to the intervention.
_CAUSE_SCOPES = {WithdrawalCause.LOST_TO_FOLLOW_UP: {WithdrawalScope.FOLLOW_UP}}


@dataclass(frozen=True)
class ConsentView:
    """One consent record."""

    id: int
    form_version: str
    given_by: str
    representative_name: str | None
    representative_relationship: str | None
    witness: str | None
    obtained_by: str
    obtained_at: dt.datetime
    kind: str
    decision: str
    assent: str | None = None
    assent_obtained_by: str | None = None
    assent_obtained_at: dt.datetime | None = None
    assent_form_version: str | None = None
    assent_not_sought_reason: str | None = None


@dataclass(frozen=True)
class ParticipantView:
    """An enrolled participant."""

    participant_id: str
    site: str
    enrolled_at: dt.datetime
    withdrawn_scopes: tuple[str, ...]


@dataclass(frozen=True)
class ScreeningView:
    """A screening log entry with its current decision, consents and, once enrolled, the participant."""

    id: int
    label: str
    site: str
    screened_on: dt.date
    values: Mapping[str, Any]
    decision: Decision
    failed: tuple[dict[str, Any], ...]
    missing: tuple[str, ...]
    protocol_version: str
    non_enrolment_reason: str | None
    non_enrolment_text: str | None
    consents: tuple[ConsentView, ...]
    participant: ParticipantView | None

    @property
    def consented(self) -> bool:
        """Whether the latest consent decision is a consent (not a refusal or withdrawal)."""
        return bool(self.consents) and self.consents[-1].decision in {"consent", "continue"}


def _now() -> dt.datetime:
    return clock.now()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default, ensure_ascii=False)


def _decision_detail(decision: EligibilityDecision) -> dict[str, Any]:
    return {
        "failed": [{"id": r.id, "text": r.text, "values": dict(r.values)} for r in decision.failed],
        "missing": list(decision.missing),
    }


def _known(decision: EligibilityDecision) -> dict[str, Any]:
    """The values to store: those entered and those derived from them (P/F), without the unknown ones."""
    return {k: v for k, v in decision.values.items() if v is not None}


def require_role(actor: UserView, roles: Sequence[Role], what: str) -> None:
    """Refuse (marked ``AccessDenied``: the CLI's exit code 4, the API's 403) an actor whose role may not ``what``."""
    if actor.role not in roles:
        raise denied(ScreeningError)(f"role: {only_roles_may(roles, what)}")


def _check_site(actor: UserView, site: str) -> None:
    if actor.role.site_scoped and site not in actor.sites:
        raise NotFound("no such screening")


def _typed_values(protocol: Protocol, stored: Mapping[str, Any]) -> dict[str, Any]:
    """Stored JSON values back to typed ones (dates)."""
    return typed_values(protocol, stored)


def _view(session: Session, row: Any) -> ScreeningView:
    return _views(session, [row])[0]


def _views(session: Session, rows: Sequence[Any]) -> list[ScreeningView]:
    """Screening rows as views, in the same order: their consents, participants and withdrawals read with one
    statement each, whatever the number of rows (a page of the log costs what one screening does)."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    consents_of: dict[int, list[Any]] = {}
    for c in session.execute(select(consents).where(consents.c.screening_id.in_(ids)).order_by(consents.c.id)):
        consents_of.setdefault(c.screening_id, []).append(c)
    enrolled = {
        p.screening_id: p for p in session.execute(select(participants).where(participants.c.screening_id.in_(ids)))
    }
    scopes: dict[str, list[str]] = {}
    if enrolled:
        for w in session.execute(
            select(withdrawals.c.participant_id, withdrawals.c.scope).where(
                withdrawals.c.participant_id.in_([p.participant_id for p in enrolled.values()])
            )
        ):
            scopes.setdefault(w.participant_id, []).append(w.scope)
    out = []
    for row in rows:
        detail = json.loads(row.decision_detail)
        participant = enrolled.get(row.id)
        pview = None
        if participant is not None:
            pview = ParticipantView(
                participant.participant_id,
                participant.site,
                participant.enrolled_at,
                tuple(sorted(scopes.get(participant.participant_id, []))),
            )
        out.append(
            ScreeningView(
                id=row.id,
                label=f"{row.site}-S{row.number:04d}",
                site=row.site,
                screened_on=row.screened_on,
                values=json.loads(row.screening_values),
                decision=Decision(row.decision),
                failed=tuple(detail["failed"]),
                missing=tuple(detail["missing"]),
                protocol_version=row.protocol_version,
                non_enrolment_reason=row.non_enrolment_reason,
                non_enrolment_text=row.non_enrolment_text,
                consents=tuple(
                    ConsentView(
                        c.id,
                        c.form_version,
                        c.given_by,
                        c.representative_name,
                        c.representative_relationship,
                        c.witness,
                        c.obtained_by,
                        c.obtained_at,
                        c.kind,
                        c.decision,
                        c.assent,
                        c.assent_obtained_by,
                        c.assent_obtained_at,
                        c.assent_form_version,
                        c.assent_not_sought_reason,
                    )
                    for c in consents_of.get(row.id, [])
                ),
                participant=pview,
            )
        )
    return out


def screening_id_of(engine: Engine, actor: UserView, reference: str) -> int:
    """The screening a person names: its label as printed (``RAZ-S0001``) or its number in the database."""
    text = reference.strip()
    if text.isdigit():
        return int(text)
    site, sep, number = text.rpartition("-S")
    if not sep or not number.isdigit():
        raise ScreeningError(f"screening: {reference!r} is neither a label like RAZ-S0001 nor a number")
    with session_scope(engine) as session:
        found = session.execute(
            select(screenings.c.id).where(screenings.c.site == site, screenings.c.number == int(number))
        ).scalar()
        if found is None or (actor.role.site_scoped and site not in actor.sites):
            raise NotFound(f"no screening {text}")
        return int(found)


#: A participant's row, and a screening's, by key: compiled once (``Prepared``), read by every step of a patient.
_PARTICIPANT = Prepared(select(participants).where(participants.c.participant_id == bindparam("participant_id")))
_SCREENING = Prepared(select(screenings).where(screenings.c.id == bindparam("screening_id")))


def _first(statement: Prepared, session: Session, table: Any, **key: Any) -> Any:
    rows = statement.rows(session, key)
    return row_type(table)(**rows[0]) if rows else None


def participant_row(session: Session, actor: UserView, participant_id: str) -> Any:
    """A participant's row within the actor's sites; for anyone else the participant does not exist."""
    row = once(
        session,
        ("participant", participant_id),
        lambda: _first(_PARTICIPANT, session, participants, participant_id=participant_id),
    )
    if row is None or (actor.role.site_scoped and row.site not in actor.sites):
        raise NotFound("no such participant")
    return row


def check_participant(engine: Engine, actor: UserView, participant_id: str) -> None:
    """Raise NotFound unless the participant exists within the actor's sites (pages that only show a form)."""
    with session_scope(engine) as session:
        participant_row(session, actor, participant_id)


def _row(session: Session, actor: UserView, screening_id: int) -> Any:
    row = _first(_SCREENING, session, screenings, screening_id=screening_id)
    if row is None:
        raise NotFound("no such screening")
    _check_site(actor, row.site)
    return row
