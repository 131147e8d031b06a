"""Coding pages (the coder): the adverse events to code (``/coding``) and one event's coding page
(``/coding/{ae_number}``: search the loaded MedDRA release, pick an LLT, code or recode it with a reason, ask the
site a question, read the site's answers and close the questions answered). Everything goes through
``trialwright.services.coding``; nothing here reads an arm.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialwright.services import coding as svc
from trialwright.services.screening import NotFound
from trialwright.web.deps import CsrfChecked, EngineDep, require_roles
from trialwright.web.templating import Page, render_page

__all__ = ["router"]

router = APIRouter()
CoderPage = Annotated[Page, Depends(require_roles(*svc.CODERS))]


def _not_found(request: Request, page: Page) -> Response:
    return render_page(
        request, page, "errors/error.html", {"status": 404, "message": "There is no such page."}, status_code=404
    )


@router.get("/coding", response_class=HTMLResponse)
def to_code(request: Request, page: CoderPage, engine: EngineDep) -> Response:
    """The adverse events to code: not coded, or their reported term changed since they were coded."""
    assert page.user is not None
    context = {"items": svc.to_code(engine, page.user), "release": svc.active_release(engine)}
    return render_page(request, page, "coding/index.html", context)


def _event_page(
    request: Request, page: Page, engine: Any, ae_number: str, q: str = "", error: str | None = None,
    status: int = 200,
) -> Response:  # fmt: skip
    assert page.user is not None
    try:
        item = svc.coding_item(engine, page.user, ae_number)
    except NotFound:
        return _not_found(request, page)
    search: svc.LltSearch | None = None
    if q.strip() and error is None:
        try:
            search = svc.search_llts(engine, page.user, q)
        except svc.CodingError as exc:
            error = str(exc)
    context = {
        "item": item,
        "q": q,
        "matches": search.matches if search else (),
        "search": search,
        "error": error,
        "release": svc.active_release(engine),
        "queries": svc.event_queries(engine, page.user, ae_number),
        "me": page.user.username,
    }
    return render_page(request, page, "coding/event.html", context, status_code=status)


@router.get("/coding/{ae_number}", response_class=HTMLResponse)
def event(request: Request, page: CoderPage, engine: EngineDep, ae_number: str, q: str = "") -> Response:
    """One event: its reported term and coding, a search of the current LLTs, and the forms to code or ask."""
    return _event_page(request, page, engine, ae_number, q)


@router.post("/coding/{ae_number}", response_class=HTMLResponse)
async def code(request: Request, page: CoderPage, engine: EngineDep, _csrf: CsrfChecked, ae_number: str) -> Response:
    """Code (or recode, with a reason) the event to the LLT picked."""
    assert page.user is not None
    data = await request.form()
    llt, reason = str(data.get("llt", "")).strip(), str(data.get("reason", "")).strip() or None
    try:
        if not llt.isdigit():
            raise svc.CodingError("llt: pick an LLT")
        svc.code_event(engine, page.user, ae_number, int(llt), reason=reason)
    except NotFound:
        return _not_found(request, page)
    except svc.CodingError as exc:
        return _event_page(request, page, engine, ae_number, str(data.get("q", "")), str(exc), status=422)
    return RedirectResponse(f"/coding/{ae_number}", status_code=303)


@router.post("/coding/{ae_number}/query", response_class=HTMLResponse)
async def ask(request: Request, page: CoderPage, engine: EngineDep, _csrf: CsrfChecked, ae_number: str) -> Response:
    """Ask the site about the event's reported term (a query on the participant)."""
    assert page.user is not None
    data = await request.form()
    try:
        svc.query_event(engine, page.user, ae_number, str(data.get("text", "")))
    except NotFound:
        return _not_found(request, page)
    except svc.CodingError as exc:
        return _event_page(request, page, engine, ae_number, error=str(exc), status=422)
    return RedirectResponse(f"/coding/{ae_number}", status_code=303)


@router.post("/coding/{ae_number}/queries/{query_id}/close", response_class=HTMLResponse)
async def close(
    request: Request, page: CoderPage, engine: EngineDep, _csrf: CsrfChecked, ae_number: str, query_id: int
) -> Response:
    """Close a question the coder asked about the event (through the query service: only its raiser may)."""
    assert page.user is not None
    data = await request.form()
    try:
        svc.close_event_query(engine, page.user, ae_number, query_id, str(data.get("note", "")))
    except NotFound:
        return _not_found(request, page)
    except svc.CodingError as exc:
        return _event_page(request, page, engine, ae_number, error=str(exc), status=422)
    return RedirectResponse(f"/coding/{ae_number}", status_code=303)
