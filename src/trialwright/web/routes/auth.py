"""Signing in and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialwright.domain.calendars import CalendarPreference
from trialwright.services.users import (
    AuthenticationFailed,
    authenticate,
    end_session,
    set_preferences,
    start_session,
)
from trialwright.web.deps import CsrfChecked, EngineDep, LimitsDep, PageDep, PolicyDep, SettingsDep, client_address
from trialwright.web.i18n import LANGUAGES
from trialwright.web.security import CALENDAR_COOKIE, LANG_COOKIE, SESSION_COOKIE, secure_cookie
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
    # A language or calendar chosen on the sign-in page (kept in a cookie until now) becomes the person's own
    # preference, audited as any change of it; the cookie is then cleared, so the next person at this computer
    # starts from their own preference, not from this one's choice.
    chosen = {"language": request.cookies.get(LANG_COOKIE), "calendar": request.cookies.get(CALENDAR_COOKIE)}
    known = {"language": set(LANGUAGES) & set(page.languages),
             "calendar": {c.value for c in CalendarPreference} & set(page.calendars)}  # fmt: skip
    changed = {k: v for k, v in chosen.items() if v in known[k] and v != getattr(user, k)}
    if changed:
        set_preferences(engine, user.username, **changed)
    for name in (LANG_COOKIE, CALENDAR_COOKIE):
        if name in request.cookies:
            response.delete_cookie(name, path="/")
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
