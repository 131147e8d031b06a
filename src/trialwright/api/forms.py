"""REST endpoints for visits, forms (one at a time or a bulk import) and queries (the lock: ``api/lock.py``).

They call the same services as the pages, so the same validation, reasons, lifecycle and audit apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy import Engine

from trialwright.api.form_schemas import (
    AnswerIn,
    CasebookOut,
    CasebookSignIn,
    CasebookVerifyIn,
    CloseIn,
    FormIn,
    FormOut,
    ImportIn,
    ImportOut,
    OutcomeOut,
    PasswordIn,
    QueryIn,
    QueryOut,
    ReasonIn,
    ScheduleOut,
    stored_value_out,
)
from trialwright.api.logs import entry_out
from trialwright.api.paging import CursorParam, LimitParam, PageOut, cursor_checked, page_out
from trialwright.domain.forms import FormValueError
from trialwright.domain.paging import DEFAULT_LIMIT
from trialwright.domain.roles import Role
from trialwright.domain.wording import Words, in_words, words_for
from trialwright.protocol import Protocol
from trialwright.services import forms as svc
from trialwright.services.forms.common import is_kept
from trialwright.services.screening import NotFound
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.web.deps import (
    ApiReentry,
    ApiWrite,
    EngineDep,
    RowId,
    api_write,
    require_api_roles,
    trial_language,
)

router = APIRouter(prefix="/api/v1", tags=["forms"])
Reader = Annotated[UserView, Depends(require_api_roles(*svc.READERS))]
Entry = Annotated[UserView, Depends(require_api_roles(*svc.DATA_ENTRY))]
EntryWrite = Annotated[ApiWrite, Depends(api_write(*svc.DATA_ENTRY), scope="function")]
Monitor = Annotated[UserView, Depends(require_api_roles(Role.MONITOR))]
Investigator = Annotated[UserView, Depends(require_api_roles(Role.INVESTIGATOR))]
Manager = Annotated[UserView, Depends(require_api_roles(Role.DATA_MANAGER))]
Raiser = Annotated[UserView, Depends(require_api_roles(*svc.QUERY_RAISERS))]
FORM = "/participants/{participant_id}/visits/{visit_id}/forms/{form_id}"


def _call(function: Any, *args: Any, words: Callable[[], Words] | None = None, **kwargs: Any) -> Any:
    """Call a service, its refusals as HTTP errors: values refused name their ``field`` (the id scripts read) and the
    ``rule``; given ``words`` (for the form in hand), each also carries the ``message`` a person reads, the field said
    by its label (``trialwright.domain.wording``)."""
    try:
        return function(*args, **kwargs)
    except NotFound:
        raise HTTPException(status_code=404, detail="not found") from None
    except FormValueError as exc:
        said = words() if words is not None else None
        detail = [
            {"field": p.split(":", 1)[0], "rule": p, **({"message": in_words(p, said)} if said else {})}
            for p in exc.problems
        ]
        raise HTTPException(status_code=422, detail=detail) from None
    except svc.FormError as exc:  # a form kept from a masked role: 403, the rule said
        status = 403 if is_kept(exc) else 422
        raise HTTPException(status_code=status, detail=[{"rule": str(exc)}]) from None


def _form(view: svc.FormView | None, engine: Engine | None, protocol: Protocol | None = None) -> dict[str, Any]:
    """A form as the API answers it (its units from ``protocol``, else from the protocol read through ``engine``)."""
    if view is None:
        raise HTTPException(status_code=404, detail="this form has no data yet")
    if protocol is None:
        assert engine is not None
        protocol = current_protocol(engine).protocol
    form = protocol.form(view.form_id)
    units = {f.id: f.unit for f in form.fields if f.unit}  # the unit of each canonical value, derived ones too
    return {
        "participant_id": view.participant_id,
        "visit_id": view.visit_id,
        "form_id": view.form_id,
        "state": view.state.value,
        "version": view.version,
        "values": {k: stored_value_out(v, units.get(k)) for k, v in view.values.items()},
        "missing": list(view.missing),
        "verified_by": view.verified_by,
        "signed_by": view.signed_by,
        "signed_at": view.signed_at,
        "signature_meaning": view.signature_meaning,
        "open_queries": view.open_queries,
    }


@router.get("/participants/{participant_id}/visits", response_model=ScheduleOut)
def list_visits(participant_id: str, user: Reader, engine: EngineDep) -> dict[str, Any]:
    """The participant's visit schedule today, with each form's state."""
    s = _call(svc.participant_schedule, engine, user, participant_id)
    return {
        "participant_id": s.participant_id,
        "visits": [
            {
                **v.__dict__,
                "status": v.status.value,
                "added_by": None if v.added_by is None else v.added_by.__dict__,
                "forms": {k: (st.value if st else None) for k, st in s.forms[v.visit_id].items()},
            }
            for v in s.visits
        ],
        "unscheduled": [{"visit_id": v, "label": label, "visit_date": d} for v, label, d in s.unscheduled],
        "open_queries": s.open_queries,
    }


@router.get(FORM, response_model=FormOut, response_model_exclude_unset=True)
def get_form(participant_id: str, visit_id: str, form_id: str, user: Reader, engine: EngineDep) -> dict[str, Any]:
    """One form's values (canonical value, value and unit as entered, status, reason) and state."""
    return _form(_call(svc.get_form, engine, user, participant_id, visit_id, form_id), engine)


