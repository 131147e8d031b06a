"""What the safety use cases share: who may do what, the views an adverse event is read as (masked for a
blinded viewer), and loading events and their reports into those views.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trialwright.domain.coding import TermRow
from trialwright.domain.masking import MASKED, sees_arms
from trialwright.domain.roles import Role, only_roles_may
from trialwright.domain.safety import (
    Assessment,
    Classification,
    DeadlineKind,
    DeadlineState,
    EventOutcome,
    SafetyRow,
    Seriousness,
    classify,
    deadline_state,
    deadlines,
)
from trialwright.protocol import Protocol
from trialwright.services.allocation_checkpoints import VerifiedList, verified_list
from trialwright.services.audit_keys import AllocationsMissing, checked_allocations
from trialwright.services.coding import Coding, codings_of
from trialwright.services.errors import denied
from trialwright.services.screening import NotFound
from trialwright.services.users import UserView
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.safety_tables import adverse_events, ae_reports, ae_submissions
from trialwright.store.tables import audit_entries

__all__ = [
    "BY_ARM",
    "DECIDERS",
    "DECISION_CODES",
    "READERS",
    "REPORTERS",
    "RESPONSIBLE",
    "AdverseEventView",
    "DeadlineView",
    "Decision",
    "OverdueItem",
    "ReportView",
    "SafetyError",
    "SafetyTables",
]

#: Who reports adverse events and records their submission to the sponsor (site staff).
REPORTERS = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR)
#: Who reads adverse events and the (masked) safety tables.
READERS = (
    *REPORTERS,
    Role.MONITOR,
    Role.DATA_MANAGER,
    Role.ADMINISTRATOR,
    Role.BLINDED_STATISTICIAN,
    Role.UNBLINDED_STATISTICIAN,
    Role.DSMB_MEMBER,
)
#: Who opens the DSMB's closed page (by arm). Elsewhere the arm shows to whoever the trial's masking lets see it
#: (``trialwright.domain.masking.sees_arms``): in a double-blind trial the DSMB and the unblinded statistician.
BY_ARM = (Role.DSMB_MEMBER, Role.UNBLINDED_STATISTICIAN)
#: Who records decisions on the safety pause.
DECIDERS = (Role.DSMB_MEMBER,)
#: Whose home page lists overdue reports.
RESPONSIBLE = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.MONITOR, Role.DATA_MANAGER)
#: The decisions the DSMB can record.
DECISION_CODES = ("resume", "pause", "stop")


class SafetyError(ValueError):
    """A safety request that breaks a rule; the message is ``field: rule``."""

    @property
    def problems(self) -> tuple[tuple[str, str], ...]:
        """The one (field, rule) the message names, shaped as ``SafetyInputError.problems``."""
        field, _, rule = str(self).partition(": ")
        return ((field, rule),)


@dataclass(frozen=True)
class DeadlineView:
    """One report due for an event, with its state now."""

    kind: DeadlineKind
    rule: str
    clock_start: dt.datetime
    due_at: dt.datetime
    state: DeadlineState
    submitted_at: dt.datetime | None
    #: The rule's words (a key of ``domain.safety.RULES``) and its hours or days, for a page's own language.
    rule_id: str = ""
    rule_number: int = 0


@dataclass(frozen=True)
class ReportView:
    """One report about an event: the initial one (sequence 0) or a follow-up."""

    sequence: int
    assessment: Assessment
    classification: Classification
    reported_at: dt.datetime
    reported_by: str
    reason: str | None

    @property
    def kind(self) -> str:
        """initial or follow-up N."""
        return "initial" if self.sequence == 0 else f"follow-up {self.sequence}"


@dataclass(frozen=True)
class AdverseEventView:
    """An adverse event as one viewer may see it: its current assessment, history and deadlines; the arm
    only for the DSMB and the unblinded statistician (``masked`` otherwise)."""

    ae_number: str
    participant_id: str
    site: str
    timezone: str
    current: Assessment
    classification: Classification
    reports: tuple[ReportView, ...]
    deadlines: tuple[DeadlineView, ...]
    arm: str
    #: The event's MedDRA coding (None until the coder codes it); ``coding_stale`` when a follow-up has changed the
    #: reported term since it was coded (the exports and safety tables count it as not coded until it is recoded).
    coding: Coding | None = None

    @property
    def coding_stale(self) -> bool:
        return self.coding is not None and self.coding.verbatim != self.current.term

    @property
    def overdue(self) -> tuple[DeadlineView, ...]:
        """Deadlines passed without a submission."""
        return tuple(d for d in self.deadlines if d.state is DeadlineState.OVERDUE)


@dataclass(frozen=True)
class SafetyTables:
    """Participants with at least one event, per group. ``grouping``: pooled, unnamed_groups or by_arm. ``terms``:
    the same participants and their events by MedDRA SOC and PT, the events not coded yet as their own line."""

    grouping: str
    groups: tuple[str, ...]
    rows: tuple[SafetyRow, ...]
    participants: int  # randomized participants (the denominator)
    events: int  # adverse events of randomized participants
    not_randomized_events: int  # events of participants not randomized (listed, not tabulated)
    terms: tuple[TermRow, ...] = ()


@dataclass(frozen=True)
class Decision:
    """A DSMB decision on the safety pause."""

    decision: str
    reason: str
    related_saes: int
    decided_at: dt.datetime
    decided_by: str


@dataclass(frozen=True)
class OverdueItem:
    """An overdue report, for the home page of the responsible roles."""

    ae_number: str
    participant_id: str
    kind: DeadlineKind
    due_at: dt.datetime
    timezone: str  # the site's: the page shows the due time on the site's clock


# --- guards and loading ------------------------------------------------------------------------------


def _role(actor: UserView, roles: Sequence[Role], what: str) -> None:
    if actor.role not in roles:
        raise denied(SafetyError)(f"role: {only_roles_may(roles, what)}")


def _tz(protocol: Protocol, site: str) -> ZoneInfo:
    return ZoneInfo(protocol.site(site).timezone)


def _assessment(text: str) -> Assessment:
    data = json.loads(text)
    return Assessment(
        term=data["term"],
        onset=dt.date.fromisoformat(data["onset"]),
        end=dt.date.fromisoformat(data["end"]) if data.get("end") else None,
        grade=int(data["grade"]),
        serious=bool(data["serious"]),
        criteria=tuple(Seriousness(c) for c in data["seriousness_criteria"]),
        causality=data["causality"],
        expected_event=data.get("expected_event"),
        action_taken=data["action_taken"],
        outcome=EventOutcome(data["outcome"]),
        aware_at=dt.datetime.fromisoformat(data["aware_at"]),
        death_date=dt.date.fromisoformat(data["death_date"]) if data.get("death_date") else None,
        death_cause=data.get("death_cause"),
        narrative=data.get("narrative"),
    )


def _event_row(session: Session, actor: UserView, ae_number: str) -> Any:
    row = session.execute(select(adverse_events).where(adverse_events.c.ae_number == ae_number)).first()
    if row is None or (actor.role.site_scoped and row.site not in actor.sites):
        raise NotFound(f"no adverse event {ae_number}")
    return row


#: Up to this many participants a page's arms are read by their ids; more, and the whole list is read.
_ARMS_BY_NAME = 500


def _arms(session: Session, participants: Collection[str] | None = None) -> dict[str, str]:
    """Each randomized participant's arm (of ``participants`` only, when given: a page of events reads the
    entries of the participants it shows, not the whole list), every entry checked against its keyed digest
    first. A participant the audit trail records as randomized whose entry is gone (moved to another participant
    or deleted in the database) is never read as not randomized: ``AllocationsMissing``."""
    randomized = select(audit_entries.c.participant).where(audit_entries.c.action == "participant.randomized")
    if participants is None:
        arms = {r.participant_id: r.arm for r in checked_allocations(session)}
        _none_lost(session, randomized, arms)
        return arms
    arms = {r.participant_id: r.arm for r in checked_allocations(session, participants=participants)}
    missing = sorted(set(participants) - set(arms))
    if missing and session.execute(randomized.where(audit_entries.c.participant.in_(missing)).limit(1)).first():
        # the trail says a shown participant was randomized but no entry is theirs: the whole list is checked (an
        # entry moved to another participant no longer matches its digest and is named), and if none is theirs
        # even then, the page refuses rather than show them as not randomized
        arms = {r.participant_id: r.arm for r in checked_allocations(session)}
        _none_lost(session, randomized.where(audit_entries.c.participant.in_(missing)), arms)
    return arms


def _verified_counts(session: Session) -> tuple[dict[str, int], VerifiedList | None]:
    """Randomized participants per arm code for a table by arm, counted by the database (one ``GROUP BY``), after
    verifying only the allocation entries added or changed since the last load
    (``trialwright.services.allocation_checkpoints``; pass the second value to ``remember`` once the read is over):
    no randomized participant's arm is read into Python. An unkeyed trail has no digest to check: the list is read
    (and refused) as ``_arms`` reads it, then counted the same way."""
    checked = verified_list(session)
    if checked is None:
        _arms(session)
    claimed = allocation_entries.c.participant_id.is_not(None)
    counts = session.execute(
        select(allocation_entries.c.arm, func.count(func.distinct(allocation_entries.c.participant_id)))
        .where(claimed)
        .group_by(allocation_entries.c.arm)
    ).all()
    return {str(arm): int(n) for arm, n in counts}, checked


def _arms_of_events(session: Session) -> dict[str, str]:
    """The arm of each randomized participant with at least one adverse event (read in the snapshot a table by arm
    verified: only these participants' entries, however many are randomized)."""
    claimed = allocation_entries.c.participant_id.is_not(None)
    with_events = select(adverse_events.c.participant_id).distinct()
    rows = session.execute(
        select(allocation_entries.c.participant_id, allocation_entries.c.arm).where(
            claimed, allocation_entries.c.participant_id.in_(with_events)
        )
    )
    return {r.participant_id: r.arm for r in rows}


def _none_lost(session: Session, randomized: Any, arms: Mapping[str, str]) -> None:
    lost = sorted(set(session.execute(randomized.distinct()).scalars()) - set(arms))
    if lost:
        raise AllocationsMissing(lost)


def _views(
    session: Session, protocol: Protocol, actor: UserView, events: Sequence[Any], now: dt.datetime
) -> list[AdverseEventView]:
    if not events:
        return []
    ids = [e.id for e in events]
    reports: dict[int, list[Any]] = {}
    for r in session.execute(
        select(ae_reports).where(ae_reports.c.event_id.in_(ids)).order_by(ae_reports.c.event_id, ae_reports.c.sequence)
    ).all():
        reports.setdefault(r.event_id, []).append(r)
    sent: dict[int, dict[DeadlineKind, dt.datetime]] = {}
    for s in session.execute(select(ae_submissions).where(ae_submissions.c.event_id.in_(ids))).all():
        sent.setdefault(s.event_id, {})[DeadlineKind(s.kind)] = s.submitted_at
    shown = {e.participant_id for e in events}
    # a page's participants by name; a whole list (more than a statement's parameters hold) reads every entry
    arms = _arms(session, shown if len(shown) <= _ARMS_BY_NAME else None) if sees_arms(protocol, actor.role) else {}
    coded = codings_of(session, ids)
    settings = protocol.safety
    out = []
    for event in events:
        tz = _tz(protocol, event.site)
        history = []
        for r in reports.get(event.id, []):
            a = _assessment(r.assessment)
            history.append(ReportView(r.sequence, a, classify(a, settings), r.reported_at, r.reported_by, r.reason))
        submitted = sent.get(event.id, {})
        due = deadlines([(h.assessment, h.classification) for h in history], settings, tz, submitted)
        out.append(
            AdverseEventView(
                ae_number=event.ae_number,
                participant_id=event.participant_id,
                site=event.site,
                timezone=protocol.site(event.site).timezone,
                current=history[-1].assessment,
                classification=history[-1].classification,
                reports=tuple(history),
                deadlines=tuple(
                    DeadlineView(
                        d.kind,
                        d.rule,
                        d.clock_start,
                        d.due_at,
                        deadline_state(d, submitted.get(d.kind), now),
                        submitted.get(d.kind),
                        d.rule_id,
                        d.rule_number,
                    )
                    for d in due
                ),
                arm=arms.get(event.participant_id, "not randomized") if sees_arms(protocol, actor.role) else MASKED,
                coding=coded.get(event.id),
            )
        )
    return out
