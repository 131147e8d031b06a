"""Safety pages: report an adverse event and its follow-ups, each event's deadlines and submissions, the
team's (masked) safety page with its CSV listing, and the DSMB's page by arm with the pause decisions.
Everything goes through ``trialwright.services.safety``. The pages' date-and-time inputs say "site time",
so the services read a time typed without an offset on the site's clock (``typed_on_site_clock``).
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialwright.domain.calendars import DateEntryError
from trialwright.domain.safety import EventOutcome, SafetyInputError, Seriousness
from trialwright.domain.text import spreadsheet_values
from trialwright.protocol import Protocol
from trialwright.services import safety as svc
from trialwright.services.screening import NotFound, check_participant
from trialwright.web import confirm as confirmation
from trialwright.web.dates import read_date, read_dates
from trialwright.web.deps import ConfirmReentry, CsrfChecked, EngineDep, ProtocolDep, require_roles
from trialwright.web.i18n import N_, translations
from trialwright.web.localized import said
from trialwright.web.paging import Pager, first_page_if_bad, pager
from trialwright.web.safety_words import group_said, line_said
from trialwright.web.templating import Page, render_page
from trialwright.web.wording import DSMB_INPUTS, SAFETY_INPUTS, page_words, say

router = APIRouter()
ReaderPage = Annotated[Page, Depends(require_roles(*svc.READERS))]
ReporterPage = Annotated[Page, Depends(require_roles(*svc.REPORTERS))]
ByArmPage = Annotated[Page, Depends(require_roles(*svc.BY_ARM))]
DsmbPage = Annotated[Page, Depends(require_roles(*svc.DECIDERS))]

#: The report form's fields, as the page sends them.
_TEXT_FIELDS = ("term", "expected_event", "onset", "end", "grade", "serious", "causality", "action_taken", "outcome",
                "aware_at", "death_date", "death_cause", "narrative")  # fmt: skip

#: The reporting rules of ``domain.safety.RULES`` for the catalog (``%(n)s``: their hours or days).
RULE_WORDS = {
    "sae_to_sponsor": N_("every SAE to the sponsor within %(n)s hours of awareness"),
    "susar_other": N_("a SUSAR within %(n)s calendar days (day 0 = awareness)"),
    "susar_fatal": N_("a fatal or life-threatening SUSAR within %(n)s calendar days"),
    "susar_complete": N_("then the complete report within %(n)s more calendar days"),
}


def _table_words(page: Page, protocol: Protocol) -> dict[str, Any]:
    """What says the safety tables' lines and groups, and the listing's choices, in the viewer's language."""
    return {
        "line_said": lambda label: line_said(label, page.lang),
        "group_said": lambda grouping, group: group_said(grouping, group, protocol, page.lang),
        "causality_labels": {c.code: said(c, page.lang) for c in protocol.safety.causality},
        "action_labels": {a.code: said(a, page.lang) for a in protocol.safety.action_choices},
        "comma": "، " if page.lang == "fa" else ", ",
    }


def _not_found(request: Request, page: Page) -> Response:
    return render_page(
        request, page, "errors/error.html", {"status": 404, "message": "There is no such page."}, status_code=404
    )


def _choices(protocol: Protocol) -> dict[str, Any]:
    return {
        "criteria": list(Seriousness),
        "actions": protocol.safety.action_choices,
        "outcomes": list(EventOutcome),
        "causality": protocol.safety.causality,
        "expected_events": protocol.safety.expected_events,
        "ctcae": protocol.safety.ctcae_version,
    }


async def _typed(request: Request) -> tuple[dict[str, Any], str | None]:
    """The report form as the service's input (empty fields left out), and the reason for a follow-up."""
    data = await request.form()
    raw: dict[str, Any] = {k: str(data.get(k, "")).strip() for k in _TEXT_FIELDS}
    raw = {k: v for k, v in raw.items() if v}
    criteria = [str(c) for c in data.getlist("seriousness_criteria")]
    if criteria or "serious" in raw:
        raw["seriousness_criteria"] = criteria
    return raw, (str(data.get("reason", "")).strip() or None)


