"""Screening log, screening form with its eligibility summary, consent, enrolment (pages).

Investigators and study coordinators write; every signed-in role reads, within its sites.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Mapping
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from trialwright.domain.calendars import DateEntryError, local_date, on_site_clock
from trialwright.domain.eligibility import (
    Decision,
    ScreeningValueError,
    applies_if_problems,
    evaluate,
    validate_values,
)
from trialwright.domain.numerals import latin_digits
from trialwright.domain.roles import Role
from trialwright.domain.screening_form import none_apply, none_apply_fields, screening_groups
from trialwright.domain.text import spreadsheet_row
from trialwright.domain.wording import criterion_words
from trialwright.protocol import Protocol
from trialwright.services.screening import (
    NonEnrolmentReason,
    NotFound,
    ScreeningError,
    ScreeningView,
    WithdrawalCause,
    WithdrawalScope,
    enrol,
    get_screening,
    list_screenings,
    page_screenings,
    reconsent_needed,
    record_consent,
    screen,
    set_non_enrolment,
    update_screening,
    withdraw,
)
from trialwright.web import confirm as confirmation
from trialwright.web.dates import read_date
from trialwright.web.deps import CsrfChecked, EngineDep, ProtocolDep, RowId, require_roles
from trialwright.web.i18n import N_
from trialwright.web.paging import first_page_if_bad, pager
from trialwright.web.templating import Page, render_page
from trialwright.web.wording import (
    CONSENT_INPUTS,
    REGAINED_INPUTS,
    SCREENING_INPUTS,
    WITHDRAWAL_INPUTS,
    page_words,
    say,
)

router = APIRouter()
WRITERS = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR)
#: Who may read the screening log (it holds clinical values of patients who may never be enrolled).
READERS = (*WRITERS, Role.ADMINISTRATOR, Role.MONITOR, Role.DATA_MANAGER)
#: The exclusion criteria's "none of these apply" checkbox (``domain/screening_form.py``).
NONE_APPLY = "exclusions_none_apply"
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
    if form.get(NONE_APPLY):  # "none of these apply": the exclusions' yes/no fields left empty read "no"
        values = none_apply(protocol, values)
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
    participant = latin_digits(participant) if participant else participant  # an id typed in Persian digits
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
        "groups": screening_groups(protocol),
        "none_apply_fields": none_apply_fields(protocol),
        "sites": _sites_for(page, protocol),
        "values": {},
        # The date input's default: today at the offered site whose day began last, never a future date.
        "today": min(
            local_date(dt.datetime.now(dt.UTC), protocol.site(c).timezone) for c in _sites_for(page, protocol)
        ).isoformat(),
        "typed_date": False,
        "criterion_words": criterion_words,
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
        typed = validate_values(protocol, values)
        if problems := applies_if_problems(protocol, typed):
            raise ScreeningValueError(problems)
        decision = evaluate(protocol, typed)
    except ScreeningValueError as exc:
        return JSONResponse({"decision": "invalid", "problems": say(exc.problems, words, page.lang)})
    criteria = {c.id: c for c in (*protocol.eligibility.inclusion, *protocol.eligibility.exclusion)}
    derived = {
        f.id: derived_text(decision.values.get(f.id), f.decimals)
        for f in protocol.eligibility.screening_fields
        if f.derived
    }
    return JSONResponse(
        {
            "decision": decision.decision.value,
            "derived": derived,
            "failed": [f"{r.id}: {criterion_words(criteria[r.id], page.lang)}" for r in decision.failed],
            "missing": [words(name) or name for name in decision.missing],
        }
    )


def derived_text(value: object, decimals: int | None = None) -> str:
    """A derived screening value as the form shows it: to the protocol's ``decimals``, the places the decision
    read it rounded to; without them (a protocol stored before they were required), up to 6 significant digits
    of the exact value the decision read (a ratio of 199.996 is shown as such, never as a rounded 200)."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{decimals}f}" if decimals is not None else f"{value:.6g}"
    return str(value)


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
            "groups": screening_groups(protocol),
            "none_apply_fields": none_apply_fields(protocol),
            "sites": _sites_for(page, protocol),
            "values": dict(form),
            "today": str(form.get("screened_on", "")),
            "typed_date": True,
            "criterion_words": criterion_words,
            "errors": say(problems, page_words(protocol, page.lang, SCREENING_INPUTS), page.lang),
            "decision": None,
        }
        return render_page(request, page, "screening/new.html", context, status_code=422)
    return RedirectResponse(f"/screening/{created.id}", status_code=303)


