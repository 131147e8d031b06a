"""Data collection pages: the form entry page with inline validation, the form lifecycle buttons, visits,
and the query inbox (the database lock: ``routes/lock.py``). Every change goes through ``trialwright.services.forms``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialwright.domain.calendars import DateEntryError, local_date
from trialwright.domain.forms import FormValueError, range_text
from trialwright.domain.numerals import latin_digits
from trialwright.domain.roles import Role
from trialwright.domain.wording import field_words
from trialwright.protocol import Protocol
from trialwright.services import forms as svc
from trialwright.services.forms.common import is_kept
from trialwright.services.lock import frozen
from trialwright.services.screening import NotFound
from trialwright.web.dates import read_date
from trialwright.web.deps import CsrfChecked, EngineDep, PageReentry, ProtocolDep, RowId, require_roles
from trialwright.web.field_inputs import entries_from
from trialwright.web.i18n import N_
from trialwright.web.localized import digits, isolated, said
from trialwright.web.lock_words import frozen_said
from trialwright.web.paging import first_page_if_bad, pager
from trialwright.web.routes.randomization import participant_page
from trialwright.web.templating import Page, render_page
from trialwright.web.wording import CRF_INPUTS, PARTICIPANT_INPUTS, page_words, say

router = APIRouter()
ReaderPage = Annotated[Page, Depends(require_roles(*svc.READERS))]
EntryPage = Annotated[Page, Depends(require_roles(*svc.DATA_ENTRY))]
AnyDataRole = Annotated[
    Page, Depends(require_roles(*svc.DATA_ENTRY, Role.MONITOR, Role.DATA_MANAGER, Role.ADMINISTRATOR))
]
ManagerPage = Annotated[Page, Depends(require_roles(Role.DATA_MANAGER))]
STATUSES = ("value", "not_done", "not_applicable", "below_lloq", "above_uloq")


def _not_found(request: Request, page: Page) -> Response:
    return render_page(
        request, page, "errors/error.html", {"status": 404, "message": "There is no such page."}, status_code=404
    )


#: A form kept from the reader's masked role (``services.forms.kept_from``): the page says the rule, not "no such page".
KEPT_FORM = N_("This form reveals the arm: it is kept from every role this trial masks (reveals_arm).")


def _kept(request: Request, page: Page) -> Response:
    return render_page(request, page, "errors/error.html", {"status": 403, "message": KEPT_FORM}, status_code=403)


def _url(participant_id: str, visit_id: str, form_id: str) -> str:
    return f"/participants/{participant_id}/visits/{visit_id}/forms/{form_id}"


def _form_page(
    request: Request,
    page: Page,
    engine: EngineDep,
    protocol: Protocol,
    participant_id: str,
    visit_id: str,
    form_id: str,
    *,
    status: int = 200,
    errors: list[str] | None = None,
    typed: dict[str, Any] | None = None,
    refused: dict[str, str] | None = None,
) -> Response:
    assert page.user is not None
    try:
        view = svc.get_form(engine, page.user, participant_id, visit_id, form_id)
        zone = protocol.site(svc.participant_schedule(engine, page.user, participant_id).site).timezone
        form_queries = [
            q
            for q in svc.list_queries(engine, page.user, participant_id=participant_id)
            if q.form_id == form_id and q.visit_id == visit_id
        ]
    except NotFound:
        return _not_found(request, page)
    except svc.FormError as exc:
        return _kept(request, page) if is_kept(exc) else _not_found(request, page)
    problems = errors or []
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    ids = {f.id for f in protocol.form(form_id).fields}
    words = page_words(protocol, page.lang, CRF_INPUTS, form_id=form_id)
    for p in problems:
        name = p.split(":", 1)[0]
        # under its field; a missing reason for change under the reason box
        said_so = say([p], words, page.lang)
        (by_field.setdefault(name, []) if name in ids or name == "reason" else general).extend(said_so)
    for name, message in (refused or {}).items():  # dates not read, under their field
        field = name.removeprefix("v-")
        (by_field.setdefault(field, []) if field in ids else general).append(message)
    role = page.user.role
    # The trial locked, or the participant or their site soft-locked: the page offers no change the save would
    # refuse, and says why (a locked form's own state is shown by its badge).
    stopped = frozen(engine, participant_id)
    context: dict[str, Any] = {
        "participant_id": participant_id,
        "frozen": frozen_said(stopped, protocol, page.lang),
        "visit_id": visit_id,
        "visit_name": visit_id if visit_id.startswith("unscheduled-") else said(protocol.visit(visit_id), page.lang),
        "form": protocol.form(form_id),
        "view": view,
        "typed": typed or {},
        "field_errors": by_field,
        "errors": general,
        "words": words,
        "queries": form_queries,
        # open queries on a field, shown beside it (the field highlighted)
        "field_queries": _open_by_field(form_queries),
        # the range the script warns with, isolated left to right (U+2066 ... U+2069: "36-38 °C" never reads
        # "C° 36-38" in right-to-left text) and in the page's digits
        "soft_range": lambda f: isolated(digits(range_text(f.soft_limits, f.unit), page.lang), page.lang),
        "can_edit": role in svc.DATA_ENTRY and not stopped,
        "can_verify": role is Role.MONITOR and not stopped,
        "can_sign": role is Role.INVESTIGATOR and not stopped,
        "can_lock": role is Role.DATA_MANAGER and not stopped,
        "can_raise": role in svc.QUERY_RAISERS,
        "can_answer": role in svc.QUERY_ANSWERERS,
        "meaning": protocol.signature_meaning_translations.get(page.lang) or protocol.signature_meaning,
        "statuses": STATUSES,
        "today": local_date(dt.datetime.now(dt.UTC), zone).isoformat(),  # the visit date's default: the site's today
        "site_zone": zone,  # signatures, verifications and queries on the site's clock
        "url": _url(participant_id, visit_id, form_id),
    }
    return render_page(request, page, "data/form.html", context, status_code=status)


def _open_by_field(queries: list[Any]) -> dict[str, list[Any]]:
    """The open (or answered, not yet closed) queries of a form by their field."""
    found: dict[str, list[Any]] = {}
    for q in queries:
        if q.field and q.status != "closed":
            found.setdefault(q.field, []).append(q)
    return found


@router.get("/participants/{participant_id}/visits/{visit_id}/forms/{form_id}", response_class=HTMLResponse)
def form_page(
    request: Request,
    page: AnyDataRole,
    engine: EngineDep,
    protocol: ProtocolDep,
    participant_id: str,
    visit_id: str,
    form_id: str,
) -> Response:
    return _form_page(request, page, engine, protocol, participant_id, visit_id, form_id)


async def _entries(
    request: Request, page: Page, protocol: Protocol, form_id: str, stored: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """What the form page sent, as the service's entries: only fields that were typed or cleared (dates read
    in the viewer's calendar as ISO text); and the dates refused, by input name."""
    data = await request.form()
    return entries_from(page, protocol.form(form_id).fields, data, None if stored is None else stored.values)


