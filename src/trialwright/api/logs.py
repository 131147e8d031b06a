"""REST endpoints for a participant's log entries (concomitant medications, medical history): list, add, amend with
a reason, remove with a reason. They call ``trialwright.services.logs``, so the same validation and audit apply."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import Field
from sqlalchemy import Engine

from trialwright.api.form_schemas import LogEntryOut, stored_value_out
from trialwright.api.schemas import ClosedBody, FieldValueIn
from trialwright.domain.roles import Role
from trialwright.services import logs as svc
from trialwright.services.errors import FormError
from trialwright.services.forms import log_review
from trialwright.services.forms.common import DATA_ENTRY, READERS
from trialwright.services.screening import NotFound
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.web.deps import EngineDep, require_api_roles

__all__ = ["entry_out", "router"]

router = APIRouter(prefix="/api/v1", tags=["logs"])
Reader = Annotated[UserView, Depends(require_api_roles(*READERS))]
Entry = Annotated[UserView, Depends(require_api_roles(*DATA_ENTRY))]
Monitor = Annotated[UserView, Depends(require_api_roles(Role.MONITOR))]
LOG = "/participants/{participant_id}/logs/{log_id}"


class LogEntryIn(ClosedBody):
    """A new entry's values (docs/forms.md for the value shapes)."""

    values: dict[str, FieldValueIn] = Field(description="Field id -> value.")


_VERSION = (
    "The entry's version the change is made from (as last read): a change made in between refuses it with 409, "
    "naming the entry and both versions."
)


class LogAmendIn(ClosedBody):
    """Values to change in an entry, and why."""

    values: dict[str, FieldValueIn] = Field(description="Field id -> value; null clears it.")
    reason: str = Field(description="The reason for the change (audited).")
    version: int = Field(description=_VERSION)


class LogRemoveIn(ClosedBody):
    """Why an entry is removed (it is kept, marked removed)."""

    reason: str
    version: int = Field(description=_VERSION)


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except NotFound:
        raise HTTPException(status_code=404, detail="not found") from None
    except svc.LogVersionConflict as exc:
        raise HTTPException(status_code=409, detail=[{"field": "version", "rule": exc.problems[0]}]) from None
    except svc.LogError as exc:
        detail = [{"field": r.split(":", 1)[0], "rule": r} for r in exc.problems]
        raise HTTPException(status_code=422, detail=detail) from None
    except FormError as exc:
        rules = [str(exc)]
        detail = [{"field": r.split(":", 1)[0], "rule": r} for r in rules]
        raise HTTPException(status_code=422, detail=detail) from None


def _coding_out(coding: svc.LogCoding) -> dict[str, Any]:
    pt, soc = coding.pt, coding.soc
    return {
        **coding.__dict__,
        "path": list(coding.path),
        "pt_code": pt[0] if pt else None,
        "pt_name": pt[1] if pt else None,
        "soc_code": soc[0] if soc else None,
        "soc_name": soc[1] if soc else None,
    }


def entry_out(entry: svc.LogEntryView, engine: Engine) -> dict[str, Any]:
    """An entry as ``LogEntryOut`` (also the casebook's, ``api.forms``)."""
    coding = entry.coding
    log = current_protocol(engine).protocol.log(entry.log_id)
    units = {f.id: f.unit for f in log.fields if f.unit}  # the unit of each canonical value (as the forms API)
    return {
        "participant_id": entry.participant_id,
        "log_id": entry.log_id,
        "sequence": entry.sequence,
        "state": entry.state,
        "version": entry.version,
        "values": {k: stored_value_out(v, units.get(k)) for k, v in entry.values.items()},
        "created_at": entry.created_at,
        "created_by": entry.created_by,
        "updated_at": entry.updated_at,
        "updated_by": entry.updated_by,
        "removed_reason": entry.removed_reason,
        "coding": None if coding is None else _coding_out(coding),
        "verified_at": entry.verified_at,
        "verified_by": entry.verified_by,
        "signed_at": entry.signed_at,
        "signed_by": entry.signed_by,
        "signature_meaning": entry.signature_meaning,
    }


@router.get(LOG, response_model=list[LogEntryOut])
def list_entries(participant_id: str, log_id: str, user: Reader, engine: EngineDep) -> list[dict[str, Any]]:
    """The participant's entries in this log, removed ones included, by sequence."""
    return [entry_out(e, engine) for e in _call(svc.list_entries, engine, user, participant_id, log_id)]


@router.post(LOG, response_model=LogEntryOut, status_code=201)
def add_entry(participant_id: str, log_id: str, body: LogEntryIn, user: Entry, engine: EngineDep) -> dict[str, Any]:
    """Add an entry (the next sequence); every problem reported at once, naming the field and the rule."""
    return entry_out(_call(svc.add_entry, engine, user, participant_id, log_id, body.values), engine)


@router.post(LOG + "/{sequence}", response_model=LogEntryOut)
def amend_entry(
    participant_id: str, log_id: str, sequence: int, body: LogAmendIn, user: Entry, engine: EngineDep
) -> dict[str, Any]:
    """Amend an entry's values, with a reason, from the version read (409 when it changed in between)."""
    return entry_out(_call(svc.amend_entry, engine, user, participant_id, log_id, sequence, body.values,
                           reason=body.reason, version=body.version), engine)  # fmt: skip


@router.post(LOG + "/{sequence}/remove", response_model=LogEntryOut)
def remove_entry(
    participant_id: str, log_id: str, sequence: int, body: LogRemoveIn, user: Entry, engine: EngineDep
) -> dict[str, Any]:
    """Remove an entry, with a reason: it is kept, marked removed (409 when it changed since the version read)."""
    removed = _call(svc.remove_entry, engine, user, participant_id, log_id, sequence, reason=body.reason,
                    version=body.version)
    return entry_out(removed, engine)


@router.post(LOG + "/{sequence}/verify", response_model=LogEntryOut)
def verify_entry(
    participant_id: str, log_id: str, sequence: int, user: Monitor, engine: EngineDep
) -> dict[str, Any]:
    """Source data verification of an entry (monitor); a later amendment or removal voids it. Many at once: the
    casebook's verification (``/participants/{participant_id}/casebook/verify``, ``entries``)."""
    return entry_out(_call(log_review.verify_entry, engine, user, participant_id, log_id, sequence), engine)
