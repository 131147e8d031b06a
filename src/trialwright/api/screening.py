"""REST endpoints for screening, consent, enrolment and withdrawal (bearer tokens, site-scoped)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field

from trialwright.api.paging import CursorParam, LimitParam, PageOut, cursor_checked, page_out
from trialwright.api.schemas import ClosedBody, FieldValueIn
from trialwright.domain.eligibility import ScreeningValueError
from trialwright.domain.paging import DEFAULT_LIMIT
from trialwright.domain.roles import Role
from trialwright.services import screening as svc
from trialwright.services.errors import AccessDenied
from trialwright.services.users import UserView
from trialwright.web.deps import EngineDep, RowId, require_api_roles

router = APIRouter(prefix="/api/v1", tags=["screening"])
Writer = Annotated[UserView, Depends(require_api_roles(Role.INVESTIGATOR, Role.STUDY_COORDINATOR))]
Reader = Annotated[
    UserView,
    Depends(
        require_api_roles(
            Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.ADMINISTRATOR, Role.MONITOR, Role.DATA_MANAGER
        )
    ),
]


class FailedCriterionOut(BaseModel):
    """An eligibility criterion the values fail, with the values it read."""

    id: str
    text: str
    values: dict[str, Any]


class WithdrawalOut(BaseModel):
    """A participant's withdrawals after the one recorded."""

    participant_id: str
    withdrawn_scopes: list[str]


class ScreeningIn(ClosedBody):
    """A new screening: site, date and whatever values are known (a value may be {value, unit})."""

    site: str
    screened_on: dt.date
    values: dict[str, FieldValueIn] = Field(default_factory=dict)


class ConsentIn(ClosedBody):
    """A consent record."""

    form_version: str
    given_by: str = Field(description="participant or representative")
    obtained_by: str
    obtained_at: AwareDatetime = Field(
        description="With its UTC offset (any offset: the same instant gives the same answer), e.g. "
        "2021-05-20T10:30:00+03:30 or 2021-05-20T07:00:00Z; its date is taken on the site's clock"
    )
    representative_name: str | None = None
    representative_relationship: str | None = None
    witness: str | None = None
    kind: str = "initial"
    decision: str = "consent"
    assent: str | None = Field(
        default=None,
        description="The participant's own assent beside a representative's consent, where the protocol seeks it "
        "(eligibility.assent): given, dissent (enrolment is then refused) or not_sought",
    )
    assent_obtained_by: str | None = Field(default=None, description="Who sought the assent (given or dissent)")
    assent_obtained_at: AwareDatetime | None = Field(default=None, description="When, with its UTC offset")
    assent_form_version: str | None = Field(
        default=None, description="The assent form version, one the protocol lists (eligibility.assent.form_versions)"
    )
    assent_not_sought_reason: str | None = Field(
        default=None, description="Why assent was not sought (assent: not_sought), e.g. unable to understand"
    )


class ValuesIn(ClosedBody):
    """Values to enter or correct; changing a saved value needs a reason."""

    values: dict[str, FieldValueIn]
    reason: str | None = None
    consent: ConsentIn | None = Field(
        default=None,
        description="A consent recorded again with the correction, in the same transaction (after it): needed when "
        "a corrected age (eligibility.assent.age_field) changes whether the consent in force needed the "
        "participant's assent",
    )


class NotEnrolledIn(ClosedBody):
    """Why a screened patient was not enrolled."""

    reason: str
    text: str | None = None


class WithdrawalIn(ClosedBody):
    """A withdrawal of one scope."""

    scope: str
    cause: str
    reason: str
    withdrawn_on: dt.date


class ScreeningOut(BaseModel):
    """A screening log entry."""

    id: int
    label: str
    site: str
    screened_on: dt.date
    values: dict[str, Any]
    decision: str
    failed: list[FailedCriterionOut]
    missing: list[str]
    protocol_version: str
    non_enrolment_reason: str | None
    consents: int
    consented: bool
    participant_id: str | None
    withdrawn_scopes: list[str]