def _typed(data: Any) -> dict[str, Any]:
    """What was typed on the form page, to show it again after a refusal (the visit date too)."""
    return {k: v for k, v in data.items() if k.startswith(("v-", "u-", "s-", "r-")) or k == "visit_date"}


@router.post("/participants/{participant_id}/visits/{visit_id}/forms/{form_id}", response_class=HTMLResponse)
async def save(
    request: Request,
    page: EntryPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    participant_id: str,
    visit_id: str,
    form_id: str,
) -> Response:
    assert page.user is not None
    data = await request.form()
    try:
        stored = svc.get_form(engine, page.user, participant_id, visit_id, form_id)
        entries, refused = await _entries(request, page, protocol, form_id, stored)
        try:
            visit_date = read_date(page, str(data.get("visit_date", "")), N_("Visit date"))
        except DateEntryError as exc:
            refused["visit_date"] = str(exc)
        if refused:
            return _form_page(
                request, page, engine, protocol, participant_id, visit_id, form_id, status=422,
                typed=_typed(data), refused=refused,
            )  # fmt: skip
        svc.save_form(
            engine,
            page.user,
            participant_id,
            visit_id,
            form_id,
            entries,
            reason=str(data.get("reason", "")).strip() or None,
            visit_date=dt.date.fromisoformat(visit_date) if visit_date else None,
            typed_on_site_clock=True,  # the page's date-and-time inputs say "site time"
        )
    except NotFound:
        return _not_found(request, page)
    except FormValueError as exc:
        return _form_page(
            request, page, engine, protocol, participant_id, visit_id, form_id, status=422,
            errors=list(exc.problems), typed=_typed(data),
        )  # fmt: skip
    except (svc.FormError, ValueError) as exc:
        if is_kept(exc):  # a form kept from the role: the rule, not the form page again
            return _kept(request, page)
        return _form_page(
            request, page, engine, protocol, participant_id, visit_id, form_id, status=422, errors=[str(exc)],
            typed=_typed(data),
        )  # fmt: skip
    return RedirectResponse(_url(participant_id, visit_id, form_id), status_code=303)