#: The inputs the screening page's messages may name.
INPUTS = (SCREENING_INPUTS, CONSENT_INPUTS, WITHDRAWAL_INPUTS)


def _inputs_of(typed: Mapping[str, Any] | None) -> tuple[Mapping[str, str], ...]:
    """The labels a refusal of the form ``typed`` came from names its inputs by: the page's, with the regained-capacity
    form's own where it labels an input otherwise (its decision is "The participant's decision")."""
    return (*INPUTS, REGAINED_INPUTS) if (typed or {}).get("form") == "regained" else INPUTS


def consent_criteria(protocol: Protocol) -> set[str]:
    """The criteria that read the consent field (a patient failing only these may still be asked to consent)."""
    field = protocol.eligibility.consent_field
    every = (*protocol.eligibility.inclusion, *protocol.eligibility.exclusion)
    return {c.id for c in every if field is not None and field in c.rule.fields()}


def offered(s: ScreeningView, protocol: Protocol, can_write: bool) -> dict[str, bool]:
    """Which of the screening page's actions are offered: only what the role and the record's state allow (the
    service is still the judge). Consent is asked of a patient not known to be ineligible for another reason;
    enrolment only of an eligible, consented one; the regained-capacity decision after a representative's consent
    (once), where the protocol declares that such a participant can regain capacity (not a child); a withdrawal
    once enrolled, while a scope is left to withdraw from."""
    others_failed = any(f["id"] not in consent_criteria(protocol) for f in s.failed)
    representative = any(c.given_by == "representative" for c in s.consents)
    decided = any(c.kind == "regained_capacity" for c in s.consents)
    participant = s.participant
    return {
        "values": can_write and participant is None,
        "consent": can_write and participant is None and not others_failed,
        "enrol": can_write and participant is None and s.decision is Decision.ELIGIBLE and s.consented,
        "not_enrolled": can_write and participant is None,
        "regained": can_write and representative and not decided and protocol.eligibility.regained_capacity,
        "withdraw": can_write
        and participant is not None
        and len(participant.withdrawn_scopes) < len(WithdrawalScope),
    }


def _detail(
    request: Request,
    page: Page,
    engine: EngineDep,
    protocol: Protocol,
    screening_id: int,
    status: int = 200,
    errors: list[str] | None = None,
    typed: Mapping[str, Any] | None = None,
) -> Response:
    """The screening page; ``typed``: what a refused form held (``form`` names it), shown again as typed."""
    assert page.user is not None
    try:
        s = get_screening(engine, page.user, screening_id)
    except NotFound:
        return render_page(
            request, page, "errors/error.html", {"status": 404, "message": "There is no such page."}, status_code=404
        )
    can_write = page.user.role in WRITERS
    # The derived values (e.g. the P/F ratio) as the decision computed them from the stored values.
    try:
        computed = evaluate(protocol, s.values).values
    except ValueError:  # a derivation refuses stored inputs outside its domain (an FiO2 below 0.21): none is shown
        computed = {}
    derived_shown = {
        f.id: derived_text(computed.get(f.id), f.decimals) for f in protocol.eligibility.screening_fields if f.derived
    }
    left = s.participant.withdrawn_scopes if s.participant else ()  # scopes already withdrawn from
    context = {
        "s": s,
        "fields": entry_fields(protocol),
        "groups": screening_groups(protocol),
        "none_apply_fields": none_apply_fields(protocol),
        "all_fields": protocol.eligibility.screening_fields,
        # the fields holding a saved value: changing one needs a reason (the reason box is shown then)
        "saved_fields": [
            f.id for f in protocol.eligibility.screening_fields if not f.derived and s.values.get(f.id) is not None
        ],
        "criteria": [*protocol.eligibility.inclusion, *protocol.eligibility.exclusion],
        "reasons": list(NonEnrolmentReason),
        "scopes": [w.value for w in WithdrawalScope if w.value not in left],
        "causes": [c.value for c in WithdrawalCause],
        "consent_versions": protocol.consent_versions,
        "assent": protocol.eligibility.assent,
        "can_write": can_write,
        "offer": offered(s, protocol, can_write),
        "typed": dict(typed or {}),
        "derived_shown": derived_shown,
        "errors": say(errors or [], page_words(protocol, page.lang, *_inputs_of(typed)), page.lang),
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
    request: Request,
    page: Page,
    engine: EngineDep,
    protocol: Protocol,
    screening_id: int,
    action: Callable[[], object],
    typed: Mapping[str, Any] | None = None,
) -> Response:
    """Run one change, then show the screening again; a refusal is shown naming the field and rule, with what
    was typed (``typed``) still in its form."""
    try:
        action()
    except ScreeningValueError as exc:
        return _detail(request, page, engine, protocol, screening_id, 422, list(exc.problems), typed)
    except (ScreeningError, NotFound) as exc:
        return _detail(request, page, engine, protocol, screening_id, 422, [str(exc)], typed)
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
    typed = {**dict(form), "form": "values"}
    again = str(form.get("with_consent", "")) == "1"  # the consent recorded again with the correction (the age)
    sent = {name: str(form.get(f"{AGAIN}{name}", "")) for name in CONSENT_FORM}
    if not again and (stray := [name for name, value in sent.items() if value]):
        # typed into the re-consent without ticking the box: never ignored without a word
        refused = [*refused, f"{', '.join(stray)}: {UNTICKED}"]
        typed["again_shown"] = "1"
    if refused:
        return _detail(request, page, engine, protocol, screening_id, 422, refused, typed)
    reason = str(form.get("reason", "")) or None

    def change() -> None:
        consent = None
        if again:
            if not sent["given_by"]:  # who gave the consent is said, never defaulted
                raise ScreeningError("given_by: is required")
            zone = protocol.site(get_screening(engine, user, screening_id).site).timezone
            consent = _consent_sent(page, zone, sent, kind="reconsent", decision="consent",
                                    given_by=sent["given_by"])  # fmt: skip
        update_screening(engine, user, screening_id, values=values, reason=reason, consent=consent)

    return _act(request, page, engine, protocol, screening_id, change, typed)


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


