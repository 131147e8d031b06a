"""Request and response bodies of the safety endpoints (``api/safety.py``).

A report's members are read by the safety rules (``trialwright.domain.safety.validate_report``), which refuse each
bad one naming it: they are typed loosely here (text, numbers, yes/no) so that the rules, not the parser, say what
is wrong; a member the report does not have is refused.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from trialwright.api.schemas import ClosedBody, Scalar

__all__ = [
    "AdverseEventIn",
    "AdverseEventOut",
    "AssessmentOut",
    "ClassificationOut",
    "CodingOut",
    "DeadlineOut",
    "DecisionIn",
    "DecisionOut",
    "FollowUpIn",
    "ListingRowOut",
    "PauseOut",
    "ReportFieldsIn",
    "ReportOut",
    "SafetyRowOut",
    "SafetyTablesOut",
    "SubmissionIn",
    "TermRowOut",
]


class ReportFieldsIn(ClosedBody):
    """The members of an adverse event report (docs/safety.md); a follow-up gives those that change."""

    term: Scalar = None
    onset: Scalar = Field(default=None, description="YYYY-MM-DD, the site's date.")
    end: Scalar = None
    grade: Scalar = Field(default=None, description="CTCAE grade 1-5.")
    serious: Scalar = None
    seriousness_criteria: list[str] | Scalar = Field(default=None, description="ICH E2A criteria.")
    causality: Scalar = None
    expected_event: Scalar = None
    action_taken: Scalar = None
    outcome: Scalar = None
    aware_at: Scalar = Field(default=None, description="When the site became aware, with its UTC offset.")
    death_date: Scalar = None
    death_cause: Scalar = None
    narrative: Scalar = None


class AdverseEventIn(ReportFieldsIn):
    """An initial adverse event report."""

    reason: Scalar = None


class FollowUpIn(ClosedBody):
    """A follow-up: the members that change (aware_at always), and what it adds."""

    values: ReportFieldsIn
    reason: str | None = None


class SubmissionIn(ClosedBody):
    """A report sent: sae_to_sponsor, susar_initial or susar_complete, and when (with its UTC offset)."""

    kind: str
    submitted_at: str
    note: str | None = None


class DecisionIn(ClosedBody):
    """A DSMB decision on the pause (resume, pause, stop), confirmed with the member's password."""

    decision: str
    reason: str
    password: str


class AssessmentOut(BaseModel):
    """What a report says of the event (dates as ISO text)."""

    term: str
    onset: str
    end: str | None
    grade: int
    serious: bool
    seriousness_criteria: list[str]
    causality: str
    expected_event: str | None
    action_taken: str
    outcome: str
    aware_at: str
    death_date: str | None
    death_cause: str | None
    narrative: str | None


class ClassificationOut(BaseModel):
    """How the event is classified."""

    serious: bool
    related: bool
    expected: bool
    susar: bool
    fatal_or_life_threatening: bool


class ReportOut(BaseModel):
    """One report of the event (the initial one, then each follow-up)."""

    sequence: int
    kind: str
    assessment: AssessmentOut
    reported_by: str
    reported_at: str | None
    reason: str | None


class DeadlineOut(BaseModel):
    """A reporting deadline and its state."""

    kind: str
    rule: str
    clock_start: str | None
    due_at: str | None
    state: str
    submitted_at: str | None


class CodingOut(BaseModel):
    """An event's MedDRA coding: the LLT chosen and its primary path, the release, who coded it and when."""

    dictionary: str = Field(description="MedDRA.")
    version: str = Field(description="The MedDRA release coded with, e.g. 27.1.")
    verbatim: str = Field(description="The reported term this coding is for.")
    stale: bool = Field(
        description="A follow-up has changed the reported term since: to code again; exports and safety tables "
        "count the event as not coded until it is."
    )
    llt_code: int
    llt_name: str
    pt_code: int
    pt_name: str
    hlt_code: int
    hlt_name: str
    hlgt_code: int
    hlgt_name: str
    soc_code: int
    soc_name: str
    coded_by: str
    coded_at: str = Field(description="When it was coded, ISO 8601 with its UTC offset.")


class AdverseEventOut(BaseModel):
    """An adverse event: its current assessment, every report, its deadlines, its MedDRA coding (null until coded);
    ``arm`` is ``masked`` unless the caller may see arms."""

    ae_number: str
    participant_id: str
    site: str
    arm: str | None
    current: AssessmentOut
    classification: ClassificationOut
    reports: list[ReportOut]
    deadlines: list[DeadlineOut]
    coding: CodingOut | None


class SafetyRowOut(BaseModel):
    """A line of a safety table: participants with such an event, and in all, per group."""

    label: str
    counts: dict[str, int]
    totals: dict[str, int]


class TermRowOut(BaseModel):
    """One line of the table by MedDRA term: a SOC (``pt`` null), a PT under its SOC, or the events not coded yet
    (``level`` not_coded, ``soc`` and ``pt`` null)."""

    level: str = Field(description="soc, pt or not_coded.")
    soc: str | None
    pt: str | None
    participants: dict[str, int] = Field(description="Group -> participants with at least one such event.")
    events: dict[str, int] = Field(description="Group -> events.")
    totals: dict[str, int] = Field(description="Group -> participants in the group.")


class SafetyTablesOut(BaseModel):
    """Participants with at least one AE / SAE per group (``grouping``: pooled, unnamed_groups or by_arm), and by
    MedDRA SOC and PT (``terms``)."""

    grouping: str
    groups: list[str]
    participants: int
    rows: list[SafetyRowOut]
    terms: list[TermRowOut]
    not_randomized_events: int


class ListingRowOut(BaseModel):
    """One event of the line listing; ``arm`` only for the DSMB and the unblinded statistician."""

    ae_number: str
    participant_id: str
    site: str
    arm: str | None = None
    term: str
    onset: str
    end: str
    grade: int
    serious: str
    seriousness_criteria: str
    causality: str
    related: str
    expected: str
    susar: str
    action_taken: str
    outcome: str
    death_date: str
    reports: int
    deadlines: str


class PauseOut(BaseModel):
    """The safety pause now."""

    active: bool
    stopped: bool
    related_saes: int
    threshold: int | None
    since: str | None
    last_decision: str | None


class DecisionOut(BaseModel):
    """The pause after a DSMB decision."""

    active: bool
    stopped: bool
    related_saes: int
