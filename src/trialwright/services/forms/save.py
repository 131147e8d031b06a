"""Entering data: saving one form (the one write path the page, the API, the CLI and the bulk import
share), reading it back, and the bulk import. Every change is audited field by field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from trialwright.domain.forms import (
    FormState,
    FormValueError,
    SoftBreach,
    StoredValue,
    Transition,
    missing_required,
    next_state,
)
from trialwright.domain.forms import audit_value as _shown
from trialwright.domain.forms import value_meaning as _meaning
from trialwright.domain.roles import SYSTEM_ACTOR
from trialwright.domain.text import checked_text
from trialwright.domain.wording import field_words
from trialwright.protocol import FormDef, Protocol
from trialwright.services import audit, clock
from trialwright.services.bulk_reads import answered, forget_held, reading_once
from trialwright.services.bulk_writes import deferred_insert, deferred_update, deferring
from trialwright.services.coherence import refused_breaches
from trialwright.services.deaths import forms_written
from trialwright.services.errors import FormError
from trialwright.services.forms.checks import (
    _after_death,
    _derive_all,
    _kit_check,
    _kit_codes,
    _refused_checks,
    _run_checks,
)
from trialwright.services.forms.common import (
    DATA_ENTRY,
    READERS,
    FormView,
    ImportReport,
    RefusedValues,
    _dump,
    _form_def,
    _keep_form,
    _load,
    _role,
    _view,
    _visit_forms,
    _visit_row,
    _withdrawn,
    form_created,
    lock_visit,
    validated_for,
)
from trialwright.services.forms.queries import _auto_close, _open_query
from trialwright.services.forms.read_ahead import look_ahead, read_ahead
from trialwright.services.forms.review import _move
from trialwright.services.forms.visits import _ensure_visit, missed_refusal
from trialwright.services.lock import hold_data_lock, require_unlocked
from trialwright.services.screening import NotFound, participant_row
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.data_tables import form_records
from trialwright.store.engine import session_scope

__all__ = [
    "VisitFormSave",
    "get_form",
    "import_forms",
    "save_form",
    "save_form_in",
    "save_visit_forms",
]


def _insert_form(
    session: Session,
    participant_id: str,
    visit_record_id: int,
    form_id: str,
    state: FormState,
    form_values: str,
    version: str,
    now: dt.datetime,
    by: str,
) -> Any:
    """A new form record (version 1), kept for the visit's held forms; its row (every column). In a bulk import's
    ``deferring`` block it is written with the batch's next statement (``services/bulk_writes.py``)."""
    row = deferred_insert(
        session,
        form_records,
        {"participant_id": participant_id, "visit_record_id": visit_record_id, "form_id": form_id,
         "state": state.value, "form_values": form_values, "version": 1, "protocol_version": version,
         "updated_at": now, "updated_by": by},
    )  # fmt: skip
    form_created(session, row.id)
    return _keep_form(session, row)


def _differs(old: StoredValue | None, new: StoredValue | None) -> bool:
    """Whether a value's stored form changed (the same object, the common case, has not: no JSON built)."""
    return old is not new and _shown(old) != _shown(new)


def _same_values(one: Mapping[str, StoredValue], other: Mapping[str, StoredValue]) -> bool:
    """The same fields holding the very same objects (so the same stored form); False says nothing."""
    return one.keys() == other.keys() and all(v is other[k] for k, v in one.items())


def _save(
    session: Session,
    protocol: Protocol,
    version: str,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    entries: Mapping[str, Any],
    *,
    reason: str | None,
    visit_date: dt.date | None,
    typed_on_site_clock: bool = False,
    reason_for_saved: bool = False,
) -> int:
    """Validate and store one form's values with their audit entries (written in one batch, or gathered into the
    enclosing batch of a bulk import); the record's id."""
    return int(_save_row(session, protocol, version, actor, participant_id, visit_id, form_id, entries,
                         reason=reason, visit_date=visit_date, typed_on_site_clock=typed_on_site_clock,
                         reason_for_saved=reason_for_saved).id)  # fmt: skip


