"""REST endpoints for adverse events, their follow-ups and submissions, the safety tables and listing, and
the DSMB's decisions on the safety pause. The same services as the pages; the arm only for the DSMB and
the unblinded statistician.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from trialwright.api.paging import CursorParam, LimitParam, PageOut, cursor_checked, page_out
from trialwright.api.safety_schemas import (
    AdverseEventIn,
    AdverseEventOut,
    DecisionIn,
    DecisionOut,
    FollowUpIn,
    ListingRowOut,
    PauseOut,
    SafetyTablesOut,
    SubmissionIn,
)
from trialwright.domain.paging import DEFAULT_LIMIT
from trialwright.domain.safety import SafetyInputError
from trialwright.services import safety as svc
from trialwright.services.screening import NotFound
from trialwright.services.users import UserView
from trialwright.web.deps import ApiReentry, EngineDep, require_api_roles

router = APIRouter(prefix="/api/v1", tags=["safety"])
Reader = Annotated[UserView, Depends(require_api_roles(*svc.READERS))]
Reporter = Annotated[UserView, Depends(require_api_roles(*svc.REPORTERS))]
Dsmb = Annotated[UserView, Depends(require_api_roles(*svc.DECIDERS))]


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except NotFound:
        raise HTTPException(status_code=404, detail="not found") from None
    except (SafetyInputError, svc.SafetyError) as exc:
        raise HTTPException(status_code=422, detail=[{"field": f, "rule": r} for f, r in exc.problems]) from None


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _event(e: svc.AdverseEventView) -> dict[str, Any]:
    c = e.classification
    return {
        "ae_number": e.ae_number,
        "participant_id": e.participant_id,
        "site": e.site,
        "arm": e.arm,
        "current": e.current.as_json(),
        "classification": {
            "serious": c.serious,
            "related": c.related,
            "expected": c.expected,
            "susar": c.susar,
            "fatal_or_life_threatening": c.fatal_or_life_threatening,
        },
        "reports": [
            {
                "sequence": r.sequence,
                "kind": r.kind,
                "assessment": r.assessment.as_json(),
                "reported_by": r.reported_by,
                "reported_at": _time(r.reported_at),
                "reason": r.reason,
            }
            for r in e.reports
        ],
        "deadlines": [
            {
                "kind": d.kind.value,
                "rule": d.rule,
                "clock_start": _time(d.clock_start),
                "due_at": _time(d.due_at),
                "state": d.state.value,
                "submitted_at": _time(d.submitted_at),
            }
            for d in e.deadlines
        ],
        "coding": _coding(e),
    }


def _coding(e: svc.AdverseEventView) -> dict[str, Any] | None:
    c = e.coding
    if c is None:
        return None
    return {**c.as_audit(), "stale": e.coding_stale, "coded_by": c.coded_by, "coded_at": _time(c.coded_at)}


@router.post("/participants/{participant_id}/adverse-events", response_model=AdverseEventOut, status_code=201)
def report_adverse_event(
    participant_id: str, body: AdverseEventIn, user: Reporter, engine: EngineDep
) -> dict[str, Any]:
    """Report an adverse event (the initial report); every problem is named at once."""
    values = body.model_dump(exclude_unset=True)
    return _event(_call(svc.report_event, engine, user, participant_id, values))


@router.get("/adverse-events", response_model=PageOut[AdverseEventOut])
def list_adverse_events(
    request: Request,
    response: Response,
    user: Reader,
    engine: EngineDep,
    participant_id: str | None = None,
    site: str | None = None,
    overdue: bool = False,
    serious: bool = False,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> PageOut[AdverseEventOut]:
    """A page of the adverse events within the caller's sites, newest first."""
    with cursor_checked():
        found = _call(
            svc.page_events,
            engine,
            user,
            participant_id=participant_id,
            site=site,
            overdue_only=overdue,
            serious_only=serious,
            limit=limit,
            cursor=cursor,
        )
    return page_out(request, response, found, lambda e: AdverseEventOut.model_validate(_event(e)))


@router.get("/adverse-events/{ae_number}", response_model=AdverseEventOut)
def get_adverse_event(ae_number: str, user: Reader, engine: EngineDep) -> dict[str, Any]:
    """One adverse event: current assessment, every report, deadlines with their state."""
    return _event(_call(svc.get_event, engine, user, ae_number))


@router.post("/adverse-events/{ae_number}/follow-ups", response_model=AdverseEventOut, status_code=201)
def report_follow_up(ae_number: str, body: FollowUpIn, user: Reporter, engine: EngineDep) -> dict[str, Any]:
    """A follow-up report, linked to its initial report."""
    return _event(
        _call(svc.follow_up, engine, user, ae_number, body.values.model_dump(exclude_unset=True), body.reason)
    )


@router.post("/adverse-events/{ae_number}/submissions", response_model=AdverseEventOut, status_code=201)
def record_submission(ae_number: str, body: SubmissionIn, user: Reporter, engine: EngineDep) -> dict[str, Any]:
    """Record that a due report was sent."""
    return _event(_call(svc.record_submission, engine, user, ae_number, body.kind, body.submitted_at, body.note))


@router.get("/safety/tables", response_model=SafetyTablesOut)
def get_safety_tables(user: Reader, engine: EngineDep) -> dict[str, Any]:
    """Participants with at least one AE / SAE, and by MedDRA SOC and PT: pooled (or unnamed groups) for the team,
    by arm for the DSMB."""
    t = _call(svc.safety_tables, engine, user)
    return {
        "grouping": t.grouping,
        "groups": list(t.groups),
        "participants": t.participants,
        "rows": [{"label": r.label, "counts": dict(r.counts), "totals": dict(r.totals)} for r in t.rows],
        "terms": [
            {
                "level": r.level,
                "soc": r.soc,
                "pt": r.pt,
                "participants": dict(r.participants),
                "events": dict(r.events),
                "totals": dict(r.totals),
            }
            for r in t.terms
        ],
        "not_randomized_events": t.not_randomized_events,
    }


@router.get("/safety/listing", response_model=list[ListingRowOut], response_model_exclude_unset=True)
def export_safety_listing(user: Reader, engine: EngineDep) -> list[dict[str, object]]:
    """The line listing (audited as an export)."""
    return list(_call(svc.export_listing, engine, user))


@router.get("/safety/pause", response_model=PauseOut)
def get_safety_pause(user: Reader, engine: EngineDep) -> dict[str, Any]:
    """The safety pause now."""
    p = svc.pause(engine)
    return {"active": p.active, "stopped": p.stopped, "related_saes": p.related_saes, "threshold": p.threshold,
            "since": _time(p.since), "last_decision": p.last_decision}  # fmt: skip


@router.post("/safety/decisions", response_model=DecisionOut, status_code=201)
def record_dsmb_decision(body: DecisionIn, user: Dsmb, engine: EngineDep, policy: ApiReentry) -> dict[str, Any]:
    """Record a DSMB decision on the pause."""
    p = _call(svc.record_decision, engine, user, body.decision, body.reason, body.password, policy=policy)
    return {"active": p.active, "stopped": p.stopped, "related_saes": p.related_saes}
