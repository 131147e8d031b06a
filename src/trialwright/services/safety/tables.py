"""The safety tables (pooled, in unnamed groups, or by arm for who may see arms) and the line listing."""

from __future__ import annotations

import hashlib
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, Select, and_, case, func, select, true
from sqlalchemy.orm import Session

from trialwright.domain.coding import term_table
from trialwright.domain.masking import sees_arms
from trialwright.domain.safety import (
    CTCAE_GRADES,
    SafetyRow,
    Seriousness,
    criterion_label,
    safety_table_counted,
    table_labels,
)
from trialwright.protocol import Protocol
from trialwright.protocol.outcomes import BlindedTables
from trialwright.services import audit
from trialwright.services.allocation_checkpoints import remember
from trialwright.services.coding import codings_by_event
from trialwright.services.safety.common import (
    READERS,
    SafetyTables,
    _arms_of_events,
    _role,
    _verified_counts,
)
from trialwright.services.safety.reading import list_events
from trialwright.services.safety.sql import current_reports, has_criterion, is_related, is_susar
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import read_scope, session_scope
from trialwright.store.randomization_tables import allocation_entries, allocation_lists
from trialwright.store.safety_tables import adverse_events

__all__ = ["coded_terms", "export_listing", "group_labels", "listing_rows", "safety_tables"]


def group_labels(session: Session, protocol: Protocol) -> dict[str, str]:
    """Arm code -> Group A, B, ... in an order fixed by the secret list seed, so the labels say nothing."""
    head = session.execute(select(allocation_lists.c.seed).order_by(allocation_lists.c.id).limit(1)).scalar()
    secret = str(head or "")
    order = sorted(protocol.arms, key=lambda arm: hashlib.sha256(f"{secret}:{arm.code}".encode()).hexdigest())
    return {arm.code: f"Group {chr(ord('A') + i)}" for i, arm in enumerate(order)}


def safety_tables(engine: Engine, actor: UserView) -> SafetyTables:
    """Participants (randomized) with at least one AE / SAE, by criterion, worst grade and relatedness, and with their
    events by MedDRA SOC and PT (the events not coded yet, or coded for a term reported differently since, as their
    own line): by arm for the DSMB and the unblinded statistician; for everyone else pooled, or in unnamed groups
    when the protocol allows."""
    _role(actor, READERS, "read the safety tables")
    protocol = current_protocol(engine).protocol
    with read_scope(engine) as session:
        events = int(session.execute(select(func.count()).select_from(adverse_events)).scalar_one())
        if not sees_arms(protocol, actor.role) and protocol.safety.blinded_tables is not BlindedTables.UNNAMED_GROUPS:
            return _pooled(session, protocol, events)
        per_arm, checked = _verified_counts(session)  # changed entries checked against their digests (since the last)
        if sees_arms(protocol, actor.role):
            grouping = "by_arm"
            group_of_arm = {a.code: a.name for a in protocol.arms}
            groups = tuple(a.name for a in protocol.arms)
        else:
            grouping = "unnamed_groups"
            group_of_arm = group_labels(session, protocol)
            groups = tuple(sorted(group_of_arm.values()))
        totals = dict.fromkeys(groups, 0)
        for code, n in per_arm.items():
            totals[group_of_arm[code]] += n
        # the arms of the participants with events only: the denominators were counted by the database
        group_of = {pid: group_of_arm[code] for pid, code in _arms_of_events(session).items()}
        counted = session.execute(_per_participant(protocol)).all()
        terms = term_table(coded_terms(session), group_of, groups, totals)
    remember(engine, checked)
    lines = [label for label, _ in _LINES]
    summaries = [(r.participant_id, r.worst, [n for n in lines if r._mapping[n]]) for r in counted]
    rows = safety_table_counted(summaries, group_of, groups, totals)
    in_table = sum(int(r.events) for r in counted if r.participant_id in group_of)
    participants = sum(totals.values())
    return SafetyTables(grouping, groups, tuple(rows), participants, in_table, events - in_table, tuple(terms))


def coded_terms(session: Session) -> list[tuple[str, str | None, str | None]]:
    """Each event as (participant, primary SOC, PT) of its coding; SOC and PT None when it is not coded, or coded
    for a reported term that has changed since (to code again: the exports treat it as not coded too)."""
    return [
        (i.participant_id, i.coding.soc_name, i.coding.pt_name)
        if i.coded and i.coding
        else (i.participant_id, None, None)
        for i in codings_by_event(session).values()
    ]