def _save_row(
    session: Session,
    protocol: Protocol,
    version: str,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    entries: Mapping[str, Any],
    *,
    reason: str | None,
    visit_date: dt.date | None,
    typed_on_site_clock: bool = False,
    reason_for_saved: bool = False,
) -> Any:
    """``_save``, giving the form record's row as the save leaves it (every column: what a read would return)."""
    with audit.gathered(session):
        return _save_now(session, protocol, version, actor, participant_id, visit_id, form_id, entries,
                         reason=reason, visit_date=visit_date, typed_on_site_clock=typed_on_site_clock,
                         reason_for_saved=reason_for_saved)  # fmt: skip


def _save_now(
    session: Session,
    protocol: Protocol,
    version: str,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    entries: Mapping[str, Any],
    *,
    reason: str | None,
    visit_date: dt.date | None,
    typed_on_site_clock: bool,
    reason_for_saved: bool = False,
) -> Any:
    _role(actor, DATA_ENTRY, "enter form data")
    checked_text(reason, "reason", error=FormError)
    if answered(session, ("participant", participant_id)) is False:  # one save (a batch has read ahead)
        hold_data_lock(session)  # PostgreSQL: the locks are then read under it, as require_unlocked reads them
        look_ahead(session, protocol, participant_id, visit_id)
    participant = participant_row(session, actor, participant_id)
    # The trial lock, and a soft lock of the participant or their site.
    require_unlocked(session, participant_id, site=participant.site)
    _withdrawn(session, participant_id)
    form = _form_def(protocol, visit_id, form_id, actor.role)
    validated = validated_for(protocol, participant, form, entries, typed_on_site_clock=typed_on_site_clock)
    visit_row = _ensure_visit(session, protocol, actor, participant, visit_id, visit_date)
    _after_death(session, protocol, participant_id, visit_row, reason)
    if visit_row.missed_reason:
        raise missed_refusal(visit_id, visit_row.missed_reason)
    lock_visit(session, visit_row.id)
    rows = _visit_forms(session, visit_row)
    row = rows.get(form_id)
    state = FormState(row.state) if row is not None else FormState.DRAFT
    try:
        new_state = next_state(state, Transition.EDIT)
    except ValueError as exc:
        raise FormError(str(exc)) from None
    old = _load(row) if row is not None else {}
    merged = dict(old)
    for name, stored in validated.values.items():
        if stored is None:
            merged.pop(name, None)
        elif _meaning(old.get(name)) != _meaning(stored):
            merged[name] = stored
    # A value re-sent unchanged (the same canonical value and status) is not a change: it is kept as stored, with
    # what was typed and its unit (a page re-sends every field, in the field's unit), so nothing changes unaudited.
    changed = [name for name in validated.values if _meaning(old.get(name)) != _meaning(merged.get(name))]
    if not changed:
        if row is not None:
            return row
        return _create_empty(session, protocol, version, actor, participant, visit_row, form_id, reason)
    held = _kit_check(session, protocol, participant.participant_id, form_id, merged, changed)
    # A draft may be corrected without a reason (the trail still keeps the old value); after that, not.
    if state is not FormState.DRAFT and not (reason or "").strip():
        fields = ", ".join(f"{form_id}.{name}" for name in changed)  # said by their labels on the pages
        raise FormError(f"reason: the form is {state.value}; a change needs a reason for change (changed: {fields})")
    # A caller that overwrites whole records (the REDCap import) asks for a reason for any saved value it changes,
    # even on a draft: it cannot tell a correction from a second person's data, so it never overwrites in silence.
    resaved = [name for name in changed if name in old]
    if reason_for_saved and resaved and not (reason or "").strip():
        raise RefusedValues([f"{name}: changes the saved value of {form_id}.{name}; a change of a saved value needs "
                             "a reason for change" for name in resaved])  # fmt: skip
    pending = {fid: _load(r) for fid, r in rows.items()}
    pending[form_id] = merged
    before = {fid: dict(v) for fid, v in pending.items()}
    _derive_all(session, protocol, participant, visit_row, pending)
    derived_now: dict[str, list[str]] = {}
    for fid, v in pending.items():  # a value that is the very object it was is unchanged (most: no JSON built)
        was = before[fid]
        derived_now[fid] = [n for n, x in v.items() if x is not was.get(n) and _differs(was.get(n), x)]
    touched = {fid: [*names, *(changed if fid == form_id else ())] for fid, names in derived_now.items()}
    refused = refused_breaches(session, protocol, participant, form_id, pending, touched)
    refused += _refused_checks(session, protocol, participant, visit_row, pending, touched)
    if refused:
        raise RefusedValues(refused)
    now = clock.now()
    if row is None:
        saved = _insert_form(session, participant_id, visit_row.id, form_id, new_state,
                             _dump(pending[form_id]), version, now, actor.username)  # fmt: skip
        record_id = saved.id
    else:
        record_id = row.id
        voided = {}
        if state in {FormState.VERIFIED, FormState.SIGNED}:
            voided = {"verified_at": None, "verified_by": None, "signed_at": None, "signed_by": None,
                      "signature_meaning": None}  # fmt: skip
        updated = deferred_update(  # a record still waiting in a bulk import's block is changed where it waits
            session,
            form_records,
            row.id,
            {"state": new_state.value, "form_values": _dump(pending[form_id]), "version": row.version + 1,
             "updated_at": now, "updated_by": actor.username, **voided},
        )  # fmt: skip
        saved = _keep_form(session, updated)
        if state is not new_state:
            audit.record(
                session,
                actor=actor.username,
                role=actor.role.value,
                site=participant.site,
                participant=participant_id,
                form=form_id,
                action="form.signature_voided" if state is FormState.SIGNED else "form.verification_voided",
                old_value=state.value,
                new_value=new_state.value,
                reason=reason,
                detail={"visit": visit_id},
            )
            if state is FormState.SIGNED and row.verified_at is not None:  # verified after its signature: both go
                audit.record(
                    session,
                    actor=actor.username,
                    role=actor.role.value,
                    site=participant.site,
                    participant=participant_id,
                    form=form_id,
                    action="form.verification_voided",
                    old_value=state.value,
                    new_value=new_state.value,
                    reason=reason,
                    detail={"visit": visit_id, "verified_by": row.verified_by},
                )
    _kit_codes(session, protocol, participant_id, form_id, int(record_id), old, pending[form_id], held)
    for name in changed:
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=participant.site,
            participant=participant_id,
            form=form_id,
            field=name,
            action="form.value_changed" if name in old else "form.value_entered",
            old_value=_shown(old.get(name)),
            new_value=_shown(merged.get(name)),
            reason=reason,
            detail={"visit": visit_id},
        )
    forms_written(session, protocol, participant_id, pending)  # this form and those its derivations rewrite
    # Derived values that changed, in this form and in the other forms of the visit.
    for fid, values in pending.items():
        for name in protocol.form(fid).derived_ids():
            if _differs(before[fid].get(name), values.get(name)):
                audit.record(
                    session,
                    actor=SYSTEM_ACTOR,
                    site=participant.site,
                    participant=participant_id,
                    form=fid,
                    field=name,
                    action="form.value_derived",
                    old_value=_shown(before[fid].get(name)),
                    new_value=_shown(values.get(name)),
                    detail={"visit": visit_id, "because": f"{form_id} changed"},
                )
        if fid != form_id and not _same_values(values, before[fid]) and _dump(values) != _dump(before[fid]):
            _keep_form(session, deferred_update(session, form_records, rows[fid].id, {"form_values": _dump(values)}))
            _kit_codes(session, protocol, participant_id, fid, int(rows[fid].id), before[fid], values, None)
    for breach in (b for b in validated.soft if b.field in changed):
        _open_query(
            session,
            SYSTEM_ACTOR,
            participant,
            record_id,
            breach.field,
            "soft_limit",
            _soft_text(protocol, form, breach),
        )
    breached = {b.field for b in validated.soft}
    if row is not None:  # a form saved for the first time has no queries to close yet
        fixed = [name for name in changed if name not in breached]
        _auto_close(session, participant, record_id, "soft_limit", field_id=fixed, check_id=None)
    # The visit's forms as this save leaves them (what a fresh read would return), for the protocol's data checks: a
    # form this save left as it was keeps its stored text (its JSON is not built again).
    as_saved = {fid: _Stored(r.id, r.form_values if _same_values(pending[fid], before[fid]) else _dump(pending[fid]))
                for fid, r in rows.items()}  # fmt: skip
    as_saved[form_id] = _Stored(int(record_id), _dump(pending[form_id]))
    _run_checks(session, protocol, participant, visit_row, as_saved, {form_id: changed},
                created=int(record_id) if row is None else None)  # fmt: skip
    return saved