#: The report's dates (and its date and time) as the page labels them: typed in the viewer's calendar.
_DATES = {"onset": N_("Onset"), "end": N_("End (empty while ongoing)"), "death_date": N_("Date of death")}
_TIMES = {"aware_at": N_("When the site became aware (site time)")}


def _by_field(
    problems: list[tuple[str, str]] | None, lang: str, refused: dict[str, str] | None = None,
    protocol: Protocol | None = None,
) -> dict[str, list[str]]:
    """Each problem as ``field: rule`` with the field said by its label, under its field, for the inline messages;
    a refused date as its message (which names the field's label)."""
    words = page_words(None, lang, SAFETY_INPUTS)
    gettext = translations(lang).gettext
    choices = {} if protocol is None else {  # a code in a rule ("one of ...") said as its option shows it
        **{o.value: gettext(o.value.replace("_", " ")) for o in EventOutcome},
        **{c.code: said(c, lang) for c in protocol.safety.causality},
        **{a.code: said(a, lang) for a in protocol.safety.action_choices},
    }
    by_field: dict[str, list[str]] = {}
    for name, rule in problems or []:
        by_field.setdefault(name, []).extend(say([f"{name}: {rule}"], words, lang, choices=choices))
    for name, message in (refused or {}).items():
        by_field.setdefault(name, []).append(message)
    return by_field


