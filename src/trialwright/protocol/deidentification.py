"""How the de-identified individual participant data set (IPD) is made from the trial's data.

Direct identifiers are removed, free text is dropped, dates become study days (days from randomization)
or are shifted by a per-participant offset, ages above a threshold are banded, and a k-anonymity check runs
over the declared quasi-identifiers before a package may be issued.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from trialwright.protocol.base import ProtocolModel

__all__ = ["DateHandling", "Deidentification"]


class DateHandling(StrEnum):
    """What becomes of dates in the IPD."""

    STUDY_DAYS = "study_days"  # days from the participant's randomization (or enrolment)
    SHIFT = "shift"  # every date of a participant moved by the same secret random number of days


class Deidentification(ProtocolModel):
    """The de-identification rules of the IPD the sharing plan promises."""

    identifiers: list[str] = Field(
        default_factory=list,
        description="form.field values that identify a person directly (removed), e.g. demographics.birth_date.",
    )
    keep_text: list[str] = Field(
        default_factory=list, description="Text fields (form.field) kept although free text is dropped by default."
    )
    dates: DateHandling = Field(default=DateHandling.STUDY_DAYS, description="study_days or shift.")
    shift_days: int = Field(default=180, ge=1, description="With shift: the largest shift either way, in days.")
    age_field: str | None = Field(
        default=None,
        description="The age, banded in the IPD: one of demographics.age's fields (form.field, or screening.field: the "
        "screening record's value, shared as age in participants.csv), whose unit the bands are in. demographics.age's "
        "other form fields are listed in identifiers (removed).",
    )
    age_band_width: int = Field(
        default=10,
        ge=1,
        description="Width of the age bands, in the age's unit (demographics.age.unit); only with age_field.",
    )
    age_top: int = Field(
        default=89,
        ge=1,
        description="Ages above this (in the age's unit) are shown as one open band (e.g. 90+); only with age_field.",
    )
    keep_site: bool = Field(default=False, description="Whether the site code stays in the IPD.")
    quasi_identifiers: list[str] = Field(
        default_factory=list,
        description="Values (form.field; screening.field, the screening record's value, kept in participants.csv as "
        "screening_<field>; site; or age, the banded age_field) whose combination could single a person out; at "
        "least one (the package is issued only when the k-anonymity check over them passes).",
    )
    k: int = Field(default=5, ge=2, description="Every combination of quasi-identifiers must be shared by k people.")
