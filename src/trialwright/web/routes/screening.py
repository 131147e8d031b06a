"""Screening log, screening form with its eligibility summary, consent, enrolment (pages).

Investigators and study coordinators write; every signed-in role reads, within its sites.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from trialwright.domain.calendars import DateEntryError, local_date, on_site_clock
from trialwright.domain.eligibility import ScreeningValueError, evaluate, validate_values
from trialwright.domain.roles import Role
from trialwright.domain.text import spreadsheet_row
from trialwright.domain.wording import criterion_words
from trialwright.protocol import Protocol
from trialwright.services.screening import (
    NonEnrolmentReason,
    NotFound,
    ScreeningError,
    enrol,
    get_screening,
    list_screenings,
    page_screenings,
    reconsent_needed,
    record_consent,
    screen,
    set_non_enrolment,
    update_screening,
)
from trialwright.web.dates import read_date
from trialwright.web.deps import CsrfChecked, EngineDep, ProtocolDep, RowId, require_roles
from trialwright.web.i18n import N_
from trialwright.web.paging import first_page_if_bad, pager
from trialwright.web.templating import Page, render_page
from trialwright.web.wording import CONSENT_INPUTS, SCREENING_INPUTS, page_words, say

router = APIRouter()
WRITERS = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR)
#: Who may read the screening log (it holds clinical values of patients who may never be enrolled).
READERS = (*WRITERS, Role.ADMINISTRATOR, Role.MONITOR, Role.DATA_MANAGER)
WriterPage = Annotated[Page, Depends(require_roles(*WRITERS))]
ReaderPage = Annotated[Page, Depends(require_roles(*READERS))]


def entry_fields(protocol: Protocol) -> list[Any]:
    """The screening fields a person types in (not derived ones, not the consent field)."""
    return [
        f
        for f in protocol.eligibility.screening_fields
        if f.derived is None and f.id != protocol.eligibility.consent_field
    ]


async def _form_values(request: Request, protocol: Protocol, page: Page) -> tuple[dict[str, Any], list[str]]:
    """The screening values typed (dates read in the viewer's calendar as ISO text), and the dates refused."""
    form = await request.form()
    values: dict[str, Any] = {}
    refused: list[str] = []
    for f in entry_fields(protocol):
        raw = str(form.get(f.id, "")).strip()
        if raw == "":
            continue
        if f.type == "date":
            try:
                raw = read_date(page, raw, f.translations.get(page.lang) or f.label)
            except DateEntryError as exc:
                refused.append(str(exc))
                continue
        unit = str(form.get(f"{f.id}__unit", "")).strip() or None
        values[f.id] = {"value": raw, "unit": unit} if unit else raw
    return values, refused


def _sites_for(page: Page, protocol: Protocol) -> list[str]:
    assert page.user is not None
    return list(page.user.sites) if page.user.role.site_scoped else protocol.site_codes


@router.get("/screening", response_class=HTMLResponse)
def screening_log(
    request: Request,
    page: ReaderPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    site: str | None = None,
    decision: str | None = None,
    participant: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    assert page.user is not None
    user = page.user
    found = first_page_if_bad(
        lambda c: page_screenings(
            engine, user, site=site or None, decision=decision or None, participant=participant or None, cursor=c
        ),
        cursor,
    )
    context: dict[str, Any] = {
        "reconsent": reconsent_needed(engine, page.user),
        "rows": found.items,
        "pager": pager(request, found),
        "participant": participant or "",
        "sites": _sites_for(page, protocol),
        "site": site or "",
        "decision": decision or "",
        "can_write": page.user.role in WRITERS,
    }
    return render_page(request, page, "screening/list.html", context)


@router.get("/screening.csv")
def screening_csv(
    page: ReaderPage, engine: EngineDep, protocol: ProtocolDep, site: str | None = None, decision: str | None = None
) -> Response:
    assert page.user is not None
    rows = list_screenings(engine, page.user, site=site or None, decision=decision or None)
    names = [f.id for f in protocol.eligibility.screening_fields]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "screening",
            "site",
            "screened_on",
            "decision",
            "failed_criteria",
            "missing",
            "non_enrolment_reason",
            "non_enrolment_text",
            "consent_by",
            "participant_id",
            *names,
        ]
    )
    for s in rows:
        writer.writerow(
            spreadsheet_row(
                [
                    s.label,
                    s.site,
                    s.screened_on.isoformat(),
                    s.decision.value,
                    " ".join(f["id"] for f in s.failed),
                    " ".join(s.missing),
                    s.non_enrolment_reason or "",
                    s.non_enrolment_text or "",
                    s.consents[-1].given_by if s.consents else "",
                    s.participant.participant_id if s.participant else "",
                    *["" if s.values.get(n) is None else s.values[n] for n in names],
                ]
            )
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="screening-log.csv"'},
    )


