"""A participant's casebook: every visit's forms in the protocol's order, as stored, with what each form still
needs; the investigator signs the whole casebook with one password entry, and the monitor verifies a series of
its forms in one action (source data verification in bulk).

A signature covers exactly what was shown. Each form in the casebook carries a *seal*: a digest of its record
version, state and stored values. The page sends back the seals it showed; at signing (or verifying) each form's
seal is computed again inside the transaction, and a form whose seal differs (a value saved, a state changed by
someone else since the review) is not signed but excluded with the reason, as is a form not ready (not complete,
already signed, locked, an open query). A signed form not yet verified can still be verified: the verification
is recorded on it and the signature stands. Every form signed or verified gets its own audit entry (the same steps as
``review.sign_forms`` and ``review.verify_forms``: ``_move``). Forms hold no allocation: the casebook shows none.

The casebook also lists the participant's log entries (``services.forms.log_review``), each with its seal: signing
the casebook signs the entries it showed, and the monitor's bulk verification verifies those chosen, by the same
rules (changed since the review, removed, already done, an open query: left, with the reason).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from trialwright.domain.forms import FormState, Transition
from trialwright.domain.masking import kept_forms
from trialwright.domain.roles import Role
from trialwright.protocol import Protocol
from trialwright.services import audit, clock
from trialwright.services.errors import FormError
from trialwright.services.forms.common import READERS, FormView, QueryView, _role, _view
from trialwright.services.forms.log_review import CasebookEntry, apply_entries, casebook_entries
from trialwright.services.forms.queries import list_queries
from trialwright.services.forms.review import _move
from trialwright.services.lock import require_unlocked
from trialwright.services.log_views import LogEntryView
from trialwright.services.reauth import require_password
from trialwright.services.screening import participant_row
from trialwright.services.trial import current_protocol
from trialwright.services.users import AccessPolicy, UserView
from trialwright.store.auth_tables import users
from trialwright.store.data_tables import field_verifications, form_records, visit_records
from trialwright.store.engine import session_scope

__all__ = [
    "Casebook",
    "CasebookEntry",
    "CasebookForm",
    "CasebookOutcome",
    "casebook",
    "seal_of",
    "sign_casebook",
    "verification_fields",
    "verify_casebook",
]


@dataclass(frozen=True)
class CasebookForm:
    """One form of the casebook: its record (None = not started), its seal, and why it cannot be signed or
    verified now (None = it can)."""

    visit_id: str
    visit_name: str
    form_id: str
    view: FormView | None
    seal: str
    not_signable: str | None
    not_verifiable: str | None
    verified_fields: frozenset[str] = frozenset()  # fields whose source data verification still stands


@dataclass(frozen=True)
class Casebook:
    """A participant's casebook: every form in order, the participant's queries, and their log entries."""

    participant_id: str
    site: str
    forms: tuple[CasebookForm, ...]
    queries: tuple[QueryView, ...]
    names: Mapping[str, str] = field(default_factory=dict)  # username -> full name of who signed or verified
    entries: tuple[CasebookEntry, ...] = ()  # log entries, in the protocol's order of logs, then by sequence

    def name_of(self, username: str) -> str:
        """The person's name as the signature manifestation shows it (21 CFR 11.50): full name and username."""
        name = self.names.get(username)
        return username if not name or name == username else f"{name} ({username})"

    @property
    def signable(self) -> tuple[CasebookForm, ...]:
        return tuple(f for f in self.forms if f.not_signable is None)

    @property
    def verifiable(self) -> tuple[CasebookForm, ...]:
        return tuple(f for f in self.forms if f.not_verifiable is None)

    @property
    def signable_entries(self) -> tuple[CasebookEntry, ...]:
        return tuple(e for e in self.entries if e.not_signable is None)

    @property
    def verifiable_entries(self) -> tuple[CasebookEntry, ...]:
        return tuple(e for e in self.entries if e.not_verifiable is None)


@dataclass(frozen=True)
class CasebookOutcome:
    """What a casebook signing or bulk verification did: the forms and log entries it signed or verified, and each
    one it left with why."""

    done: tuple[FormView, ...]
    excluded: tuple[tuple[str, str, str], ...]  # (visit, form, reason)
    fields: tuple[tuple[str, str, str], ...] = ()  # (visit, form, field) verified by field
    entries_done: tuple[LogEntryView, ...] = ()
    entries_excluded: tuple[tuple[str, int, str], ...] = ()  # (log, sequence, reason)


