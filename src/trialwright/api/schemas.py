"""Response and request bodies of the REST API."""

from __future__ import annotations

import datetime as dt
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AccountRequestOut",
    "ArmOut",
    "ClosedBody",
    "FieldValueIn",
    "MeOut",
    "PageOut",
    "Scalar",
    "SiteOut",
    "TokenCreated",
    "TokenIn",
    "TokenOut",
    "TrialOut",
    "UserOut",
]


T = TypeVar("T")

Scalar = str | int | float | bool | None
#: One field's value as entered (docs/forms.md "Entering values"): a scalar (null clears it), a list of choice
#: codes, or an object: ``{"value", "unit"}``, ``{"not_done": reason}``, ``{"not_applicable": reason}``,
#: ``{"below_lloq": limit}``, ``{"above_uloq": limit}``.
FieldValueIn = Scalar | list[Scalar] | dict[str, Scalar]


class ClosedBody(BaseModel):
    """A request body: a member it does not declare is refused (422 naming it), never ignored."""

    model_config = ConfigDict(extra="forbid")


class PageOut(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int = Field(description="How many rows match the filter, on every page.")
    limit: int = Field(description="The page size asked for.")
    next: str | None = Field(description="The cursor of the next page; null on the last page.")
    prev: str | None = Field(description="The cursor of the previous page; null on the first page.")


class MeOut(BaseModel):
    """The caller."""

    username: str
    full_name: str
    role: str
    sites: list[str]
    language: str
    calendar: str


class SiteOut(BaseModel):
    """A recruitment centre."""

    code: str
    name: str
    timezone: str


class ArmOut(BaseModel):
    """An arm as the caller may see it: blinded callers get only ``label: masked``."""

    label: str
    code: str | None = None
    name: str | None = None
    role: str | None = None
    ratio: int | None = None


class TrialOut(BaseModel):
    """The registry summary of the trial."""

    trial_id: str
    scientific_title: str
    public_title: str
    registry_ids: list[str]
    registration_date: dt.date
    protocol_version: str
    sites: list[SiteOut]
    arms: list[ArmOut]
    target_sample_size: int
    masked_parties: list[str]
    blinding: str | None  # open, single, double, triple or custom (None: a protocol written before it existed)
    masked_roles: list[str]  # the system roles kept from the arms in this trial


class UserOut(BaseModel):
    """An account (administrators only)."""

    username: str
    full_name: str
    role: str
    sites: list[str]
    active: bool
    locked: bool


class AccountRequestOut(BaseModel):
    """A request waiting for a second person under the two-person rule (approvers only)."""

    id: int
    kind: str
    username: str
    role: str
    sites: list[str]
    requested_by: str
    requested_at: dt.datetime
    reason: str


class TokenIn(ClosedBody):
    """A request for a new API token."""

    name: str = Field(default="api", min_length=1, max_length=64, description="A label to recognise the token by.")
    days: int | None = Field(
        default=None,
        ge=1,
        le=36500,
        description="How many days the token lives; by default, and at most, the api_token_days setting (90).",
    )
    redcap: bool = Field(
        default=False, description="A REDCap-style token (32 uppercase hex characters), for /redcap/api/ clients."
    )


class TokenOut(BaseModel):
    """An API token's record (never the token itself)."""

    id: int
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    expires_at: dt.datetime = Field(description="From this time on the token answers no request (401).")
    state: str = Field(description="live, expired or revoked.")


class TokenCreated(TokenOut):
    """A new token: ``token`` is shown this once and stored only as a hash."""

    token: str
