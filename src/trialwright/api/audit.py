"""REST endpoint for the audit trail (administrators, data managers, and monitors for their own sites).

The same service as the page: values the masking policy hides from the caller come back as ``masked``. Pages
are newest first, with keyset paging: pass the answer's ``next`` as ``before`` for the next (older) page; entries
written meanwhile never shift it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from trialwright.services import audit_trail as svc
from trialwright.services.users import UserView
from trialwright.web.deps import MAX_ROW_ID, EngineDep, require_api_roles

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


class AuditPageOut(BaseModel):
    """A page of audit entries, newest first."""

    entries: list[AuditEntryOut]
    total: int = Field(description="How many entries match the filters (within the caller's sites).")
    next: int | None = Field(description="Pass as `before` for the next (older) page; null on the last page.")


@router.get("/audit", response_model=AuditPageOut)
def audit_entries(
    user: Reader,
    engine: EngineDep,
    participant: str | None = None,
    actor: str | None = None,
    action: Annotated[str | None, Query(description="Only actions starting with this.")] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID, description="Entries before this sequence.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPageOut:
    """Audit entries newest first, within the caller's sites; arm-revealing values masked for blinded callers.
    The answer holds the total matching the filters and the cursor of the next page."""
    found = svc.read_page(
        engine, user, participant=participant, by=actor, action_prefix=action, before_seq=before, limit=limit
    )
    rows = [
        AuditEntryOut(
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
        for e in found.entries
    ]
    return AuditPageOut(entries=rows, total=found.total, next=found.next)
