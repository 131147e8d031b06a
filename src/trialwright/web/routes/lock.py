"""The data manager's lock pages: the lock readiness report (per site and participant), the database lock (refused
while anything blocks it, unless overridden with a reason and the password) and soft locks of a site or participant.
Every change goes through ``trialwright.services.lock``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from trialwright.domain.masking import masked_roles
from trialwright.protocol import Protocol
from trialwright.services import lock as svc
from trialwright.services import readiness
from trialwright.services.errors import FormError
from trialwright.web import confirm as confirmation
from trialwright.web.deps import ConfirmReentry, CsrfChecked, EngineDep, ProtocolDep, get_protocol, require_roles
from trialwright.web.readiness_words import (
    banner_said,
    blocker_said,
    blocker_where,
    refusal_said,
    review_said,
    withheld_said,
)
from trialwright.web.templating import Page, render_page
from trialwright.web.wording import LOCK_INPUTS, page_words, say

__all__ = ["router"]

router = APIRouter()
ManagerPage = Annotated[Page, Depends(require_roles(*svc.LOCKERS))]
ReadinessPage = Annotated[Page, Depends(require_roles(*readiness.READERS))]
#: Blockers the lock page lists one by one (the readiness page lists all).
LISTED = 10


def _blockers_said(request: Request, page: Page) -> dict[str, Any]:
    """Each blocker where it is and what blocks it, in the viewer's words (``web.readiness_words``): the readiness
    page, the lock page's and the lock confirmation's first blockers; and the forms kept from a masked reader."""
    protocol = get_protocol(request)
    return {
        "where_said": lambda b: blocker_where(b, protocol, page.lang),
        "blocker_said": lambda b, fdate, text_said: blocker_said(b, protocol, page.lang, fdate, text_said),
        "withheld_said": lambda report: withheld_said(report, protocol, page.lang),
        "review_said": lambda report: review_said(report, page.lang),
    }


def _lock_page(
    request: Request, page: Page, engine: Engine, errors: list[str] | None = None, status_code: int = 200
) -> HTMLResponse:
    assert page.user is not None
    lock = svc.lock_state(engine)
    context: dict[str, Any] = {
        "lock": lock,
        # a lock over open blockers or over forms kept from its locker, said in the page's language
        "banner": banner_said(lock, get_protocol(request), page.lang),
        "report": readiness.lock_readiness(engine, page.user),
        "listed": LISTED,
        "soft_locks": svc.active_soft_locks(engine),
        "errors": say(errors or [], page_words(None, page.lang, LOCK_INPUTS), page.lang),
        **_blockers_said(request, page),
    }
    return render_page(request, page, "lock/lock.html", context, status_code=status_code)


@router.get("/data-management", response_class=HTMLResponse)
def data_management(request: Request, page: ManagerPage, engine: EngineDep) -> HTMLResponse:
    return _lock_page(request, page, engine)


@router.get("/data-management/readiness", response_class=HTMLResponse)
def readiness_page(
    request: Request, page: ReadinessPage, engine: EngineDep, protocol: ProtocolDep, site: str = ""
) -> Response:
    return _readiness_page(request, page, engine, protocol, site)


def _readiness_page(
    request: Request, page: Page, engine: Engine, protocol: Protocol, site: str, errors: list[str] | None = None
) -> HTMLResponse:
    assert page.user is not None
    sites = list(page.user.sites) if page.user.role.site_scoped else protocol.site_codes
    errors = list(errors or [])
    try:
        report = readiness.lock_readiness(engine, page.user, site or None)
    except FormError as exc:
        errors, report = [str(exc)], readiness.lock_readiness(engine, page.user)
    # The reviewer's form: for a reader the trial does not mask, where forms are kept from masked readers.
    reviews = bool(readiness.withheld_forms(protocol)) and page.user.role not in masked_roles(protocol)
    context = {
        "report": report, "sites": sites, "site": site, "kinds": list(readiness.BlockerKind),
        "errors": say(errors, page_words(None, page.lang, LOCK_INPUTS), page.lang),
        "reviews": reviews, "withheld_forms": readiness.withheld_forms(protocol) if reviews else (),
        **_blockers_said(request, page),
    }  # fmt: skip
    return render_page(request, page, "lock/readiness.html", context, status_code=422 if errors else 200)


@router.post("/data-management/readiness/review", response_class=HTMLResponse)
def review_withheld(
    request: Request,
    page: ReadinessPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    policy: ConfirmReentry,
    reason: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    """The unmasked reviewer records that the forms kept from masked readers are ready (``services.readiness.
    review_withheld``); a refusal is said on the readiness page (422), the blockers on those forms with it."""
    assert page.user is not None
    try:
        readiness.review_withheld(engine, page.user, reason, password=password, policy=policy)
    except FormError as exc:
        return _readiness_page(request, page, engine, protocol, "", [str(exc)])
    return RedirectResponse("/data-management/readiness", status_code=303)


@router.post("/data-management/lock", response_class=HTMLResponse)
def trial_lock(
    request: Request,
    page: ManagerPage,
    engine: EngineDep,
    _csrf: CsrfChecked,
    policy: ConfirmReentry,
    action: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Locking is confirmed first (``web/confirm.py``): the first post shows what the lock does and what it
    overrides, and asks the password when something blocks it. Unlocking needs no confirmation."""
    assert page.user is not None
    if action == "lock":
        report = readiness.lock_readiness(engine, page.user)
        now = confirmation.step(confirm, "lock", len(report.blockers))
        if now is not confirmation.Step.CONFIRMED:
            changed = now is confirmation.Step.CHANGED
            return _confirm_page(request, page, engine, report, reason, changed=changed, status=409 if changed else 200)
    try:
        if action == "lock":
            svc.lock_trial(engine, page.user, reason, password=password or None, policy=policy)
        else:
            svc.unlock_trial(engine, page.user, reason)
    except svc.LockBlocked as exc:  # said in the page's words (the first blockers are listed on it)
        said = refusal_said(exc.readiness, get_protocol(request), page.lang)
        return _confirm_page(request, page, engine, exc.readiness, reason, errors=[said], status=422, said=True)
    except FormError as exc:
        error = str(exc).split(" First: ", 1)[0]
        if action == "lock":
            report = readiness.lock_readiness(engine, page.user)
            return _confirm_page(request, page, engine, report, reason, errors=[error], status=422)
        return _lock_page(request, page, engine, [error], 422)
    return RedirectResponse("/data-management", status_code=303)


