"""Request and response bodies of the forms, casebook and queries endpoints (``api/forms.py``).

A form's values are the protocol's: a mapping of field id to a value in one of the shapes of docs/forms.md
(a scalar, a list of choice codes, or ``{"value": 4.2, "unit": "mg/dL"}``, ``{"not_done": "reason"}``, ...).
Everything around them, the envelope, is typed here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from trialwright.api.schemas import ClosedBody, FieldValueIn, Scalar
from trialwright.domain.forms import StoredValue

__all__ = [
    "AnswerIn",
    "CasebookFormOut",
    "CasebookOut",
    "CasebookSignIn",
    "CasebookVerifyIn",
    "CloseIn",
    "ExcludedFormOut",
    "FieldVerifiedOut",
    "FormIn",
    "FormOut",
    "ImportIn",
    "ImportOut",
    "ImportRowIn",
    "OutcomeOut",
    "PasswordIn",
    "QueryIn",
    "QueryOut",
    "ReasonIn",
    "RejectedRowOut",
    "ReviewedFields",
    "ReviewedForm",
    "ScheduleOut",
    "StoredValueOut",
    "UnscheduledVisitOut",
    "VisitAdditionOut",
    "VisitOut",
    "stored_value_out",
]


class FormIn(ClosedBody):
    """Values to enter or change (see docs/forms.md for the value shapes), with a reason once complete."""

    values: dict[str, FieldValueIn] = Field(description="Field id -> value (docs/forms.md).")
    reason: str | None = None
    visit_date: dt.date | None = Field(default=None, description="The visit's date, on its first form.")


class ImportRowIn(ClosedBody):
    """One form of a bulk import."""

    participant: str
    visit: str
    form: str
    values: dict[str, FieldValueIn] = Field(description="Field id -> value (docs/forms.md).")
    reason: str | None = None
    visit_date: dt.date | None = None


class ImportIn(ClosedBody):
    """Many forms at once; with ``all_or_nothing`` one rejected row saves nothing."""

    rows: list[ImportRowIn]
    all_or_nothing: bool = True


class RejectedRowOut(BaseModel):
    """A rejected row of a bulk import (rows count from 1) and every problem it has."""

    row: int
    problems: list[str]


class ImportOut(BaseModel):
    """What a bulk import saved and rejected."""

    saved: int
    rejected: list[RejectedRowOut]


class ReasonIn(ClosedBody):
    """A reason."""

    reason: str


class PasswordIn(ClosedBody):
    """The signer's password."""

    password: str


class QueryIn(ClosedBody):
    """A query raised by hand."""

    participant_id: str
    text: str
    visit_id: str | None = None
    form_id: str | None = None
    field: str | None = None
    log_id: str | None = Field(default=None, description="A query on a log entry: its log (no form then).")
    sequence: int | None = Field(default=None, description="A query on a log entry: the entry's sequence.")


class AnswerIn(ClosedBody):
    """An answer to a query."""

    answer: str


class CloseIn(ClosedBody):
    """A note on closing a query."""

    note: str = ""


class StoredValueOut(BaseModel):
    """One field's value as stored (members without a value are left out): the canonical ``value``, its
    ``status`` (value, not_done, not_applicable, below_lloq, above_uloq, derived), what was ``entered`` and in
    which ``unit``, the unit the canonical value is in (``value_unit``: the field's unit, given for derived values
    too; absent for a field without a unit), the ``reason`` (not done, not applicable, a derived value's note), the
    censoring ``limit``, and a derived score's ``components``."""

    value: Scalar | list[Scalar] = None
    status: str | None = None
    entered: Scalar | list[Scalar] | dict[str, Scalar] = None
    unit: str | None = None
    value_unit: str | None = None
    reason: str | None = None
    limit: float | None = None
    components: dict[str, int] | None = None


def stored_value_out(value: StoredValue, unit: str | None) -> dict[str, Any]:
    """A stored value as the API answers it, and the unit its canonical ``value`` is in (``value_unit``: the
    field's unit; ``unit`` is the one it was entered in)."""
    return {**value.as_json(), **({"value_unit": unit} if unit is not None and value.value is not None else {})}


class FormOut(BaseModel):
    """One form: its values, state and version, what is missing, who verified and signed it."""

    participant_id: str
    visit_id: str
    form_id: str
    state: str
    version: int
    values: dict[str, StoredValueOut]
    missing: list[str]
    verified_by: str | None
    signed_by: str | None
    signed_at: dt.datetime | None
    signature_meaning: str | None
    open_queries: int


class VisitAdditionOut(BaseModel):
    """The amendment that added a visit: the protocol version it produced and the day that version took effect."""

    version: str
    effective: dt.date