def _act(
    request: Request,
    page: Page,
    engine: EngineDep,
    protocol: Protocol,
    participant_id: str,
    visit_id: str,
    form_id: str,
    action: Callable[[], object],
) -> Response:
    try:
        action()
    except NotFound:
        return _not_found(request, page)
    except svc.FormError as exc:
        return _form_page(
            request, page, engine, protocol, participant_id, visit_id, form_id, status=422, errors=[str(exc)]
        )
    return RedirectResponse(_url(participant_id, visit_id, form_id), status_code=303)


_FORM = "/participants/{participant_id}/visits/{visit_id}/forms/{form_id}"


@router.post(_FORM + "/complete", response_class=HTMLResponse)
def complete(
    request: Request, page: EntryPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked,
    participant_id: str, visit_id: str, form_id: str,
) -> Response:  # fmt: skip
    assert page.user is not None
    user = page.user
    return _act(request, page, engine, protocol, participant_id, visit_id, form_id,
                lambda: svc.complete_form(engine, user, participant_id, visit_id, form_id))  # fmt: skip


@router.post(_FORM + "/verify", response_class=HTMLResponse)
def verify(
    request: Request, page: Annotated[Page, Depends(require_roles(Role.MONITOR))], engine: EngineDep,
    protocol: ProtocolDep, _csrf: CsrfChecked, participant_id: str, visit_id: str, form_id: str,
) -> Response:  # fmt: skip
    assert page.user is not None
    user = page.user
    return _act(request, page, engine, protocol, participant_id, visit_id, form_id,
                lambda: svc.verify_form(engine, user, participant_id, visit_id, form_id))  # fmt: skip


