"""The statistical analysis plan's choices that are not outcomes: what Table 1 shows, how treatment received
is recorded (for the safety set and the CONSORT diagram), who is per protocol, how values below a limit of
quantification enter a log-scale analysis, and a pilot trial's progression criteria.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from trialwright.protocol.base import Identifier, ProtocolModel

__all__ = ["AnalysisPlan", "BelowLimitRule", "PerProtocol", "ProgressionCriterion", "ProgressionMeasure", "Treatment"]


class Treatment(ProtocolModel):
    """Where the intervention's administration is recorded."""

    visit: Identifier = Field(description="The visit at which the intervention is given, e.g. infusion.")
    form: Identifier = Field(description="The form that records the administration.")
    given_field: Identifier = Field(description="A field of that form whose value means the treatment was started.")
    code_field: Identifier | None = Field(
        default=None,
        description="A field holding the preparation code given; the arm of that code is the arm received "
        "(as treated). Without it, everyone treated is taken to have received the allocated arm.",
    )
    end_field: Identifier | None = Field(
        default=None,
        description="A date-time field of that form recording when the administration ended (SDTM EXENDTC). "
        "Without it EXENDTC is empty: the end is never inferred from the form's other fields.",
    )
    dose_field: Identifier | None = Field(
        default=None,
        description="A number field of that form, with its unit, holding the amount given (SDTM EXDOSE, EXDOSU "
        "its unit). Without it EXDOSE is empty: the dose is never inferred from the form's other fields.",
    )
    single_administration: bool = Field(
        default=False,
        description="True when the intervention is given once (a single administration, e.g. one injection): "
        "the exposure then ends when it starts unless the form records an end, so SDTM RFXENDTC is the latest "
        "start. Left false (e.g. an 8-week daily treatment), RFXENDTC is only a recorded end, else empty and "
        "listed in the SDTM README.",
    )


class PerProtocol(ProtocolModel):
    """Who leaves the per-protocol set (besides anyone not treated, or treated with another arm)."""

    exclude_when: list[str] = Field(
        default_factory=list,
        description="Yes/no fields (form.field) that, when yes at any visit, take a participant out (e.g. "
        "administration.interrupted).",
    )
    visits_in_window: list[Identifier] = Field(
        default_factory=list, description="Visits that must be held, and inside their windows."
    )


class BelowLimitRule(StrEnum):
    """What a value reported below the limit of quantification (e.g. <0.5) becomes in the analysis."""

    LIMIT_OVER_SQRT2 = "limit_over_sqrt2"
    HALF_LIMIT = "half_limit"
    LIMIT = "limit"


class ProgressionMeasure(StrEnum):
    """A feasibility rate of a pilot trial (CONSORT pilot extension, item 6c)."""

    CONSENT_RATE = "consent_rate"  # consented / eligible
    RECRUITMENT_PER_SITE_MONTH = "recruitment_per_site_month"  # randomized per site per month open
    RETENTION_RATE = "retention_rate"  # primary timepoint assessed / randomized
    ELIGIBILITY_RATE = "eligibility_rate"  # eligible / screened


class ProgressionCriterion(ProtocolModel):
    """A stop / amend / go threshold on one feasibility rate."""

    measure: ProgressionMeasure = Field(description="Which rate.")
    go: float = Field(ge=0, description="At or above this: go on to the definitive trial.")
    stop: float | None = Field(
        default=None, ge=0, description="Below this: stop; between stop and go: go on with changes (amber)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> ProgressionCriterion:
        if self.stop is not None and self.stop > self.go:
            raise ValueError(f"stop ({self.stop}) must not be above go ({self.go})")
        return self


class AnalysisPlan(ProtocolModel):
    """Choices of the statistical analysis plan besides the outcomes and analysis sets."""

    baseline_visit: Identifier = Field(description="The visit whose values Table 1 describes.")
    baseline_table: list[str] = Field(
        min_length=1,
        description="Values described by arm in Table 1 (no p-values, as CONSORT asks): form.field (its value at the "
        "baseline visit) or screening.field (the screening record's value), as demographics' sources are written.",
    )
    treatment: Treatment | None = Field(
        default=None, description="Where treatment received is recorded (safety set, CONSORT 'received')."
    )
    per_protocol: PerProtocol = Field(default_factory=PerProtocol, description="Who is per protocol.")
    below_limit: BelowLimitRule = Field(
        default=BelowLimitRule.LIMIT_OVER_SQRT2,
        description="Values reported below the limit of quantification, in every analysis.",
    )
    progression_criteria: list[ProgressionCriterion] = Field(
        default_factory=list, description="Pilot trials: progression criteria to the definitive trial."
    )
