"""Accounts under the two-person rule: creating, re-enabling and resetting accounts, as requests when guarded.

``trialwright.domain.approvals`` says which accounts are guarded and who may approve. Here each use case is one
transaction: a change to an unguarded account is done at once; a change to a guarded one is recorded as a
pending request (audited ``user.request_made``, approvers notified) and done only when a second person of an
approving role approves it (audited ``user.request_approved`` with the change itself; the unblinded roles and
the sponsor contact notified). A rejection is audited too. New accounts and resets never carry a password:
they return a set-password token (``trialwright.services.credentials``), shown once.

Setting up a trial: while fewer than two accounts (disabled ones included, so that disabling the second
administrator does not reopen the door; the simulator's own accounts not, as no person signs in as them) hold an
approving role, an approving (non-unblinded) account is created at once, so that the first administrator can add
the second person; the audit entry says so.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, select
from sqlalchemy.orm import Session

from trialwright.domain.approvals import RequestKind, approval_refusal, guarded_roles, same_person
from trialwright.domain.masking import UNBLINDED_ROLES
from trialwright.domain.paging import DEFAULT_LIMIT, Page
from trialwright.domain.roles import SIMULATION_ACTOR, Role
from trialwright.domain.text import checked_text
from trialwright.protocol import Protocol
from trialwright.services import audit, clock
from trialwright.services.credentials import IssuedToken, issue_in, retire_password_in
from trialwright.services.email.outbox import enqueue, recipients
from trialwright.services.paging import keyset_page
from trialwright.services.users import (
    UserError,
    UserView,
    create_user_in,
    generate_password,
    normalise_username,
    trial_names_in,
)
from trialwright.store.approval_tables import account_requests
from trialwright.store.auth_tables import users
from trialwright.store.engine import inserted_id, read_scope, session_scope
from trialwright.store.randomization_tables import notifications
from trialwright.store.tables import audit_entries
from trialwright.store.tables import sites as sites_table

__all__ = [
    "SPONSOR",
    "AccountChange",
    "RequestView",
    "approve",
    "enable",
    "may_approve",
    "page_requests",
    "pending_requests",
    "reject",
    "request_create",
    "request_reset",
    "sponsor_notices",
]

#: The notifications address of the sponsor contact (no account holds it; ``trialwright user notices`` lists
#: what is addressed to it, to forward).
SPONSOR = "sponsor"


@dataclass(frozen=True)
class RequestView:
    """A request under the two-person rule."""

    id: int
    kind: RequestKind
    username: str
    role: Role
    sites: tuple[str, ...]
    full_name: str | None
    requested_by: str
    requested_at: dt.datetime
    reason: str
    state: str
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_reason: str | None


@dataclass(frozen=True)
class AccountChange:
    """What a create, reset or enable led to: done now, or waiting for a second person (``pending``)."""

    username: str
    pending: RequestView | None = None
    token: IssuedToken | None = None


def _request_view(row: Any) -> RequestView:
    return RequestView(
        id=row.id,
        kind=RequestKind(row.kind),
        username=row.username,
        role=Role(row.role),
        sites=tuple(s for s in row.sites.split(",") if s),
        full_name=row.full_name,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        reason=row.reason,
        state=row.state,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
    )


def may_approve(protocol: Protocol, role: Role) -> bool:
    """Whether this role approves requests under the two-person rule in this trial."""
    return role.value in protocol.masking.account_approvers


def _user_row(session: Session, username: str) -> Any:
    row = session.execute(select(users).where(users.c.username == username.strip().lower())).first()
    if row is None:
        raise UserError(f"username: no user {username!r}")
    return row


def _notify(session: Session, roles: Sequence[str], subject: str) -> None:
    now = clock.now()
    for role in roles:
        session.execute(notifications.insert().values(role=role, subject=subject, participant_id=None, created_at=now))


def _sponsor_contact(protocol: Protocol) -> str:
    sponsor = protocol.trial.sponsors[0]
    who = sponsor.responsible_person or sponsor.organisation
    return f"{who} <{sponsor.address.email}>" if sponsor.address.email else who


def _record_request(
    session: Session,
    protocol: Protocol,
    *,
    kind: RequestKind,
    username: str,
    role: Role,
    sites: Sequence[str],
    full_name: str | None,
    actor: str,
    reason: str,
) -> RequestView:
    requester = session.execute(select(users.c.active).where(users.c.username == actor)).first()
    if requester is None or not requester.active:
        # Otherwise the requester is only a name typed in, and one person could be both requester and approver.
        raise UserError(
            f"two-person rule: a request is made by a person's own active account, not {actor!r} "
            "(on the command line: --as YOUR_ACCOUNT, whose password is asked)"
        )
    waiting = session.execute(
        select(account_requests.c.id).where(
            account_requests.c.username == username, account_requests.c.state == "pending"
        )
    ).first()
    if waiting is not None:
        raise UserError(f"username: request {waiting.id} about {username!r} is already waiting for approval")
    request_id = inserted_id(
        session,
        account_requests.insert().values(
            kind=kind.value,
            username=username,
            role=role.value,
            sites=",".join(sites),
            full_name=full_name,
            requested_by=actor,
            requested_at=clock.now(),
            reason=reason,
            state="pending",
        ),
    )
    audit.record(
        session,
        actor=actor,
        action="user.request_made",
        new_value={"request": request_id, "kind": kind.value, "username": username, "role": role.value},
        reason=reason or None,
        detail={"rule": "two-person rule", "approvers": list(protocol.masking.account_approvers)},
    )
    _notify(
        session,
        protocol.masking.account_approvers,
        f"Request {request_id} by {actor} to {kind.value} the {role.value} account {username} awaits a second person",
    )
    enqueue(
        session,
        "request_made",
        recipients(session, protocol.masking.account_approvers, None),
        {"request": request_id, "request_kind": kind.value, "role": role.value, "username": username,
         "requested_by": actor},
        key=f"request:{request_id}:made",
    )  # fmt: skip
    row = session.execute(select(account_requests).where(account_requests.c.id == request_id)).one()
    return _request_view(row)


def _mail_decision(session: Session, row: Any, state: str, decided_by: str, roles: Sequence[str]) -> None:
    """E-mail the requester (and ``roles``) that a request was approved or rejected."""
    enqueue(
        session,
        "request_decided",
        sorted({*recipients(session, roles, None), row.requested_by}),
        {"request": row.id, "request_kind": row.kind, "role": row.role, "username": row.username,
         "requested_by": row.requested_by, "decided_by": decided_by, "state": state},
        key=f"request:{row.id}:{state}",
    )  # fmt: skip


def _approvers_count(session: Session, protocol: Protocol) -> int:
    """How many accounts hold an approving role, for the setting-up rule. Disabled ones count (disabling the second
    administrator must not reopen the door: disabling is done at once, so one person could otherwise disable the
    other and create a second approver of their own). The simulator's accounts do not: their passwords are drawn
    and never shown, so no person signs in as them and they approve nothing; counted, they would leave a trial
    simulated into a new database with one real administrator and no one to approve the second (walk 3 F7)."""
    approving = set(
        session.execute(select(users.c.username).where(users.c.role.in_(protocol.masking.account_approvers))).scalars()
    )
    return len(approving - _simulated_accounts(session))


def _simulated_accounts(session: Session) -> set[str]:
    """The usernames the simulator created (their ``user.created`` entry's actor is the simulation)."""
    made = session.execute(
        select(audit_entries.c.new_value).where(
            audit_entries.c.action == "user.created", audit_entries.c.actor == SIMULATION_ACTOR
        )
    ).scalars()
    return {str(json.loads(value)["username"]) for value in made if value is not None}


def request_create(
    engine: Engine,
    protocol: Protocol,
    *,
    actor: str,
    username: str,
    role: Role | str,
    sites: Sequence[str] = (),
    full_name: str | None = None,
    reason: str = "",
) -> AccountChange:
    """Create an account: at once with a set-password token, or, for a guarded role, as a request."""
    name = normalise_username(username)
    try:
        role = Role(role)
    except ValueError:
        raise UserError(f"role: must be one of {', '.join(r.value for r in Role)}") from None
    checked_text(reason, "reason", error=UserError)
    checked_text(full_name, "full_name", multiline=False, error=UserError)
    wanted = sorted(set(sites))
    with session_scope(engine) as session:
        guarded = role in guarded_roles(protocol.masking.account_approvers)
        setting_up = role not in UNBLINDED_ROLES and _approvers_count(session, protocol) < 2
        if guarded and not setting_up:
            if role.site_scoped and not wanted:
                raise UserError(f"site: a {role.value} works at sites; name at least one with --site")
            known = set(session.execute(select(sites_table.c.code)).scalars())
            unknown = [s for s in wanted if s not in known]
            if unknown:
                raise UserError(f"site: unknown site {', '.join(unknown)} (sites: {', '.join(sorted(known))})")
            if session.execute(select(users.c.id).where(users.c.username == name)).first() is not None:
                raise UserError(f"username: {name!r} is already taken")
            pending = _record_request(
                session,
                protocol,
                kind=RequestKind.CREATE,
                username=name,
                role=role,
                sites=wanted,
                full_name=full_name,
                actor=actor,
                reason=reason,
            )
            return AccountChange(name, pending=pending)
        detail: dict[str, object] | None = {"rule": "setting up: fewer than two approvers"} if guarded else None
        created = create_user_in(
            session,
            username=name,
            password=generate_password(name, trial_names_in(session)),  # never shown: the holder sets their own
            role=role,
            sites=wanted,
            full_name=full_name,
            actor=actor,
            detail=detail,
        )
        token = issue_in(session, _user_row(session, created.username), issued_by=actor)
        return AccountChange(created.username, token=token)


def request_reset(engine: Engine, protocol: Protocol, username: str, *, actor: str, reason: str = "") -> AccountChange:
    """Reset a password: the old one stops working and a set-password token is issued; for a guarded
    account, a request (the old password keeps working until approval)."""
    checked_text(reason, "reason", error=UserError)
    with session_scope(engine) as session:
        row = _user_row(session, username)
        pending = _request_if_guarded(session, protocol, row, RequestKind.RESET, actor=actor, reason=reason)
        if pending is not None:
            return AccountChange(row.username, pending=pending)
        return AccountChange(row.username, token=_reset_in(session, row, actor=actor, reason=reason))


def _request_if_guarded(
    session: Session, protocol: Protocol, row: Any, kind: RequestKind, *, actor: str, reason: str
) -> RequestView | None:
    """For an account the two-person rule guards, record a request of ``kind`` and return it (else None)."""
    role = Role(row.role)
    if role not in guarded_roles(protocol.masking.account_approvers):
        return None
    return _record_request(
        session,
        protocol,
        kind=kind,
        username=row.username,
        role=role,
        sites=(),
        full_name=None,
        actor=actor,
        reason=reason,
    )


def _reset_in(
    session: Session, row: Any, *, actor: str, reason: str, detail: dict[str, Any] | None = None
) -> IssuedToken:
    retire_password_in(session, row)
    audit.record(
        session,
        actor=actor,
        action="user.password_reset",
        reason=reason or None,
        detail={"username": row.username, **(detail or {})},
    )
    return issue_in(session, row, issued_by=actor)


def enable(engine: Engine, protocol: Protocol, username: str, *, actor: str, reason: str = "") -> AccountChange:
    """Re-enable a disabled account: at once, or for a guarded account, as a request."""
    checked_text(reason, "reason", error=UserError)
    with session_scope(engine) as session:
        row = _user_row(session, username)
        if row.active:
            raise UserError(f"username: {row.username!r} is already enabled")
        pending = _request_if_guarded(session, protocol, row, RequestKind.ENABLE, actor=actor, reason=reason)
        if pending is not None:
            return AccountChange(row.username, pending=pending)
        _enable_in(session, row, actor=actor, reason=reason)
        return AccountChange(row.username)


def _enable_in(session: Session, row: Any, *, actor: str, reason: str, detail: dict[str, Any] | None = None) -> None:
    session.execute(
        users.update().where(users.c.id == row.id).values(active=True, failed_attempts=0, locked_until=None)
    )
    audit.record(
        session,
        actor=actor,
        action="user.enabled",
        old_value={"active": False},
        new_value={"active": True},
        reason=reason or None,
        detail={"username": row.username, **(detail or {})},
    )


def pending_requests(engine: Engine) -> list[RequestView]:
    """The approvers' work list: every request waiting for a second person, oldest first."""
    with read_scope(engine) as session:
        rows = session.execute(
            select(account_requests).where(account_requests.c.state == "pending").order_by(account_requests.c.id)
        )
        return [_request_view(r) for r in rows]


def page_requests(engine: Engine, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page[RequestView]:
    """The approvers' work list a page at a time: the requests waiting for a second person, newest first, by
    keyset on the request number (``services/paging.py``), with their count."""
    with read_scope(engine) as session:
        query = select(account_requests).where(account_requests.c.state == "pending")
        return keyset_page(session, query, [account_requests.c.id], lambda s, rows: [_request_view(r) for r in rows],
                           limit=limit, cursor=cursor)  # fmt: skip


def _pending(session: Session, request_id: int) -> Any:
    row = session.execute(select(account_requests).where(account_requests.c.id == request_id)).first()
    if row is None:
        raise UserError(f"request: no request {request_id}")
    if row.state != "pending":
        raise UserError(f"request: request {request_id} was already {row.state} by {row.decided_by}")
    return row


def _decide(session: Session, request_id: int, state: str, decided_by: str, reason: str | None) -> None:
    """Record the decision on a request only if it is still pending, so that of two people deciding at once
    exactly one decision stands: the other's update finds the request decided (PostgreSQL re-checks the
    condition once the first commits; SQLite's writers are serialised) and is refused naming who decided."""
    decided = cast(
        "CursorResult[Any]",
        session.execute(
            account_requests.update()
            .where(account_requests.c.id == request_id, account_requests.c.state == "pending")
            .values(state=state, decided_by=decided_by, decided_at=clock.now(), decision_reason=reason)
        ),
    )
    if decided.rowcount != 1:
        _pending(session, request_id)  # raises, naming the decision that came first
        raise UserError(f"request: request {request_id} was decided meanwhile")  # (_pending refuses first)


def _check_approver(protocol: Protocol, row: Any, approver: UserView) -> None:
    if not approver.active:
        raise UserError(f"two-person rule: {approver.username!r} is disabled")
    refusal = approval_refusal(
        approver=approver.username,
        approver_role=approver.role,
        requested_by=row.requested_by,
        account=row.username,
        approvers=protocol.masking.account_approvers,
    )
    if refusal is not None:
        raise UserError(refusal)


def approve(
    engine: Engine, protocol: Protocol, request_id: int, approver: UserView, *, reason: str = ""
) -> AccountChange:
    """A second person approves a pending request: the change is made, audited with both names, and the
    unblinded roles and the sponsor contact are notified. Create and reset return a set-password token."""
    checked_text(reason, "reason", error=UserError)
    with session_scope(engine) as session:
        row = _pending(session, request_id)
        _check_approver(protocol, row, approver)
        _decide(session, row.id, "approved", approver.username, reason or None)
        notified = [*sorted(r.value for r in UNBLINDED_ROLES), SPONSOR]
        audit.record(
            session,
            actor=approver.username,
            role=approver.role.value,
            action="user.request_approved",
            old_value={"state": "pending"},
            new_value={"request": row.id, "kind": row.kind, "username": row.username, "role": row.role},
            reason=reason or None,
            detail={"requested_by": row.requested_by, "notified": notified, "sponsor": _sponsor_contact(protocol)},
        )
        both = {"request": row.id, "requested_by": row.requested_by, "approved_by": approver.username}
        token: IssuedToken | None = None
        kind = RequestKind(row.kind)
        if kind is RequestKind.CREATE:
            created = create_user_in(
                session,
                username=row.username,
                password=generate_password(row.username, trial_names_in(session)),  # never shown (set by token)
                role=row.role,
                sites=[s for s in row.sites.split(",") if s],
                full_name=row.full_name,
                actor=approver.username,
                detail=both,
            )
            token = issue_in(session, _user_row(session, created.username), issued_by=approver.username)
        elif kind is RequestKind.RESET:
            token = _reset_in(
                session, _user_row(session, row.username), actor=approver.username, reason=row.reason, detail=both
            )
        else:
            account = _user_row(session, row.username)
            if account.active:
                raise UserError(f"username: {row.username!r} is already enabled")
            _enable_in(session, account, actor=approver.username, reason=row.reason, detail=both)
        subject = (
            f"Two-person rule: {row.kind} of the {row.role} account {row.username}, requested by {row.requested_by}, "
            f"approved by {approver.username}"
        )
        _notify(session, [r for r in notified if r != SPONSOR], subject)
        _notify(session, [SPONSOR], f"To {_sponsor_contact(protocol)}: {subject}")
        _mail_decision(session, row, "approved", approver.username, [r for r in notified if r != SPONSOR])
        return AccountChange(row.username, token=token)


def reject(engine: Engine, protocol: Protocol, request_id: int, approver: UserView, *, reason: str) -> RequestView:
    """An approver refuses a pending request (a reason is required; audited). The requester may withdraw
    their own request the same way."""
    checked_text(reason, "reason", error=UserError)
    if not reason.strip():
        raise UserError("reason: say why the request is rejected")
    with session_scope(engine) as session:
        row = _pending(session, request_id)
        if not same_person(approver.username, row.requested_by):
            _check_approver(protocol, row, approver)
        _decide(session, row.id, "rejected", approver.username, reason)
        audit.record(
            session,
            actor=approver.username,
            role=approver.role.value,
            action="user.request_rejected",
            old_value={"state": "pending"},
            new_value={"request": row.id, "kind": row.kind, "username": row.username, "role": row.role},
            reason=reason,
            detail={"requested_by": row.requested_by},
        )
        _mail_decision(session, row, "rejected", approver.username, [])
        return _request_view(session.execute(select(account_requests).where(account_requests.c.id == row.id)).one())


def sponsor_notices(engine: Engine, limit: int | None = None) -> list[tuple[dt.datetime, str]]:
    """What is addressed to the sponsor contact, newest first (to forward to them); all of it unless ``limit``."""
    with read_scope(engine) as session:
        rows = session.execute(
            select(notifications)
            .where(notifications.c.role == SPONSOR)
            .order_by(notifications.c.id.desc())
            .limit(limit)
        )
        return [(r.created_at, r.subject) for r in rows]
