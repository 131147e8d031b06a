"""Log entries on the participant page: add, amend with a reason, remove with a reason (``services/logs.py``), and
raise a query on an entry (``services.forms.raise_query``).

The page lists each log the protocol declares with its entries (``participant_page``); these routes take one
form's post each, and on a refusal show the participant page again with the rule named."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialwright.domain.calendars import DateEntryError
from trialwright.protocol.forms import FieldType
from trialwright.services import forms
from trialwright.services import logs as svc
from trialwright.services.errors import FormError
from trialwright.services.forms.common import DATA_ENTRY
from trialwright.services.screening import NotFound
from trialwright.web.dates import read_date
from trialwright.web.deps import CsrfChecked, EngineDep, ProtocolDep, require_roles
from trialwright.web.routes.randomization import _not_found, participant_page
from trialwright.web.templating import Page

__all__ = ["router"]

router = APIRouter()
EntryPage = Annotated[Page, Depends(require_roles(*DATA_ENTRY))]
RaiserPage = Annotated[Page, Depends(require_roles(*forms.QUERY_RAISERS))]


async def _typed(request: Request, page: Page, protocol: ProtocolDep, log_id: str) -> tuple[dict[str, Any], str]:
    """The values typed for the log's fields (empty ones left out; dates in the reader's calendar read as ISO), and
    the reason."""
    form = await request.form()
    try:
        log = protocol.log(log_id)
    except KeyError:
        return {}, str(form.get("reason") or "")
    values: dict[str, Any] = {}
    for f in log.fields:
        text = str(form.get(f"field_{f.id}") or "").strip()
        if not text:
            continue
        if f.type is FieldType.DATE:
            try:
                text = read_date(page, text, f.label)
            except DateEntryError as exc:
                raise svc.LogError(f"{f.id}: {exc}") from None
        values[f.id] = text
    return values, str(form.get("reason") or "")


def _refused(request: Request, page: Page, engine: Any, participant_id: str, exc: Exception) -> Response:
    problems = list(getattr(exc, "problems", ()) or [str(exc)])
    return participant_page(request, page, engine, participant_id, status=422, errors=problems)


@router.post("/participants/{participant_id}/logs/{log_id}", response_class=HTMLResponse)
async def add_entry(
    request: Request, page: EntryPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked,
    participant_id: str, log_id: str,
) -> Response:  # fmt: skip
    """Add an entry to the participant's log."""
    assert page.user is not None
    try:
        values, _ = await _typed(request, page, protocol, log_id)
        svc.add_entry(engine, page.user, participant_id, log_id, values)
    except NotFound:
        return _not_found(request, page)
    except FormError as exc:
        return _refused(request, page, engine, participant_id, exc)
    return RedirectResponse(f"/participants/{participant_id}#log-{log_id}", status_code=303)


@router.post("/participants/{participant_id}/logs/{log_id}/{sequence}", response_class=HTMLResponse)
async def amend_entry(
    request: Request, page: EntryPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked,
    participant_id: str, log_id: str, sequence: int,
) -> Response:  # fmt: skip
    """Amend an entry's values, with a reason (the values typed that differ from the stored ones)."""
    assert page.user is not None
    try:
        values, reason = await _typed(request, page, protocol, log_id)
        current = {e.sequence: e for e in svc.list_entries(engine, page.user, participant_id, log_id)}
        entry = current.get(sequence)
        changed: dict[str, Any] = {k: v for k, v in values.items() if entry is None or _text(entry.values.get(k)) != v}
        form = await request.form()  # a field emptied on the page clears its stored value (never kept in silence)
        if entry is not None:
            changed |= {name: None for name, stored in entry.values.items() if stored is not None
                        and f"field_{name}" in form and not str(form.get(f"field_{name}") or "").strip()}  # fmt: skip
        svc.amend_entry(engine, page.user, participant_id, log_id, sequence, changed, reason=reason)
    except NotFound:
        return _not_found(request, page)
    except FormError as exc:
        return _refused(request, page, engine, participant_id, exc)
    return RedirectResponse(f"/participants/{participant_id}#log-{log_id}", status_code=303)


@router.post("/participants/{participant_id}/logs/{log_id}/{sequence}/remove", response_class=HTMLResponse)
async def remove_entry(
    request: Request, page: EntryPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked,
    participant_id: str, log_id: str, sequence: int,
) -> Response:  # fmt: skip
    """Remove an entry, with a reason (kept, marked removed)."""
    assert page.user is not None
    try:
        _, reason = await _typed(request, page, protocol, log_id)
        svc.remove_entry(engine, page.user, participant_id, log_id, sequence, reason=reason)
    except NotFound:
        return _not_found(request, page)
    except FormError as exc:
        return _refused(request, page, engine, participant_id, exc)
    return RedirectResponse(f"/participants/{participant_id}#log-{log_id}", status_code=303)


@router.post("/participants/{participant_id}/logs/{log_id}/{sequence}/queries", response_class=HTMLResponse)
def raise_query(
    request: Request, page: RaiserPage, engine: EngineDep, _csrf: CsrfChecked, participant_id: str, log_id: str,
    sequence: int, text: Annotated[str, Form()] = "", field: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """Raise a query on an entry, or one of its fields (monitor, data manager): the forms' query
    (``services.forms.raise_query``), answered and closed in the query inbox."""
    assert page.user is not None
    try:
        forms.raise_query(engine, page.user, participant_id, text, log_id=log_id, sequence=sequence,
                          field_id=field or None)  # fmt: skip
    except NotFound:
        return _not_found(request, page)
    except FormError as exc:
        return _refused(request, page, engine, participant_id, exc)
    return RedirectResponse(f"/participants/{participant_id}#log-{log_id}", status_code=303)


def _text(stored: Any) -> str:
    """A stored value as the page's input shows it."""
    if stored is None or stored.value is None:
        return ""
    if isinstance(stored.value, bool):
        return "true" if stored.value else "false"
    value = stored.value
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
