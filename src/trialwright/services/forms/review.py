"""A form's lifecycle after entry: complete, verify (one form or a series), sign (21 CFR 11: the password
re-entered once for a series), lock and unlock; one audit entry per form and step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from trialwright.domain.forms import FormState, Transition, missing_required, next_state
from trialwright.domain.roles import Role
from trialwright.domain.text import checked_text
from trialwright.protocol import Protocol
from trialwright.services import audit, clock
from trialwright.services.bulk_writes import deferred_update
from trialwright.services.errors import FormError
from trialwright.services.forms.common import (
    DATA_ENTRY,
    FormView,
    _form_def,
    _keep_form,
    _load,
    _role,
    _view,
    _visit_forms,
    _visit_row,
    kept_from,
    lock_visit,
)
from trialwright.services.lock import require_unlocked
from trialwright.services.reauth import require_password
from trialwright.services.screening import participant_row
from trialwright.services.trial import current_protocol
from trialwright.services.users import AccessPolicy, UserView
from trialwright.store.data_tables import form_records
from trialwright.store.engine import session_scope

__all__ = [
    "complete_form",
    "lock_form",
    "sign_form",
    "sign_forms",
    "unlock_form",
    "verify_form",
    "verify_forms",
]


def _transition(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    move: Transition,
    *,
    reason: str | None = None,
    extra: Mapping[str, Any] | None = None,
    check: Callable[[Any, Protocol], None] | None = None,
) -> FormView:
    protocol = current_protocol(engine).protocol
    _form_def(protocol, visit_id, form_id, actor.role)
    with session_scope(engine) as session:
        require_unlocked(session)
        return _move(session, protocol, actor, participant_id, visit_id, form_id, move, reason, extra, check)


def _move(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    move: Transition,
    reason: str | None = None,
    extra: Mapping[str, Any] | None = None,
    check: Callable[[Any, Protocol], None] | None = None,
) -> FormView:
    """One lifecycle step of one form inside the caller's transaction, with its audit entry; the form's view."""
    moved = _step(session, protocol, actor, participant_id, visit_id, form_id, move, reason, extra, check)
    return _view(session, protocol, moved, visit_id)


def _step(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    move: Transition,
    reason: str | None = None,
    extra: Mapping[str, Any] | None = None,
    check: Callable[[Any, Protocol], None] | None = None,
) -> Any:
    """``_move`` without the view: the form record's row as the step leaves it (a caller that shows nothing, the
    simulator, reads no view: its open queries' count and missing fields)."""
    kept_from(protocol, actor.role, form_id)  # a casebook's signature steps each form without _form_def
    participant = participant_row(session, actor, participant_id)
    require_unlocked(session, participant_id, site=participant.site)  # a soft lock of the participant or their site
    visit_row = _visit_row(session, participant_id, visit_id)
    if visit_row is not None:
        lock_visit(session, visit_row.id)
    row = _visit_forms(session, visit_row).get(form_id) if visit_row is not None else None
    if row is None:
        raise FormError(f"form: {form_id} at {visit_id} has no data yet")
    state = FormState(row.state)
    try:
        before_lock = FormState(row.state_before_lock) if row.state_before_lock else None
        new_state = next_state(state, move, before_lock=before_lock)
    except ValueError as exc:
        raise FormError(str(exc)) from None
    if move is Transition.VERIFY and row.verified_at is not None:  # a signed form verified after its signature
        raise FormError(f"state: the form is already verified (by {row.verified_by}); a change voids it first")
    if check is not None:
        check(row, protocol)
    now = clock.now()
    values: dict[str, Any] = {"state": new_state.value}
    if move is Transition.VERIFY:
        values |= {"verified_at": now, "verified_by": actor.username}
    if move is Transition.SIGN:
        values |= {"signed_at": now, "signed_by": actor.username, "signature_meaning": protocol.signature_meaning}
    if move is Transition.LOCK:
        values |= {"locked_at": now, "locked_by": actor.username, "state_before_lock": state.value}
    if move is Transition.UNLOCK:
        values |= {"locked_at": None, "locked_by": None, "state_before_lock": None}
    # The form as the step leaves it: the row the UPDATE returned (every column), not read again.
    # A record still waiting in a bulk block (``services/bulk_writes.py``) is changed where it waits.
    moved = _keep_form(session, deferred_update(session, form_records, row.id, {**values, **(extra or {})}))
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=participant.site,
        participant=participant_id,
        form=form_id,
        action=_ACTIONS[move],
        old_value=state.value,
        new_value=new_state.value,
        reason=reason,
        detail={"visit": visit_id, **({"meaning": protocol.signature_meaning} if move is Transition.SIGN else {})},
    )
    return moved


_ACTIONS = {
    Transition.COMPLETE: "form.completed",
    Transition.VERIFY: "form.verified",
    Transition.SIGN: "form.signed",
    Transition.LOCK: "form.locked",
    Transition.UNLOCK: "form.unlocked",
}


