"""REST endpoints for recruitment: the dashboard's numbers, the forecast with what-if parameters, and the
registry-update text. The same service as the page; per-arm numbers only for the readers it unblinds.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from trialwright.domain.recruitment import (
    ArmRecruitment,
    Counts,
    DateInterval,
    NewSitePlan,
    PredictedPoint,
    Reason,
    SeriesPoint,
    SiteRate,
    SiteRecruitment,
    TimeToRandomization,
)
from trialwright.services import recruitment as svc
from trialwright.services.users import UserView
from trialwright.web.deps import EngineDep, require_api_roles

router = APIRouter(prefix="/api/v1", tags=["recruitment"])
Reader = Annotated[UserView, Depends(require_api_roles(*svc.READERS))]
AsOf = Annotated[
    str | None, Query(description="Count as of this date (YYYY-MM-DD or Solar Hijri YYYY/MM/DD); today if absent.")
]


class RecruitmentStatusOut(BaseModel):
    """The recruitment dashboard as the caller may see it (``arms`` null unless the caller may see arms)."""

    as_of: dt.date
    target: int
    totals: Counts
    sites: list[SiteRecruitment]
    period: str
    series: list[SeriesPoint]
    arms: list[ArmRecruitment] | None
    screen_failures: list[Reason]
    non_enrolment: list[Reason]
    consent_by_participant: int
    consent_by_representative: int
    days_to_randomization: TimeToRandomization
    planned_start: dt.date
    planned_end: dt.date
    reached_on: dt.date | None
    last_randomized: dt.date | None
    by_arm: bool
    percent_of_target: float


class RecruitmentForecastOut(BaseModel):
    """When the target will be reached (``state``: forecast, reached or no_recruits); probabilities are of the
    target reached by the end of that day, null without a forecast; ``actual`` is [date, randomized] pairs."""

    as_of: dt.date
    state: str
    message: str
    target: int
    randomized: int
    remaining: int
    reached_on: dt.date | None
    planned_end: dt.date
    probability_by_planned_end: float | None
    end_date: dt.date | None
    probability_by_end_date: float | None
    median_date: dt.date | None
    median_days: float | None
    intervals: list[DateInterval]
    method: str | None
    model: str | None
    mean_rate_per_month: float | None
    rate_cv: float | None
    sites: list[SiteRate]
    new_sites: list[NewSitePlan]
    actual: list[tuple[dt.date, int]]
    predicted: list[PredictedPoint]
    warnings: list[str]


class RegistryUpdateOut(BaseModel):
    """Text for a registry record's "Reason for update"."""

    text: str


def _scenario(**values: str | None) -> svc.Scenario:
    try:
        return svc.parse_scenario(**values)
    except svc.RecruitmentError as exc:
        raise HTTPException(status_code=422, detail=[{"field": f, "rule": r} for f, r in exc.problems]) from None


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except svc.RecruitmentError as exc:
        raise HTTPException(status_code=422, detail=[{"field": f, "rule": r} for f, r in exc.problems]) from None


@router.get("/recruitment/status", response_model=RecruitmentStatusOut)
def get_recruitment_status(user: Reader, engine: EngineDep, as_of: AsOf = None) -> dict[str, Any]:
    """Screened, eligible, consented, enrolled and randomized, overall, per site and over time; reasons;
    consents by participant or representative; days to randomization; ``arms`` null unless the caller may
    see arms."""
    scenario = _scenario(as_of=as_of)
    return dict(_call(svc.recruitment_status, engine, user, as_of=scenario.as_of).as_dict())


@router.get("/recruitment/forecast", response_model=RecruitmentForecastOut)
def get_recruitment_forecast(
    user: Reader,
    engine: EngineDep,
    new_site_rate: Annotated[str | None, Query(description="What-if: a new site's participants a month.")] = None,
    new_site_opens: Annotated[str | None, Query(description="What-if: the date the new site opens.")] = None,
    end_date: Annotated[str | None, Query(description="What-if: the probability of the target by this date.")] = None,
    as_of: AsOf = None,
) -> dict[str, Any]:
    """When the target will be reached (Poisson-gamma model): the date with 80% and 95% intervals, the
    probability by the planned end (and by ``end_date``), the fitted site rates, the curves."""
    s = _scenario(new_site_rate=new_site_rate, new_site_opens=new_site_opens, end_date=end_date, as_of=as_of)
    result = _call(svc.recruitment_forecast, engine, user, new_sites=s.new_sites, end_date=s.end_date, as_of=s.as_of)
    return dict(result.as_dict())


@router.get("/recruitment/registry-update", response_model=RegistryUpdateOut)
def get_registry_update(user: Reader, engine: EngineDep, as_of: AsOf = None) -> dict[str, str]:
    """Actual versus target with the reasons, as text for a registry record's "Reason for update"."""
    scenario = _scenario(as_of=as_of)
    return {"text": _call(svc.registry_update_text, engine, user, as_of=scenario.as_of)}
