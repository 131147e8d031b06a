"""The audit trail page (administrators, data managers, and monitors for their own sites); values the masking
policy hides from the reader show as ``masked`` (``trialwright.services.audit_trail``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from trialwright.services import audit, audit_trail
from trialwright.services.replay import replay
from trialwright.web.deps import MAX_ROW_ID, EngineDep, require_roles
from trialwright.web.templating import Page, render_page

router = APIRouter()
_PAGE_SIZE = 50


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    engine: EngineDep,
    page: Page = Depends(require_roles(*audit_trail.READERS)),  # noqa: B008
    actor: str | None = None,
    action: str | None = None,
    participant: str | None = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> HTMLResponse:
    assert page.user is not None
    rows = audit_trail.read_trail(
        engine,
        page.user,
        by=actor or None,
        action_prefix=action or None,
        participant=participant or None,
        before_seq=before,
        limit=_PAGE_SIZE,
    )
    context = {
        "rows": rows,
        "filters": {"actor": actor or "", "action": action or "", "participant": participant or ""},
        "older": rows[-1].seq if len(rows) == _PAGE_SIZE else None,
        "chain": audit.verify(engine),
        # Counts only: the disagreements name participants of every site (the CLI prints them).
        "replay": replay(engine, limit=0),
    }
    return render_page(request, page, "audit/index.html", context)