def _every_required(row: Any, protocol: Protocol) -> None:
    missing = missing_required(protocol.form(row.form_id), _load(row))
    if missing:
        raise FormError(
            f"{missing[0]}: required; enter a value or record it as not done with a reason "
            f"(also missing: {', '.join(missing[1:]) or 'nothing else'})"
        )


def complete_form(engine: Engine, actor: UserView, participant_id: str, visit_id: str, form_id: str) -> FormView:
    """Mark a draft complete: every required field has a value or a reason."""
    _role(actor, DATA_ENTRY, "complete forms")
    return _transition(engine, actor, participant_id, visit_id, form_id, Transition.COMPLETE, check=_every_required)


def verify_form(engine: Engine, actor: UserView, participant_id: str, visit_id: str, form_id: str) -> FormView:
    """Source data verification by the monitor."""
    (view,) = verify_forms(engine, actor, [(participant_id, visit_id, form_id)])
    return view


def verify_forms(engine: Engine, actor: UserView, forms: Sequence[tuple[str, str, str]]) -> tuple[FormView, ...]:
    """Source data verification of a series of forms, each ``(participant, visit, form)``, as a monitor does
    them at a monitoring visit: one verification and audit entry per form; all or nothing."""
    _role(actor, [Role.MONITOR], "verify forms against source")
    return _series(engine, actor, forms, Transition.VERIFY, "verified")


def _series(
    engine: Engine, actor: UserView, forms: Sequence[tuple[str, str, str]], move: Transition, done: str
) -> tuple[FormView, ...]:
    """One lifecycle step on many forms in one transaction; the first form that cannot take it stops all."""
    if not forms:
        raise FormError("forms: name at least one form")
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        return _series_in(session, protocol, actor, forms, move, done)


def _series_in(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    forms: Sequence[tuple[str, str, str]],
    move: Transition,
    done: str,
    *,
    viewed: bool = True,
) -> tuple[FormView, ...]:
    """``_series`` in the caller's transaction (the caller rolls back on the exception). ``viewed=False``: the same
    steps, statements and entries but for the views' reads, and no views (an empty tuple)."""
    for _, visit_id, form_id in forms:
        _form_def(protocol, visit_id, form_id, actor.role)
    require_unlocked(session)
    views = []
    for participant_id, visit_id, form_id in forms:
        try:
            moved = _step(session, protocol, actor, participant_id, visit_id, form_id, move)
            if viewed:
                views.append(_view(session, protocol, moved, visit_id))
        except FormError as exc:
            if len(forms) == 1:
                raise
            raise FormError(f"{exc} ({participant_id} {visit_id}; nothing was {done})") from None
    return tuple(views)


def sign_form(
    engine: Engine,
    actor: UserView,
    participant_id: str,
    visit_id: str,
    form_id: str,
    *,
    password: str,
    policy: AccessPolicy | None = None,
) -> FormView:
    """The investigator's electronic signature: the password re-entered; the meaning is stored with it."""
    (view,) = sign_forms(engine, actor, [(participant_id, visit_id, form_id)], password=password, policy=policy)
    return view


def sign_forms(
    engine: Engine,
    actor: UserView,
    forms: Sequence[tuple[str, str, str]],
    *,
    password: str,
    policy: AccessPolicy | None = None,
) -> tuple[FormView, ...]:
    """Sign a series of forms, each ``(participant, visit, form)``, with one entry of the password.

    21 CFR 11.200(a)(1): a series of signings in one continuous session; the password is re-entered
    for the series, and each form still gets its own signature (signer, time, meaning) and audit entry.
    All or nothing: if one form cannot be signed, none is, and the error names that form. A wrong password
    counts toward the account lockout (``policy``; ``trialwright.services.reauth``).
    """
    _role(actor, [Role.INVESTIGATOR], "sign forms")
    if not forms:
        raise FormError("forms: name at least one form to sign")
    require_password(engine, actor.username, password, policy, purpose="sign", error=FormError,
                     message="password: re-enter your own password to sign")  # fmt: skip
    return _series(engine, actor, forms, Transition.SIGN, "signed")


def lock_form(engine: Engine, actor: UserView, participant_id: str, visit_id: str, form_id: str) -> FormView:
    """Lock one form (data manager): no edits until it is unlocked with a reason."""
    _role(actor, [Role.DATA_MANAGER], "lock forms")
    return _transition(engine, actor, participant_id, visit_id, form_id, Transition.LOCK)


def unlock_form(
    engine: Engine, actor: UserView, participant_id: str, visit_id: str, form_id: str, *, reason: str
) -> FormView:
    """Unlock one form with a reason (data manager); it returns to its state before the lock."""
    _role(actor, [Role.DATA_MANAGER], "unlock forms")
    checked_text(reason, "reason", error=FormError)
    if not reason.strip():
        raise FormError("reason: say why the form is unlocked")
    return _transition(engine, actor, participant_id, visit_id, form_id, Transition.UNLOCK, reason=reason)