@dataclass(frozen=True)
class _Stored:
    """A form record's id and stored values, as the data checks read them."""

    id: int
    form_values: str


def _soft_text(protocol: Protocol, form: FormDef, breach: SoftBreach) -> str:
    """The query a soft-limit breach raises, naming the field by its label (stored once, in English)."""
    f = form.field(breach.field)
    value = f"{breach.value:g} {f.unit}" if f.unit else f"{breach.value:g}"
    label = field_words(protocol, breach.field, form_id=form.id) or breach.field
    return f"{label} {value} is outside the expected range {breach.limits}; please confirm or correct"


def _create_empty(
    session: Session,
    protocol: Protocol,
    version: str,
    actor: UserView,
    participant: Any,
    visit_row: Any,
    form_id: str,
    reason: str | None,
) -> Any:
    """A form started with no value yet (a draft), audited so that every form record has an entry that explains it."""
    now = clock.now()
    forms_written(session, protocol, participant.participant_id, [form_id])
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=participant.site,
        participant=participant.participant_id,
        form=form_id,
        action="form.started",
        new_value=FormState.DRAFT.value,
        reason=reason,
        detail={"visit": visit_row.visit_id},
    )
    return _insert_form(session, participant.participant_id, visit_row.id, form_id, FormState.DRAFT, "{}", version,
                        now, actor.username)  # fmt: skip


