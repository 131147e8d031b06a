"""REST endpoint for the audit trail (administrators, data managers, and monitors for their own sites).

The same service as the page: values the masking policy hides from the caller come back as ``masked``. Pages are
newest first (by sequence) in the shape of every list (``api/paging.py``): ``items``, ``total``, ``limit`` and the
``next`` and ``prev`` cursors, also in the ``Link`` header; entries written meanwhile never shift a page.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel

from trialwright.api.paging import CursorParam, LimitParam, PageOut, cursor_checked, page_out
from trialwright.domain.audit import AuditEntry
from trialwright.domain.paging import DEFAULT_LIMIT
from trialwright.services import audit_trail as svc
from trialwright.services.users import UserView
from trialwright.web.deps import EngineDep, require_api_roles

router = APIRouter(prefix="/api/v1", tags=["audit"])
Reader = Annotated[UserView, Depends(require_api_roles(*svc.READERS))]


class AuditEntryOut(BaseModel):
    """One audit entry as the caller may read it: values are the stored JSON text, or ``"masked"``."""

    seq: int
    at: dt.datetime
    actor: str
    role: str | None
    action: str
    site: str | None
    participant: str | None
    form: str | None
    field: str | None
    old_value: str | None
    new_value: str | None
    reason: str | None
    detail: str | None


def _out(e: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        seq=e.seq,
        at=e.at,
        actor=e.actor,
        role=e.role,
        action=e.action,
        site=e.site,
        participant=e.participant,
        form=e.form,
        field=e.field,
        old_value=e.old_value,
        new_value=e.new_value,
        reason=e.reason,
        detail=e.detail,
    )


@router.get("/audit", response_model=PageOut[AuditEntryOut])
def list_audit_entries(
    request: Request,
    response: Response,
    user: Reader,
    engine: EngineDep,
    participant: str | None = None,
    actor: str | None = None,
    action: Annotated[str | None, Query(description="Only actions starting with this.")] = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    before: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> PageOut[AuditEntryOut]:
    """A page of audit entries within the caller's sites, newest first (by sequence); arm-revealing values masked
    for blinded callers. The answer holds the total matching the filters and the cursors of the next and previous
    pages."""
    if before is not None:  # the old paging: answering the first page again would never end a client's walk
        rule = "the audit trail pages by cursor: pass the answer's next as cursor"
        raise HTTPException(status_code=422, detail=[{"field": "before", "rule": rule}])
    with cursor_checked():
        found = svc.page_trail(
            engine, user, participant=participant, by=actor, action_prefix=action, limit=limit, cursor=cursor
        )
    return page_out(request, response, found, _out)
