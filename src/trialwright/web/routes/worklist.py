"""Work lists and the status matrix: one list of the user's work a page at a time (``/work``; the home page shows
the first rows of each) and the participant x visit x form status matrix (``/data/matrix``). Both read
``trialwright.services.worklist``; neither shows an arm.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from trialwright.domain.numerals import latin_digits
from trialwright.domain.paging import PageError
from trialwright.services import forms as forms_svc
from trialwright.services import worklist as svc
from trialwright.services.errors import FormError
from trialwright.services.screening import NotFound
from trialwright.services.worklist.lists import site_codes
from trialwright.web.deps import EngineDep, ProtocolDep, SignedInPage, require_roles
from trialwright.web.localized import names, said
from trialwright.web.paging import first_page_if_bad, pager
from trialwright.web.templating import Page, render_page

__all__ = ["names", "router"]

router = APIRouter()
ReaderPage = Annotated[Page, Depends(require_roles(*forms_svc.READERS))]
#: Where the casebook of one participant is read and signed (``trialwright.web.routes.casebook``).
CASEBOOK = "/data/casebook/{participant_id}"


def _not_found(request: Request, page: Page) -> Response:
    return render_page(
        request, page, "errors/error.html", {"status": 404, "message": "There is no such page."}, status_code=404
    )


@router.get("/work", response_class=HTMLResponse)
def work(
    request: Request,
    page: SignedInPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    kind_name: Annotated[str, Query(alias="list")] = "",
    cursor: str | None = None,
) -> Response:
    """One of the user's work lists, a page at a time."""
    assert page.user is not None
    user = page.user
    try:
        kind = svc.WorkKind(kind_name)
        found = first_page_if_bad(lambda c: svc.work_page(engine, user, kind, cursor=c), cursor)
    except (ValueError, NotFound):
        return _not_found(request, page)
    context: dict[str, Any] = {"kind": kind, "items": found.items, "pager": pager(request, found),
                               **names(protocol, page.lang)}  # fmt: skip
    return render_page(request, page, "home/work.html", context)


@router.get("/data/matrix", response_class=HTMLResponse)
def matrix(
    request: Request,
    page: ReaderPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    participant: str = "",
    site: str = "",
    visit: str = "",
    status: str = "",
    cursor: str | None = None,
) -> Response:
    """The status matrix: participants by visits and forms, searched and filtered."""
    assert page.user is not None
    user = page.user
    participant = latin_digits(participant) if participant else participant  # an id typed in Persian digits
    errors: list[str] = []

    def read(c: str | None) -> svc.StatusMatrix:
        return svc.status_matrix(engine, user, search=participant or None, site=site or None, visit=visit or None,
                                 status=status or None, cursor=c)  # fmt: skip

    status_code = 200
    try:
        try:
            found = read(cursor or None)
        except PageError:
            found = read(None)
    except FormError as exc:
        errors.append(str(exc))
        status_code = 400
        visit = status = ""
        found = read(None)
    sites = site_codes(protocol, user)
    context: dict[str, Any] = {
        "matrix": found,
        "pager": pager(request, found.page),
        "participant": participant,
        "site": site,
        "visit": visit,
        "status": status,
        "sites": sites,
        "site_names": {c: said(protocol.site(c), page.lang) for c in sites},  # the filter says names, sends codes
        "visits": protocol.visits,
        "statuses": svc.CELL_STATES,
        "errors": errors,
        "casebook": CASEBOOK,
        **names(protocol, page.lang),
    }
    return render_page(request, page, "data/matrix.html", context, status_code=status_code)
