"""REST endpoints for a participant's log entries (concomitant medications, medical history): list, add, amend with
a reason, remove with a reason. They call ``trialwright.services.logs``, so the same validation and audit apply."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from trialwright.api.form_schemas import StoredValueOut, stored_value_out
from trialwright.api.schemas import ClosedBody, FieldValueIn
from trialwright.services import logs as svc
from trialwright.services.errors import FormError
from trialwright.services.forms.common import DATA_ENTRY, READERS
from trialwright.services.screening import NotFound
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.web.deps import EngineDep, require_api_roles

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["logs"])
Reader = Annotated[UserView, Depends(require_api_roles(*READERS))]
Entry = Annotated[UserView, Depends(require_api_roles(*DATA_ENTRY))]
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


class LogCodingOut(BaseModel):
    """An entry's coding: WHO ATC for a medication (``code`` and ``name`` the level-5 substance), MedDRA for medical
    history (``code`` and ``name`` the LLT, with its PT and primary SOC); the path from level 1 down."""

    dictionary: str = Field(description="ATC or MedDRA.")
    version: str = Field(description="The ATC index or MedDRA release coded with.")
    verbatim: str = Field(description="The text coded (the medication's name, the condition).")
    code: str = Field(description="ATC: the level-5 code; MedDRA: the LLT code.")
    name: str = Field(description="ATC: the level-5 name; MedDRA: the LLT name.")
    pt_code: str | None = Field(description="MedDRA: the preferred term's code; null for ATC.")
    pt_name: str | None = Field(description="MedDRA: the preferred term; null for ATC.")
    soc_code: str | None = Field(description="MedDRA: the primary system organ class's code; null for ATC.")
    soc_name: str | None = Field(description="MedDRA: the primary system organ class; null for ATC.")
    path: list[tuple[int, str, str]] = Field(description="(level, code, name) from level 1 down to the code.")
    coded_at: dt.datetime
    coded_by: str


class LogEntryOut(BaseModel):
    """One entry of a participant's log as stored now."""

    participant_id: str
    log_id: str
    sequence: int
    state: str = Field(description="active or removed.")
    version: int
    values: dict[str, StoredValueOut]
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    updated_by: str
    removed_reason: str | None
    coding: LogCodingOut | None


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


def _out(entry: svc.LogEntryView, engine: Engine) -> dict[str, Any]:
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
    }


@router.get(LOG, response_model=list[LogEntryOut])
def list_entries(participant_id: str, log_id: str, user: Reader, engine: EngineDep) -> list[dict[str, Any]]:
    """The participant's entries in this log, removed ones included, by sequence."""
    return [_out(e, engine) for e in _call(svc.list_entries, engine, user, participant_id, log_id)]


@router.post(LOG, response_model=LogEntryOut, status_code=201)
def add_entry(participant_id: str, log_id: str, body: LogEntryIn, user: Entry, engine: EngineDep) -> dict[str, Any]:
    """Add an entry (the next sequence); every problem reported at once, naming the field and the rule."""
    return _out(_call(svc.add_entry, engine, user, participant_id, log_id, body.values), engine)


@router.post(LOG + "/{sequence}", response_model=LogEntryOut)
def amend_entry(
    participant_id: str, log_id: str, sequence: int, body: LogAmendIn, user: Entry, engine: EngineDep
) -> dict[str, Any]:
    """Amend an entry's values, with a reason, from the version read (409 when it changed in between)."""
    return _out(_call(svc.amend_entry, engine, user, participant_id, log_id, sequence, body.values,
                      reason=body.reason, version=body.version), engine)  # fmt: skip


@router.post(LOG + "/{sequence}/remove", response_model=LogEntryOut)
def remove_entry(
    participant_id: str, log_id: str, sequence: int, body: LogRemoveIn, user: Entry, engine: EngineDep
) -> dict[str, Any]:
    """Remove an entry, with a reason: it is kept, marked removed (409 when it changed since the version read)."""
    return _out(_call(svc.remove_entry, engine, user, participant_id, log_id, sequence, reason=body.reason,
                      version=body.version), engine)  # fmt: skip