def _report_page(
    request: Request,
    page: Page,
    protocol: Protocol,
    participant_id: str,
    *,
    typed: dict[str, Any] | None = None,
    problems: list[tuple[str, str]] | None = None,
    refused: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    context = {
        "participant_id": participant_id,
        "typed": typed or {},
        "field_errors": _by_field(problems, page.lang, refused, protocol),
        "action": f"/participants/{participant_id}/adverse-events",
        "follow_up": None,
        **_choices(protocol),
    }
    return render_page(request, page, "safety/report.html", context, status_code=status)


@router.get("/participants/{participant_id}/adverse-events/new", response_class=HTMLResponse)
def report_form(
    request: Request, page: ReporterPage, engine: EngineDep, protocol: ProtocolDep, participant_id: str
) -> Response:
    assert page.user is not None
    try:
        check_participant(engine, page.user, participant_id)  # another site's participant does not exist here
    except NotFound:
        return _not_found(request, page)
    return _report_page(request, page, protocol, participant_id)


@router.post("/participants/{participant_id}/adverse-events", response_class=HTMLResponse)
async def report(
    request: Request, page: ReporterPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked,
    participant_id: str,
) -> Response:  # fmt: skip
    assert page.user is not None
    raw, _ = await _typed(request)
    read, refused = read_dates(page, raw, _DATES, _TIMES)
    if refused:
        return _report_page(request, page, protocol, participant_id, typed=raw, refused=refused, status=422)
    try:
        event = svc.report_event(engine, page.user, participant_id, read, typed_on_site_clock=True)
    except NotFound:
        return _not_found(request, page)
    except (SafetyInputError, svc.SafetyError) as exc:
        return _report_page(request, page, protocol, participant_id, typed=raw, problems=list(exc.problems), status=422)
    return RedirectResponse(f"/adverse-events/{event.ae_number}", status_code=303)


def _event_page(
    request: Request,
    page: Page,
    engine: EngineDep,
    protocol: Protocol,
    ae_number: str,
    *,
    typed: dict[str, Any] | None = None,
    problems: list[tuple[str, str]] | None = None,
    refused: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    assert page.user is not None
    try:
        event = svc.get_event(engine, page.user, ae_number)
    except (NotFound, svc.SafetyError):
        return _not_found(request, page)
    current = {k: v for k, v in event.current.as_json().items() if k != "aware_at" and v is not None}
    current["seriousness_criteria"] = [c.value for c in event.current.criteria]
    context = {
        "e": event,
        "causality_labels": {c.code: said(c, page.lang) for c in protocol.safety.causality},
        "can_report": page.user.role in svc.REPORTERS,
        "typed": typed or current,
        "field_errors": _by_field(problems, page.lang, refused, protocol),
        "action": f"/adverse-events/{ae_number}/follow-ups",
        "follow_up": ae_number,
        "kinds": [d.kind for d in event.deadlines if d.submitted_at is None],
        "rule_words": RULE_WORDS,
        **_choices(protocol),
    }
    return render_page(request, page, "safety/event.html", context, status_code=status)


@router.get("/adverse-events/{ae_number}", response_class=HTMLResponse)
def event_page(
    request: Request, page: ReaderPage, engine: EngineDep, protocol: ProtocolDep, ae_number: str
) -> Response:
    return _event_page(request, page, engine, protocol, ae_number)


@router.post("/adverse-events/{ae_number}/follow-ups", response_class=HTMLResponse)
async def follow_up(
    request: Request, page: ReporterPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked,
    ae_number: str,
) -> Response:  # fmt: skip
    assert page.user is not None
    raw, reason = await _typed(request)
    read, refused = read_dates(page, raw, _DATES, _TIMES)
    if refused:
        return _event_page(request, page, engine, protocol, ae_number, typed=raw, refused=refused, status=422)
    try:
        svc.follow_up(engine, page.user, ae_number, read, reason, typed_on_site_clock=True)
    except (SafetyInputError, svc.SafetyError) as exc:
        return _event_page(request, page, engine, protocol, ae_number, typed=raw, problems=list(exc.problems),
                           status=422)  # fmt: skip
    return RedirectResponse(f"/adverse-events/{ae_number}", status_code=303)


@router.post("/adverse-events/{ae_number}/submissions", response_class=HTMLResponse)
async def submission(
    request: Request, page: ReporterPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked,
    ae_number: str,
) -> Response:  # fmt: skip
    assert page.user is not None
    data = await request.form()
    try:
        submitted_at = read_date(page, str(data.get("submitted_at", "")), N_("Sent at (site time)"), time=True)
    except DateEntryError as exc:
        return _event_page(request, page, engine, protocol, ae_number, refused={"submitted_at": str(exc)}, status=422)
    try:
        svc.record_submission(
            engine, page.user, ae_number, str(data.get("kind", "")), submitted_at,
            str(data.get("note", "")).strip() or None, typed_on_site_clock=True,
        )  # fmt: skip
    except NotFound:
        return _not_found(request, page)
    except svc.SafetyError as exc:
        return _event_page(request, page, engine, protocol, ae_number, problems=list(exc.problems), status=422)
    return RedirectResponse(f"/adverse-events/{ae_number}", status_code=303)


@router.get("/safety", response_class=HTMLResponse)
def safety_page(
    request: Request,
    page: ReaderPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    serious: str = "",
    overdue: str = "",
    participant: str | None = None,
    cursor: str | None = None,
) -> Response:
    assert page.user is not None
    user = page.user
    tables = svc.safety_tables(engine, user)
    found = first_page_if_bad(
        lambda c: svc.page_events(
            engine,
            user,
            serious_only=bool(serious),
            overdue_only=bool(overdue),
            participant=participant or None,
            cursor=c,
        ),
        cursor,
    )
    # The overdue reports: the first page of the events with one (the shared page size); the rest are reached
    # through the list below filtered to them, from where this page ends.
    overdue_first = svc.page_events(engine, user, overdue_only=True)
    overdue_rest = (
        f"/safety?{urlencode({'overdue': '1', 'cursor': overdue_first.next_cursor})}"
        if overdue_first.next_cursor
        else None
    )
    context = {
        "events": found.items,
        "pager": pager(request, found),
        "participant": participant or "",
        "overdue": overdue_first.items,
        "overdue_pager": Pager(
            f"{overdue_first.first:,}", f"{overdue_first.last:,}", f"{overdue_first.total:,}", None, overdue_rest
        ),
        "tables": tables,
        "pause": svc.pause(engine),
        "serious": bool(serious),
        "only_overdue": bool(overdue),
        "by_arm": tables.grouping == "by_arm",
        **_table_words(page, protocol),
    }
    return render_page(request, page, "safety/index.html", context)


@router.get("/safety/listing.csv")
def listing_csv(page: ReaderPage, engine: EngineDep) -> Response:
    assert page.user is not None
    rows = svc.export_listing(engine, page.user)
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(spreadsheet_values(r) for r in rows)
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="adverse-events.csv"'},
    )


def _dsmb_page(
    request: Request, page: Page, engine: EngineDep, protocol: Protocol, *, errors: list[str] | None = None,
    status: int = 200,
) -> Response:  # fmt: skip
    assert page.user is not None
    # The line listing as the CSV has it (``listing_rows``: oldest first), each value in the viewer's words: dates in
    # their calendar, choices by their labels, yes/no in words, numbers in their digits; the arm by its name in the
    # page's language, only where the service gives it (never ``masked``).
    listing = list(reversed(svc.list_events(engine, page.user)))
    context = {
        "tables": svc.safety_tables(engine, page.user),
        "listing": listing,
        "listing_arms": any(e.arm != "masked" for e in listing),
        **_table_words(page, protocol),
        "pause": svc.pause(engine),
        "decisions": svc.decisions(engine, page.user),
        "can_decide": page.user.role in svc.DECIDERS,
        "codes": svc.DECISION_CODES,
        "errors": say(errors or [], page_words(None, page.lang, DSMB_INPUTS), page.lang),
    }
    return render_page(request, page, "safety/dsmb.html", context, status_code=status)


@router.get("/dsmb", response_class=HTMLResponse)
def dsmb(request: Request, page: ByArmPage, engine: EngineDep, protocol: ProtocolDep) -> Response:
    return _dsmb_page(request, page, engine, protocol)


@router.post("/dsmb/decisions", response_class=HTMLResponse)
async def decide(
    request: Request, page: DsmbPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked,
    policy: ConfirmReentry,
) -> Response:  # fmt: skip
    """The first post shows what the decision will do and asks the password; the confirmation's post records it
    (``web/confirm.py``)."""
    assert page.user is not None
    data = await request.form()
    decision, reason = str(data.get("decision", "")), str(data.get("reason", ""))
    if decision not in svc.DECISION_CODES:  # the service's words; nothing to confirm
        message = f"decision: {decision!r} is not one of {', '.join(svc.DECISION_CODES)}"
        return _dsmb_page(request, page, engine, protocol, errors=[message], status=422)
    state = svc.pause(engine)
    facts = ("decision", decision, state.active, state.stopped, state.related_saes)
    now = confirmation.step(str(data.get("confirm", "")), *facts)
    if now is not confirmation.Step.CONFIRMED:
        changed = now is confirmation.Step.CHANGED
        return _confirm_decision(request, page, decision, reason, state, facts, changed=changed,
                                 status=409 if changed else 200)  # fmt: skip
    try:
        svc.record_decision(engine, page.user, decision, reason, str(data.get("password", "")), policy=policy)
    except svc.SafetyError as exc:
        return _confirm_decision(request, page, decision, reason, state, facts, errors=[str(exc)], status=422)
    return RedirectResponse("/dsmb", status_code=303)


def _confirm_decision(
    request: Request,
    page: Page,
    decision: str,
    reason: str,
    state: Any,
    facts: tuple[object, ...],
    *,
    changed: bool = False,
    errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    context = {
        "decision": decision,
        "reason": reason,
        "pause": state,
        "changed": changed,
        "errors": say(errors or [], page_words(None, page.lang, DSMB_INPUTS), page.lang),
        "confirm_token": confirmation.token(*facts),
        "cancel_url": "/dsmb",
    }
    return render_page(request, page, "safety/confirm_decision.html", context, status_code=status)
