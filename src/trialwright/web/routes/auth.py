"""Signing in and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialwright.services.users import AuthenticationFailed, authenticate, end_session, start_session
from trialwright.web.deps import CsrfChecked, EngineDep, LimitsDep, PageDep, PolicyDep, SettingsDep, client_address
from trialwright.web.security import SESSION_COOKIE, secure_cookie
from trialwright.web.templating import render_page

router = APIRouter()


def _safe_next(next_path: str) -> str:
    # Only local paths: never redirect to another site after sign-in.
    return next_path if next_path.startswith("/") and not next_path.startswith("//") else "/"


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, page: PageDep, next: str = "/") -> Response:
    if page.user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render_page(request, page, "auth/sign_in.html", {"next": _safe_next(next), "error": None})


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    page: PageDep,
    engine: EngineDep,
    policy: PolicyDep,
    settings: SettingsDep,
    limits: LimitsDep,
    _csrf: CsrfChecked,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    # Failed sign-ins are limited per address and per username: past the limit, 429 before the password is tried.
    keys = (("address", client_address(request)), ("username", username.strip().lower()[:64]))
    limits.sign_in.check(*keys)
    try:
        user = authenticate(engine, username, password, policy)
    except AuthenticationFailed as exc:
        limits.sign_in.hit(*keys)
        context = {"next": _safe_next(next), "error": str(exc), "username": username}
        return render_page(request, page, "auth/sign_in.html", context, status_code=401)
    token, _session = start_session(engine, user, policy)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=secure_cookie(request, settings.secure_cookies),
        max_age=policy.session_hours * 3600,
        path="/",
    )
    return response


@router.post("/sign-out")
def sign_out(request: Request, engine: EngineDep, settings: SettingsDep, _csrf: CsrfChecked) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        end_session(engine, token)
    response = RedirectResponse("/sign-in", status_code=303)
    secure = secure_cookie(request, settings.secure_cookies)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, secure=secure)
    return response
