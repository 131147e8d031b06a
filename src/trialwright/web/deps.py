"""Shared dependencies of routes, as ``Annotated`` aliases: settings, engine, the viewer, role checks, CSRF.

Nothing here is built at import time; everything comes from ``app.state``, set by ``create_app``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Concatenate, NoReturn, ParamSpec, TypeVar

from fastapi import Depends, Form, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from trialwright.domain.calendars import trial_calendars
from trialwright.domain.masking import Viewer, viewer_for
from trialwright.domain.roles import Role
from trialwright.protocol import Protocol
from trialwright.services import audit
from trialwright.services.randomization import PARTICIPANT_READERS
from trialwright.services.ratelimit import Limits
from trialwright.services.screening.common import READERS as SCREENING_READERS
from trialwright.services.tokens import TokenUse, record_use, resolve_token, token_in
from trialwright.services.trial import current_protocol, protocol_by_sha, protocol_in
from trialwright.services.users import AccessPolicy, SessionView, UserView, resolve_session
from trialwright.settings import Settings
from trialwright.store.engine import commit_now, is_postgresql, read_scope, session_scope
from trialwright.web.i18n import DEFAULT_LANGUAGE, LANGUAGES, N_
from trialwright.web.localized import trial_title
from trialwright.web.security import (
    CALENDAR_COOKIE,
    CSRF_COOKIE,
    LANG_COOKIE,
    SESSION_COOKIE,
    CsrfFailed,
    Forbidden,
    SignInRequired,
    tokens_match,
)
from trialwright.web.templating import NavItem, Page

__all__ = [
    "MAX_ROW_ID",
    "ApiReentry",
    "ApiUser",
    "ApiWrite",
    "ApproverPage",
    "ConfirmReentry",
    "CsrfChecked",
    "EngineDep",
    "LimitsDep",
    "PageDep",
    "PageReentry",
    "PolicyDep",
    "ProtocolDep",
    "ReadEngineDep",
    "RowId",
    "SessionDep",
    "SettingsDep",
    "SignedInPage",
    "api_write",
    "client_address",
    "nav_for",
    "offered_languages",
    "page_zone",
    "require_api_roles",
    "require_roles",
    "trial_language",
    "viewer_of",
]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def get_read_engine(request: Request) -> Engine:
    """The engine the analysis and the exports read through (a read replica, or the engine itself)."""
    return request.app.state.read_engine  # type: ignore[no-any-return]


def get_policy(request: Request) -> AccessPolicy:
    return request.app.state.policy  # type: ignore[no-any-return]


def get_limits(request: Request) -> Limits:
    return request.app.state.limits  # type: ignore[no-any-return]


def client_address(request: Request) -> str:
    """The caller's address (behind a reverse proxy: as uvicorn's trusted proxy headers give it)."""
    return request.client.host if request.client else "unknown"


def get_protocol(request: Request) -> Protocol:
    """The protocol the trial runs under now, read per request (one small read; the parse is cached per version):
    an amendment made by another worker, or by ``trialwright init`` while the app runs, holds from the next
    request in every worker."""
    return current_protocol(get_engine(request)).protocol


#: The largest row id either database stores (PostgreSQL ``integer``; SQLite's is larger).
MAX_ROW_ID = 2**31 - 1
#: A row id in a path: a larger number is refused with 422 before it reaches the database (which would fail).
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]

SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ReadEngineDep = Annotated[Engine, Depends(get_read_engine)]
PolicyDep = Annotated[AccessPolicy, Depends(get_policy)]
ProtocolDep = Annotated[Protocol, Depends(get_protocol)]
LimitsDep = Annotated[Limits, Depends(get_limits)]


def optional_session(request: Request, engine: EngineDep, policy: PolicyDep) -> SessionView | None:
    token = request.cookies.get(SESSION_COOKIE)
    return resolve_session(engine, token, policy) if token else None


SessionDep = Annotated[SessionView | None, Depends(optional_session)]


def nav_for(user: UserView | None) -> tuple[NavItem, ...]:
    """The navigation a role sees (later capabilities add their pages here)."""
    if user is None:
        return ()
    items = [NavItem("/", N_("Home"))]
    if user.role in SCREENING_READERS:  # the services' own rules: a link only where the page answers
        items.append(NavItem("/screening", N_("Screening")))
    if user.role in PARTICIPANT_READERS:
        items.append(NavItem("/participants", N_("Participants")))
        items.append(NavItem("/data/matrix", N_("Status matrix")))
    if user.role is Role.UNBLINDED_STATISTICIAN:
        items.append(NavItem("/randomization", N_("Allocation list")))
    if user.role is Role.UNBLINDED_PHARMACIST:
        items.append(NavItem("/pharmacy", N_("Pharmacy")))
    if user.role in {Role.UNBLINDED_STATISTICIAN, Role.UNBLINDED_PHARMACIST, Role.DSMB_MEMBER}:
        items.append(NavItem("/unblindings", N_("Unblinding log")))
    if user.role in {Role.ADMINISTRATOR, Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.OUTCOME_ASSESSOR,
                     Role.MONITOR, Role.DATA_MANAGER}:  # fmt: skip
        items.append(NavItem("/queries", N_("Queries")))
    if user.role in {Role.ADMINISTRATOR, Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.MONITOR, Role.DATA_MANAGER,
                     Role.BLINDED_STATISTICIAN}:  # fmt: skip
        items.append(NavItem("/safety", N_("Safety")))
    if user.role in {Role.DSMB_MEMBER, Role.UNBLINDED_STATISTICIAN}:
        items.append(NavItem("/dsmb", N_("DSMB safety review")))
    if user.role is Role.CODER:
        items.append(NavItem("/coding", N_("AEs to code")))
    if user.role in {Role.ADMINISTRATOR, Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.MONITOR, Role.DATA_MANAGER,
                     Role.BLINDED_STATISTICIAN, Role.UNBLINDED_STATISTICIAN, Role.DSMB_MEMBER}:  # fmt: skip
        items.append(NavItem("/recruitment", N_("Recruitment")))
    if user.role in {Role.BLINDED_STATISTICIAN, Role.UNBLINDED_STATISTICIAN}:
        items.append(NavItem("/analysis", N_("Analysis")))
    if user.role is Role.DATA_MANAGER:
        items.append(NavItem("/data-management", N_("Database lock")))
    if user.role in {Role.DATA_MANAGER, Role.MONITOR}:
        items.append(NavItem("/data-management/readiness", N_("Lock readiness")))
    if user.role in {Role.DATA_MANAGER, Role.BLINDED_STATISTICIAN, Role.UNBLINDED_STATISTICIAN}:
        items.append(NavItem("/exports", N_("Exports")))
    if user.role in {Role.DATA_MANAGER, Role.ADMINISTRATOR, Role.INVESTIGATOR, Role.UNBLINDED_STATISTICIAN}:
        items.append(NavItem("/data-access", N_("Data access")))
    if user.role is Role.ADMINISTRATOR:
        items.append(NavItem("/admin/users", N_("Users")))
    if user.role in {Role.ADMINISTRATOR, Role.DATA_MANAGER, Role.MONITOR}:
        items.append(NavItem("/admin/audit", N_("Audit trail")))
    items.append(NavItem("/profile", N_("Profile")))
    return tuple(items)


def current_page(request: Request, session: SessionDep, protocol: ProtocolDep) -> Page:
    user = session.user if session else None
    # Only the languages the protocol declares (and the app has pages in): a cookie or a person's preference for
    # another falls back to the protocol's first language; likewise the calendars (domain.calendars).
    languages = offered_languages(protocol)
    lang = trial_language(protocol, user.language if user else request.cookies.get(LANG_COOKIE, languages[0]))
    calendars = tuple(c.value for c in trial_calendars(protocol.calendars))
    calendar = user.calendar if user else request.cookies.get(CALENDAR_COOKIE, calendars[0])
    if calendar not in calendars:
        calendar = calendars[0]
    csrf = session.csrf_token if session else request.state.anonymous_csrf
    nav = nav_for(user)
    if user is not None and user.role.value in protocol.masking.account_approvers:
        nav = (*nav[:-1], NavItem("/admin/users/requests", N_("Account requests")), nav[-1])
    return Page(user=user, lang=lang, calendar=calendar, csrf_token=csrf, nav=nav,
                trial_name=trial_title(protocol, lang), zone=page_zone(protocol, user),
                languages=languages, calendars=calendars)  # fmt: skip


def offered_languages(protocol: Protocol) -> tuple[str, ...]:
    """The languages pages are offered in: the protocol's declared ones that the app has pages in, in the
    protocol's order (its first, English, the default)."""
    offered = tuple(code for code in protocol.languages if code in LANGUAGES)
    return offered or (DEFAULT_LANGUAGE,)


