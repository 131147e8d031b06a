"""Randomization pages: participants and their randomization, the statistician's list, the pharmacist's
preparation, emergency unblinding and the unblinding log.

Every arm shown on these pages comes from the randomization service, which applies the masking policy.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialwright.domain.masking import unblinding_applies
from trialwright.domain.numerals import latin_digits
from trialwright.domain.preparation import nothing_to_prepare
from trialwright.domain.roles import Role
from trialwright.domain.text import spreadsheet_values
from trialwright.services import forms, safety
from trialwright.services import randomization as svc
from trialwright.services.lock import frozen
from trialwright.services.screening import NotFound, ScreeningError
from trialwright.services.screening.common import READERS as SCREENING_READERS
from trialwright.services.screening.dissent import open_dissent_of
from trialwright.services.trial import current_protocol
from trialwright.web import confirm as confirmation
from trialwright.web.deps import ConfirmReentry, CsrfChecked, EngineDep, ProtocolDep, get_protocol, require_roles
from trialwright.web.localized import said
from trialwright.web.lock_words import frozen_said
from trialwright.web.navigation import PARTICIPANT_READERS
from trialwright.web.paging import first_page_if_bad, pager
from trialwright.web.templating import Page, render_page
from trialwright.web.wording import LIST_INPUTS, PARTICIPANT_INPUTS, page_words, say

router = APIRouter()
#: The statistician's page marks a stratum with fewer entries left than this.
LOW_REMAINING = 4

ReaderPage = Annotated[Page, Depends(require_roles(*PARTICIPANT_READERS))]
RandomizerPage = Annotated[Page, Depends(require_roles(*svc.RANDOMIZERS))]
InvestigatorPage = Annotated[Page, Depends(require_roles(Role.INVESTIGATOR))]
StatisticianPage = Annotated[Page, Depends(require_roles(Role.UNBLINDED_STATISTICIAN))]
PharmacistPage = Annotated[Page, Depends(require_roles(Role.UNBLINDED_PHARMACIST))]
LogPage = Annotated[
    Page, Depends(require_roles(Role.UNBLINDED_STATISTICIAN, Role.UNBLINDED_PHARMACIST, Role.DSMB_MEMBER))
]
#: Role codes to the names people read (the unblinding confirmation lists who is notified).
ROLE_LABELS = {r.value: r.label for r in Role}


def _not_found(request: Request, page: Page) -> Response:
    return render_page(
        request, page, "errors/error.html", {"status": 404, "message": "There is no such page."}, status_code=404
    )


@router.get("/participants", response_class=HTMLResponse)
def participant_list(
    request: Request,
    page: ReaderPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    site: str | None = None,
    search: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    assert page.user is not None
    user = page.user
    search = latin_digits(search) if search else search  # an id typed in Persian digits
    found = first_page_if_bad(
        lambda c: svc.page_participants(engine, user, site=site or None, search=search or None, cursor=c), cursor
    )
    context = {
        "rows": found.items,
        "pager": pager(request, found),
        "sites": list(user.sites) if user.role.site_scoped else protocol.site_codes,
        "site": site or "",
        "search": search or "",
        # the casebook, where an investigator reviews and signs a participant's forms (``routes.casebook``)
        "signs": user.role is Role.INVESTIGATOR,
    }
    return render_page(request, page, "randomization/participants.html", context)


def participant_page(
    request: Request,
    page: Page,
    engine: EngineDep,
    participant_id: str,
    status: int = 200,
    errors: list[str] | None = None,
    typed: dict[str, str] | None = None,
    log_typed: dict[str, Any] | None = None,
) -> Response:
    assert page.user is not None
    rows = svc.participant_rows(engine, page.user, participant_id=participant_id)
    if not rows:
        return _not_found(request, page)
    stopped = frozen(engine, participant_id)  # the trial or this participant locked: no visit or log change offered
    context: dict[str, Any] = {
        "p": rows[0],
        "frozen": frozen_said(stopped, get_protocol(request), page.lang),
        "protocol": get_protocol(request),  # form names in the viewer's language
        "schedule": forms.participant_schedule(engine, page.user, participant_id),
        "can_enter": page.user.role in forms.DATA_ENTRY and not stopped,
        "allocation": (allocation := svc.allocation_of(engine, page.user, participant_id)),
        "nothing_to_prepare": allocation is not None
        and nothing_to_prepare(get_protocol(request), allocation.arm),
        "can_randomize": page.user.role in svc.RANDOMIZERS,
        # the screening record is linked only for a role that may read it (an outcome assessor may not: docs/roles.md)
        "reads_screening": page.user.role in SCREENING_READERS,
        "list_exists": svc.list_exists(engine),  # Randomize is offered only once there is a list to draw from
        "can_unblind": page.user.role is Role.INVESTIGATOR and unblinding_applies(current_protocol(engine).protocol),
        "errors": errors or [],
        "typed": typed or {},  # the visit form as typed, shown again after a refusal
        "log_typed": log_typed or {},  # a log's form as typed (its prefix, its values), shown again after a refusal
        "pause": safety.pause(engine),
        "events": safety.list_events(engine, page.user, participant_id=participant_id)
        if page.user.role in safety.READERS
        else None,
        "can_report": page.user.role in safety.REPORTERS,
        "site_zone": get_protocol(request).site(rows[0].site).timezone,  # times on the site's clock
        "visit_names": {v.id: said(v, page.lang) for v in get_protocol(request).visits},
        "logs": _log_entries(engine, page, get_protocol(request), participant_id),
        "can_log": page.user.role in forms.DATA_ENTRY and not stopped,
        "can_query": page.user.role in forms.QUERY_RAISERS,
        # a child's dissent at a re-consent after enrolment, awaiting the investigator's decision (screening.dissent)
        "dissent": open_dissent_of(engine, page.user, participant_id),
    }
    return render_page(request, page, "randomization/participant.html", context, status_code=status)


def _log_entries(engine: Any, page: Page, protocol: Any, participant_id: str) -> list[tuple[Any, list[Any], list[str]]]:
    """Each log the protocol declares with the participant's entries (removed ones included) and the fields their
    entries hold that the protocol no longer declares (shown, never left out), for readers; then each log the protocol
    no longer declares that holds entries, as (its id, its entries, [])."""
    from trialwright.services.logs import list_entries

    assert page.user is not None
    if page.user.role not in forms.READERS:
        return []
    entries = list_entries(engine, page.user, participant_id)
    found: list[tuple[Any, list[Any], list[str]]] = []
    for log in protocol.logs:
        mine = [e for e in entries if e.log_id == log.id]
        declared = {f.id for f in log.fields}
        found.append((log, mine, sorted({k for e in mine for k in e.values} - declared)))
    declared_logs = {log.id for log in protocol.logs}
    for log_id in sorted({e.log_id for e in entries} - declared_logs):
        found.append((log_id, [e for e in entries if e.log_id == log_id], []))
    return found


@router.get("/participants/{participant_id}", response_class=HTMLResponse)
def participant(request: Request, page: ReaderPage, engine: EngineDep, participant_id: str) -> Response:
    return participant_page(request, page, engine, participant_id)


@router.post("/participants/{participant_id}/randomize", response_class=HTMLResponse)
def randomize(
    request: Request,
    page: RandomizerPage,
    engine: EngineDep,
    _csrf: CsrfChecked,
    participant_id: str,
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """The first post shows what randomizing will do (and whether it goes past the target); the confirmation's
    post randomizes (``web/confirm.py``)."""
    assert page.user is not None
    try:
        preview = svc.preview_randomization(engine, page.user, participant_id)
        now = confirmation.step(confirm, "randomize", participant_id, preview.past_target)
        if now is not confirmation.Step.CONFIRMED:
            context = {
                "v": preview,
                "confirm_token": confirmation.token("randomize", participant_id, preview.past_target),
                "changed": now is confirmation.Step.CHANGED,
                "cancel_url": f"/participants/{participant_id}",
            }
            status = 409 if now is confirmation.Step.CHANGED else 200
            return render_page(request, page, "randomization/confirm.html", context, status_code=status)
        svc.randomize(engine, page.user, participant_id)
    except NotFound:
        return _not_found(request, page)
    except (svc.RandomizationError, ScreeningError) as exc:
        errors = say([str(exc)], page_words(None, page.lang, PARTICIPANT_INPUTS), page.lang)
        return participant_page(request, page, engine, participant_id, 422, errors)
    return RedirectResponse(f"/participants/{participant_id}", status_code=303)


def _unblind_page(
    request: Request, page: Page, protocol: ProtocolDep, participant_id: str, status: int = 200, **extra: Any
) -> Response:
    context: dict[str, Any] = {
        "participant_id": participant_id,
        "errors": [],
        "revealed": None,
        "reason": "",
        "confirming": False,
        "changed": False,
        "confirm_token": confirmation.token("unblind", participant_id),
        "cancel_url": f"/participants/{participant_id}",
        # Each role the protocol names, by its label (a name that is no role, as the protocol spells it).
        "notified": [ROLE_LABELS.get(r, r) for r in protocol.masking.unblinding_notify],
        **extra,
    }
    return render_page(request, page, "randomization/unblind.html", context, status_code=status)


@router.get("/participants/{participant_id}/unblind", response_class=HTMLResponse)
def unblind_form(
    request: Request, page: InvestigatorPage, engine: EngineDep, protocol: ProtocolDep, participant_id: str
) -> Response:
    assert page.user is not None
    if not svc.participant_rows(engine, page.user, participant_id=participant_id):
        return _not_found(request, page)
    if not unblinding_applies(current_protocol(engine).protocol):
        return _not_found(request, page)  # open label: there is no unblinding workflow
    return _unblind_page(request, page, protocol, participant_id)


@router.post("/participants/{participant_id}/unblind", response_class=HTMLResponse)
def unblind(
    request: Request,
    page: InvestigatorPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    policy: ConfirmReentry,
    participant_id: str,
    reason: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """The first post (the reason) shows what unblinding will do and asks the password; the confirmation's post
    unblinds."""
    assert page.user is not None
    now = confirmation.step(confirm, "unblind", participant_id)
    if now is not confirmation.Step.CONFIRMED:
        if not svc.participant_rows(engine, page.user, participant_id=participant_id):
            return _not_found(request, page)
        if not unblinding_applies(protocol):
            return _not_found(request, page)  # open label: there is no unblinding workflow
        changed = now is confirmation.Step.CHANGED
        return _unblind_page(request, page, protocol, participant_id, 409 if changed else 200, reason=reason,
                             confirming=True, changed=changed)  # fmt: skip
    try:
        revealed = svc.emergency_unblind(
            engine, page.user, participant_id, reason=reason, password=password, policy=policy
        )
    except NotFound:
        return _not_found(request, page)
    except svc.RandomizationError as exc:
        errors = say([str(exc)], page_words(None, page.lang, PARTICIPANT_INPUTS), page.lang)
        return _unblind_page(request, page, protocol, participant_id, 422, reason=reason, confirming=True,
                             errors=errors)  # fmt: skip
    # Shown once, to this investigator only; later visits show it through the masking policy.
    return _unblind_page(request, page, protocol, participant_id, revealed=revealed,
                         arm=protocol.arm_by_code(revealed.arm))  # fmt: skip


def _statistician_page(
    request: Request,
    page: Page,
    engine: EngineDep,
    protocol: ProtocolDep,
    status: int = 200,
    errors: list[str] | None = None,
) -> Response:
    assert page.user is not None
    r = protocol.randomization
    blocks = r.method == "stratified_permuted_blocks"
    listed = r.method != "minimization"  # a list made in advance: it can run out and be extended
    used = {s.stratum: s for s in svc.list_status(engine, page.user)}
    balance = {b.stratum: b for b in svc.balance(engine, page.user)}
    rows = []
    for stratum in sorted(set(used) | set(balance)):
        s, b = used.get(stratum), balance.get(stratum)
        rows.append(
            {
                "stratum": stratum,
                "by_arm": dict(b.by_arm) if b else {},
                "imbalance": b.imbalance if b else 0.0,
                "worst": b.worst_running if b else 0.0,
                "bound": max(r.block_sizes) / 2 if r.method == "stratified_permuted_blocks" else None,
                "used": s.used if s else (sum(b.by_arm.values()) if b else 0),
                "remaining": s.remaining if s else "—",
                "low": listed and s is not None and s.remaining < LOW_REMAINING,
            }
        )
    context: dict[str, Any] = {
        "records": svc.list_records(engine, page.user),
        "rows": rows,
        "arms": [a.code for a in protocol.arms],
        "strata": sorted(used),
        "blocks": blocks,
        "listed": listed,
        "errors": say(errors or [], page_words(None, page.lang, PARTICIPANT_INPUTS, LIST_INPUTS), page.lang),
    }
    return render_page(request, page, "randomization/list.html", context, status_code=status)


@router.get("/randomization", response_class=HTMLResponse)
def list_page(request: Request, page: StatisticianPage, engine: EngineDep, protocol: ProtocolDep) -> Response:
    return _statistician_page(request, page, engine, protocol)


@router.post("/randomization/generate", response_class=HTMLResponse)
def generate(
    request: Request, page: StatisticianPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked
) -> Response:
    assert page.user is not None
    try:
        svc.generate_list(engine, page.user)
    except svc.RandomizationError as exc:
        return _statistician_page(request, page, engine, protocol, 422, [str(exc)])
    return RedirectResponse("/randomization", status_code=303)


@router.post("/randomization/extend", response_class=HTMLResponse)
def extend(
    request: Request,
    page: StatisticianPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    stratum: Annotated[str, Form()] = "",
    entries: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    assert page.user is not None
    try:
        if not entries.strip().isdigit():
            raise svc.RandomizationError("entries: must be a whole number")
        svc.extend_list(engine, page.user, stratum, entries=int(entries), reason=reason)
    except svc.RandomizationError as exc:
        return _statistician_page(request, page, engine, protocol, 422, [str(exc)])
    return RedirectResponse("/randomization", status_code=303)


@router.get("/randomization/list.csv")
def export(page: StatisticianPage, engine: EngineDep) -> Response:
    assert page.user is not None
    rows = svc.export_list(engine, page.user)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["stratum"])
    writer.writeheader()
    writer.writerows(spreadsheet_values(r) for r in rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="allocation-list.csv"', "Cache-Control": "no-store"},
    )


#: The pharmacy page's tabs, in order (the last only where an arm has nothing to prepare).
PHARMACY_STATES = tuple(svc.PreparationState)


@router.get("/pharmacy", response_class=HTMLResponse)
def pharmacy(
    request: Request,
    page: PharmacistPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    participant: str | None = None,
    state: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    """The work list by state: to prepare (the default), prepared today, done earlier, nothing to prepare."""
    assert page.user is not None
    user = page.user
    participant = latin_digits(participant) if participant else participant  # an id typed in Persian digits
    errors = []
    try:
        chosen = svc.PreparationState(state or svc.PreparationState.TO_PREPARE)
    except ValueError:
        shown = ", ".join(s.value for s in PHARMACY_STATES)
        errors, chosen = [f"state: {state!r} is not one of {shown}"], svc.PreparationState.TO_PREPARE
    found = first_page_if_bad(
        lambda c: svc.page_preparation_queue(engine, user, participant=participant or None, state=chosen, cursor=c),
        cursor,
    )
    counts = svc.preparation_counts(engine, user, participant=participant or None)
    context = {
        "queue": found.items,
        "pager": pager(request, found),
        "participant": participant or "",
        "state": chosen,
        "states": [s for s in PHARMACY_STATES if s is not svc.PreparationState.NOTHING_TO_PREPARE or counts[s]],
        "counts": counts,
        "zones": [(code, protocol.site(code).timezone) for code in user.sites if code in protocol.site_codes],
        "errors": errors,
    }
    return render_page(request, page, "randomization/pharmacy.html", context, status_code=422 if errors else 200)


def _preparation(
    request: Request,
    page: Page,
    engine: EngineDep,
    code: str,
    status: int = 200,
    errors: list[str] | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    assert page.user is not None
    try:
        instruction = svc.what_to_prepare(engine, page.user, code)
    except NotFound:
        return _not_found(request, page)
    # A refused attribute is said by the label the page shows for it (``attribute: rule`` names its id).
    words = page_words(None, page.lang, {a.id: said(a, page.lang) for a in instruction.attributes})
    context = {"i": instruction, "errors": say(errors or [], words, page.lang), "typed": typed or {}}
    return render_page(request, page, "randomization/prepare.html", context, status_code=status)


@router.get("/pharmacy/{code}", response_class=HTMLResponse)
def preparation(request: Request, page: PharmacistPage, engine: EngineDep, code: str) -> Response:
    return _preparation(request, page, engine, code)


@router.post("/pharmacy/{code}", response_class=HTMLResponse)
async def record_preparation(
    request: Request, page: PharmacistPage, engine: EngineDep, _csrf: CsrfChecked, code: str
) -> Response:
    """The values of the arm's declared attributes, as typed (``a-<id>``); the service checks them."""
    assert page.user is not None
    data = await request.form()
    values = {k[2:]: str(v) for k, v in data.items() if k.startswith("a-")}
    try:
        svc.prepare(engine, page.user, code, values)
    except NotFound:
        return _not_found(request, page)
    except svc.PreparationRefused as exc:
        return _preparation(request, page, engine, code, 422, list(exc.problems), values)
    except svc.RandomizationError as exc:
        return _preparation(request, page, engine, code, 422, [str(exc)], values)
    return RedirectResponse(f"/pharmacy/{code}", status_code=303)


@router.get("/unblindings", response_class=HTMLResponse)
def unblinding_log(request: Request, page: LogPage, engine: EngineDep) -> HTMLResponse:
    assert page.user is not None
    context = {
        "log": svc.unblinding_log(engine, page.user),
        "notices": svc.notifications_for(engine, page.user),
        "notices_total": svc.count_notifications_for(engine, page.user),
    }
    return render_page(request, page, "randomization/unblindings.html", context)