def save_form(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    entries: Mapping[str, Any],
    *,
    reason: str | None = None,
    visit_date: dt.date | None = None,
    complete: bool = False,
    typed_on_site_clock: bool = False,
) -> FormView:
    """Enter or change values on one form (the visit is recorded on its first form, today unless given).

    Dates are the site's local dates; a date and time needs its UTC offset unless ``typed_on_site_clock``
    (a page whose input says "site time") reads an offset-less time on the site's clock.

    With ``complete``, a draft that now has every required field is also marked complete, in the same
    transaction ("save and mark complete"); one that still lacks some is saved as a draft, and the
    returned view lists what is missing.
    """
    loaded = current_protocol(engine)
    with session_scope(engine) as session, reading_once(session):
        return _save_and_view(session, loaded.protocol, actor, participant_id, visit_id, form_id, entries,
                              reason=reason, visit_date=visit_date, complete=complete,
                              typed_on_site_clock=typed_on_site_clock, last=True)  # fmt: skip


def save_form_in(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    entries: Mapping[str, Any],
    *,
    reason: str | None = None,
    visit_date: dt.date | None = None,
    complete: bool = False,
    typed_on_site_clock: bool = False,
) -> FormView:
    """``save_form`` in the caller's transaction, under ``protocol`` as read in it: an API request's one
    transaction (``web/deps.py``, ``ApiWrite``: the caller's token, the protocol and the save). The caller commits,
    or rolls back on any exception; its transaction does nothing else that changes what a form save reads, and
    writes nothing and takes no lock after it (its audit entries are numbered in commit order by their INSERT,
    ``audit.record``'s ``last``)."""
    with reading_once(session):  # one save: a visit it records has no form to read back (``bulk_reads``)
        return _save_and_view(session, protocol, actor, participant_id, visit_id, form_id, entries, reason=reason,
                              visit_date=visit_date, complete=complete,
                              typed_on_site_clock=typed_on_site_clock, last=True)  # fmt: skip


def _save_and_view(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    entries: Mapping[str, Any],
    *,
    reason: str | None,
    visit_date: dt.date | None,
    complete: bool,
    typed_on_site_clock: bool = False,
    last: bool = False,
) -> FormView:
    """``save_form`` in the caller's transaction (``last``: which commits right after it, ``audit.record``'s)."""
    with audit.gathered(session, last=last):
        # The form as this transaction leaves it: the row the save's INSERT or UPDATE returned (every column, the
        # same row a fresh get_form would read), not read again.
        row = _save_row(session, protocol, protocol.version.number, actor, participant_id, visit_id, form_id,
                        entries, reason=reason, visit_date=visit_date,
                        typed_on_site_clock=typed_on_site_clock)  # fmt: skip
        if complete and row.state == FormState.DRAFT.value and not missing_required(protocol.form(form_id), _load(row)):
            return _move(session, protocol, actor, participant_id, visit_id, form_id, Transition.COMPLETE)
        return _view(session, protocol, row, visit_id)


@dataclass(frozen=True)
class VisitFormSave:
    """One form of ``save_visit_forms``: its values and whether to mark it complete (as ``save_form``)."""

    form_id: str
    entries: Mapping[str, Any]
    complete: bool = False