def trial_language(protocol: Protocol, language: str) -> str:
    """``language`` when the trial offers it (``offered_languages``), else the protocol's first language."""
    offered = offered_languages(protocol)
    return language if language in offered else offered[0]


def page_zone(protocol: Protocol, user: UserView | None) -> str | None:
    """The zone a page about no one site shows times in: the one the viewer's sites share, else the one all
    the trial's sites share; None (UTC, named as such) when the sites keep different clocks."""
    mine = {s.timezone for s in protocol.sites if user is not None and s.code in user.sites}
    every = {s.timezone for s in protocol.sites}
    for zones in (mine, every):
        if len(zones) == 1:
            return next(iter(zones))
    return None


PageDep = Annotated[Page, Depends(current_page)]


def signed_in_page(request: Request, page: PageDep) -> Page:
    if page.user is None:
        raise SignInRequired(request.url.path)
    return page


SignedInPage = Annotated[Page, Depends(signed_in_page)]


def _refuse(engine: Engine, user: UserView, request: Request) -> None:
    with session_scope(engine) as session:
        audit.record(
            session,
            actor=user.username,
            role=user.role.value,
            action="access.denied",
            detail={"path": request.url.path, "method": request.method},
        )


def require_roles(*roles: Role) -> Callable[..., Page]:
    """A dependency that lets only these roles through (others get a 403 page, audited)."""

    def check(request: Request, page: SignedInPage, engine: EngineDep) -> Page:
        assert page.user is not None
        if page.user.role not in roles:
            _refuse(engine, page.user, request)
            raise Forbidden(page)
        return page

    return check


