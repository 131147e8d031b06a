"""Coding pages (the coder): the adverse events to code (``/coding``) and one event's coding page
(``/coding/{ae_number}``: search the loaded MedDRA release, pick an LLT, code or recode it with a reason, ask the
site a question, read the site's answers and close the questions answered); and a log entry's coding page
(``/coding/logs/{participant_id}/{log_id}/{sequence}``: a medication to a WHO ATC level-5 code, a medical history
entry to a MedDRA LLT found by the same search, recoding with a reason). Everything goes through
``trialwright.services.coding`` and ``trialwright.services.medication_coding``; nothing here reads an arm.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialwright.services import coding as svc
from trialwright.services import medication_coding as logs_coding
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
    context = {"items": svc.to_code(engine, page.user), "release": svc.active_release(engine),
               "log_items": logs_coding.log_entries_to_code(engine, page.user)}  # fmt: skip
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


def _entry_page(
    request: Request, page: Page, engine: Any, participant_id: str, log_id: str, sequence: int, q: str = "",
    error: str | None = None, status: int = 200,
) -> Response:  # fmt: skip
    assert page.user is not None
    try:
        item = logs_coding.entry_to_code(engine, page.user, participant_id, log_id, sequence)
    except (NotFound, svc.CodingError):
        return _not_found(request, page)
    search: svc.LltSearch | None = None
    if item.dictionary == "MedDRA" and q.strip() and error is None:
        try:
            search = svc.search_llts(engine, page.user, q)
        except svc.CodingError as exc:
            error = str(exc)
    context = {"item": item, "q": q, "matches": search.matches if search else (), "search": search, "error": error,
               "url": f"/coding/logs/{participant_id}/{log_id}/{sequence}"}  # fmt: skip
    return render_page(request, page, "coding/log_entry.html", context, status_code=status)


@router.get("/coding/logs/{participant_id}/{log_id}/{sequence}", response_class=HTMLResponse)
def log_entry(
    request: Request, page: CoderPage, engine: EngineDep, participant_id: str, log_id: str, sequence: int, q: str = ""
) -> Response:
    """One log entry: the text to code, its coding, and the form to code it (ATC code, or a MedDRA LLT found by
    searching)."""
    return _entry_page(request, page, engine, participant_id, log_id, sequence, q)


@router.post("/coding/logs/{participant_id}/{log_id}/{sequence}", response_class=HTMLResponse)
async def code_log_entry(
    request: Request, page: CoderPage, engine: EngineDep, _csrf: CsrfChecked, participant_id: str, log_id: str,
    sequence: int,
) -> Response:  # fmt: skip
    """Code (or recode, with a reason) the entry: a medication to the ATC code typed, a condition to the LLT picked."""
    assert page.user is not None
    data = await request.form()
    reason = str(data.get("reason", "")).strip() or None
    try:
        item = logs_coding.entry_to_code(engine, page.user, participant_id, log_id, sequence)
        if item.dictionary == "ATC":
            atc = str(data.get("atc", "")).strip().upper()
            if not atc:
                raise svc.CodingError("atc: type the level-5 ATC code")
            logs_coding.code_medication(engine, page.user, participant_id, log_id, sequence, atc, reason=reason)
        else:
            llt = str(data.get("llt", "")).strip()
            if not llt.isdigit():
                raise svc.CodingError("llt: pick an LLT")
            logs_coding.code_history(engine, page.user, participant_id, log_id, sequence, int(llt), reason=reason)
    except NotFound:
        return _not_found(request, page)
    except svc.CodingError as exc:
        q = str(data.get("q", ""))
        return _entry_page(request, page, engine, participant_id, log_id, sequence, q, str(exc), status=422)
    return RedirectResponse(f"/coding/logs/{participant_id}/{log_id}/{sequence}", status_code=303)
