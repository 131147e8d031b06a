"""User administration: list, create, disable, re-enable, reset, set e-mail addresses (administrators), the
two-person rule's work list (approvers), and setting one's password with a one-time token (anyone holding one).

No page ever shows a password: a new account or a reset shows a set-password link once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialwright.domain.roles import Role
from trialwright.services import approvals, credentials
from trialwright.services.users import UserError, disable_user, list_users, set_email
from trialwright.web.deps import (
    ApproverPage,
    CsrfChecked,
    EngineDep,
    PageDep,
    ProtocolDep,
    RowId,
    SettingsDep,
    require_roles,
)
from trialwright.web.flash import clear_flash, set_flash, take_flash
from trialwright.web.paging import first_page_if_bad, pager
from trialwright.web.templating import Page, render_page

router = APIRouter()
AdminPage = Annotated[Page, Depends(require_roles(Role.ADMINISTRATOR))]


def _link(request: Request, change: approvals.AccountChange) -> str | None:
    return str(request.base_url).rstrip("/") + change.token.path if change.token else None


def _render(
    request: Request, page: Page, engine: EngineDep, protocol: ProtocolDep, status: int = 200, **extra: object
) -> HTMLResponse:
    context = {
        "users": list_users(engine),
        "roles": list(Role),
        "sites": protocol.sites,
        "pending": approvals.pending_requests(engine),
        "approvers": protocol.masking.account_approvers,
        "message": None,
        "error": None,
        "change": None,
        "link": None,
        **extra,
    }
    return render_page(request, page, "users/index.html", context, status_code=status)


def _changed(
    request: Request, page: Page, engine: EngineDep, protocol: ProtocolDep, change: approvals.AccountChange
) -> HTMLResponse:
    return _render(request, page, engine, protocol, change=change, link=_link(request, change))


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, page: AdminPage, engine: EngineDep, protocol: ProtocolDep) -> HTMLResponse:
    flash = take_flash(request, page) or {}
    saved = flash.get("email_saved")
    shown = next((u for u in list_users(engine) if u.username == saved), None) if isinstance(saved, str) else None
    response = _render(request, page, engine, protocol, email_saved=shown)
    clear_flash(request, response)
    return response


@router.post("/admin/users", response_class=HTMLResponse)
def add_user(
    request: Request,
    page: AdminPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    username: Annotated[str, Form()] = "",
    full_name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    sites: Annotated[list[str] | None, Form()] = None,
    reason: Annotated[str, Form()] = "",
) -> HTMLResponse:
    assert page.user is not None
    try:
        change = approvals.request_create(
            engine,
            protocol,
            actor=page.user.username,
            username=username,
            role=role,
            sites=sites or [],
            full_name=full_name or None,
            reason=reason,
        )
    except UserError as exc:
        return _render(request, page, engine, protocol, 400, error=str(exc))
    return _changed(request, page, engine, protocol, change)


@router.post("/admin/users/{username}/disable", response_class=HTMLResponse)
def disable(
    request: Request, page: AdminPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked, username: str
) -> HTMLResponse:
    assert page.user is not None
    try:
        disable_user(engine, username, actor=page.user.username)
    except UserError as exc:
        return _render(request, page, engine, protocol, 404, error=str(exc))
    return _render(request, page, engine, protocol)


@router.post("/admin/users/{username}/email", response_class=HTMLResponse)
def email(
    request: Request,
    page: AdminPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    settings: SettingsDep,
    _csrf: CsrfChecked,
    username: str,
    email: Annotated[str, Form()] = "",
) -> Response:
    assert page.user is not None
    try:
        saved = set_email(engine, page.user, username, email)
    except UserError as exc:
        return _render(request, page, engine, protocol, 400, error=str(exc))
    response = RedirectResponse("/admin/users", status_code=303)
    set_flash(response, request, page, "/admin/users", {"email_saved": saved.username},
              forced_secure=settings.secure_cookies)  # fmt: skip
    return response


@router.post("/admin/users/{username}/enable", response_class=HTMLResponse)
def enable(
    request: Request, page: AdminPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked, username: str
) -> HTMLResponse:
    return _account_change(request, page, engine, protocol, approvals.enable, username)


@router.post("/admin/users/{username}/reset-password", response_class=HTMLResponse)
def reset(
    request: Request, page: AdminPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked, username: str
) -> HTMLResponse:
    return _account_change(request, page, engine, protocol, approvals.request_reset, username)


def _account_change(
    request: Request,
    page: Page,
    engine: EngineDep,
    protocol: ProtocolDep,
    change_of: Callable[..., approvals.AccountChange],
    username: str,
) -> HTMLResponse:
    """Re-enable or reset an account (at once, or as a request under the two-person rule) and show the result."""
    assert page.user is not None
    try:
        change = change_of(engine, protocol, username, actor=page.user.username)
    except UserError as exc:
        return _render(request, page, engine, protocol, 404 if "no user" in str(exc) else 400, error=str(exc))
    return _changed(request, page, engine, protocol, change)


def _requests(
    request: Request,
    page: Page,
    engine: EngineDep,
    protocol: ProtocolDep,
    status: int = 200,
    cursor: str | None = None,
    **extra: object,
) -> HTMLResponse:
    found = first_page_if_bad(lambda c: approvals.page_requests(engine, cursor=c), cursor)
    context = {
        "pending": found.items,
        "pager": pager(request, found, "/admin/users/requests"),
        "approvers": protocol.masking.account_approvers,
        "error": None,
        "change": None,
        "link": None,
        **extra,
    }
    return render_page(request, page, "users/requests.html", context, status_code=status)


@router.get("/admin/users/requests", response_class=HTMLResponse)
def requests_page(
    request: Request, page: ApproverPage, engine: EngineDep, protocol: ProtocolDep, cursor: str | None = None
) -> HTMLResponse:
    return _requests(request, page, engine, protocol, cursor=cursor)


@router.post("/admin/users/requests/{request_id}/approve", response_class=HTMLResponse)
def approve(
    request: Request,
    page: ApproverPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    request_id: RowId,
    reason: Annotated[str, Form()] = "",
) -> HTMLResponse:
    assert page.user is not None
    try:
        change = approvals.approve(engine, protocol, request_id, page.user, reason=reason)
    except UserError as exc:
        return _requests(request, page, engine, protocol, 400, error=str(exc))
    return _requests(request, page, engine, protocol, change=change, link=_link(request, change))


@router.post("/admin/users/requests/{request_id}/reject", response_class=HTMLResponse)
def reject(
    request: Request,
    page: ApproverPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    request_id: RowId,
    reason: Annotated[str, Form()] = "",
) -> HTMLResponse:
    assert page.user is not None
    try:
        approvals.reject(engine, protocol, request_id, page.user, reason=reason)
    except UserError as exc:
        return _requests(request, page, engine, protocol, 400, error=str(exc))
    return _requests(request, page, engine, protocol)


@router.get("/set-password", response_class=HTMLResponse)
def set_password_form(request: Request, page: PageDep, engine: EngineDep, token: str = "") -> HTMLResponse:
    holder = credentials.token_holder(engine, token) if token else None
    context = {"token": token, "holder": holder, "error": None if holder else credentials.TOKEN_REFUSED}
    return render_page(request, page, "users/set_password.html", context, status_code=200 if holder else 404)


@router.post("/set-password", response_class=HTMLResponse)
def set_password(
    request: Request,
    page: PageDep,
    engine: EngineDep,
    _csrf: CsrfChecked,
    token: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    repeat: Annotated[str, Form()] = "",
) -> Response:
    holder = credentials.token_holder(engine, token)
    if password != repeat:
        context = {"token": token, "holder": holder, "error": "password: the two entries differ"}
        return render_page(request, page, "users/set_password.html", context, status_code=400)
    try:
        credentials.set_password(engine, token, password)
    except UserError as exc:
        context = {"token": token, "holder": holder, "error": str(exc)}
        return render_page(request, page, "users/set_password.html", context, status_code=400)
    return RedirectResponse("/sign-in", status_code=303)