class VisitOut(BaseModel):
    """A scheduled visit: its window, status, and each form's state (null: not started)."""

    visit_id: str
    name: str
    status: str
    target: dt.date | None
    earliest: dt.date | None
    latest: dt.date | None
    visit_date: dt.date | None
    missed_reason: str | None
    forms: dict[str, str | None]
    added_by: VisitAdditionOut | None = Field(
        default=None, description="status not_due: the amendment that added the visit after its window had closed."
    )


class UnscheduledVisitOut(BaseModel):
    """An unscheduled visit."""

    visit_id: str
    label: str
    visit_date: dt.date | None


class ScheduleOut(BaseModel):
    """A participant's visit schedule today."""

    participant_id: str
    visits: list[VisitOut]
    unscheduled: list[UnscheduledVisitOut]
    open_queries: int


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
    verified_at: dt.datetime | None = Field(description="Source data verification (null: none, or voided).")
    verified_by: str | None
    signed_at: dt.datetime | None = Field(description="The investigator's signature (null: none, or voided).")
    signed_by: str | None
    signature_meaning: str | None


class ReviewedForm(ClosedBody):
    """A form of the casebook as it was reviewed: its ``seal`` from the casebook read."""

    visit_id: str
    form_id: str
    seal: str


class ReviewedFields(ReviewedForm):
    """Fields of a reviewed form verified against source one by one (entered fields holding a value)."""

    fields: list[str] = Field(min_length=1)


class ReviewedEntry(ClosedBody):
    """A log entry of the casebook as it was reviewed: its ``seal`` from the casebook read."""

    log_id: str
    sequence: int
    seal: str


class CasebookVerifyIn(ClosedBody):
    """The casebook's forms to verify as a whole, and forms to verify field by field, each with the seal it was
    reviewed with; a form is verified once every required entered field stands verified. Log entries are verified
    whole."""

    forms: list[ReviewedForm] = Field(default_factory=list)
    fields: list[ReviewedFields] = Field(default_factory=list)
    entries: list[ReviewedEntry] = Field(default_factory=list)


class CasebookSignIn(ClosedBody):
    """The casebook's forms and log entries to sign, each with the seal it was reviewed with, and the signer's
    password."""

    forms: list[ReviewedForm] = Field(default_factory=list)
    entries: list[ReviewedEntry] = Field(default_factory=list)
    password: str


class CasebookFormOut(BaseModel):
    """A form of the casebook with its seal, and why it cannot be signed or verified now (null: it can)."""

    visit_id: str
    form_id: str
    seal: str
    not_signable: str | None
    not_verifiable: str | None
    verified_fields: list[str]
    form: FormOut | None


class CasebookEntryOut(BaseModel):
    """A log entry of the casebook with its seal, its open queries, and why it cannot be signed or verified now
    (null: it can)."""

    log_id: str
    sequence: int
    seal: str
    open_queries: int
    not_signable: str | None
    not_verifiable: str | None
    entry: LogEntryOut


class CasebookOut(BaseModel):
    """A participant's casebook: every form in the protocol's order, then their log entries."""

    participant_id: str
    site: str
    forms: list[CasebookFormOut]
    entries: list[CasebookEntryOut] = Field(default_factory=list)


class ExcludedFormOut(BaseModel):
    """A form left out of a casebook action, and why."""

    visit_id: str
    form_id: str
    reason: str


class FieldVerifiedOut(BaseModel):
    """A field verified against source."""

    visit_id: str
    form_id: str
    field: str


class ExcludedEntryOut(BaseModel):
    """A log entry left out of a casebook action, and why."""

    log_id: str
    sequence: int
    reason: str


class OutcomeOut(BaseModel):
    """What a casebook action did: the forms done, those left out with the reason, the fields verified, and the log
    entries done and left out."""

    done: list[FormOut]
    excluded: list[ExcludedFormOut]
    fields_verified: list[FieldVerifiedOut]
    entries_done: list[LogEntryOut] = Field(default_factory=list)
    entries_excluded: list[ExcludedEntryOut] = Field(default_factory=list)


class QueryOut(BaseModel):
    """A data query (never names an arm); ``automatic`` when the system raised it (an edit or data check)."""

    id: int
    participant_id: str
    site: str
    visit_id: str | None
    form_id: str | None
    field: str | None
    origin: str
    check_id: str | None
    text: str
    status: str
    raised_by: str
    raised_at: dt.datetime
    answer: str | None
    answered_by: str | None
    closed_by: str | None
    close_note: str | None
    automatic: bool
    log_id: str | None = Field(default=None, description="A query on a log entry: its log (visit and form null).")
    sequence: int | None = Field(default=None, description="A query on a log entry: the entry's sequence.")