def _pooled(session: Session, protocol: Protocol, events: int) -> SafetyTables:
    """The pooled table, counted whole in SQL (the lines by SOC and PT from the events' codings): it reads which
    participants are randomized, never an arm (so it has no arm to check against its digest; the tables by arm and
    in unnamed groups do check them)."""
    group = "All participants"
    claimed = select(allocation_entries.c.participant_id).where(allocation_entries.c.participant_id.is_not(None))
    randomized = int(
        session.execute(select(func.count(func.distinct(allocation_entries.c.participant_id)))
                        .where(allocation_entries.c.participant_id.is_not(None))).scalar_one()
    )  # fmt: skip
    each = _per_participant(protocol).where(adverse_events.c.participant_id.in_(claimed)).subquery("each")
    grades = [f"Worst grade {g}" for g in CTCAE_GRADES]
    summed = session.execute(
        select(
            func.coalesce(func.sum(each.c.events), 0).label("events"),
            *(func.coalesce(func.sum(each.c[label]), 0).label(label) for label, _ in _LINES),
            *(
                func.coalesce(func.sum(case((each.c.worst == g, 1), else_=0)), 0).label(f"Worst grade {g}")
                for g in CTCAE_GRADES
            ),
        )
    ).one()
    counts = {label: int(summed._mapping[label]) for label in [*(label for label, _ in _LINES), *grades]}
    rows = tuple(SafetyRow(label, {group: counts[label]}, {group: randomized}) for label in table_labels())
    in_table = int(summed.events)
    # the participants with events only: the denominator was counted by the database
    evented = claimed.where(allocation_entries.c.participant_id.in_(select(adverse_events.c.participant_id)))
    everyone = dict.fromkeys(session.execute(evented.distinct()).scalars(), group)
    terms = term_table(coded_terms(session), everyone, (group,), {group: randomized})
    return SafetyTables("pooled", (group,), rows, randomized, in_table, events - in_table, tuple(terms))


#: The lines a participant earns from their events' current reports, each as a condition on a report.
_LINES: tuple[tuple[str, str], ...] = (
    ("Any adverse event", "any"),
    ("Any serious adverse event", "serious"),
    *((criterion_label(c), c.value) for c in Seriousness),
    ("Related adverse event", "related"),
    ("Related SAE", "related_serious"),
    ("SUSAR", "susar"),
)


def _per_participant(protocol: Protocol) -> Select[Any]:
    """Per participant with events (the whole trial, as the table counts it): how many events, the worst grade of
    their current reports, and for each line of the table whether one of their events earns it (the line's
    label as the column's name)."""
    settings = protocol.safety
    current = current_reports().subquery("current")
    c = current.c
    related = is_related(c.causality, settings)
    flags: dict[str, ColumnElement[bool]] = {
        "any": true(),
        "serious": c.serious,
        **{s.value: and_(c.serious, has_criterion(c.criteria, s)) for s in Seriousness},
        "related": related,
        "related_serious": and_(related, c.serious),
        "susar": is_susar(current, settings),
    }
    return (
        select(
            adverse_events.c.participant_id,
            func.count().label("events"),
            func.max(c.grade).label("worst"),
            *(func.max(case((flags[key], 1), else_=0)).label(label) for label, key in _LINES),
        )
        .join(current, c.event_id == adverse_events.c.id)
        .group_by(adverse_events.c.participant_id)
    )


def listing_rows(engine: Engine, actor: UserView) -> list[dict[str, object]]:
    """The line listing (one row per event, current assessment, deadlines), for pages and CSV; the arm
    column only for the DSMB and the unblinded statistician."""
    protocol = current_protocol(engine).protocol
    causality = {c.code: c.label for c in protocol.safety.causality}
    out: list[dict[str, object]] = []
    for v in reversed(list_events(engine, actor)):
        a, c = v.current, v.classification
        row: dict[str, object] = {
            "ae_number": v.ae_number,
            "participant_id": v.participant_id,
            "site": v.site,
        }
        if sees_arms(protocol, actor.role):
            row["arm"] = v.arm
        row.update(
            {
                "term": a.term,
                "onset": a.onset.isoformat(),
                "end": a.end.isoformat() if a.end else "",
                "grade": a.grade,
                "serious": "yes" if c.serious else "no",
                "seriousness_criteria": " ".join(x.value for x in a.criteria),
                "causality": causality[a.causality],
                "related": "yes" if c.related else "no",
                "expected": "yes" if c.expected else "no",
                "susar": "yes" if c.susar else "no",
                "action_taken": str(a.action_taken),
                "outcome": a.outcome.value,
                "death_date": a.death_date.isoformat() if a.death_date else "",
                "reports": len(v.reports),
                "deadlines": "; ".join(
                    f"{d.kind.value} due {d.due_at.astimezone(ZoneInfo(v.timezone)):%Y-%m-%d %H:%M} {d.state.value}"
                    for d in v.deadlines
                ),
            }
        )
        out.append(row)
    return out


def export_listing(engine: Engine, actor: UserView) -> list[dict[str, object]]:
    """The line listing as a file: the same rows as ``listing_rows``, and the export is audited."""
    rows = listing_rows(engine, actor)
    with session_scope(engine) as session:
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="safety.listing_exported",
            new_value={"rows": len(rows), "by_arm": sees_arms(current_protocol(engine).protocol, actor.role)},
        )
    return rows
