"""Log forms' entries: adding, amending and removing a participant's concomitant medications, medical history and
any other log the protocol declares (``logs:``), one transaction per use case.

An entry is validated by the same engine as a visit's form (``trialwright.domain.forms.validate_entries``: types,
units, limits, dates; refused with the field and the rule), and a required field needs a value or a reason; the
whole entry's rules (``trialwright.domain.logs``: an entry that is ongoing has no end date) are checked on its values
after the change. Each entry is numbered in its log in the order added (its sequence, never reused). An amendment
needs a reason; a removal needs one and keeps the entry, marked removed. Every change is audited field by field,
with who, when, the old and new value and why, like a form's values. An amendment or a removal voids the entry's
source data verification and signature (``services.forms.log_review``), as an edit voids a form's. The trial lock,
a soft lock of the participant or their site, and a withdrawal from follow-up refuse every change, as they refuse a
form's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from trialwright.domain.coherence import is_before, moment_of
from trialwright.domain.forms import (
    FormValueError,
    StoredValue,
    audit_value,
    dump_values,
    missing_required,
    value_meaning,
)
from trialwright.domain.logs import entry_problems
from trialwright.domain.text import checked_text
from trialwright.protocol import Protocol
from trialwright.protocol.logs import LOG_TOPIC, LogDef
from trialwright.services import audit, clock
from trialwright.services.forms.common import DATA_ENTRY, READERS, _role, _tz, _withdrawn, validated_for
from trialwright.services.forms.log_review import void_review
from trialwright.services.lock import require_unlocked
from trialwright.services.log_views import (
    ACTIVE,
    REMOVED,
    SELECT_ENTRIES,
    LogCoding,
    LogEntryView,
    LogError,
    LogVersionConflict,
    entry_row,
    entry_view,
    load_values,
    log_def,
    read_entry,
)
from trialwright.services.screening import participant_row
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import read_scope, session_scope
from trialwright.store.log_tables import log_codings, log_entries
from trialwright.store.screening_tables import participants

__all__ = [
    "ACTIVE",
    "REMOVED",
    "LogCoding",
    "LogEntryView",
    "LogError",
    "LogVersionConflict",
    "add_entry",
    "amend_entry",
    "entry_for_coding",
    "list_entries",
    "remove_entry",
]

def _writable(session: Session, actor: UserView, participant_id: str, what: str) -> Any:
    """The participant's row, locked for this transaction, once the role, the locks and withdrawal allow ``what``."""
    _role(actor, DATA_ENTRY, what)
    participant = participant_row(session, actor, participant_id)
    require_unlocked(session, participant_id, site=participant.site)
    _withdrawn(session, participant_id)
    # One writer per participant at a time: the next sequence is read and taken in the same transaction.
    session.execute(
        select(participants.c.participant_id).where(participants.c.participant_id == participant_id).with_for_update()
    ).one()
    return participant


def _validated(
    protocol: Protocol,
    log: LogDef,
    participant: Any,
    entries: Mapping[str, Any],
    old: Mapping[str, StoredValue],
    typed_on_site_clock: bool,
) -> dict[str, StoredValue]:
    """The entry's values after ``entries`` (validated by the forms' engine) change ``old``; every problem at once."""
    tz = _tz(protocol, participant.site)
    try:
        validated = validated_for(protocol, participant, log, entries, typed_on_site_clock=typed_on_site_clock)
    except FormValueError as exc:
        raise LogError(*exc.problems) from None
    merged = dict(old)
    for name, stored in validated.values.items():
        if stored is None:
            merged.pop(name, None)
        elif value_meaning(old.get(name)) != value_meaning(stored):
            merged[name] = stored
        # else: the same value sent back (a page sends every field): kept as stored, with what was typed and its
        # unit, so nothing changes that no audit entry says

    problems = [
        f"{name}: is required; give a value, or record it as not done with a reason"
        for name in missing_required(log, merged)
    ]
    kinds = {f.id: f.type for f in log.fields}
    for f in log.fields:
        later = moment_of(f.type, merged.get(f.id))
        for ref in f.not_before:  # as the forms' not_before (domain.coherence): moments, else the site's dates
            earlier = moment_of(kinds[ref], merged.get(ref))
            if later is not None and earlier is not None and is_before(later, earlier, tz):
                problems.append(f"{f.id}: {merged[f.id].value} is before {ref} ({merged[ref].value})")
    problems += entry_problems(log, merged)  # the whole entry's rules (an ongoing entry has no end date)
    if problems:
        raise LogError(*problems)
    return merged