def save_visit_forms(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    saves: Sequence[VisitFormSave],
    *,
    visit_date: dt.date | None = None,
) -> list[FormView | FormError | ValueError]:
    """Several forms of one visit, each exactly as ``save_form`` would save it, one after the other, in one
    transaction: each in a savepoint, so a refused form (its ``FormError`` or ``ValueError`` in its place of
    the answer) leaves nothing and the others are saved, as separate ``save_form`` calls would leave them. What
    no form save changes is read once (``services/bulk_reads.py``) and the audit entries are written with one
    INSERT, in the order separate saves would have written them. The simulator saves a visit this way."""
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session, reading_once(session), audit.batched(session):
        return saved_each(session, protocol, actor, participant_id, visit_id, saves, visit_date)


def saved_each(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    saves: Sequence[VisitFormSave],
    visit_date: dt.date | None,
) -> list[FormView | FormError | ValueError]:
    """Each form of ``saves`` saved in its own savepoint of the caller's transaction (a refused one leaves nothing
    and its refusal takes its place in the answer), the shared data lock held first in the transaction itself, not
    in a savepoint a refusal rolls back (``save_visit_forms``, the simulator's visit)."""
    out: list[FormView | FormError | ValueError] = []
    hold_data_lock(session)
    for each in saves:
        nested = session.begin_nested()
        try:
            view = _save_and_view(session, protocol, actor, participant_id, visit_id, each.form_id, each.entries,
                                  reason=None, visit_date=visit_date, complete=each.complete)  # fmt: skip
        except (FormError, ValueError) as exc:
            nested.rollback()
            forget_held(session)
            out.append(exc)
            continue
        nested.commit()
        out.append(view)
    return out


def unsaved_each(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    saves: Sequence[VisitFormSave],
    visit_date: dt.date | None,
) -> list[FormView]:
    """``saved_each`` without savepoints: the first refusal raises (the caller rolls its transaction back and saves
    the forms again with ``saved_each``). The same writes, in the same order, when nothing is refused."""
    hold_data_lock(session)
    return [_save_and_view(session, protocol, actor, participant_id, visit_id, each.form_id, each.entries,
                           reason=None, visit_date=visit_date, complete=each.complete) for each in saves]  # fmt: skip


def get_form(engine: Engine, actor: UserView, participant_id: str, visit_id: str, form_id: str) -> FormView | None:
    """One form as stored (None if not started); only a role of ``READERS`` reads forms."""
    _role(actor, READERS, "read forms")
    protocol = current_protocol(engine).protocol
    _form_def(protocol, visit_id, form_id, actor.role)
    with session_scope(engine) as session:
        participant_row(session, actor, participant_id)
        visit_row = _visit_row(session, participant_id, visit_id)
        if visit_row is None:
            return None
        row = _visit_forms(session, visit_row).get(form_id)
        return None if row is None else _view(session, protocol, row, visit_id)


#: Rows whose audit entries one INSERT writes (the import is still one transaction: all or nothing).
IMPORT_BATCH = 500


class _Refused(Exception):
    """A row refused in the first, all-or-nothing pass: everything is rolled back and the rows are imported
    again, each in a savepoint, to report every refused row."""


def import_forms(
    engine: Engine,
    actor: UserView,
    rows: Sequence[Mapping[str, Any]],
    *,
    all_or_nothing: bool = True,
    batch: int = IMPORT_BATCH,
    reason_for_saved: bool = False,
) -> ImportReport:
    """Save many forms in one request with exactly the rules of ``save_form``.

    Each row: ``participant``, ``visit``, ``form``, ``values``, and optionally ``reason`` and
    ``visit_date``. Every rejected row is reported with its problems. With ``all_or_nothing`` (the
    default) one rejected row saves nothing; otherwise the good rows are saved.

    The rows run through the one-form save, in order, in one transaction, with economies that change no
    outcome: the facts no form save can change (the participant, their consent, randomization, dose,
    withdrawal, adverse events, the locks) are read once per participant (``services/bulk_reads.py``), and
    the audit entries of ``batch`` rows are written with one INSERT, in the order the saves made them. A row
    runs in a savepoint (a refused row leaves nothing, and the rows after it are checked against what the good
    rows left), except in the first pass of an all-or-nothing import: there the first refused row rolls
    everything back and the import runs again with savepoints, to find and report every refused row.
    """
    if batch < 1:
        raise ValueError("batch: at least 1 row")
    protocol = current_protocol(engine).protocol
    if all_or_nothing:
        try:
            return _import(engine, protocol, actor, rows, batch, all_or_nothing=True, savepoints=False,
                           reason_for_saved=reason_for_saved)  # fmt: skip
        except _Refused:
            pass  # nothing was stored; the second pass finds every refused row
    return _import(engine, protocol, actor, rows, batch, all_or_nothing=all_or_nothing, savepoints=True,
                   reason_for_saved=reason_for_saved)  # fmt: skip