@router.get("/screening/new", response_class=HTMLResponse)
def new_form(request: Request, page: WriterPage, protocol: ProtocolDep) -> HTMLResponse:
    context: dict[str, Any] = {
        "fields": entry_fields(protocol),
        "sites": _sites_for(page, protocol),
        "values": {},
        # The date input's default: today at the offered site whose day began last, never a future date.
        "today": min(
            local_date(dt.datetime.now(dt.UTC), protocol.site(c).timezone) for c in _sites_for(page, protocol)
        ).isoformat(),
        "errors": [],
        "decision": None,
    }
    return render_page(request, page, "screening/new.html", context)


@router.post("/screening/check")
async def check(request: Request, page: WriterPage, protocol: ProtocolDep, _csrf: CsrfChecked) -> JSONResponse:
    """The live eligibility summary: what the decision would be for the values on the form."""
    values, refused = await _form_values(request, protocol, page)
    if refused:
        return JSONResponse({"decision": "invalid", "problems": refused})
    words = page_words(protocol, page.lang, SCREENING_INPUTS)
    try:
        decision = evaluate(protocol, validate_values(protocol, values))
    except ScreeningValueError as exc:
        return JSONResponse({"decision": "invalid", "problems": say(exc.problems, words)})
    criteria = {c.id: c for c in (*protocol.eligibility.inclusion, *protocol.eligibility.exclusion)}
    return JSONResponse(
        {
            "decision": decision.decision.value,
            "failed": [f"{r.id}: {criterion_words(criteria[r.id], page.lang)}" for r in decision.failed],
            "missing": [words(name) or name for name in decision.missing],
        }
    )


@router.post("/screening/new", response_class=HTMLResponse)
async def create(
    request: Request, page: WriterPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked
) -> Response:
    assert page.user is not None
    form = await request.form()
    values, problems = await _form_values(request, protocol, page)
    try:
        screened_on = dt.date.fromisoformat(read_date(page, str(form.get("screened_on", "")), N_("Date of screening")))
    except DateEntryError as exc:
        problems.insert(0, str(exc))
    except ValueError:
        problems.insert(0, "screened_on: must be a date written YYYY-MM-DD")
    if not problems:
        try:
            created = screen(engine, page.user, site=str(form.get("site", "")), screened_on=screened_on, values=values)
        except ScreeningValueError as exc:
            problems += exc.problems
        except (ScreeningError, NotFound) as exc:
            problems.append(str(exc))
    if problems:
        context = {
            "fields": entry_fields(protocol),
            "sites": _sites_for(page, protocol),
            "values": dict(form),
            "today": str(form.get("screened_on", "")),
            "errors": say(problems, page_words(protocol, page.lang, SCREENING_INPUTS)),
            "decision": None,
        }
        return render_page(request, page, "screening/new.html", context, status_code=422)
    return RedirectResponse(f"/screening/{created.id}", status_code=303)


def _detail(
    request: Request,
    page: Page,
    engine: EngineDep,
    protocol: Protocol,
    screening_id: int,
    status: int = 200,
    errors: list[str] | None = None,
) -> Response:
    assert page.user is not None
    try:
        s = get_screening(engine, page.user, screening_id)
    except NotFound:
        return render_page(
            request, page, "errors/error.html", {"status": 404, "message": "There is no such page."}, status_code=404
        )
    context = {
        "s": s,
        "fields": entry_fields(protocol),
        "all_fields": protocol.eligibility.screening_fields,
        "criteria": [*protocol.eligibility.inclusion, *protocol.eligibility.exclusion],
        "reasons": list(NonEnrolmentReason),
        "consent_versions": protocol.consent_versions,
        "can_write": page.user.role in WRITERS,
        "errors": say(errors or [], page_words(protocol, page.lang, SCREENING_INPUTS, CONSENT_INPUTS)),
        "words": page_words(protocol, page.lang),
        "criterion_words": criterion_words,
        "now": dt.datetime.now(ZoneInfo(protocol.site(s.site).timezone)).strftime("%Y-%m-%dT%H:%M"),
        "site_zone": protocol.site(s.site).timezone,  # consent times on the site's clock
    }
    return render_page(request, page, "screening/detail.html", context, status_code=status)