def _audit_values(
    session: Session,
    actor: UserView,
    participant: Any,
    log_id: str,
    sequence: int,
    old: Mapping[str, StoredValue],
    new: Mapping[str, StoredValue],
    reason: str | None,
) -> list[str]:
    changed = [name for name in {**old, **new} if value_meaning(old.get(name)) != value_meaning(new.get(name))]
    for name in changed:
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=participant.site,
            participant=participant.participant_id,
            form=log_id,
            field=name,
            action="log.value_changed" if name in old else "log.value_entered",
            old_value=audit_value(old.get(name)),
            new_value=audit_value(new.get(name)),
            reason=reason,
            detail={"sequence": sequence},
        )
    return changed


def add_entry(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    log_id: str,
    entries: Mapping[str, Any],
    *,
    typed_on_site_clock: bool = False,
) -> LogEntryView:
    """Add an entry to a participant's log (the next sequence); every value audited."""
    loaded = current_protocol(engine)
    protocol = loaded.protocol
    log = log_def(protocol, log_id)
    with session_scope(engine) as session, audit.gathered(session):
        participant = _writable(session, actor, participant_id, f"add entries to the {log.name} log")
        values = _validated(protocol, log, participant, entries, {}, typed_on_site_clock)
        last = session.execute(
            select(func.max(log_entries.c.sequence)).where(
                log_entries.c.participant_id == participant_id, log_entries.c.log_id == log_id
            )
        ).scalar_one()
        sequence = (last or 0) + 1
        now = clock.now()
        entry_id = session.execute(
            log_entries.insert().returning(log_entries.c.id),
            {"participant_id": participant_id, "log_id": log_id, "sequence": sequence,
             "entry_values": dump_values(values), "state": ACTIVE, "version": 1,
             "protocol_version": protocol.version.number, "created_at": now, "created_by": actor.username,
             "updated_at": now, "updated_by": actor.username},
        ).scalar_one()  # fmt: skip
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=participant.site,
            participant=participant_id,
            form=log_id,
            action="log.entry_added",
            new_value={"sequence": sequence},
            detail={"sequence": sequence},
        )
        _audit_values(session, actor, participant, log_id, sequence, {}, values, None)
        return read_entry(session, entry_id, participant.site)


def _void_coding(
    session: Session,
    actor: UserView,
    participant: Any,
    log: LogDef,
    entry_id: int,
    sequence: int,
    old: Mapping[str, StoredValue],
    new: Mapping[str, StoredValue],
    reason: str,
) -> None:
    """A medication or condition renamed loses its coding (it coded the old name): removed, audited
    ``log.coding_voided``."""
    if log.sdtm is None:
        return
    topic = log.sdtm.variables[LOG_TOPIC[log.sdtm.domain]]
    if value_meaning(old.get(topic)) == value_meaning(new.get(topic)):
        return
    coding = session.execute(select(log_codings).where(log_codings.c.entry_id == entry_id)).first()
    if coding is None:
        return
    session.execute(log_codings.delete().where(log_codings.c.entry_id == entry_id))
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=participant.site,
        participant=participant.participant_id,
        form=log.id,
        action="log.coding_voided",
        old_value={"dictionary": coding.dictionary, "version": coding.version, "verbatim": coding.verbatim,
                   "code": coding.code, "name": coding.name},
        reason=reason,
        detail={"sequence": sequence},
    )  # fmt: skip


def _reason(reason: str | None, what: str) -> str:
    checked_text(reason, "reason", error=LogError)
    if not (reason or "").strip():
        raise LogError(f"reason: {what} needs a reason")
    return (reason or "").strip()


