"""Sharing the de-identified IPD as the trial's sharing plan promises: publications, the access window, the
register of written data access requests, decisions, and issuing the package against an approved request.

A publication is dated on the sites' calendar: not after the sites' today, and not before the trial's first
randomization (a trial's primary publication cannot precede it). A request's written reasons are at least
``MIN_REASONS`` characters.

The window opens ``trial.sharing.access_delay_months`` after the first recorded publication. A request is
recorded with the requester's written reasons; an administrator or an investigator approves or rejects it
with a reason and their password; the unblinded statistician issues the package (arms included) only for an
approved request (claimed first, so it is issued once), inside the window, after the database lock, and only
when the k-anonymity check passes. Every step is audited; issuing records the package's files and their SHA-256.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from trialwright.domain.calendars import local_date
from trialwright.domain.paging import DEFAULT_LIMIT, Page
from trialwright.domain.roles import Role, only_roles_may
from trialwright.domain.text import checked_text
from trialwright.exports.ipd import IpdError, IpdExporter, KAnonymity, kanonymity
from trialwright.protocol import Protocol
from trialwright.protocol.base import SHORT_TEXT
from trialwright.services import audit, clock
from trialwright.services.errors import denied
from trialwright.services.exports import ExportError, export_source, run_export
from trialwright.services.forms import lock_state
from trialwright.services.paging import keyset_page
from trialwright.services.reauth import require_password
from trialwright.services.trial import current_protocol
from trialwright.services.users import AccessPolicy, UserView
from trialwright.store.engine import read_scope, session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.screening_tables import participants
from trialwright.store.sharing_tables import access_requests, publications

__all__ = [
    "MIN_REASONS",
    "AccessRequest",
    "SharingError",
    "access_window_opens",
    "check_kanonymity",
    "decide_request",
    "issue_ipd",
    "list_requests",
    "page_requests",
    "record_publication",
    "record_request",
]

#: Who records publications and requests.
RECORDERS = (Role.DATA_MANAGER, Role.ADMINISTRATOR)
#: Who decides on a request: an administrator or an investigator (the sponsor's or site's responsible person).
DECIDERS = (Role.ADMINISTRATOR, Role.INVESTIGATOR)
#: Who reads the register.
READERS = (Role.DATA_MANAGER, Role.ADMINISTRATOR, Role.INVESTIGATOR, Role.UNBLINDED_STATISTICIAN)
#: The fewest characters of a request's written reasons (stripped): a word or two is not a reason.
MIN_REASONS = 20
#: The rule a publication dated before the first randomization breaks.
_PUBLICATION_RULE = "a trial's primary publication cannot precede its first randomization"


class SharingError(ValueError):
    """A sharing step that breaks a rule; the message names the field and the rule."""


@dataclass(frozen=True)
class AccessRequest:
    """One data access request as registered."""

    number: str
    requester: str
    organisation: str
    email: str
    purpose: str
    reasons: str
    received_on: dt.date
    status: str
    decision_reason: str | None
    decided_by: str | None
    decided_at: dt.datetime | None
    issued_by: str | None
    issued_at: dt.datetime | None
    package: dict[str, str] | None


def _role(actor: UserView, roles: tuple[Role, ...], what: str) -> None:
    if actor.role not in roles:
        raise denied(SharingError)(f"role: {only_roles_may(roles, what)}")


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def record_publication(engine: Engine, actor: UserView, citation: str, published_on: dt.date) -> dt.date | None:
    """Record a publication of the results; returns the day the access window opens."""
    _role(actor, RECORDERS, "record publications")
    checked_text(citation, "citation", error=SharingError)
    if len(citation.strip()) < 10:
        raise SharingError("citation: give the full citation (authors, title, journal, year)")
    protocol = current_protocol(engine).protocol  # read once: the sites' today and the window's delay come from it
    today = _sites_today(protocol)
    if published_on > today:
        raise SharingError(f"published_on: {published_on} is in the future (today is {today} at the site)")
    with session_scope(engine) as session:
        first = _first_randomization_day(session, {s.code: s.timezone for s in protocol.sites})
        if first is None:
            raise SharingError(f"published_on: no participant is randomized yet; {_PUBLICATION_RULE}")
        if published_on < first:
            raise SharingError(
                f"published_on: {published_on} is before the first randomization on {first} at the site; "
                f"{_PUBLICATION_RULE}"
            )
        session.execute(
            publications.insert().values(
                citation=citation.strip(),
                published_on=published_on,
                recorded_at=clock.now(),
                recorded_by=actor.username,
            )
        )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="sharing.publication_recorded",
            new_value={"citation": citation.strip(), "published_on": published_on.isoformat()},
        )
        opens = _window_opens(session, protocol)
    return opens


def _sites_today(protocol: Protocol) -> dt.date:
    """Today on the sites' calendar (the latest site's: from 20:30 UTC it is already tomorrow in Tehran)."""
    return max(local_date(clock.now(), s.timezone) for s in protocol.sites)


def _first_randomization_day(session: Session, zones: dict[str, str]) -> dt.date | None:
    """The date of the trial's first randomization on its site's calendar (None: nobody is randomized)."""
    rows = session.execute(
        select(participants.c.site, func.min(allocation_entries.c.randomized_at))
        .join(participants, participants.c.participant_id == allocation_entries.c.participant_id)
        .where(allocation_entries.c.randomized_at.is_not(None))
        .group_by(participants.c.site)
    ).all()
    return min((local_date(at, zones[site], "randomized_at") for site, at in rows), default=None)


def access_window_opens(engine: Engine) -> dt.date | None:
    """The day requests may first be served: the first publication plus the plan's delay (None: no publication)."""
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        return _window_opens(session, protocol)