@router.get("/screening/{screening_id}", response_class=HTMLResponse)
def detail(
    request: Request, page: ReaderPage, engine: EngineDep, protocol: ProtocolDep, screening_id: RowId
) -> Response:
    return _detail(request, page, engine, protocol, screening_id)


def _act(
    request: Request, page: Page, engine: EngineDep, protocol: Protocol, screening_id: int, action: Callable[[], object]
) -> Response:
    """Run one change, then show the screening again; a refusal is shown naming the field and rule."""
    try:
        action()
    except ScreeningValueError as exc:
        return _detail(request, page, engine, protocol, screening_id, 422, list(exc.problems))
    except (ScreeningError, NotFound) as exc:
        return _detail(request, page, engine, protocol, screening_id, 422, [str(exc)])
    return RedirectResponse(f"/screening/{screening_id}", status_code=303)


@router.post("/screening/{screening_id}/values", response_class=HTMLResponse)
async def change_values(
    request: Request,
    page: WriterPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    screening_id: RowId,
) -> Response:
    assert page.user is not None
    user = page.user
    form = await request.form()
    values, refused = await _form_values(request, protocol, page)
    if refused:
        return _detail(request, page, engine, protocol, screening_id, 422, refused)
    reason = str(form.get("reason", "")) or None
    return _act(
        request,
        page,
        engine,
        protocol,
        screening_id,
        lambda: update_screening(engine, user, screening_id, values=values, reason=reason),
    )


@router.post("/screening/{screening_id}/not-enrolled", response_class=HTMLResponse)
def not_enrolled(
    request: Request,
    page: WriterPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    screening_id: RowId,
    reason: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
) -> Response:
    assert page.user is not None
    user = page.user
    return _act(
        request,
        page,
        engine,
        protocol,
        screening_id,
        lambda: set_non_enrolment(engine, user, screening_id, reason=reason, text_=text or None),
    )


@router.post("/screening/{screening_id}/consent", response_class=HTMLResponse)
def consent(
    request: Request,
    page: WriterPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    screening_id: RowId,
    form_version: Annotated[str, Form()] = "",
    given_by: Annotated[str, Form()] = "participant",
    representative_name: Annotated[str, Form()] = "",
    representative_relationship: Annotated[str, Form()] = "",
    witness: Annotated[str, Form()] = "",
    obtained_by: Annotated[str, Form()] = "",
    obtained_at: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "initial",
    decision: Annotated[str, Form()] = "consent",
) -> Response:
    assert page.user is not None
    user = page.user

    def record() -> None:
        # The page's input says "site time": a time typed without an offset is read on the site's clock.
        zone = protocol.site(get_screening(engine, user, screening_id).site).timezone
        try:
            typed = read_date(page, obtained_at, N_("Date and time (site time)"), time=True)
            when = dt.datetime.fromisoformat(on_site_clock(typed, zone, "obtained_at"))
        except DateEntryError as exc:
            raise ScreeningError(str(exc)) from None
        except ValueError as exc:
            if str(exc).startswith("obtained_at: "):
                raise ScreeningError(str(exc)) from None
            raise ScreeningError("obtained_at: must be a date and time, YYYY-MM-DDTHH:MM") from None
        record_consent(
            engine,
            user,
            screening_id,
            form_version=form_version,
            given_by=given_by,
            representative_name=representative_name or None,
            representative_relationship=representative_relationship or None,
            witness=witness or None,
            obtained_by=obtained_by,
            obtained_at=when,
            kind=kind,
            decision=decision,
        )

    return _act(request, page, engine, protocol, screening_id, record)


@router.post("/screening/{screening_id}/enrol", response_class=HTMLResponse)
def enrol_page(
    request: Request,
    page: WriterPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    screening_id: RowId,
) -> Response:
    assert page.user is not None
    user = page.user
    return _act(request, page, engine, protocol, screening_id, lambda: enrol(engine, user, screening_id))