def approver_page(request: Request, page: SignedInPage, engine: EngineDep, protocol: ProtocolDep) -> Page:
    """Only holders of an approving role of the two-person rule (``masking.account_approvers``); 403 otherwise."""
    assert page.user is not None
    if page.user.role.value not in protocol.masking.account_approvers:
        _refuse(engine, page.user, request)
        raise Forbidden(page)
    return page


ApproverPage = Annotated[Page, Depends(approver_page)]


def check_csrf(page: PageDep, request: Request, engine: EngineDep, csrf_token: Annotated[str, Form()] = "") -> None:
    """Every state-changing form: the session's token, or before sign-in the double-submit cookie."""
    expected = page.csrf_token if page.user else request.cookies.get(CSRF_COOKIE)
    if not tokens_match(expected, csrf_token):
        with session_scope(engine) as session:
            audit.record(
                session,
                actor=page.user.username if page.user else "anonymous",
                role=page.user.role.value if page.user else None,
                action="access.csrf_refused",
                detail={"path": request.url.path, "token": "missing" if not csrf_token else "wrong"},
            )
        raise CsrfFailed(page)


CsrfChecked = Annotated[None, Depends(check_csrf)]


#: The bearer scheme the OpenAPI document declares: every operation that takes ``ApiUser`` (directly or through
#: ``require_api_roles``) is marked as needing it. The header is read by ``api_user`` itself (the scheme's own
#: check is off, so a refused token is counted and audited there).
BEARER = HTTPBearer(
    scheme_name="bearerAuth",
    description="An API token: `Authorization: Bearer <token>` (profile page, `trialwright user token`, or "
    "`POST /api/v1/tokens`).",
    auto_error=False,
)


def api_user(
    request: Request,
    engine: EngineDep,
    limits: LimitsDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> UserView:
    """The API caller, from ``Authorization: Bearer <token>``; 401 otherwise (429 past the refusal limit)."""
    address = client_address(request)
    bearer, token = _bearer(request)
    # An address past its limit of refused tokens gets 429 before its token is even looked at.
    limits.token_refusals.check(("address", address))
    user = resolve_token(engine, token) if bearer and token else None
    if user is None:
        _token_refused(request, engine, limits, token)
    assert user is not None
    return user


def _bearer(request: Request) -> tuple[bool, str]:
    """Whether the ``Authorization`` header says ``Bearer``, and the credentials after the scheme ("" if none)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer", token.strip()


def _token_refused(request: Request, engine: Engine, limits: Limits, token: str) -> NoReturn:
    """Unknown, expired, revoked or a disabled user's token: counted, and audited in aggregate (the token itself
    never is): one entry when an address's window opens, its count when the window closes; 401."""
    address = client_address(request)
    limits.token_refusals.hit(("address", address))
    limits.refusal_tally.refused(engine, address, request.url.path, token="present" if token else "missing")
    raise HTTPException(status_code=401, detail="a valid API token is required", headers={"WWW-Authenticate": "Bearer"})


ApiUser = Annotated[UserView, Depends(api_user)]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class ApiWrite:
    """An API write request's transaction: the caller (their token read in it), the protocol (read in it) and the
    session a use case runs in (a service's ``..._in`` function, through ``run``).

    On PostgreSQL the token, the count of refused tokens, the protocol and the use case are one transaction. On
    SQLite the reads before the use case are a read snapshot of their own and the use case's transaction begins at
    its first statement: SQLite has one writer at a time (each write transaction begins IMMEDIATE), and a request
    that held the write lock from its token to its answer kept every other writer waiting that much longer
    (measured: ``docs/benchmarks.md``)."""

    user: UserView
    protocol: Protocol
    session: Session

    def run(self, use_case: Callable[Concatenate[Session, Protocol, UserView, P], T], *args: P.args,
            **kwargs: P.kwargs) -> T:  # fmt: skip
        """``use_case(session, protocol, user, ...)``, committed before the route answers (so its answer is built
        after the commit, outside any lock), rolled back if it raises."""
        try:
            result = use_case(self.session, self.protocol, self.user, *args, **kwargs)
        except BaseException:
            self.session.rollback()
            raise
        commit_now(self.session)
        return result


