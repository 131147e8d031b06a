"""Reading ahead for a batch of a bulk import: what the form saves of a batch of rows will look up about their
participants, read with one statement per kind for the whole batch instead of a few per participant; and for one
save (``look_ahead``), what it looks up about its participant in one statement.

Inside ``reading_once`` each look-up of the save path is answered from memory after its first read
(``services/bulk_reads.py``); ``read_ahead`` makes that first read for every participant of the batch at once and
stores each answer under the very key, and in the very shape, the look-up itself would have stored
(``tests/spec/forms/test_read_ahead.py`` compares the two, key by key). A key already answered (by an earlier
batch, or kept true by a save) is left as it is. Nothing here decides anything: a participant the batch names
but the database does not hold is stored as not found, and the save refuses the row as it would have.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, false, func, or_, select
from sqlalchemy.orm import Session

from trialwright.protocol import Protocol
from trialwright.services import audit
from trialwright.services.bulk_reads import answered, held, once
from trialwright.services.coherence import facts_of
from trialwright.services.deaths import death_forms
from trialwright.services.forms.common import visits_locked
from trialwright.services.trial import VERSION_COUNT, versions_counted
from trialwright.store.data_tables import form_records, soft_locks, trial_locks, visit_records
from trialwright.store.randomization_tables import allocation_entries, preparations
from trialwright.store.safety_tables import adverse_events, ae_reports
from trialwright.store.screening_tables import consents, participants, screenings, withdrawals

__all__ = ["look_ahead", "read_ahead"]


def read_ahead(session: Session, protocol: Protocol, rows: Iterable[Mapping[str, Any]]) -> None:
    """Answer, for every participant the rows name, what their saves will look up (inside ``reading_once``)."""
    named = sorted({str(r["participant"]) for r in rows if isinstance(r, Mapping) and r.get("participant")})
    if not named:
        return
    found = {
        r.participant_id: r
        for r in session.execute(select(participants).where(participants.c.participant_id.in_(named))).all()
    }
    for pid in named:
        _store(session, ("participant", pid), found.get(pid))
    people = list(found.values())
    if not people:
        return
    ids = [p.participant_id for p in people]
    screening_ids = sorted({p.screening_id for p in people})
    _withdrawn(session, ids)
    _soft_locks(session, people)
    screened = {
        r.id: r
        for r in session.execute(
            select(screenings.c.id, screenings.c.screened_on, screenings.c.screening_values).where(
                screenings.c.id.in_(screening_ids)
            )
        ).all()
    }
    randomized = dict(
        session.execute(
            select(allocation_entries.c.participant_id, allocation_entries.c.randomized_at).where(
                allocation_entries.c.participant_id.in_(ids)
            )
        ).all()
    )
    prepared = dict(
        session.execute(
            select(allocation_entries.c.participant_id, preparations.c.prepared_at)
            .join(allocation_entries, allocation_entries.c.preparation_code == preparations.c.preparation_code)
            .where(allocation_entries.c.participant_id.in_(ids))
        ).all()
    )
    consented = dict(
        session.execute(
            select(consents.c.screening_id, func.min(consents.c.obtained_at))
            .where(consents.c.screening_id.in_(screening_ids), consents.c.decision == "consent")
            .group_by(consents.c.screening_id)
        ).all()
    )
    for p in people:
        pid, sid = p.participant_id, p.screening_id
        if sid in screened:
            _store(session, ("screened_on", sid), screened[sid].screened_on)
            _store(session, ("screening_values", sid), screened[sid].screening_values)
        _store(session, ("randomized_at", pid), randomized.get(pid))
        _store(
            session, ("facts", pid), facts_of(protocol, p, consented.get(sid), randomized.get(pid), prepared.get(pid))
        )
    _reports(session, ids)
    _visits(session, protocol, ids)


def look_ahead(session: Session, protocol: Protocol, participant_id: str, visit_id: str) -> None:
    """One save's look-ups about its participant (inside ``reading_once``) answered by one statement: their row,
    the facts the coherence rules read, the screening's values and, where there is nothing to read, the trial lock,
    their and their site's soft locks, their withdrawal, adverse-event reports, records that can say a death, the
    visit's row, and whether the trial holds more than one protocol version (with one, no amendment added a visit).
    Where there is something, nothing is stored and the save's own look-up reads it as before.
    Answers already in memory, and a participant the database does not hold, are left to the look-ups.

    On PostgreSQL the caller holds the data lock already (``lock.hold_data_lock``), so what is read about the locks
    is read under it, as ``require_unlocked`` reads it. On SQLite the save's write transaction (begun IMMEDIATE)
    holds the writer's lock, so the audit trail's head is read along and the save's entries chain on from it
    (``audit.head_read``)."""
    if answered(session, ("participant", participant_id)) is not False:
        return
    sqlite = session.get_bind().dialect.name == "sqlite"
    statement = _look_ahead_statement(death_forms(protocol), sqlite)
    found = session.execute(statement, {"pid": participant_id, "visit": visit_id}).first()
    if found is None:
        return
    if sqlite:  # this write transaction holds SQLite's writer lock: the audit trail's head cannot move before it ends
        audit.head_read(session, found.audit_head_seq, found.audit_head_hash, found.audit_head_mac)
    pid, sid = found.participant_id, found.screening_id
    _store(session, ("participant", pid), found)
    _store(session, ("facts", pid), facts_of(protocol, found, found.la_consented, found.la_randomized,
                                                found.la_prepared))  # fmt: skip
    _store(session, ("randomized_at", pid), found.la_randomized)
    _store(session, ("screening_values", sid), found.la_screening_values)
    if not found.la_trial_locks:
        _store(session, ("trial_lock",), None)
    if not found.la_soft_locks:
        _store(session, ("soft_locks", ("participant", pid), ("site", found.site)), [])
    if not found.la_withdrawn:
        _store(session, ("withdrawn", pid), None)
    if not found.la_ae_reports:
        _store(session, ("ae_reports", pid), [])
    if not found.la_death_forms:
        _hold(session, ("death_forms", pid), [])
    if not found.la_visit:
        _hold(session, ("visit", pid, visit_id), None)
    versions_counted(session, found.la_versions)


_LOOK_AHEAD: dict[tuple[frozenset[str], bool], Select[Any]] = {}


def _look_ahead_statement(dying: frozenset[str], sqlite: bool) -> Select[Any]:
    """``look_ahead``'s statement (built once per set of forms that can say a death, and with the audit trail's
    head on SQLite; ``pid`` and ``visit`` bound)."""
    statement = _LOOK_AHEAD.get((dying, sqlite))
    if statement is not None:
        return statement
    p = participants
    pid = bindparam("pid", type_=p.c.participant_id.type)
    consented = select(func.min(consents.c.obtained_at)).where(
        consents.c.screening_id == p.c.screening_id, consents.c.decision == "consent"
    )
    randomized = select(allocation_entries.c.randomized_at).where(allocation_entries.c.participant_id == pid).limit(1)
    prepared = (
        select(preparations.c.prepared_at)
        .join(allocation_entries, allocation_entries.c.preparation_code == preparations.c.preparation_code)
        .where(allocation_entries.c.participant_id == pid)
        .limit(1)
    )
    screened = select(screenings.c.screening_values).where(screenings.c.id == p.c.screening_id)
    soft = exists().where(
        or_(
            and_(soft_locks.c.scope == "participant", soft_locks.c.target == pid),
            and_(soft_locks.c.scope == "site", soft_locks.c.target == p.c.site),
        )
    )
    withdrawn = exists().where(withdrawals.c.participant_id == pid, withdrawals.c.scope == "follow_up")
    reports = exists().where(adverse_events.c.participant_id == pid, ae_reports.c.event_id == adverse_events.c.id)
    # With no form that can say a death, a plain false: EXISTS over a SELECT with no table (``SELECT * WHERE 0 = 1``)
    # is refused by SQLite ("no tables specified") and PostgreSQL alike, and every save would end in a traceback.
    dead = (
        exists().where(form_records.c.participant_id == pid, form_records.c.form_id.in_(sorted(dying)))
        if dying
        else false()
    )
    visit = exists().where(visit_records.c.participant_id == pid, visit_records.c.visit_id == bindparam("visit"))
    statement = select(
        p,
        consented.scalar_subquery().label("la_consented"),
        randomized.scalar_subquery().label("la_randomized"),
        prepared.scalar_subquery().label("la_prepared"),
        screened.scalar_subquery().label("la_screening_values"),
        exists().where(trial_locks.c.id.is_not(None)).label("la_trial_locks"),
        soft.label("la_soft_locks"),
        withdrawn.label("la_withdrawn"),
        reports.label("la_ae_reports"),
        dead.label("la_death_forms"),
        visit.label("la_visit"),
        VERSION_COUNT.label("la_versions"),
        *(audit.head_columns() if sqlite else ()),
    ).where(p.c.participant_id == pid)
    _LOOK_AHEAD[(dying, sqlite)] = statement
    return statement


def _store(session: Session, key: Hashable, value: Any) -> None:
    """The answer ``once`` would store for ``key`` (nothing if it has one already)."""
    once(session, key, lambda: value)


def _withdrawn(session: Session, ids: list[str]) -> None:
    first: dict[str, Any] = {}
    for r in session.execute(
        select(withdrawals)
        .where(withdrawals.c.participant_id.in_(ids), withdrawals.c.scope == "follow_up")
        .order_by(withdrawals.c.id)
    ).all():
        first.setdefault(r.participant_id, r)
    for pid in ids:
        _store(session, ("withdrawn", pid), first.get(pid))


def _soft_locks(session: Session, people: list[Any]) -> None:
    """Each participant's and their site's soft-lock rows, newest first, as ``require_unlocked`` reads them."""
    ids, sites = [p.participant_id for p in people], sorted({p.site for p in people})
    rows = session.execute(
        select(soft_locks)
        .where(
            or_(
                and_(soft_locks.c.scope == "participant", soft_locks.c.target.in_(ids)),
                and_(soft_locks.c.scope == "site", soft_locks.c.target.in_(sites)),
            )
        )
        .order_by(soft_locks.c.id.desc())
    ).all()
    for p in people:
        mine = [r for r in rows if (r.scope, r.target) in {("participant", p.participant_id), ("site", p.site)}]
        _store(session, ("soft_locks", ("participant", p.participant_id), ("site", p.site)), mine)


def _reports(session: Session, ids: list[str]) -> None:
    """Each participant's adverse-event reports (number, assessment), in the order ``death_of`` reads them."""
    by: dict[str, list[Any]] = defaultdict(list)
    for pid, number, assessment in session.execute(
        select(adverse_events.c.participant_id, adverse_events.c.ae_number, ae_reports.c.assessment)
        .join(adverse_events, adverse_events.c.id == ae_reports.c.event_id)
        .where(adverse_events.c.participant_id.in_(ids))
        .order_by(ae_reports.c.event_id, ae_reports.c.sequence)
    ).all():
        by[pid].append((number, assessment))
    for pid in ids:
        _store(session, ("ae_reports", pid), by[pid])


