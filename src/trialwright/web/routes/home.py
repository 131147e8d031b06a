"""The trial home page: the user's work list first (``services/worklist``), then the registry summary, with arms
as the viewer may see them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from trialwright.domain.masking import present_arms
from trialwright.services.lock import frozen
from trialwright.services.randomization import count_notifications_for, notifications_for
from trialwright.services.screening import count_enrolled
from trialwright.services.trial import protocol_history
from trialwright.services.worklist import work_list
from trialwright.web.deps import EngineDep, ProtocolDep, SignedInPage, viewer_of
from trialwright.web.lock_words import frozen_said
from trialwright.web.routes.worklist import names
from trialwright.web.templating import render_page

router = APIRouter()


@router.get("/health", response_class=PlainTextResponse, include_in_schema=False)
def health() -> str:
    return "ok"


@router.get("/", response_class=HTMLResponse)
def home(request: Request, page: SignedInPage, protocol: ProtocolDep, engine: EngineDep) -> HTMLResponse:
    assert page.user is not None
    arms = present_arms(viewer_of(page.user, engine), protocol)
    work = work_list(engine, page.user)
    context = {
        "p": protocol,
        "arms": arms,
        "enrolled": count_enrolled(engine),
        "versions": protocol_history(engine),
        "notices": notifications_for(engine, page.user),
        "notices_total": count_notifications_for(engine, page.user),
        "work": work,
        # the trial locked: said above the work list, whose data tasks wait for an unlock
        "frozen": frozen_said(frozen(engine), protocol, page.lang),
        "overdue": work.overdue_reports,
        **names(protocol, page.lang),
    }
    return render_page(request, page, "home/index.html", context)
