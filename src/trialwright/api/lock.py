"""REST endpoints for the lock readiness report, the trial lock (refused with the blockers listed, unless overridden
with a reason and the data manager's password) and the soft locks of a site or participant."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from trialwright.api.problems import ReadinessOut, WithheldReviewOut
from trialwright.api.schemas import ClosedBody
from trialwright.services import lock, readiness
from trialwright.services.errors import FormError
from trialwright.services.users import UserView
from trialwright.web.deps import ApiReentry, EngineDep, require_api_roles

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["lock"])
Reader = Annotated[UserView, Depends(require_api_roles(*lock.READERS))]
ReadinessReader = Annotated[UserView, Depends(require_api_roles(*readiness.READERS))]
Manager = Annotated[UserView, Depends(require_api_roles(*lock.LOCKERS))]
#: Blockers a refused lock lists one by one (all are counted).
LISTED = 20


class LockIn(ClosedBody):
    """Why the database is locked; ``password`` (the data manager's) overrides what blocks the lock."""

    reason: str
    password: str | None = None


class ReasonIn(ClosedBody):
    """A reason."""

    reason: str


class ReviewIn(ClosedBody):
    """What the unmasked reviewer reviewed and found (audited), and their current password."""

    reason: str
    password: str


class SoftLockIn(ClosedBody):
    """One site or one participant, and why."""

    reason: str
    site: str | None = None
    participant_id: str | None = Field(default=None, description="A participant id, e.g. RAZ-001.")


class LockStateOut(BaseModel):
    """Whether the trial database is locked, since when, by whom and why; ``open_blockers``: how many blockers an
    override left open outside the forms that reveal the arm (null: nothing there blocked it); ``withheld``: the
    forms kept from a masked data manager who locked; ``uncounted``: the forms that reveal the arm, whose blockers
    no count holds; ``reviewers``: the unmasked roles that must find the withheld forms ready; ``banner``: the
    override (or the lock over forms withheld) as reports print it; ``reviewed_by`` and ``reviewed_at``: the unmasked
    reviewer's review of the withheld forms, while it stands (nothing on them changed since)."""

    locked: bool
    at: dt.datetime | None
    by: str | None
    reason: str | None
    open_blockers: int | None
    withheld: list[str] = Field(default_factory=list)
    uncounted: list[str] = Field(default_factory=list)
    reviewers: list[str] = Field(default_factory=list)
    reviewed_by: str | None = Field(default=None, description="Who reviewed the withheld forms, while it stands.")
    reviewed_at: dt.datetime | None = None
    banner: str | None


class SoftLockOut(BaseModel):
    """A site or participant soft-locked: since when, by whom and why."""

    scope: str = Field(description="site or participant.")
    target: str
    at: dt.datetime
    by: str
    reason: str


class SoftUnlockOut(BaseModel):
    """A soft lock lifted."""

    site: str | None
    participant_id: str | None
    locked: bool


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except lock.LockBlocked as exc:
        # A problem (api/problems.py) whose rule is the refusal and whose readiness lists what blocks the lock.
        detail = {"rule": str(exc), "readiness": _readiness(exc.readiness, LISTED)}
        raise HTTPException(status_code=409, detail=detail) from None
    except FormError as exc:
        raise HTTPException(status_code=422, detail=[{"rule": str(exc)}]) from None


def _readiness(report: readiness.Readiness, limit: int | None) -> dict[str, Any]:
    shown = report.blockers if limit is None else report.blockers[:limit]
    return {
        "ready": report.ready,
        "taken_at": report.taken_at.isoformat(),
        "site": report.site,
        "forms_policy": report.forms_policy,
        "participants": report.participants,
        "headline": report.headline(),
        "counts": {k.value: n for k, n in report.counts().items()},
        "by_site": {s: {k.value: n for k, n in c.items()} for s, c in report.by_site().items()},
        "total": len(report.blockers),
        "blockers": [
            {
                "kind": b.kind.value,
                "site": b.site,
                "participant_id": b.participant_id,
                "where": b.where,
                "detail": b.detail,
            }
            for b in shown
        ],
        "withheld": list(report.withheld),
        "reviewers": list(report.reviewers),
        "not_due": [{**v.__dict__, "detail": v.detail()} for v in report.not_due],
        "review": _review(report.review),
    }


def _review(review: readiness.WithheldReview | None) -> dict[str, Any] | None:
    return None if review is None else {**review.__dict__, "forms": list(review.forms)}


def _state(state: lock.LockState) -> dict[str, Any]:
    return {**state.__dict__, "banner": state.banner}


@router.get("/trial/readiness", response_model=ReadinessOut)
def get_lock_readiness(user: ReadinessReader, engine: EngineDep, site: str | None = None) -> dict[str, Any]:
    """What blocks the database lock, per site and participant (every blocker listed)."""
    return _readiness(_call(readiness.lock_readiness, engine, user, site), None)


@router.post("/trial/readiness/review", response_model=WithheldReviewOut)
def review_withheld(body: ReviewIn, user: ReadinessReader, engine: EngineDep, policy: ApiReentry) -> dict[str, Any]:
    """Record that the forms kept from masked readers (they reveal the arm) are ready (an unmasked data manager or
    monitor of every site, with a reason and their password; audited). 422 naming the rule for a masked or
    site-scoped reader, when no form is withheld, or when those forms are not ready (the blockers on them listed)."""
    done = _call(readiness.review_withheld, engine, user, body.reason, password=body.password, policy=policy)
    return _review(done) or {}


@router.get("/trial/lock", response_model=LockStateOut)
def get_lock_state(user: Reader, engine: EngineDep) -> dict[str, Any]:
    """Whether the trial database is locked (and the banner, if it was locked over open blockers or over forms kept
    from its locker)."""
    _call(lock.may_read_locks, user)
    return _state(lock.lock_state(engine))


@router.post("/trial/lock", response_model=LockStateOut)
def lock_trial(body: LockIn, user: Manager, engine: EngineDep, policy: ApiReentry) -> dict[str, Any]:
    """Lock the whole trial database (data manager). 409 with the blockers while anything blocks it, unless
    ``password`` overrides (audited with the number of blockers left open)."""
    return _state(_call(lock.lock_trial, engine, user, body.reason, password=body.password, policy=policy))


@router.post("/trial/unlock", response_model=LockStateOut)
def unlock_trial(body: ReasonIn, user: Manager, engine: EngineDep) -> dict[str, Any]:
    """Unlock the trial database with a reason (data manager)."""
    return _state(_call(lock.unlock_trial, engine, user, body.reason))


@router.get("/soft-locks", response_model=list[SoftLockOut])
def list_soft_locks(user: Reader, engine: EngineDep) -> list[dict[str, Any]]:
    """The sites and participants soft-locked now."""
    return [dict(s.__dict__) for s in _call(lock.soft_locks_for, engine, user)]


@router.post("/soft-locks", response_model=SoftLockOut)
def soft_lock(body: SoftLockIn, user: Manager, engine: EngineDep) -> dict[str, Any]:
    """Soft-lock one site or one participant (data manager, with a reason)."""
    done = _call(lock.soft_lock, engine, user, body.reason, site=body.site, participant_id=body.participant_id)
    return dict(done.__dict__)


@router.post("/soft-locks/unlock", response_model=SoftUnlockOut)
def soft_unlock(body: SoftLockIn, user: Manager, engine: EngineDep) -> dict[str, Any]:
    """Lift the soft lock of one site or one participant (data manager, with a reason)."""
    _call(lock.soft_unlock, engine, user, body.reason, site=body.site, participant_id=body.participant_id)
    return {"site": body.site, "participant_id": body.participant_id, "locked": False}