#: The consent form's inputs, shown again as typed when the consent is refused.
CONSENT_FORM = (
    "form_version", "given_by", "representative_name", "representative_relationship", "witness", "obtained_by",
    "obtained_at", "kind", "decision", "assent", "assent_obtained_by", "assent_obtained_at", "assent_form_version",
    "assent_not_sought_reason",
)  # fmt: skip


#: The prefix of the consent inputs in the values form (the consent recorded again with a correction of the age).
AGAIN = "again_"
#: Why inputs of the consent recorded again are refused when its box is not ticked (``wording.RULES`` says it).
UNTICKED = ("typed without ticking the box to record the consent again with the correction; tick it to record the "
            "consent again, or clear them")  # fmt: skip


def _site_time(page: Page, typed: str, label: str, zone: str, name: str) -> dt.datetime:
    """A time typed on the page (``label``: its input's words) read on the site's clock (the input says "site
    time": a time typed without an offset is the site's), or refused naming ``name``."""
    try:
        return dt.datetime.fromisoformat(on_site_clock(read_date(page, typed, label, time=True), zone, name))
    except DateEntryError as exc:
        raise ScreeningError(str(exc)) from None
    except ValueError as exc:
        if str(exc).startswith(f"{name}: "):
            raise ScreeningError(str(exc)) from None
        raise ScreeningError(f"{name}: must be a date and time, YYYY-MM-DDTHH:MM") from None


def _consent_sent(page: Page, zone: str, sent: Mapping[str, str], **fixed: str) -> dict[str, Any]:
    """The consent form's inputs (``sent``, by ``CONSENT_FORM``'s names) as ``record_consent``'s fields, times read
    on the site's clock (``zone``); ``fixed``: the kind, decision and who gave it, as the form decides them."""
    typed_at, assent_label = sent["assent_obtained_at"], N_("Assent sought at (site time)")
    assent_at = _site_time(page, typed_at, assent_label, zone, "assent_obtained_at") if typed_at else None
    return {
        "form_version": sent["form_version"],
        "representative_name": sent["representative_name"] or None,
        "representative_relationship": sent["representative_relationship"] or None,
        "witness": sent["witness"] or None,
        "obtained_by": sent["obtained_by"],
        "obtained_at": _site_time(page, sent["obtained_at"], N_("Date and time (site time)"), zone, "obtained_at"),
        "assent": sent["assent"] or None,
        "assent_obtained_by": sent["assent_obtained_by"] or None,
        "assent_obtained_at": assent_at,
        "assent_form_version": sent["assent_form_version"] or None,
        "assent_not_sought_reason": sent["assent_not_sought_reason"] or None,
        **fixed,
    }