def _window_opens(session: Session, protocol: Protocol) -> dt.date | None:
    """``access_window_opens`` in the caller's transaction, with the protocol it already read."""
    first = session.execute(select(func.min(publications.c.published_on))).scalar()
    delay = protocol.trial.sharing.access_delay_months or 0
    return None if first is None else _add_months(first, delay)


def _view(row: Any) -> AccessRequest:
    r = row  # a Row of access_requests
    return AccessRequest(
        r.number,
        r.requester,
        r.organisation,
        r.email,
        r.purpose,
        r.reasons,
        r.received_on,
        r.status,
        r.decision_reason,
        r.decided_by,
        r.decided_at,
        r.issued_by,
        r.issued_at,
        json.loads(r.package_sha256) if r.package_sha256 else None,
    )


def record_request(
    engine: Engine,
    actor: UserView,
    *,
    requester: str,
    organisation: str,
    email: str,
    purpose: str,
    reasons: str,
    received_on: dt.date,
) -> AccessRequest:
    """Register a written request for the IPD."""
    _role(actor, RECORDERS, "record data access requests")
    fields = {
        "requester": requester,
        "organisation": organisation,
        "email": email,
        "purpose": purpose,
        "reasons": reasons,
    }
    for name, value in fields.items():
        if not value.strip():
            raise SharingError(f"{name}: required")
        if name in {"purpose", "reasons"}:
            checked_text(value, name, error=SharingError)
        else:
            checked_text(value, name, SHORT_TEXT, multiline=False, error=SharingError)
    if "@" not in email:
        raise SharingError("email: must be an e-mail address")
    if len(reasons.strip()) < MIN_REASONS:
        raise SharingError(
            "reasons: the written request must give the reasons for needing the data, in at least "
            f"{MIN_REASONS} characters (it has {len(reasons.strip())})"
        )
    today = _sites_today(current_protocol(engine).protocol)
    if received_on > today:
        raise SharingError(f"received_on: {received_on} is in the future (today is {today} at the site)")
    with session_scope(engine) as session:
        n = int(session.execute(select(func.count()).select_from(access_requests)).scalar_one()) + 1
        number = f"DAR-{n:04d}"
        session.execute(
            access_requests.insert().values(
                number=number,
                **{k: v.strip() for k, v in fields.items()},
                received_on=received_on,
                recorded_at=clock.now(),
                recorded_by=actor.username,
                status="pending",
            )
        )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="sharing.request_recorded",
            new_value={"request": number, "requester": requester.strip(), "purpose": purpose.strip()},
        )
        row = session.execute(select(access_requests).where(access_requests.c.number == number)).one()
    return _view(row)


def list_requests(engine: Engine, actor: UserView) -> list[AccessRequest]:
    """The whole register, newest first (pages: ``page_requests``)."""
    _role(actor, READERS, "read the data access register")
    with read_scope(engine) as session:
        rows = session.execute(select(access_requests).order_by(access_requests.c.id.desc())).all()
    return [_view(r) for r in rows]