@router.post(FORM, response_model=FormOut, response_model_exclude_unset=True)
def save_form(participant_id: str, visit_id: str, form_id: str, body: FormIn, call: EntryWrite) -> dict[str, Any]:
    """Enter or change values; every problem is reported at once, naming the field and the rule."""
    # The token, the protocol and the save in the request's transaction (``ApiWrite``), committed before the answer.
    return _form(
        _call(
            call.run,
            svc.save_form_in,
            participant_id,
            visit_id,
            form_id,
            body.values,
            reason=body.reason,
            visit_date=body.visit_date,
            words=lambda: words_for(call.protocol, trial_language(call.protocol, call.user.language), form_id=form_id),
        ),
        None,
        call.protocol,
    )


@router.post(FORM + "/complete", response_model=FormOut, response_model_exclude_unset=True)
def complete_form(participant_id: str, visit_id: str, form_id: str, user: Entry, engine: EngineDep) -> dict[str, Any]:
    """Mark the form complete (every required field has a value or a reason)."""
    return _form(_call(svc.complete_form, engine, user, participant_id, visit_id, form_id), engine)


@router.post(FORM + "/verify", response_model=FormOut, response_model_exclude_unset=True)
def verify_form(participant_id: str, visit_id: str, form_id: str, user: Monitor, engine: EngineDep) -> dict[str, Any]:
    """Source data verification (monitor)."""
    return _form(_call(svc.verify_form, engine, user, participant_id, visit_id, form_id), engine)


@router.post(FORM + "/sign", response_model=FormOut, response_model_exclude_unset=True)
def sign_form(
    participant_id: str, visit_id: str, form_id: str, body: PasswordIn, user: Investigator, engine: EngineDep,
    policy: ApiReentry,
) -> dict[str, Any]:  # fmt: skip
    """The investigator's electronic signature (password re-entered; the meaning is stored). A wrong password
    counts toward the account lockout; past the re-entry rate limit, 429."""
    return _form(_call(svc.sign_form, engine, user, participant_id, visit_id, form_id, password=body.password,
                       policy=policy), engine)  # fmt: skip


def _casebook_form(item: svc.CasebookForm, engine: Engine) -> dict[str, Any]:
    return {
        "visit_id": item.visit_id,
        "form_id": item.form_id,
        "seal": item.seal,
        "not_signable": item.not_signable,
        "not_verifiable": item.not_verifiable,
        "verified_fields": sorted(item.verified_fields),
        "form": None if item.view is None else _form(item.view, engine),
    }


def _casebook_entry(item: svc.CasebookEntry, engine: Engine) -> dict[str, Any]:
    return {
        "log_id": item.view.log_id,
        "sequence": item.view.sequence,
        "seal": item.seal,
        "open_queries": item.open_queries,
        "not_signable": item.not_signable,
        "not_verifiable": item.not_verifiable,
        "entry": entry_out(item.view, engine),
    }


def _outcome(outcome: svc.CasebookOutcome, engine: Engine) -> dict[str, Any]:
    return {
        "done": [_form(v, engine) for v in outcome.done],
        "excluded": [{"visit_id": v, "form_id": f, "reason": why} for v, f, why in outcome.excluded],
        "fields_verified": [{"visit_id": v, "form_id": f, "field": field} for v, f, field in outcome.fields],
        "entries_done": [entry_out(e, engine) for e in outcome.entries_done],
        "entries_excluded": [{"log_id": g, "sequence": n, "reason": why} for g, n, why in outcome.entries_excluded],
    }


@router.get("/participants/{participant_id}/casebook", response_model=CasebookOut, response_model_exclude_unset=True)
def get_casebook(participant_id: str, user: Reader, engine: EngineDep) -> dict[str, Any]:
    """The participant's casebook: every form in the protocol's order as stored, with its ``seal`` (send it back
    to sign or verify exactly what was read) and why it cannot be signed or verified now (null: it can); then the
    participant's log entries, each with its seal, as signed and verified with the forms."""
    book = _call(svc.casebook, engine, user, participant_id)
    return {"participant_id": book.participant_id, "site": book.site,
            "forms": [_casebook_form(f, engine) for f in book.forms],
            "entries": [_casebook_entry(e, engine) for e in book.entries]}  # fmt: skip


@router.post(
    "/participants/{participant_id}/casebook/sign", response_model=OutcomeOut, response_model_exclude_unset=True
)
def sign_casebook(
    participant_id: str, body: CasebookSignIn, user: Investigator, engine: EngineDep, policy: ApiReentry
) -> dict[str, Any]:
    """Sign the reviewed forms and log entries of the casebook with one password entry; one changed since its seal
    was read, or not ready, is left and listed with the reason."""
    reviewed = {(f.visit_id, f.form_id): f.seal for f in body.forms}
    entries = {(e.log_id, e.sequence): e.seal for e in body.entries}
    return _outcome(_call(svc.sign_casebook, engine, user, participant_id, reviewed, password=body.password,
                          policy=policy, entries=entries), engine)  # fmt: skip