def _out(s: svc.ScreeningView) -> ScreeningOut:
    return ScreeningOut(
        id=s.id,
        label=s.label,
        site=s.site,
        screened_on=s.screened_on,
        values=dict(s.values),
        decision=s.decision.value,
        failed=[FailedCriterionOut.model_validate(f) for f in s.failed],
        missing=list(s.missing),
        protocol_version=s.protocol_version,
        non_enrolment_reason=s.non_enrolment_reason,
        consents=len(s.consents),
        consented=s.consented,
        participant_id=s.participant.participant_id if s.participant else None,
        withdrawn_scopes=list(s.participant.withdrawn_scopes) if s.participant else [],
    )


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except svc.NotFound:
        raise HTTPException(status_code=404, detail="not found") from None
    except ScreeningValueError as exc:
        raise HTTPException(status_code=422, detail=[{"rule": p} for p in exc.problems]) from None
    except svc.ScreeningError as exc:  # a role the service refuses is a 403, as the route's own check answers
        status = 403 if isinstance(exc, AccessDenied) else 422
        raise HTTPException(status_code=status, detail=[{"rule": str(exc)}]) from None


@router.get("/screenings", response_model=PageOut[ScreeningOut])
def list_screenings(
    request: Request,
    response: Response,
    user: Reader,
    engine: EngineDep,
    site: str | None = None,
    decision: str | None = None,
    participant: Annotated[str | None, Query(max_length=32, description="Participant id prefix.")] = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> PageOut[ScreeningOut]:
    """A page of the screening log within the caller's sites, newest first (by screening date, then id)."""
    with cursor_checked():
        found = svc.page_screenings(
            engine, user, site=site, decision=decision, participant=participant, limit=limit, cursor=cursor
        )
    return page_out(request, response, found, _out)


@router.post("/screenings", response_model=ScreeningOut, status_code=201)
def create_screening(body: ScreeningIn, user: Writer, engine: EngineDep) -> ScreeningOut:
    """Screen a patient; the eligibility decision is in the answer."""
    return _out(_call(svc.screen, engine, user, site=body.site, screened_on=body.screened_on, values=body.values))


@router.get("/screenings/{screening_id}", response_model=ScreeningOut)
def get_screening(screening_id: RowId, user: Reader, engine: EngineDep) -> ScreeningOut:
    """One screening."""
    return _out(_call(svc.get_screening, engine, user, screening_id))


@router.post("/screenings/{screening_id}/values", response_model=ScreeningOut)
def change_screening_values(screening_id: RowId, body: ValuesIn, user: Writer, engine: EngineDep) -> ScreeningOut:
    """Enter or correct values (a reason is needed to change a saved value)."""
    consent = body.consent.model_dump() if body.consent is not None else None
    return _out(_call(svc.update_screening, engine, user, screening_id, values=body.values, reason=body.reason,
                      consent=consent))  # fmt: skip


@router.post("/screenings/{screening_id}/consents", response_model=ScreeningOut, status_code=201)
def record_consent(screening_id: RowId, body: ConsentIn, user: Writer, engine: EngineDep) -> ScreeningOut:
    """Record a consent, a refusal, or a participant's own decision after regaining capacity."""
    return _out(_call(svc.record_consent, engine, user, screening_id, **body.model_dump()))


@router.post("/screenings/{screening_id}/not-enrolled", response_model=ScreeningOut)
def record_non_enrolment(screening_id: RowId, body: NotEnrolledIn, user: Writer, engine: EngineDep) -> ScreeningOut:
    """Record the coded reason a patient was not enrolled."""
    return _out(_call(svc.set_non_enrolment, engine, user, screening_id, reason=body.reason, text_=body.text))


@router.post("/screenings/{screening_id}/enrol", response_model=ScreeningOut)
def enrol_participant(screening_id: RowId, user: Writer, engine: EngineDep) -> ScreeningOut:
    """Enrol an eligible, consented patient: issues the participant id."""
    return _out(_call(svc.enrol, engine, user, screening_id))


@router.post("/participants/{participant_id}/withdrawals", response_model=WithdrawalOut, status_code=201)
def withdraw_participant(participant_id: str, body: WithdrawalIn, user: Writer, engine: EngineDep) -> WithdrawalOut:
    """Record a withdrawal of one scope (intervention, follow_up or data_use) with its cause (withdrew_consent,
    lost_to_follow_up, investigator_decision, adverse_event or other) and the reason in words."""
    p = _call(
        svc.withdraw,
        engine,
        user,
        participant_id,
        scope=body.scope,
        cause=body.cause,
        reason=body.reason,
        withdrawn_on=body.withdrawn_on,
    )
    return WithdrawalOut(participant_id=p.participant_id, withdrawn_scopes=list(p.withdrawn_scopes))