def page_requests(
    engine: Engine,
    actor: UserView,
    *,
    status: str | None = None,
    search: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[AccessRequest]:
    """A page of the register, newest first; ``search`` keeps requests whose number starts with it or whose
    requester contains it."""
    _role(actor, READERS, "read the data access register")
    query = select(access_requests)
    if status:
        query = query.where(access_requests.c.status == status)
    if search:
        query = query.where(
            access_requests.c.number.startswith(search, autoescape=True)
            | access_requests.c.requester.contains(search, autoescape=True)
        )
    with read_scope(engine) as session:
        return keyset_page(
            session,
            query,
            (access_requests.c.id,),
            lambda _s, rows: [_view(r) for r in rows],
            limit=limit,
            cursor=cursor,
        )


def _request(session: Session, number: str) -> Any:
    row = session.execute(select(access_requests).where(access_requests.c.number == number)).first()
    if row is None:
        raise SharingError(f"request: there is no data access request {number}")
    return row


def may_decide_requests(actor: UserView) -> None:
    """Refuse, with the role rule, a user whose role may never decide a data access request (the command line asks
    it before it asks a password)."""
    _role(actor, DECIDERS, "decide data access requests")


def decide_request(
    engine: Engine,
    actor: UserView,
    number: str,
    *,
    approve: bool,
    reason: str,
    password: str,
    policy: AccessPolicy | None = None,
) -> AccessRequest:
    """Approve or reject a pending request, with a reason and the decider's password."""
    may_decide_requests(actor)
    checked_text(reason, "reason", error=SharingError)
    if not reason.strip():
        raise SharingError("reason: say why the request is approved or rejected")
    require_password(engine, actor.username, password, policy, purpose="data access decision", error=SharingError,
                     message="password: re-enter your own password to sign the decision")  # fmt: skip
    status = "approved" if approve else "rejected"
    with session_scope(engine) as session:
        row = _request(session, number)
        if row.status != "pending":
            raise SharingError(f"request: {number} is {row.status} already")
        session.execute(
            access_requests.update()
            .where(access_requests.c.number == number)
            .values(status=status, decision_reason=reason.strip(), decided_at=clock.now(), decided_by=actor.username)
        )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action=f"sharing.request_{status}",
            old_value="pending",
            new_value=status,
            reason=reason.strip(),
            detail={"request": number},
        )
        row = _request(session, number)
    return _view(row)


def check_kanonymity(engine: Engine, actor: UserView) -> KAnonymity:
    """The k-anonymity check of the IPD as it would be issued now (no data written)."""
    _role(actor, (Role.DATA_MANAGER, Role.UNBLINDED_STATISTICIAN), "run the k-anonymity check")
    source = export_source(engine, actor, with_arms=False)
    try:
        with source.snapshot():  # the check reads the trial as one snapshot, as the package is written
            return kanonymity(source)
    except IpdError as exc:
        raise SharingError(str(exc)) from None


def issue_ipd(engine: Engine, actor: UserView, number: str, out: Path) -> AccessRequest:
    """Write the de-identified IPD package for an approved request into ``out``; audited."""
    _role(actor, (Role.UNBLINDED_STATISTICIAN,), "issue the IPD package")
    opens = access_window_opens(engine)
    today = clock.now().date()
    if opens is None:
        raise SharingError("publication: no publication is recorded; the access window opens after one")
    if today < opens:
        raise SharingError(f"window: the access window opens on {opens} (the sharing plan's delay after publication)")
    if not lock_state(engine).locked:
        raise SharingError("database: the IPD is issued from the locked database only")
    # Claim the request first (approved -> issuing, guarded), so two people issuing at once cannot both do it.
    with session_scope(engine) as session:
        result: Any = session.execute(
            access_requests.update()
            .where(access_requests.c.number == number, access_requests.c.status == "approved")
            .values(status="issuing")
        )
        claimed = result.rowcount
        status = _request(session, number).status
        if claimed == 1:
            audit.record(session, actor=actor.username, role=actor.role.value, action="sharing.ipd_issuing",
                         old_value="approved", new_value="issuing", detail={"request": number})  # fmt: skip
    if claimed != 1:
        raise SharingError(f"request: {number} is {status}; the package is issued only against an approved request")
    try:
        written = run_export(engine, actor, "ipd", out, with_arms=True, exporter=IpdExporter())
    except BaseException as exc:
        with session_scope(engine) as session:  # give the request back: nothing was issued
            session.execute(
                access_requests.update()
                .where(access_requests.c.number == number, access_requests.c.status == "issuing")
                .values(status="approved")
            )
            audit.record(session, actor=actor.username, role=actor.role.value, action="sharing.ipd_not_issued",
                         old_value="issuing", new_value="approved", reason=str(exc)[:500] or type(exc).__name__,
                         detail={"request": number})  # fmt: skip
        if isinstance(exc, IpdError | ExportError):
            raise SharingError(str(exc)) from None
        raise
    with session_scope(engine) as session:
        session.execute(
            access_requests.update()
            .where(access_requests.c.number == number, access_requests.c.status == "issuing")
            .values(
                status="issued",
                issued_at=clock.now(),
                issued_by=actor.username,
                package_sha256=json.dumps(written.sha256, sort_keys=True),
            )
        )
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="sharing.ipd_issued",
            old_value="issuing",
            new_value="issued",
            detail={"request": number, "folder": out.name, "files": written.sha256},
        )
        row = _request(session, number)
    return _view(row)