@router.post(_FORM + "/sign", response_class=HTMLResponse)
def sign(
    request: Request, page: Annotated[Page, Depends(require_roles(Role.INVESTIGATOR))], engine: EngineDep,
    protocol: ProtocolDep, _csrf: CsrfChecked, policy: PageReentry, participant_id: str, visit_id: str, form_id: str,
    password: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    assert page.user is not None
    user = page.user
    return _act(request, page, engine, protocol, participant_id, visit_id, form_id,
                lambda: svc.sign_form(engine, user, participant_id, visit_id, form_id, password=password,
                                      policy=policy))  # fmt: skip


@router.post(_FORM + "/lock", response_class=HTMLResponse)
def lock(
    request: Request, page: ManagerPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked,
    participant_id: str, visit_id: str, form_id: str,
) -> Response:  # fmt: skip
    assert page.user is not None
    user = page.user
    return _act(request, page, engine, protocol, participant_id, visit_id, form_id,
                lambda: svc.lock_form(engine, user, participant_id, visit_id, form_id))  # fmt: skip


@router.post(_FORM + "/unlock", response_class=HTMLResponse)
def unlock(
    request: Request, page: ManagerPage, engine: EngineDep, protocol: ProtocolDep, _csrf: CsrfChecked,
    participant_id: str, visit_id: str, form_id: str, reason: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    assert page.user is not None
    user = page.user
    return _act(request, page, engine, protocol, participant_id, visit_id, form_id,
                lambda: svc.unlock_form(engine, user, participant_id, visit_id, form_id, reason=reason))  # fmt: skip


@router.post(_FORM + "/queries", response_class=HTMLResponse)
def raise_query(
    request: Request, page: Annotated[Page, Depends(require_roles(*svc.QUERY_RAISERS))], engine: EngineDep,
    protocol: ProtocolDep, _csrf: CsrfChecked, participant_id: str, visit_id: str, form_id: str,
    text: Annotated[str, Form()] = "", field: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    assert page.user is not None
    user = page.user
    return _act(request, page, engine, protocol, participant_id, visit_id, form_id,
                lambda: svc.raise_query(engine, user, participant_id, text, visit_id=visit_id, form_id=form_id,
                                        field_id=field or None))  # fmt: skip


@router.post("/participants/{participant_id}/visits", response_class=HTMLResponse)
def visit(
    request: Request,
    page: EntryPage,
    engine: EngineDep,
    _csrf: CsrfChecked,
    participant_id: str,
    visit_id: Annotated[str, Form()] = "",
    visit_date: Annotated[str, Form()] = "",
    missed_reason: Annotated[str, Form()] = "",
    label: Annotated[str, Form()] = "",
) -> Response:
    """Record a visit as held, as missed (with a reason), or an unscheduled visit (no visit id)."""
    assert page.user is not None
    try:
        if missed_reason.strip():
            svc.miss_visit(engine, page.user, participant_id, visit_id, missed_reason)
        else:
            try:
                day = dt.date.fromisoformat(read_date(page, visit_date, N_("Date held")))
            except DateEntryError as exc:
                raise svc.FormError(str(exc)) from None
            except ValueError:
                raise svc.FormError("visit_date: must be a date written YYYY-MM-DD") from None
            svc.record_visit(engine, page.user, participant_id, visit_id or None, day, label=label or None)
    except NotFound:
        return _not_found(request, page)
    except svc.FormError as exc:
        typed = {"visit_id": visit_id, "visit_date": visit_date, "missed_reason": missed_reason, "label": label}
        errors = say([str(exc)], page_words(None, page.lang, PARTICIPANT_INPUTS), page.lang)
        return participant_page(request, page, engine, participant_id, status=422, errors=errors, typed=typed)
    return RedirectResponse(f"/participants/{participant_id}", status_code=303)


@router.get("/queries", response_class=HTMLResponse)
def query_inbox(
    request: Request,
    page: ReaderPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    status: str | None = None,
    site: str | None = None,
    participant: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    assert page.user is not None
    user = page.user
    participant = latin_digits(participant) if participant else participant  # an id typed in Persian digits
    found = first_page_if_bad(
        lambda c: svc.page_queries(
            engine, user, status=status or None, site=site or None, participant=participant or None, cursor=c
        ),
        cursor,
    )
    logs = {g.id: g for g in protocol.logs}
    context = {
        "rows": found.items,
        "pager": pager(request, found),
        "status": status or "",
        "site": site or "",
        "sites": page.user.sites if page.user.role.site_scoped else protocol.site_codes,
        "participant": participant or "",
        "can_answer": page.user.role in svc.QUERY_ANSWERERS,
        "me": page.user.username,
        "can_close_auto": page.user.role in svc.QUERY_RAISERS,
        "errors": [],
        "field_label": _field_label(protocol, page.lang),
        "log_name": lambda log_id: said(logs[log_id], page.lang) if log_id in logs else log_id,
        "log_field": _log_field(protocol, page.lang),
    }
    return render_page(request, page, "data/queries.html", context)


def _field_label(protocol: Protocol, lang: str) -> Callable[[str | None, str], str]:
    """A query's field in words (its id when the protocol no longer names it)."""
    return lambda form_id, field: field_words(protocol, f"{form_id}.{field}", lang, form_id=form_id) or field


def _log_field(protocol: Protocol, lang: str) -> Callable[[str, str], str]:
    """A log entry's query's field in words (its id when the protocol no longer names it)."""
    fields = {(g.id, f.id): f for g in protocol.logs for f in g.fields}
    return lambda log_id, field: said(fields[(log_id, field)], lang) if (log_id, field) in fields else field


@router.post("/queries/{query_id}/answer", response_class=HTMLResponse)
def answer(
    request: Request,
    page: ReaderPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    query_id: RowId,
    answer: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "/queries",
) -> Response:
    assert page.user is not None
    user = page.user
    return _query_act(request, page, engine, protocol, back, lambda: svc.answer_query(engine, user, query_id, answer))


@router.post("/queries/{query_id}/close", response_class=HTMLResponse)
def close(
    request: Request,
    page: ReaderPage,
    engine: EngineDep,
    protocol: ProtocolDep,
    _csrf: CsrfChecked,
    query_id: RowId,
    note: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "/queries",
) -> Response:
    assert page.user is not None
    user = page.user
    return _query_act(request, page, engine, protocol, back, lambda: svc.close_query(engine, user, query_id, note))


def _query_act(
    request: Request, page: Page, engine: EngineDep, protocol: Protocol, back: str, action: Callable[[], object]
) -> Response:
    assert page.user is not None
    if not back.startswith("/") or back.startswith("//"):
        back = "/queries"
    try:
        action()
    except NotFound:
        return _not_found(request, page)
    except svc.FormError as exc:
        first = svc.page_queries(engine, page.user)
        context = {
            "rows": first.items,
            "pager": pager(request, first, "/queries"),
            "status": "",
            "site": "",
            "sites": list(page.user.sites),
            "participant": "",
            "can_answer": page.user.role in svc.QUERY_ANSWERERS,
            "me": page.user.username,
            "can_close_auto": page.user.role in svc.QUERY_RAISERS,
            "errors": say([str(exc)], page_words(protocol, page.lang, CRF_INPUTS), page.lang),
            "field_label": _field_label(protocol, page.lang),
        }
        return render_page(request, page, "data/queries.html", context, status_code=422)
    return RedirectResponse(back, status_code=303)