def _visits(session: Session, protocol: Protocol, ids: list[str]) -> None:
    """The participants' visit rows, visit dates, each visit's forms, and the forms that can record a death: the
    facts a save keeps true itself once they are held (``bulk_reads.held``)."""
    # Locked as read (FOR UPDATE on PostgreSQL), before their forms are read: what the import changes is what it
    # read (``common.lock_visit``).
    visits = session.execute(
        select(visit_records)
        .where(visit_records.c.participant_id.in_(ids))
        .order_by(visit_records.c.id)
        .with_for_update(of=visit_records)
    ).all()
    visits_locked(session, [v.id for v in visits])
    forms: dict[int, dict[str, Any]] = {v.id: {} for v in visits}
    if visits:
        for f in session.execute(
            select(form_records).where(form_records.c.participant_id.in_(ids)).order_by(form_records.c.id)
        ).all():
            forms.setdefault(f.visit_record_id, {})[f.form_id] = f
    dying = death_forms(protocol)
    visit_ids: dict[int, str] = {v.id: v.visit_id for v in visits}
    mine: dict[str, list[Any]] = defaultdict(list)
    for v in visits:
        mine[v.participant_id].append(v)
    for pid in ids:
        _hold(session, ("visit_dates", pid), {v.visit_id: v.visit_date for v in mine[pid]})
        for visit in protocol.visits:
            _hold(session, ("visit", pid, visit.id), next((v for v in mine[pid] if v.visit_id == visit.id), None))
        for v in mine[pid]:
            _hold(session, ("visit", pid, v.visit_id), v)
            _hold(session, ("visit_forms", v.id), dict(forms[v.id]))
        if dying:
            found = [
                (visit_ids[f.visit_record_id], f.form_id, f.form_values)
                for f in sorted((f for v in mine[pid] for f in forms[v.id].values()), key=lambda f: f.id)
                if f.form_id in dying
            ]
            _hold(session, ("death_forms", pid), found)


def _hold(session: Session, key: Hashable, value: Any) -> None:
    """The answer ``held`` would hold for ``key`` (nothing if it holds one already)."""
    held(session, key, lambda: value)