def _import(
    engine: Engine,
    protocol: Protocol,
    actor: UserView,
    rows: Sequence[Mapping[str, Any]],
    batch: int,
    *,
    all_or_nothing: bool,
    savepoints: bool,
    reason_for_saved: bool = False,
) -> ImportReport:
    rejected: list[tuple[int, tuple[str, ...]]] = []
    saved = 0
    with session_scope(engine) as session, reading_once(session):
        hold_data_lock(session)  # before reading ahead and before the first row's savepoint a refusal rolls back
        for start in range(0, len(rows), batch):
            read_ahead(session, protocol, rows[start : start + batch])
            with audit.batched(session), deferring(session):
                for index, item in enumerate(rows[start : start + batch], start=start + 1):
                    if _import_row(session, protocol, actor, item, index, rejected, savepoint=savepoints,
                                   reason_for_saved=reason_for_saved):  # fmt: skip
                        saved += 1
        if rejected and all_or_nothing:
            session.rollback()
            return ImportReport(0, tuple(rejected))
        if saved:
            audit.record(
                session,
                actor=actor.username,
                role=actor.role.value,
                action="form.bulk_import",
                detail={"rows": len(rows), "saved": saved, "rejected": [i for i, _ in rejected]},
            )
    return ImportReport(saved, tuple(rejected))


_ROW_KEYS = ("participant", "visit", "form", "values", "reason", "visit_date")
_ROW_NEEDS = ("participant", "visit", "form", "values")


def _check_row(item: Any) -> None:
    """A row is an object with participant, visit, form and non-empty values (and optionally reason and
    visit_date); anything else is refused, never read as an empty form."""
    if not isinstance(item, Mapping):
        raise ValueError(f"row: must be an object with {', '.join(_ROW_NEEDS)}")
    problems = [f"{key}: unknown key (known: {', '.join(_ROW_KEYS)})" for key in item if key not in _ROW_KEYS]
    problems += [f"{key}: missing" for key in _ROW_NEEDS if item.get(key) in (None, "")]
    values = item.get("values")
    if values is not None and (not isinstance(values, Mapping) or not values):
        problems.append("values: must be a non-empty object of field values")
    if problems:
        raise FormValueError(problems)


def _row_names(item: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} {item.get(key)!s}" for key in ("participant", "visit", "form"))


def _import_row(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    item: Mapping[str, Any],
    index: int,
    rejected: list[tuple[int, tuple[str, ...]]],
    *,
    savepoint: bool,
    reason_for_saved: bool = False,
) -> bool:
    """One row saved (True), or refused with its problems added to ``rejected`` (False); without a savepoint a
    refused row raises ``_Refused`` (its transaction must be rolled back)."""
    nested = session.begin_nested() if savepoint else None
    try:
        _check_row(item)
        visit_date = item.get("visit_date")
        _save(
            session,
            protocol,
            protocol.version.number,
            actor,
            str(item.get("participant", "")),
            str(item.get("visit", "")),
            str(item.get("form", "")),
            dict(item.get("values") or {}),
            reason=item.get("reason"),
            visit_date=dt.date.fromisoformat(visit_date) if isinstance(visit_date, str) else visit_date,
            reason_for_saved=reason_for_saved,
        )
    except (FormValueError, FormError, NotFound, ValueError) as exc:
        if nested is None:
            raise _Refused from exc
        nested.rollback()
        forget_held(session)
        problems = exc.problems if isinstance(exc, FormValueError) else (str(exc),)
        if isinstance(exc, NotFound):  # name what was not found: the row's participant, visit or form
            problems = tuple(f"{p} ({_row_names(item)})" for p in problems)
        rejected.append((index, problems))
        return False
    if nested is not None:
        nested.commit()
    return True