@router.post(
    "/participants/{participant_id}/casebook/verify", response_model=OutcomeOut, response_model_exclude_unset=True
)
def verify_casebook(participant_id: str, body: CasebookVerifyIn, user: Monitor, engine: EngineDep) -> dict[str, Any]:
    """Source data verification of the reviewed casebook in one action (monitor): whole forms (``forms``) and
    fields one by one (``fields``), as on the casebook page. Each field's verification is audited and stands
    while the field holds the value verified; a form whose every required entered field stands verified is
    verified; log entries (``entries``) are verified whole. A form or entry changed since its seal was read, or not
    ready, is left and listed with the reason."""
    reviewed = {(f.visit_id, f.form_id): f.seal for f in body.forms}
    by_field: dict[tuple[str, str], tuple[str, list[str]]] = {}
    for item in body.fields:
        seal, names = by_field.setdefault((item.visit_id, item.form_id), (item.seal, []))
        if seal != item.seal:
            raise HTTPException(422, [{"rule": f"fields: {item.visit_id}/{item.form_id} is given with two seals"}])
        names.extend(n for n in item.fields if n not in names)
    entries = {(e.log_id, e.sequence): e.seal for e in body.entries}
    return _outcome(_call(svc.verify_casebook, engine, user, participant_id, reviewed, fields=by_field,
                          entries=entries), engine)  # fmt: skip


@router.post(FORM + "/lock", response_model=FormOut, response_model_exclude_unset=True)
def lock_form(participant_id: str, visit_id: str, form_id: str, user: Manager, engine: EngineDep) -> dict[str, Any]:
    """Lock one form (data manager)."""
    return _form(_call(svc.lock_form, engine, user, participant_id, visit_id, form_id), engine)


@router.post(FORM + "/unlock", response_model=FormOut, response_model_exclude_unset=True)
def unlock_form(
    participant_id: str, visit_id: str, form_id: str, body: ReasonIn, user: Manager, engine: EngineDep
) -> dict[str, Any]:
    """Unlock one form with a reason (data manager)."""
    return _form(_call(svc.unlock_form, engine, user, participant_id, visit_id, form_id, reason=body.reason), engine)


@router.post("/forms/import", response_model=ImportOut)
def import_forms(body: ImportIn, user: Entry, engine: EngineDep) -> dict[str, Any]:
    """Save many forms in one request, with exactly the rules of one form; every rejected row is reported."""
    rows = [r.model_dump(mode="json", exclude_unset=True) for r in body.rows]
    report = _call(svc.import_forms, engine, user, rows, all_or_nothing=body.all_or_nothing)
    return {
        "saved": report.saved,
        "rejected": [{"row": i, "problems": list(problems)} for i, problems in report.rejected],
    }


@router.get("/queries", response_model=PageOut[QueryOut])
def list_queries(
    request: Request,
    response: Response,
    user: Reader,
    engine: EngineDep,
    status: str | None = None,
    participant_id: str | None = None,
    site: str | None = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> PageOut[QueryOut]:
    """A page of the query inbox within the caller's sites: open and answered first, then closed; newest first."""
    with cursor_checked():
        found = _call(
            svc.page_queries,
            engine,
            user,
            status=status,
            participant_id=participant_id,
            site=site,
            limit=limit,
            cursor=cursor,
        )
    return page_out(request, response, found, lambda q: QueryOut(**q.__dict__))


@router.post("/queries", response_model=QueryOut, status_code=201)
def raise_query(body: QueryIn, user: Raiser, engine: EngineDep) -> dict[str, Any]:
    """Raise a query by hand (monitor, data manager): on the participant, a form (``visit_id``, ``form_id``) or a log
    entry (``log_id``, ``sequence``), and optionally one of its fields."""
    q = _call(
        svc.raise_query, engine, user, body.participant_id, body.text,
        visit_id=body.visit_id, form_id=body.form_id, field_id=body.field, log_id=body.log_id, sequence=body.sequence,
    )  # fmt: skip
    return dict(q.__dict__)


@router.post("/queries/{query_id}/answer", response_model=QueryOut)
def answer_query(query_id: RowId, body: AnswerIn, user: Reader, engine: EngineDep) -> dict[str, Any]:
    """Answer a query (site staff)."""
    return dict(_call(svc.answer_query, engine, user, query_id, body.answer).__dict__)


@router.post("/queries/{query_id}/close", response_model=QueryOut)
def close_query(query_id: RowId, body: CloseIn, user: Reader, engine: EngineDep) -> dict[str, Any]:
    """Close a query (whoever raised it; a monitor or data manager for automatic ones)."""
    return dict(_call(svc.close_query, engine, user, query_id, body.note).__dict__)