@router.post("/screening/{screening_id}/consent", response_class=HTMLResponse)
async def consent(
    request: Request,
    page: WriterPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    screening_id: RowId,
) -> Response:
    """Record a consent, a refusal, or (``kind`` regained_capacity) the participant's own decision after regaining
    capacity; a decision to withdraw is confirmed first (``web/confirm.py``): it withdraws from every scope."""
    assert page.user is not None
    user = page.user
    data = await request.form()
    sent = {name: str(data.get(name, "")) for name in CONSENT_FORM}
    kind = sent["kind"] or "initial"
    decision = sent["decision"]
    given_by = "participant" if kind == "regained_capacity" else sent["given_by"]
    typed = {**sent, "form": "regained" if kind == "regained_capacity" else "consent"}

    # The consent and regained-capacity forms pre-select and pre-fill nothing (docs/screening.md): a choice or time
    # left empty is refused naming it, never taken as the participant, a consent, "continue" or now.
    needed = ("form_version", "obtained_at", "decision") + (() if kind == "regained_capacity" else ("given_by",))
    missing = [n for n in ("form_version", "given_by", "obtained_at", "decision") if n in needed
               and not sent[n].strip()]  # fmt: skip

    def record() -> None:
        if missing:
            raise ScreeningError(f"{', '.join(missing)}: is required")
        zone = protocol.site(get_screening(engine, user, screening_id).site).timezone
        consent = _consent_sent(page, zone, sent, kind=kind, decision=decision, given_by=given_by)
        record_consent(engine, user, screening_id, **consent)

    if kind == "regained_capacity" and decision == "withdraw" and not missing:  # refused before any confirmation
        facts = ("regained", screening_id, decision)
        now = confirmation.step(str(data.get(confirmation.CONFIRM_FIELD, "")), *facts)
        if now is not confirmation.Step.CONFIRMED:
            return _confirm(request, page, screening_id, "regained", typed, facts, now is confirmation.Step.CHANGED)
    return _act(request, page, engine, protocol, screening_id, record, typed)


#: The scopes and causes of a withdrawal as the page says them (``_(code.replace("_", " "))``).
WITHDRAWAL_WORDS = (
    N_("intervention"), N_("follow up"), N_("data use"), N_("withdrew consent"), N_("lost to follow up"),
    N_("investigator decision"), N_("adverse event"), N_("other"),
)  # fmt: skip

#: The withdrawal form's inputs, shown again as typed when it is refused.
WITHDRAWAL_FORM = ("scope", "cause", "reason", "withdrawn_on")


@router.post("/screening/{screening_id}/withdrawal", response_class=HTMLResponse)
async def withdrawal(
    request: Request,
    page: WriterPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    screening_id: RowId,
) -> Response:
    """Record the participant's withdrawal from one scope, after a confirmation (it cannot be undone)."""
    assert page.user is not None
    user = page.user
    data = await request.form()
    sent = {name: str(data.get(name, "")).strip() for name in WITHDRAWAL_FORM}
    typed = {**sent, "form": "withdrawal"}
    try:
        s = get_screening(engine, user, screening_id)
    except NotFound:
        return _detail(request, page, engine, protocol, screening_id)
    if s.participant is None:
        return _detail(request, page, engine, protocol, screening_id, 422, ["participant: not enrolled"], typed)
    participant_id = s.participant.participant_id

    def record() -> None:
        try:
            day = read_date(page, sent["withdrawn_on"], N_("Date of withdrawal")) if sent["withdrawn_on"] else ""
        except DateEntryError as exc:
            raise ScreeningError(str(exc)) from None
        withdraw(engine, user, participant_id, scope=sent["scope"], cause=sent["cause"], reason=sent["reason"],
                 withdrawn_on=dt.date.fromisoformat(day) if day else None)  # fmt: skip

    facts = ("withdrawal", participant_id, sent["scope"], s.participant.withdrawn_scopes)
    now = confirmation.step(str(data.get(confirmation.CONFIRM_FIELD, "")), *facts)
    if now is not confirmation.Step.CONFIRMED and sent["scope"] and sent["reason"]:
        return _confirm(request, page, screening_id, "withdrawal", typed, facts, now is confirmation.Step.CHANGED)
    return _act(request, page, engine, protocol, screening_id, record, typed)


def _confirm(
    request: Request,
    page: Page,
    screening_id: int,
    what: str,
    typed: Mapping[str, str],
    facts: tuple[object, ...],
    changed: bool,
) -> Response:
    """The confirmation page of a withdrawal (``what``: withdrawal, or regained: a decision to withdraw on regaining
    capacity), carrying what was typed."""
    context = {
        "what": what,
        "typed": {k: v for k, v in typed.items() if k != "form"},
        "action": f"/screening/{screening_id}/" + ("withdrawal" if what == "withdrawal" else "consent"),
        "confirm_token": confirmation.token(*facts),
        "cancel_url": f"/screening/{screening_id}",
        "changed": changed,
        "errors": [],
    }
    return render_page(request, page, "screening/confirm.html", context)


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
