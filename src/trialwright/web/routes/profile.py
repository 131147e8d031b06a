"""A person's own profile: password, e-mail address, language and calendar, API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialwright.services.tokens import issue_token, list_tokens, revoke_token
from trialwright.services.users import LANGUAGES, UserError, change_password, set_email, set_preferences
from trialwright.web.deps import CsrfChecked, EngineDep, PageDep, RowId, SettingsDep, SignedInPage
from trialwright.web.flash import clear_flash, set_flash, take_flash
from trialwright.web.security import CALENDAR_COOKIE, LANG_COOKIE, secure_cookie
from trialwright.web.templating import Page, render_page

router = APIRouter()


def _profile(request: Request, page: Page, engine: EngineDep, status: int = 200, **extra: object) -> HTMLResponse:
    assert page.user is not None
    settings = request.app.state.settings
    context = {
        "tokens": list_tokens(engine, page.user.username),
        "token_days": settings.api_token_days,
        "message": None,
        "error": None,
        **extra,
    }
    return render_page(request, page, "profile/index.html", context, status_code=status)


@router.get("/profile", response_class=HTMLResponse)
def profile(request: Request, page: SignedInPage, engine: EngineDep) -> HTMLResponse:
    flash = take_flash(request, page) or {}
    response = _profile(request, page, engine, email_saved=bool(flash.get("email_saved")))
    clear_flash(request, response)
    return response


@router.post("/profile/password", response_class=HTMLResponse)
def password(
    request: Request,
    page: SignedInPage,
    engine: EngineDep,
    _csrf: CsrfChecked,
    old_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    confirm_password: Annotated[str, Form()] = "",
) -> Response:
    assert page.user is not None
    if new_password != confirm_password:
        return _profile(request, page, engine, 400, error="confirm_password: does not match the new password")
    try:
        change_password(engine, page.user.username, old_password, new_password)
    except UserError as exc:
        return _profile(request, page, engine, 400, error=str(exc))
    # Changing the password ends every session, this one included: sign in again.
    return RedirectResponse("/sign-in", status_code=303)


@router.post("/profile/email", response_class=HTMLResponse)
def email(
    request: Request,
    page: SignedInPage,
    engine: EngineDep,
    settings: SettingsDep,
    _csrf: CsrfChecked,
    email: Annotated[str, Form()] = "",
) -> Response:
    assert page.user is not None
    try:
        set_email(engine, page.user, page.user.username, email)
    except UserError as exc:
        return _profile(request, page, engine, 400, error=str(exc), typed_email=email)
    response = RedirectResponse("/profile", status_code=303)
    set_flash(response, request, page, "/profile", {"email_saved": True}, forced_secure=settings.secure_cookies)
    return response


@router.post("/profile/preferences")
def preferences(
    request: Request,
    page: PageDep,
    engine: EngineDep,
    settings: SettingsDep,
    _csrf: CsrfChecked,
    language: Annotated[str | None, Form()] = None,
    calendar: Annotated[str | None, Form()] = None,
    next: Annotated[str, Form()] = "/",
) -> Response:
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = RedirectResponse(target, status_code=303)
    # only what the trial offers (the protocol's languages and calendars, as the page lists them)
    language = language if language in LANGUAGES and language in page.languages else None
    calendar = calendar if calendar in page.calendars else None
    if page.user is not None:
        set_preferences(engine, page.user.username, language=language, calendar=calendar)
    else:  # before sign-in the choice lives in a cookie
        for name, value in ((LANG_COOKIE, language), (CALENDAR_COOKIE, calendar)):
            if value:
                secure = secure_cookie(request, settings.secure_cookies)
                response.set_cookie(name, value, samesite="lax", secure=secure, max_age=365 * 86400, path="/")
    return response


@router.post("/profile/tokens", response_class=HTMLResponse)
def new_token(
    request: Request,
    page: SignedInPage,
    engine: EngineDep,
    settings: SettingsDep,
    _csrf: CsrfChecked,
    name: Annotated[str, Form()] = "web",
    days: Annotated[int | None, Form(ge=1, le=36500)] = None,
    redcap: Annotated[bool, Form()] = False,
) -> HTMLResponse:
    assert page.user is not None
    try:
        token, _ = issue_token(
            engine, page.user.username, name=name or "web", actor=page.user.username, days=days,
            max_days=settings.api_token_days, redcap=redcap,
        )  # fmt: skip
    except UserError as exc:
        return _profile(request, page, engine, 400, error=str(exc))
    return _profile(request, page, engine, new_token=token)


@router.post("/profile/tokens/{token_id}/revoke")
def revoke(page: SignedInPage, engine: EngineDep, _csrf: CsrfChecked, token_id: RowId) -> Response:
    assert page.user is not None
    revoke_token(engine, token_id, actor=page.user.username, owner=page.user.username)
    return RedirectResponse("/profile", status_code=303)
