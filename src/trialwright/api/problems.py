"""Errors of the REST API as RFC 9457 problem details (``application/problem+json``).

Every error under /api/ is one ``ProblemDetails``: ``type`` (``about:blank``: the status says it all), ``title``
(the HTTP status phrase), ``status``, ``detail`` (the refusals in words), ``instance`` (the path asked for), and
the members scripts read: ``field`` and ``rule`` of the first refusal, and ``errors``, every refusal (one for most
errors; a validation error lists each value refused). The app's exception handlers (``web/app.py``) build it from
whatever the route raised, so a route only raises ``HTTPException`` with a text, one refusal or a list of them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

__all__ = [
    "DOCUMENTED_ERRORS",
    "PROBLEM_JSON",
    "BlockerOut",
    "NotDueOut",
    "ProblemDetails",
    "ReadinessOut",
    "Refusal",
    "problem_of",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"
#: The error statuses every /api/ operation documents (each answered as a ``ProblemDetails``).
DOCUMENTED_ERRORS = {
    400: "The request cannot be read.",
    401: "No valid API token (`Authorization: Bearer <token>`).",
    403: "The token's role may not do this (audited).",
    404: "Nothing of that name within the caller's reach.",
    409: "The state of the trial refuses it now (e.g. the lock, with what blocks it).",
    422: "A value or a rule refused it: `field`, `rule` and `errors` name each one.",
    429: "Past a rate limit; `Retry-After` says in how many seconds to try again.",
}
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\[\]]*): ")


class Refusal(BaseModel):
    """One thing refused: the field (its id, as scripts name it; null: the request as a whole) and the rule."""

    field: str | None = Field(description="The field refused, as its id; null when the refusal is not one field's.")
    rule: str = Field(description="The rule that refused it, in words (starts with the field when there is one).")
    message: str | None = Field(
        default=None, description="For a form's values: the rule with the field said by its label, for people."
    )


class BlockerOut(BaseModel):
    """One thing that blocks the database lock (never an arm)."""

    kind: str = Field(description="form, query, sae, visit or coherence.")
    site: str
    participant_id: str
    where: str
    detail: str


class NotDueOut(BaseModel):
    """A visit neither held nor missed that is not due: an amendment added it after the participant's window had
    closed (listed, never a blocker)."""

    site: str
    participant_id: str
    visit: str
    version: str = Field(description="The protocol version the amendment that added the visit produced.")
    effective: dt.date = Field(description="The day that version took effect (its amendment's date).")
    latest: dt.date = Field(description="The last day of the participant's window of the visit.")
    detail: str


class WithheldReviewOut(BaseModel):
    """An unmasked reviewer's review of the forms kept from masked readers: who, when, which forms, under which
    protocol version (never their reason, which may speak of the arms)."""

    by: str
    role: str
    at: dt.datetime
    forms: list[str]
    protocol_version: str


class ReadinessOut(BaseModel):
    """The lock readiness report: what blocks the database lock, per site and participant."""

    ready: bool
    taken_at: dt.datetime
    site: str | None
    forms_policy: str
    participants: int
    headline: str
    counts: dict[str, int] = Field(description="Blockers of each kind (every kind, zero included).")
    by_site: dict[str, dict[str, int]] = Field(description="Per site with a blocker: blockers of each kind.")
    total: int = Field(description="How many blockers there are (``blockers`` may list fewer).")
    blockers: list[BlockerOut]
    withheld: list[str] = Field(
        default_factory=list,
        description="Forms kept from a reader the trial masks (they reveal the arm): nothing of them is listed or "
        "counted, and the report is not ready while any is withheld (an unmasked reviewer reads them).",
    )
    reviewers: list[str] = Field(
        default_factory=list, description="The roles that read this report unmasked: who reviews the withheld forms."
    )
    not_due: list[NotDueOut] = Field(
        default_factory=list,
        description="Visits an amendment added after the participant's window had closed: not due, not blockers.",
    )
    review: WithheldReviewOut | None = Field(
        default=None,
        description="The unmasked reviewer's review of the withheld forms, while it stands (nothing on them changed "
        "since, same protocol version); null otherwise.",
    )


class ProblemDetails(BaseModel):
    """An error (RFC 9457), with the ``field`` and ``rule`` refused and every refusal in ``errors``."""

    type: str = Field(default="about:blank", description="about:blank: the status and title say what happened.")
    title: str = Field(description="The HTTP status phrase (RFC 9110).")
    status: int
    detail: str = Field(description="The refusals in words.")
    instance: str = Field(description="The path of the request refused.")
    field: str | None = Field(description="The field of the first refusal (null: not one field's).")
    rule: str = Field(description="The rule of the first refusal.")
    errors: list[Refusal] = Field(description="Every refusal (one for most errors; each value for a validation).")
    readiness: ReadinessOut | None = Field(
        default=None, description="A refused lock: what blocks it (the first blockers listed, all counted)."
    )


#: The titles of the statuses the API answers, as RFC 9110 names them (Python's own phrases vary by version).
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


def _phrase(status: int) -> str:
    if status in TITLES:
        return TITLES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _refusal(item: Any) -> Refusal:
    """A refusal from what a route raised: a text, or ``{"field"?, "rule", "message"?}``. A rule starting with
    ``name: `` and no field given names that field."""
    if isinstance(item, dict):
        rule = str(item.get("rule") or item.get("detail") or item)
        field = item.get("field") or None  # "": the body as a whole
        message = item.get("message")
    else:
        rule, field, message = str(item), None, None
    if field is None and (named := _FIELD.match(rule)):
        field = named.group(1)
    return Refusal(field=None if field is None else str(field), rule=rule, message=message)


def problem_of(status: int, detail: Any, instance: str) -> ProblemDetails:
    """The problem for an error of ``status`` whose detail is a text, one refusal (a dict, which may carry the lock's
    ``readiness``) or a list of refusals."""
    readiness = None
    if isinstance(detail, list):
        items = detail
    elif isinstance(detail, dict):
        items, readiness = [detail], detail.get("readiness")
    else:
        items = [_phrase(status) if detail is None else detail]
    errors = [_refusal(i) for i in items] or [_refusal(_phrase(status))]
    return ProblemDetails(
        title=_phrase(status),
        status=status,
        detail="; ".join(e.rule for e in errors),
        instance=instance,
        field=errors[0].field,
        rule=errors[0].rule,
        errors=errors,
        readiness=None if readiness is None else ReadinessOut.model_validate(readiness),
    )


def problem_response(status: int, detail: Any, instance: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The ``application/problem+json`` answer of an error."""
    problem = problem_of(status, detail, instance)
    return JSONResponse(problem.model_dump(mode="json"), status_code=status, headers=headers, media_type=PROBLEM_JSON)