def _confirm_page(
    request: Request,
    page: Page,
    engine: Engine,
    report: readiness.Readiness,
    reason: str,
    *,
    changed: bool = False,
    errors: list[str] | None = None,
    status: int = 200,
    said: bool = False,
) -> HTMLResponse:
    """``said``: the errors are in the page's words already."""
    lock = svc.lock_state(engine)
    context: dict[str, Any] = {
        "lock": lock,
        # a lock over open blockers or over forms kept from its locker, said in the page's language
        "banner": banner_said(lock, get_protocol(request), page.lang),
        "report": report,
        "listed": LISTED,
        "reason": reason,
        "changed": changed,
        "errors": (errors or []) if said else say(errors or [], page_words(None, page.lang, LOCK_INPUTS), page.lang),
        "confirm_token": confirmation.token("lock", len(report.blockers)),
        "cancel_url": "/data-management",
        **_blockers_said(request, page),
    }
    return render_page(request, page, "lock/confirm.html", context, status_code=status)


@router.post("/data-management/soft-lock", response_class=HTMLResponse)
def soft_lock(
    request: Request,
    page: ManagerPage,
    engine: EngineDep,
    _csrf: CsrfChecked,
    action: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "",
    target: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    assert page.user is not None
    where = {"site": target.strip()} if scope == "site" else {"participant_id": target.strip()}
    try:
        if action == "lock":
            svc.soft_lock(engine, page.user, reason, **where)
        else:
            svc.soft_unlock(engine, page.user, reason, **where)
    except FormError as exc:
        return _lock_page(request, page, engine, [str(exc)], 422)
    return RedirectResponse("/data-management", status_code=303)
