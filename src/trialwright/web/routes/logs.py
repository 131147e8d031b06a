"""Log entries on the participant page: add, amend with a reason, remove with a reason (``services/logs.py``), and
raise a query on an entry (``services.forms.raise_query``).

The page lists each log the protocol declares with its entries (``participant_page``); these routes take one
form's post each, and on a refusal show the participant page again with the rule named."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialwright.services import forms
from trialwright.services import logs as svc
from trialwright.services.errors import FormError
from trialwright.services.forms.common import DATA_ENTRY
from trialwright.services.log_views import LogVersionConflict
from trialwright.services.screening import NotFound
from trialwright.services.trial import current_protocol
from trialwright.web.deps import CsrfChecked, EngineDep, ProtocolDep, require_roles
from trialwright.web.field_inputs import entries_from
from trialwright.web.localized import digits, names
from trialwright.web.readiness_words import moments_said
from trialwright.web.routes.randomization import _not_found, participant_page
from trialwright.web.templating import Page
from trialwright.web.wording import CRF_INPUTS, LOG_INPUTS, page_words, say

__all__ = ["router"]

router = APIRouter()
EntryPage = Annotated[Page, Depends(require_roles(*DATA_ENTRY))]
RaiserPage = Annotated[Page, Depends(require_roles(*forms.QUERY_RAISERS))]


async def _typed(
    request: Request, page: Page, protocol: ProtocolDep, log_id: str, stored: Any = None
) -> tuple[dict[str, Any], str]:
    """The values sent for the log's fields by the form pages' inputs (``web/field_inputs.py``: a value, its unit,
    not done with its reason; dates and date-times in the reader's calendar, date-times on the site's clock; a field
    emptied clears its stored value), and the reason; a date that cannot be read is refused naming the field."""
    form = await request.form()
    try:
        log = protocol.log(log_id)
    except KeyError:
        return {}, str(form.get("reason") or "")
    values, refused = entries_from(page, log.fields, form, None if stored is None else stored.values)
    if refused:
        raise svc.LogError(*(f"{name.removeprefix('v-')}: {rule}" for name, rule in refused.items()))
    return values, str(form.get("reason") or "")


async def _version(request: Request, log_id: str, sequence: int) -> int:
    """The entry's version the page showed (sent back with the change), so a change made in between is refused."""
    text = str((await request.form()).get("version") or "").strip()
    if not text.isdigit():
        raise svc.LogError(f"version: the page did not say which version of entry {sequence} of {log_id} you "
                           "changed; open the participant's page again")  # fmt: skip
    return int(text)


async def _as_typed(request: Request, prefix: str) -> dict[str, Any]:
    """What was typed in one of the participant page's log forms (its inputs' ids start with ``prefix``: ``add-<log>``
    or ``amend-<log>-<n>``), to show it again in that form after a refusal: each input as sent (a multiple choice as
    the list of codes ticked), the reason too."""
    form = await request.form()
    values: dict[str, Any] = {}
    for key in form:
        if key.startswith(("v-", "u-", "s-", "r-")) or key == "reason":
            sent = [str(v) for v in form.getlist(key)]
            values[key] = sent if len(sent) != 1 else sent[0]
    return {"prefix": prefix, "values": values}


def _refused(
    request: Request, page: Page, engine: Any, participant_id: str, exc: Exception, log_id: str | None = None,
    typed: dict[str, Any] | None = None,
) -> Response:  # fmt: skip
    """The participant page again with the refusal said in its words: the log's fields by their labels and the
    logs service's rules in the page's language (``wording.say``, ``wording.RULES``), as a form page says its own;
    the form that was sent (``typed``) keeps what was typed."""
    problems = list(getattr(exc, "problems", ()) or [str(exc)])
    protocol = current_protocol(engine).protocol
    words = page_words(protocol, page.lang, CRF_INPUTS, LOG_INPUTS, form_id=log_id)
    number = partial(digits, lang=page.lang)  # entries and versions in the page's digits

    def day(text: object) -> str:  # a date: the page writes it in the reader's calendar and digits (``fdates_in``)
        return str(text)  # said here too, a second calendar's date was written twice ("both")

    values: dict[str, Callable[[str], str]] = {
        "n": number, "read": number, "stored": number, "log": names(protocol, page.lang)["log_name"],
        **moments_said(day, page.lang),
    }  # fmt: skip
    values["at"] = values["moment"]
    problems = say(problems, words, page.lang, values_said=values)
    status = 409 if isinstance(exc, svc.LogVersionConflict) else 422
    return participant_page(request, page, engine, participant_id, status=status, errors=problems, log_typed=typed)


@router.post("/participants/{participant_id}/logs/{log_id}", response_class=HTMLResponse)
async def add_entry(
    request: Request, page: EntryPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked,
    participant_id: str, log_id: str,
) -> Response:  # fmt: skip
    """Add an entry to the participant's log."""
    assert page.user is not None
    try:
        values, _ = await _typed(request, page, protocol, log_id)
        svc.add_entry(engine, page.user, participant_id, log_id, values, typed_on_site_clock=True)
    except NotFound:
        return _not_found(request, page)
    except FormError as exc:
        typed = await _as_typed(request, f"add-{log_id}")
        return _refused(request, page, engine, participant_id, exc, log_id, typed)
    return RedirectResponse(f"/participants/{participant_id}#log-{log_id}", status_code=303)


@router.post("/participants/{participant_id}/logs/{log_id}/{sequence}", response_class=HTMLResponse)
async def amend_entry(
    request: Request, page: EntryPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked,
    participant_id: str, log_id: str, sequence: int,
) -> Response:  # fmt: skip
    """Amend an entry's values, with a reason (the values typed that differ from the stored ones)."""
    assert page.user is not None
    try:
        current = {e.sequence: e for e in svc.list_entries(engine, page.user, participant_id, log_id)}
        values, reason = await _typed(request, page, protocol, log_id, current.get(sequence))
        version = await _version(request, log_id, sequence)
        svc.amend_entry(engine, page.user, participant_id, log_id, sequence, values, reason=reason, version=version,
                        typed_on_site_clock=True)  # fmt: skip  # the page's date-and-time inputs say "site time"
    except NotFound:
        return _not_found(request, page)
    except FormError as exc:
        # a change made by someone else since the page was read: the entry is shown as it now stands, never what
        # was typed over the newer version (one more click would overwrite their change unseen)
        conflict = isinstance(exc, LogVersionConflict)
        typed = None if conflict else await _as_typed(request, f"amend-{log_id}-{sequence}")
        return _refused(request, page, engine, participant_id, exc, log_id, typed)
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
        version = await _version(request, log_id, sequence)
        svc.remove_entry(engine, page.user, participant_id, log_id, sequence, reason=reason, version=version)
    except NotFound:
        return _not_found(request, page)
    except FormError as exc:
        return _refused(request, page, engine, participant_id, exc, log_id)
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
        return _refused(request, page, engine, participant_id, exc, log_id)
    return RedirectResponse(f"/participants/{participant_id}#log-{log_id}", status_code=303)