def seal_of(row: Any) -> str:
    """A form record's seal: what the reviewer saw (version, state, stored values)."""
    text = json.dumps([row.version, row.state, json.loads(row.form_values)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _value_text(row: Any, field_id: str) -> str | None:
    """The field's stored value as the canonical JSON a field verification keeps (None: nothing stored)."""
    value = json.loads(row.form_values).get(field_id)
    return None if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


def verification_fields(protocol: Protocol, form_id: str) -> tuple[str, ...]:
    """The fields whose verification makes a form verified: every required field that is entered (not derived)."""
    return tuple(f.id for f in protocol.form(form_id).fields if f.required and f.derived is None)


def _not_signable(view: FormView | None) -> str | None:
    if view is None:
        return "not started"
    if view.state is FormState.DRAFT:
        return "not complete"
    if view.state is FormState.SIGNED:
        return "already signed"
    if view.state is FormState.LOCKED:
        return "locked"
    if view.open_queries:
        return "open queries"
    return None


def _not_verifiable(view: FormView | None) -> str | None:
    if view is None:
        return "not started"
    if view.state is FormState.DRAFT:
        return "not complete"
    if view.state is FormState.SIGNED and view.verified_by is None:
        return None  # verified after the signature, which stands (``domain.forms``)
    if view.state is FormState.SIGNED:
        return "already verified"
    if view.state is not FormState.COMPLETE:
        return f"already {view.state.value}"
    return None


def _forms(session: Session, protocol: Protocol, participant_id: str, role: Role) -> list[CasebookForm]:
    """The casebook's forms as ``role`` may read it: a form kept from a masked role is left out altogether (its
    presence, a visit's form filled or not, may differ by arm too; ``domain.masking.kept_forms``)."""
    kept = kept_forms(protocol, role)
    visits = {r.visit_id: r for r in session.execute(
        select(visit_records).where(visit_records.c.participant_id == participant_id)).all()}  # fmt: skip
    # In the order made (ids): an unscheduled visit's forms are listed in it, never as the database holds them.
    rows = {(r.visit_record_id, r.form_id): r for r in session.execute(
        select(form_records).where(form_records.c.participant_id == participant_id)
        .order_by(form_records.c.id)).all()}  # fmt: skip
    order: list[tuple[str, str, Sequence[str]]] = [(v.id, v.name, v.forms) for v in protocol.visits]
    order += [(vid, r.label or vid, tuple(f for (rid, f) in rows if rid == r.id))
              for vid, r in sorted(visits.items()) if r.unscheduled]  # fmt: skip
    standing: dict[int, set[str]] = {}
    by_id = {r.id: r for r in rows.values()}
    for v in session.execute(select(field_verifications).where(
            field_verifications.c.form_record_id.in_(list(by_id)))).all():  # fmt: skip
        if _value_text(by_id[v.form_record_id], v.field) == v.verified_value:
            standing.setdefault(v.form_record_id, set()).add(v.field)
    out = []
    for visit_id, name, form_ids in order:
        visit = visits.get(visit_id)
        for form_id in form_ids:
            if form_id in kept:
                continue
            row = rows.get((visit.id, form_id)) if visit is not None else None
            view = None if row is None else _view(session, protocol, row, visit_id)
            seal = "" if row is None else seal_of(row)
            fields = frozenset[str]() if row is None else frozenset(standing.get(row.id, []))
            out.append(CasebookForm(visit_id, name, form_id, view, seal, _not_signable(view), _not_verifiable(view),
                                    fields))  # fmt: skip
    return out


def casebook(engine: Engine, actor: UserView, participant_id: str) -> Casebook:
    """The participant's casebook as stored now (the blinded team's forms: no arm)."""
    _role(actor, READERS, "read casebooks")
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        participant = participant_row(session, actor, participant_id)
        forms = _forms(session, protocol, participant_id, actor.role)
        entries = casebook_entries(session, protocol, participant_id, participant.site)
        people = {p for f in forms if f.view is not None for p in (f.view.signed_by, f.view.verified_by) if p}
        people |= {p for e in entries for p in (e.view.signed_by, e.view.verified_by) if p}
        names = {r.username: r.full_name for r in session.execute(
            select(users.c.username, users.c.full_name).where(users.c.username.in_(sorted(people)))).all()}  # fmt: skip
    queries = tuple(list_queries(engine, actor, participant_id=participant_id))
    return Casebook(participant_id, participant.site, tuple(forms), queries, names, tuple(entries))


def _apply(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    reviewed: Mapping[tuple[str, str], str],
    move: Transition,
    fields: Mapping[tuple[str, str], tuple[str, Sequence[str]]] | None = None,
    entries: Mapping[tuple[str, int], str] | None = None,
) -> CasebookOutcome:
    if not reviewed and not fields and not entries:
        raise FormError("forms: review the casebook and choose at least one form or log entry")
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        require_unlocked(session)
        participant = participant_row(session, actor, participant_id)
        now = {(f.visit_id, f.form_id): f for f in _forms(session, protocol, participant_id, actor.role)}
        done: list[FormView] = []
        excluded: list[tuple[str, str, str]] = []
        verified: list[tuple[str, str, str]] = []
        for (visit_id, form_id), (seal, field_ids) in (fields or {}).items():
            current = now.get((visit_id, form_id))
            why = "not a form of this casebook" if current is None else current.not_verifiable
            if current is not None and current.seal != seal:
                why = "changed since you reviewed it; review the casebook again"
            entered = {f.id for f in protocol.form(form_id).fields if f.derived is None} if current else set()
            unknown = sorted(set(field_ids) - entered)
            if why is None and unknown:
                why = f"not a field of this form that is entered: {', '.join(unknown)}"
            if why is not None or current is None or current.view is None:
                excluded.append((visit_id, form_id, why or "not started"))
                continue
            record = current.view.id
            row = session.execute(select(form_records).where(form_records.c.id == record)).one()
            standing = set(current.verified_fields)
            for field_id in field_ids:
                value = _value_text(row, field_id)
                if value is None:
                    excluded.append((visit_id, form_id, f"{field_id}: nothing is stored to verify"))
                    continue
                this = (field_verifications.c.form_record_id == record) & (field_verifications.c.field == field_id)
                session.execute(field_verifications.delete().where(this))
                session.execute(field_verifications.insert().values(
                    form_record_id=record, field=field_id, verified_value=value, verified_at=clock.now(),
                    verified_by=actor.username))  # fmt: skip
                audit.record(session, actor=actor.username, role=actor.role.value, site=participant.site,
                             participant=participant_id, form=form_id, field=field_id,
                             action="form.field_verified", new_value=json.loads(value),
                             detail={"visit": visit_id})  # fmt: skip
                standing.add(field_id)
                verified.append((visit_id, form_id, field_id))
            if set(verification_fields(protocol, form_id)) <= standing:  # every required field: the form
                done.append(_move(session, protocol, actor, participant_id, visit_id, form_id, move))
        rolled_up = {(v.visit_id, v.form_id) for v in done}
        for (visit_id, form_id), seal in reviewed.items():
            if (visit_id, form_id) in rolled_up:
                continue
            current = now.get((visit_id, form_id))
            if current is None:
                excluded.append((visit_id, form_id, "not a form of this casebook"))
                continue
            why = current.not_signable if move is Transition.SIGN else current.not_verifiable
            if current.seal != seal:
                why = "changed since you reviewed it; review the casebook again"
            if why is not None:
                excluded.append((visit_id, form_id, why))
                continue
            done.append(_move(session, protocol, actor, participant_id, visit_id, form_id, move))
        entries_done, entries_excluded = apply_entries(session, protocol, actor, participant, entries or {}, move)
        return CasebookOutcome(tuple(done), tuple(excluded), tuple(verified), tuple(entries_done),
                               tuple(entries_excluded))  # fmt: skip


def sign_casebook(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    reviewed: Mapping[tuple[str, str], str],
    *,
    password: str,
    policy: AccessPolicy | None = None,
    entries: Mapping[tuple[str, int], str] | None = None,
) -> CasebookOutcome:
    """Sign every reviewed form of the casebook, ``(visit, form) -> seal`` as shown, and every reviewed log entry,
    ``(log, sequence) -> seal``, with one password entry (21 CFR 11.200(a)(1), as ``sign_forms``), in one
    transaction with one signature and audit entry per form and entry. A form or entry changed since the review, or
    not ready, is not signed; it is listed with the reason."""
    _role(actor, [Role.INVESTIGATOR], "sign forms")
    if not reviewed and not entries:
        raise FormError("forms: review the casebook and choose at least one form or log entry")
    require_password(engine, actor.username, password, policy, purpose="sign", error=FormError,
                     message="password: re-enter your own password to sign")  # fmt: skip
    return _apply(engine, actor, participant_id, reviewed, Transition.SIGN, entries=entries)


def verify_casebook(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    reviewed: Mapping[tuple[str, str], str],
    *,
    fields: Mapping[tuple[str, str], tuple[str, Sequence[str]]] | None = None,
    entries: Mapping[tuple[str, int], str] | None = None,
) -> CasebookOutcome:
    """Source data verification in one action by the monitor, in one transaction: the chosen forms of a
    casebook (``(visit, form) -> seal`` as shown), one verification and audit entry per form; and, by field,
    ``(visit, form) -> (seal, fields)``: each field's verification is kept with the value it verified and
    audited (``form.field_verified``), and the form is verified once every required entered field stands
    verified (``verification_fields``). A verification stands while the field holds the value verified. A form
    changed since the review or not complete is left, with the reason. The chosen log entries (``(log, sequence) ->
    seal`` as shown) are verified whole, each audited ``log.entry_verified``."""
    _role(actor, [Role.MONITOR], "verify forms against source")
    return _apply(engine, actor, participant_id, reviewed, Transition.VERIFY, fields, entries)
