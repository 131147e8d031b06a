"""The casebook page: a participant's forms in order as stored, then their log entries, with their states, queries
and what each still needs; the investigator signs the casebook (forms and log entries) with one password entry, the
monitor verifies chosen forms and entries in one action. Every change goes through ``trialwright.services.forms``
(``sign_casebook``, ``verify_casebook``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialwright.domain.roles import Role
from trialwright.protocol import Protocol
from trialwright.services import forms as svc
from trialwright.services.lock import frozen
from trialwright.services.screening import NotFound
from trialwright.web.deps import CsrfChecked, EngineDep, PageReentry, ProtocolDep, SettingsDep, require_roles
from trialwright.web.flash import clear_flash, set_flash, take_flash
from trialwright.web.lock_words import frozen_said
from trialwright.web.templating import Page, render_page
from trialwright.web.wording import PARTICIPANT_INPUTS, page_words, say

router = APIRouter()
ReaderPage = Annotated[Page, Depends(require_roles(*svc.READERS))]
InvestigatorPage = Annotated[Page, Depends(require_roles(Role.INVESTIGATOR))]
MonitorPage = Annotated[Page, Depends(require_roles(Role.MONITOR))]
_URL = "/data/casebook/{participant_id}"


def reviewed_forms(chosen: list[str]) -> dict[tuple[str, str], str]:
    """The forms the page showed and the person chose, each sent as ``visit|form|seal``."""
    out: dict[tuple[str, str], str] = {}
    for item in chosen:
        visit_id, _, rest = item.partition("|")
        form_id, _, seal = rest.partition("|")
        if visit_id and form_id:
            out[(visit_id, form_id)] = seal
    return out


def reviewed_fields(chosen: list[str]) -> dict[tuple[str, str], tuple[str, list[str]]]:
    """The fields the monitor chose, each sent as ``visit|form|seal|field``, by form."""
    out: dict[tuple[str, str], tuple[str, list[str]]] = {}
    for item in chosen:
        visit_id, form_id, seal, field_id = ([*item.split("|", 3), "", "", ""])[:4]
        if visit_id and form_id and field_id:
            out.setdefault((visit_id, form_id), (seal, []))[1].append(field_id)
    return out


def reviewed_entries(chosen: list[str]) -> dict[tuple[str, int], str]:
    """The log entries the page showed and the person chose, each sent as ``log|sequence|seal``."""
    out: dict[tuple[str, int], str] = {}
    for item in chosen:
        log_id, _, rest = item.partition("|")
        sequence, _, seal = rest.partition("|")
        if log_id and sequence.isdigit():
            out[(log_id, int(sequence))] = seal
    return out


def summary_of(kind: str, outcome: svc.CasebookOutcome) -> dict[str, Any]:
    """What a signing or verification did, as the page after the redirect says it: the forms done, the fields
    verified (a count by form) and each form left with its reason."""
    counts: dict[tuple[str, str], int] = {}
    for visit_id, form_id, _field in outcome.fields:
        counts[(visit_id, form_id)] = counts.get((visit_id, form_id), 0) + 1
    return {
        "kind": kind,
        "done": [[v.visit_id, v.form_id] for v in outcome.done],
        "fields": [[v, f, n] for (v, f), n in counts.items()],
        "fields_total": len(outcome.fields),
        "excluded": [list(e) for e in outcome.excluded],
        "entries_done": [[e.log_id, e.sequence] for e in outcome.entries_done],
        "entries_excluded": [list(e) for e in outcome.entries_excluded],
    }


def _done(
    request: Request, page: Page, settings: SettingsDep, participant_id: str, kind: str, outcome: svc.CasebookOutcome
) -> Response:
    """Post-redirect-get: back to the casebook, the summary carried in the flash cookie (or, when a very long
    summary does not fit in it, its counts alone, and the page says the forms below show the rest)."""
    url = _URL.format(participant_id=participant_id)
    response = RedirectResponse(url, status_code=303)
    summary = summary_of(kind, outcome)
    if not set_flash(response, request, page, url, summary, forced_secure=settings.secure_cookies):
        brief = {**summary, "done": [], "fields": [], "excluded": [], "entries_done": [], "entries_excluded": [],
                 "done_total": len(outcome.done),
                 "excluded_total": len(outcome.excluded)}  # fmt: skip
        set_flash(response, request, page, url, brief, forced_secure=settings.secure_cookies)
    return response


def _page(
    request: Request,
    page: Page,
    engine: EngineDep,
    protocol: Protocol,
    participant_id: str,
    *,
    outcome: dict[str, Any] | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    assert page.user is not None
    try:
        book = svc.casebook(engine, page.user, participant_id)
    except (NotFound, svc.FormError):
        return render_page(request, page, "errors/error.html", {"status": 404, "message": "There is no such page."},
                           status_code=404)  # fmt: skip
    role = page.user.role
    stopped = frozen(engine, participant_id)  # the trial or this participant locked: no signing or verifying offered
    context: dict[str, Any] = {
        "book": book,
        "frozen": frozen_said(stopped, protocol, page.lang),
        "participant_id": participant_id,
        "protocol": protocol,
        "can_sign": role is Role.INVESTIGATOR and not stopped,
        "can_verify": role is Role.MONITOR and not stopped,
        "meaning": protocol.signature_meaning_translations.get(page.lang) or protocol.signature_meaning,
        "signer": book.name_of(page.user.username),
        "site_zone": protocol.site(book.site).timezone,
        "outcome": outcome,
        "errors": errors or [],
        "url": _URL.format(participant_id=participant_id),
    }
    return render_page(request, page, "data/casebook.html", context, status_code=status)


@router.get(_URL, response_class=HTMLResponse)
def casebook_page(
    request: Request, page: ReaderPage, engine: EngineDep, protocol: ProtocolDep, participant_id: str
) -> Response:
    response = _page(request, page, engine, protocol, participant_id, outcome=take_flash(request, page))
    clear_flash(request, response)
    return response


@router.post(_URL + "/sign", response_class=HTMLResponse)
def sign_casebook(
    request: Request, page: InvestigatorPage, engine: EngineDep, protocol: ProtocolDep, settings: SettingsDep,
    _csrf: CsrfChecked, policy: PageReentry, participant_id: str, form: Annotated[list[str] | None, Form()] = None,
    password: Annotated[str, Form()] = "", entry: Annotated[list[str] | None, Form()] = None,
) -> Response:  # fmt: skip
    assert page.user is not None
    try:
        outcome = svc.sign_casebook(engine, page.user, participant_id, reviewed_forms(form or []), password=password,
                                    policy=policy, entries=reviewed_entries(entry or []))  # fmt: skip
    except NotFound:
        return _page(request, page, engine, protocol, participant_id)
    except svc.FormError as exc:
        errors = say([str(exc)], page_words(None, page.lang, PARTICIPANT_INPUTS), page.lang)
        return _page(request, page, engine, protocol, participant_id, errors=errors, status=422)
    return _done(request, page, settings, participant_id, "sign", outcome)


@router.post(_URL + "/verify", response_class=HTMLResponse)
def verify_casebook(
    request: Request, page: MonitorPage, engine: EngineDep, protocol: ProtocolDep, settings: SettingsDep,
    _csrf: CsrfChecked, participant_id: str, form: Annotated[list[str] | None, Form()] = None,
    field: Annotated[list[str] | None, Form()] = None, entry: Annotated[list[str] | None, Form()] = None,
) -> Response:  # fmt: skip
    assert page.user is not None
    try:
        outcome = svc.verify_casebook(engine, page.user, participant_id, reviewed_forms(form or []),
                                      fields=reviewed_fields(field or []),
                                      entries=reviewed_entries(entry or []))  # fmt: skip
    except NotFound:
        return _page(request, page, engine, protocol, participant_id)
    except svc.FormError as exc:
        errors = say([str(exc)], page_words(None, page.lang, PARTICIPANT_INPUTS), page.lang)
        return _page(request, page, engine, protocol, participant_id, errors=errors, status=422)
    return _done(request, page, settings, participant_id, "verify", outcome)
