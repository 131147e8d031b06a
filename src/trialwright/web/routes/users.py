"""User administration (administrators): list, create, disable, reset passwords."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse

from trialwright.domain.roles import Role
from trialwright.services.users import (
    UserError,
    create_user,
    disable_user,
    generate_password,
    list_users,
    reset_password,
)
from trialwright.web.deps import CsrfChecked, EngineDep, ProtocolDep, require_roles
from trialwright.web.templating import Page, render_page

router = APIRouter()
AdminPage = Annotated[Page, Depends(require_roles(Role.ADMINISTRATOR))]


def _render(
    request: Request, page: Page, engine: EngineDep, protocol: ProtocolDep, status: int = 200, **extra: object
) -> HTMLResponse:
    context = {
        "users": list_users(engine),
        "roles": list(Role),
        "sites": protocol.sites,
        "message": None,
        "error": None,
        "new_password": None,
        **extra,
    }
    return render_page(request, page, "users/index.html", context, status_code=status)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, page: AdminPage, engine: EngineDep, protocol: ProtocolDep) -> HTMLResponse:
    return _render(request, page, engine, protocol)


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
) -> HTMLResponse:
    assert page.user is not None
    password = generate_password()
    try:
        create_user(
            engine,
            username=username,
            password=password,
            role=role,
            sites=sites or [],
            full_name=full_name or None,
            actor=page.user.username,
        )
    except UserError as exc:
        return _render(request, page, engine, protocol, 400, error=str(exc))
    return _render(request, page, engine, protocol, new_password=(username.strip().lower(), password))


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


@router.post("/admin/users/{username}/reset-password", response_class=HTMLResponse)
def reset(
    request: Request, page: AdminPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked, username: str
) -> HTMLResponse:
    assert page.user is not None
    password = generate_password()
    try:
        reset_password(engine, username, password, actor=page.user.username)
    except UserError as exc:
        return _render(request, page, engine, protocol, 404, error=str(exc))
    return _render(request, page, engine, protocol, new_password=(username.lower(), password))
