"""Exports and data sharing pages: the data manager's and statisticians' exports (a zip of the folder the
export wrote, audited), and the register of data access requests with decisions and the IPD package.
Everything goes through ``trialwright.services.exports`` and ``trialwright.services.sharing``.
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialwright.domain.calendars import DateEntryError, local_date
from trialwright.domain.roles import Role
from trialwright.services import clock, sharing
from trialwright.services import exports as svc
from trialwright.services.errors import AccessDenied
from trialwright.web.dates import read_date
from trialwright.web.deps import CsrfChecked, EngineDep, PageReentry, ReadEngineDep, require_roles
from trialwright.web.i18n import N_, translations
from trialwright.web.paging import first_page_if_bad, pager
from trialwright.web.templating import Page, render_page
from trialwright.web.wording import page_words, say

router = APIRouter()
ExporterPage = Annotated[Page, Depends(require_roles(*svc.EXPORTERS))]
RegisterPage = Annotated[Page, Depends(require_roles(*sharing.READERS))]


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    svc.zip_folder(folder, buffer)
    return buffer.getvalue()


def _exports_page(request: Request, page: Page, status: int = 200, error: str | None = None) -> Response:
    assert page.user is not None
    gettext = translations(page.lang).gettext
    context = {
        # each format's description as a message id (a plugin's not in the catalog is said as written)
        "formats": sorted((name, gettext(cls.description)) for name, cls in svc.formats().items()),
        "may_with_arms": page.user.role is Role.UNBLINDED_STATISTICIAN,
        "error": say([error], page_words(None, page.lang), page.lang)[0] if error else None,  # its rule translated
    }
    return render_page(request, page, "exports/index.html", context, status_code=status)


@router.get("/exports", response_class=HTMLResponse)
def exports_page(request: Request, page: ExporterPage) -> Response:
    return _exports_page(request, page)


@router.post("/exports")
def make_export(
    request: Request,
    page: ExporterPage,
    engine: EngineDep,
    read_engine: ReadEngineDep,
    _csrf: CsrfChecked,
    fmt: Annotated[str, Form(alias="format")] = "",
    with_arms: Annotated[str, Form()] = "",
) -> Response:
    assert page.user is not None
    with tempfile.TemporaryDirectory() as tmp:
        stamp = clock.now().astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        folder = Path(tmp) / f"{fmt or 'export'}-{stamp}"
        try:
            svc.run_export(engine, page.user, fmt, folder, with_arms=bool(with_arms), read_engine=read_engine)
        except svc.ExportError as exc:  # arms asked by a masked role: a matter of permission (403), as the API says
            return _exports_page(request, page, 403 if isinstance(exc, AccessDenied) else 422, str(exc))
        data = _zip(folder)
    return Response(
        data, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{folder.name}.zip"'}
    )


def _access_page(
    request: Request,
    page: Page,
    engine: EngineDep,
    status: int = 200,
    error: str | None = None,
    *,
    state: str = "",
    search: str = "",
    cursor: str | None = None,
) -> Response:
    assert page.user is not None
    user = page.user
    role = user.role
    found = first_page_if_bad(
        lambda c: sharing.page_requests(engine, user, status=state or None, search=search or None, cursor=c), cursor
    )
    context = {
        "requests": found.items,
        "pager": pager(request, found, "/data-access"),
        "state": state,
        "search": search,
        "opens": sharing.access_window_opens(engine),
        "may_record": role in sharing.RECORDERS,
        "may_decide": role in sharing.DECIDERS,
        "may_issue": role is Role.UNBLINDED_STATISTICIAN,
        "error": say([error], page_words(None, page.lang), page.lang)[0] if error else None,  # its rule translated
        "today": local_date(clock.now(), page.zone or "UTC").isoformat(),  # on the sites' clock, not UTC's
    }
    return render_page(request, page, "exports/access.html", context, status_code=status)


@router.get("/data-access", response_class=HTMLResponse)
def access_page(
    request: Request,
    page: RegisterPage,
    engine: EngineDep,
    status: str = "",
    search: str = "",
    cursor: str | None = None,
) -> Response:
    return _access_page(request, page, engine, state=status, search=search, cursor=cursor)


@router.post("/data-access/publications")
def add_publication(
    request: Request,
    page: RegisterPage,
    engine: EngineDep,
    _csrf: CsrfChecked,
    citation: Annotated[str, Form()] = "",
    published_on: Annotated[str, Form()] = "",
) -> Response:
    assert page.user is not None
    try:
        day = dt.date.fromisoformat(read_date(page, published_on, N_("Published on")))
        sharing.record_publication(engine, page.user, citation, day)
    except DateEntryError as exc:
        return _access_page(request, page, engine, 422, str(exc))
    except (sharing.SharingError, ValueError) as exc:
        return _access_page(
            request,
            page,
            engine,
            422,
            str(exc) if isinstance(exc, sharing.SharingError) else "published_on: give a date (YYYY-MM-DD)",
        )
    return RedirectResponse("/data-access", status_code=303)


@router.post("/data-access/requests")
def add_request(
    request: Request,
    page: RegisterPage,
    engine: EngineDep,
    _csrf: CsrfChecked,
    requester: Annotated[str, Form()] = "",
    organisation: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    purpose: Annotated[str, Form()] = "",
    reasons: Annotated[str, Form()] = "",
    received_on: Annotated[str, Form()] = "",
) -> Response:
    assert page.user is not None
    try:
        received = dt.date.fromisoformat(read_date(page, received_on, N_("Received on")))
    except DateEntryError as exc:
        return _access_page(request, page, engine, 422, str(exc))
    except ValueError:
        return _access_page(request, page, engine, 422, "received_on: give a date (YYYY-MM-DD)")
    try:
        sharing.record_request(
            engine,
            page.user,
            requester=requester,
            organisation=organisation,
            email=email,
            purpose=purpose,
            reasons=reasons,
            received_on=received,
        )
    except sharing.SharingError as exc:
        return _access_page(request, page, engine, 422, str(exc))
    return RedirectResponse("/data-access", status_code=303)


@router.post("/data-access/requests/{number}/decision")
def decide(
    request: Request,
    number: str,
    page: RegisterPage,
    engine: EngineDep,
    _csrf: CsrfChecked,
    policy: PageReentry,
    decision: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    assert page.user is not None
    if decision not in {"approve", "reject"}:
        return _access_page(request, page, engine, 422, "decision: choose approve or reject")
    try:
        sharing.decide_request(
            engine, page.user, number, approve=decision == "approve", reason=reason, password=password, policy=policy
        )
    except sharing.SharingError as exc:
        return _access_page(request, page, engine, 422, str(exc))
    return RedirectResponse("/data-access", status_code=303)


@router.post("/data-access/requests/{number}/package")
def issue(request: Request, number: str, page: RegisterPage, engine: EngineDep, _csrf: CsrfChecked) -> Response:
    assert page.user is not None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / f"ipd-{number}"
        try:
            sharing.issue_ipd(engine, page.user, number, folder)
        except sharing.SharingError as exc:
            return _access_page(request, page, engine, 422, str(exc))
        data = _zip(folder)
    return Response(
        data, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{folder.name}.zip"'}
    )
