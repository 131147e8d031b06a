"""REST endpoint for the analysis results: the protocol's analysis on the current data, as ``results.json``.

Thin over ``trialwright.services.analysis.run_analysis``, as the analysis page and ``trialwright analyse`` are: the
same roles (the blinded and the unblinded statistician), blinded by default (pooled, or unnamed groups where the
protocol allows them), ``unblinded=true`` only for the unblinded statistician after the database lock; each run is
audited by the service (``analysis.run`` / ``analysis.unblinded_run``). The body is the report's results exactly
as ``results.json`` holds them (``trialwright.analysis.report.results_json``): its fields are the report's own,
typed, with every number that is not finite given as null. A refusal is 403 with the rule, as the page's.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, create_model

from trialwright.analysis import engine as analysis_engine
from trialwright.analysis.engine import AnalysisReport
from trialwright.services import analysis as svc
from trialwright.services.errors import AccessDenied
from trialwright.services.users import UserView
from trialwright.web.deps import EngineDep, ReadEngineDep, require_api_roles

__all__ = ["AnalysisResultsOut", "results_out", "router"]

router = APIRouter(prefix="/api/v1", tags=["analysis"])
Analyst = Annotated[UserView, Depends(require_api_roles(*svc.ANALYSTS))]


class _Results(BaseModel):
    model_config = ConfigDict(ser_json_inf_nan="null")


def _fields() -> dict[str, Any]:
    hints = typing.get_type_hints(AnalysisReport, vars(analysis_engine))
    found: dict[str, Any] = {f.name: (hints[f.name], ...) for f in dataclasses.fields(AnalysisReport)}
    found["outcome_ids"] = (list[str], ...)
    return found


#: The analysis results: ``AnalysisReport``'s fields (and ``outcome_ids``), as ``results.json`` holds them.
AnalysisResultsOut: type[BaseModel] = create_model(
    "AnalysisResultsOut",
    __base__=_Results,
    __doc__="The protocol's analysis of one data snapshot, as results.json holds it: provenance, analysis sets, "
    "Table 1, every estimate with its CI and n, safety by grade, CONSORT flow, pilot rates.",
    **_fields(),
)


def results_out(report: AnalysisReport) -> BaseModel:
    """The report as the endpoint answers it."""
    values = {f.name: getattr(report, f.name) for f in dataclasses.fields(report)}
    return AnalysisResultsOut.model_validate({**values, "outcome_ids": list(report.outcome_ids)})


@router.get("/analysis", response_model=AnalysisResultsOut)
def get_analysis_results(
    response: Response,
    user: Analyst,
    engine: EngineDep,
    read_engine: ReadEngineDep,
    unblinded: Annotated[
        bool, Query(description="The unblinded analysis: the unblinded statistician only, after the database lock.")
    ] = False,
) -> Any:
    """Run the protocol's analysis plan on the current data and answer its results (blinded unless
    ``unblinded``); the run is audited. Never cached: each request is a new run."""
    try:
        run = svc.run_analysis(engine, user, unblinded=unblinded, read_engine=read_engine)
    except svc.AnalysisError as exc:
        # A role that may not: 403; the trial's state refuses it now (before the lock, a lagging replica): 409.
        field, _, rule = str(exc).partition(": ")
        status = 403 if isinstance(exc, AccessDenied) else 409
        raise HTTPException(status_code=status, detail=[{"field": field, "rule": rule}]) from None
    response.headers["Cache-Control"] = "no-store"
    return results_out(run.report)