def api_write(*roles: Role) -> Callable[..., Iterator[ApiWrite]]:
    """An API dependency (``Depends(api_write(...), scope="function")``) giving an ``ApiWrite`` to a caller of one
    of these roles, with the same refusals, in the same order, as ``require_api_roles``: 429 past the limit of
    refused tokens, 401 for no valid token, 403 (audited) for another role. Only when the token's use is due to be
    audited (once a minute per token) or the request is refused is anything written in a transaction of its own, as
    before, so that it stays recorded whatever the use case then does."""

    def open_write(
        request: Request,
        engine: EngineDep,
        limits: LimitsDep,
        _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Iterator[ApiWrite]:
        bearer, token = _bearer(request)

        def caller(session: Session) -> tuple[TokenUse | None, Protocol | None]:
            """The token's user, and the protocol when the request may go on in this transaction (its SHA-256 read in
            the token's statement; the text parsed once per version)."""
            limits.token_refusals.check(("address", client_address(request)), session=session)
            found = token_in(session, token, with_protocol=True) if bearer and token else None
            if found is None or found.use_due or found.user.role not in roles:
                return found, None
            return found, protocol_by_sha(session, found.protocol_sha).protocol

        if is_postgresql(engine):
            with session_scope(engine) as session:
                found, protocol = caller(session)
                if found is not None and protocol is not None:
                    yield ApiWrite(found.user, protocol, session)
                    return
        else:  # SQLite: the reads in a snapshot of their own (see ``ApiWrite``)
            with read_scope(engine) as reading:
                found, protocol = caller(reading)
            if found is not None and protocol is not None:
                with session_scope(engine) as session:
                    yield ApiWrite(found.user, protocol, session)
                return
        # Refused, or the token's use to audit: each in its own transaction (the one above wrote nothing).
        if found is None:
            _token_refused(request, engine, limits, token)
        if found.use_due:
            with session_scope(engine) as session:
                record_use(session, found)
        if found.user.role not in roles:
            _refuse(engine, found.user, request)
            raise HTTPException(status_code=403, detail="your role may not do this")
        with session_scope(engine) as session:
            yield ApiWrite(found.user, protocol_in(session).protocol, session)

    return open_write


def page_reentry(request: Request, session: SessionDep, policy: PolicyDep, limits: LimitsDep) -> AccessPolicy:
    """A page that takes the password again: counted per address and per user (429 past the limit); gives the
    lockout policy the re-entry counts toward."""
    keys: list[tuple[str, str]] = [("address", client_address(request))]
    if session is not None:
        keys.append(("user", session.user.username))
    limits.reentry.take(*keys)
    return policy


def api_reentry(request: Request, user: ApiUser, policy: PolicyDep, limits: LimitsDep) -> AccessPolicy:
    """The API's re-entry of a password: the same limits as ``page_reentry``."""
    limits.reentry.take(("address", client_address(request)), ("user", user.username))
    return policy


def confirmed_reentry(
    request: Request,
    session: SessionDep,
    policy: PolicyDep,
    limits: LimitsDep,
    confirm: Annotated[str, Form()] = "",
) -> AccessPolicy:
    """``page_reentry`` for a guarded action (``web/confirm.py``): counted on the post that confirms, which is
    the one that checks the password; the first post only shows the confirmation page."""
    if confirm:
        page_reentry(request, session, policy, limits)
    return policy


#: The lockout policy, for a route that takes the password again (rate-limited).
PageReentry = Annotated[AccessPolicy, Depends(page_reentry)]
#: The same, for a route behind a confirmation step: counted when the confirmation is posted.
ConfirmReentry = Annotated[AccessPolicy, Depends(confirmed_reentry)]
ApiReentry = Annotated[AccessPolicy, Depends(api_reentry)]


def require_api_roles(*roles: Role) -> Callable[..., UserView]:
    """An API dependency that lets only these roles through (403 JSON otherwise, audited)."""

    def check(request: Request, user: ApiUser, engine: EngineDep) -> UserView:
        if user.role not in roles:
            _refuse(engine, user, request)
            raise HTTPException(status_code=403, detail="your role may not do this")
        return user

    return check


def viewer_of(user: UserView, engine: Engine) -> Viewer:
    """The masking policy's view of a user, with the participants emergency-unblinded to them."""
    from trialwright.services.randomization import unblinded_participants
    from trialwright.services.trial import current_protocol

    return viewer_for(
        current_protocol(engine).protocol,
        user.username,
        user.role,
        frozenset(user.sites),
        unblinded_participants(engine, user.username),
    )