def amend_entry(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    log_id: str,
    sequence: int,
    entries: Mapping[str, Any],
    *,
    reason: str | None,
    version: int | None = None,
    typed_on_site_clock: bool = False,
) -> LogEntryView:
    """Amend an entry's values with a reason; each changed value audited with the old and the new. A removed entry
    is not amended; values sent unchanged are no change (and refused as such, so nothing is audited for nothing).
    ``version`` is the entry's version the amendment was made from (the page, the API and the CLI send it): another
    change in between refuses it (``LogVersionConflict``), so of two people amending one entry the later is told."""
    loaded = current_protocol(engine)
    protocol = loaded.protocol
    log = log_def(protocol, log_id)
    with session_scope(engine) as session, audit.gathered(session):
        participant = _writable(session, actor, participant_id, f"amend entries of the {log.name} log")
        why = _reason(reason, f"amending entry {sequence} of {log_id}")
        row = entry_row(session, participant_id, log_id, sequence, version)
        if row.state == REMOVED:
            raise LogError(f"sequence: entry {sequence} of {log_id} was removed ({row.removed_reason}); add a new one")
        old = load_values(row.entry_values)
        values = _validated(protocol, log, participant, entries, old, typed_on_site_clock)
        if not [n for n in {**old, **values} if value_meaning(old.get(n)) != value_meaning(values.get(n))]:
            raise LogError(f"values: nothing changes in entry {sequence} of {log_id}")
        session.execute(
            log_entries.update()
            .where(log_entries.c.id == row.id)
            .values(entry_values=dump_values(values), version=row.version + 1, updated_at=clock.now(),
                    updated_by=actor.username, **void_review(session, actor, participant, row, why))
        )  # fmt: skip
        _audit_values(session, actor, participant, log_id, sequence, old, values, why)
        _void_coding(session, actor, participant, log, row.id, sequence, old, values, why)
        return read_entry(session, row.id, participant.site)


def remove_entry(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    log_id: str,
    sequence: int,
    *,
    reason: str | None,
    version: int | None = None,
) -> LogEntryView:
    """Remove an entry with a reason: it is kept, marked removed, and left out of the SDTM domains. ``version`` as
    for ``amend_entry``."""
    loaded = current_protocol(engine)
    log = log_def(loaded.protocol, log_id)
    with session_scope(engine) as session, audit.gathered(session):
        participant = _writable(session, actor, participant_id, f"remove entries of the {log.name} log")
        why = _reason(reason, f"removing entry {sequence} of {log_id}")
        row = entry_row(session, participant_id, log_id, sequence, version)
        if row.state == REMOVED:
            raise LogError(f"sequence: entry {sequence} of {log_id} was removed already ({row.removed_reason})")
        session.execute(
            log_entries.update()
            .where(log_entries.c.id == row.id)
            .values(state=REMOVED, removed_reason=why, version=row.version + 1, updated_at=clock.now(),
                    updated_by=actor.username, **void_review(session, actor, participant, row, why))
        )  # fmt: skip
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=participant.site,
            participant=participant_id,
            form=log_id,
            action="log.entry_removed",
            old_value=ACTIVE,
            new_value=REMOVED,
            reason=why,
            detail={"sequence": sequence},
        )
        return read_entry(session, row.id, participant.site)


def list_entries(
    engine: Engine, actor: UserView, participant_id: str, log_id: str | None = None
) -> tuple[LogEntryView, ...]:
    """A participant's log entries (one log, or all), removed ones included, by log then sequence."""
    _role(actor, READERS, "read log entries")
    protocol = current_protocol(engine).protocol
    if log_id is not None:
        log_def(protocol, log_id)
    with read_scope(engine) as session:
        participant = participant_row(session, actor, participant_id)
        query = SELECT_ENTRIES.where(log_entries.c.participant_id == participant_id)
        if log_id is not None:
            query = query.where(log_entries.c.log_id == log_id)
        rows = session.execute(query.order_by(log_entries.c.log_id, log_entries.c.sequence)).all()
        return tuple(entry_view(r, participant.site) for r in rows)


def entry_for_coding(engine: Engine, participant_id: str, log_id: str, sequence: int) -> LogEntryView | None:
    """One entry as stored now, with its coding, for the coding pages (``services.medication_coding`` checks the
    coder's role before it calls this); None when there is no such entry."""
    with read_scope(engine) as session:
        row = session.execute(
            SELECT_ENTRIES.add_columns(participants.c.site)
            .join(participants, participants.c.participant_id == log_entries.c.participant_id)
            .where(log_entries.c.participant_id == participant_id, log_entries.c.log_id == log_id,
                   log_entries.c.sequence == sequence)
        ).first()  # fmt: skip
        return None if row is None else entry_view(row, row.site)
