"""What the trial measures and how it stays safe: outcomes, analysis sets, safety rules, consent forms.

Each outcome is bound to a form field (or derivation) with its timepoints, the measure and the planned
analysis, so the analysis the protocol promises can be run from the protocol alone.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from trialwright.protocol.base import Identifier, ProtocolModel

__all__ = [
    "EVENT_SOURCES",
    "METHODS_FOR",
    "AnalysisMethod",
    "AnalysisSet",
    "BlindedTables",
    "CausalityCategory",
    "ConsentVersion",
    "Deadlines",
    "DeathRecord",
    "ExpectedEvent",
    "Measure",
    "Outcome",
    "SafetyPause",
    "SafetySettings",
]


class Measure(StrEnum):
    """What is computed from the outcome's values."""

    VALUE_AT = "value_at"
    CHANGE_FROM_BASELINE = "change_from_baseline"
    TIME_TO_EVENT = "time_to_event"
    PARTICIPANTS_WITH_EVENT = "participants_with_event"
    DURATION = "duration"


class AnalysisMethod(StrEnum):
    """Planned analyses (methods in docs and shared reference/statistics.md)."""

    ANCOVA = "ancova"
    ANCOVA_LOG = "ancova_log"
    WILCOXON_HODGES_LEHMANN = "wilcoxon_hodges_lehmann"
    NEWCOMBE_FISHER = "newcombe_fisher"
    COMPETING_RISKS = "competing_risks"
    T_TEST = "t_test"
    DESCRIPTIVE = "descriptive"


#: The methods the engine runs for each measure. A measure with none (time to event) has no estimator in this
#: version: ``protocol check`` refuses it rather than let the outcome fall out of the report.
METHODS_FOR: dict[Measure, frozenset[AnalysisMethod]] = {
    Measure.CHANGE_FROM_BASELINE: frozenset(
        {
            AnalysisMethod.ANCOVA,
            AnalysisMethod.ANCOVA_LOG,
            AnalysisMethod.WILCOXON_HODGES_LEHMANN,
            AnalysisMethod.DESCRIPTIVE,
        }
    ),
    Measure.VALUE_AT: frozenset(
        {
            AnalysisMethod.ANCOVA,
            AnalysisMethod.ANCOVA_LOG,
            AnalysisMethod.WILCOXON_HODGES_LEHMANN,
            AnalysisMethod.T_TEST,
            AnalysisMethod.DESCRIPTIVE,
        }
    ),
    Measure.PARTICIPANTS_WITH_EVENT: frozenset({AnalysisMethod.NEWCOMBE_FISHER}),
    Measure.DURATION: frozenset({AnalysisMethod.COMPETING_RISKS}),
    Measure.TIME_TO_EVENT: frozenset(),
}

#: The events an event outcome can count, read from the adverse event reports: serious adverse events, and
#: deaths (fatal adverse events).
EVENT_SOURCES = frozenset({"sae", "death"})


class Outcome(ProtocolModel):
    """A primary or secondary outcome."""

    id: Identifier = Field(description="Outcome id, e.g. tnf_alpha.")
    kind: str = Field(description="primary or secondary.")
    description: str = Field(description="Description as registered.")
    variables: list[str] = Field(
        default_factory=list,
        description="form.field values the outcome reads (one or more, e.g. CD3, CD4, CD8); "
        "omit for event outcomes read from safety data.",
    )
    event: str | None = Field(default=None, description="For event outcomes: sae, infusion_reaction, death, ...")
    measure: Measure = Field(description="What is computed.")
    baseline: Identifier | None = Field(default=None, description="Baseline visit id, for change from baseline.")
    timepoints: list[Identifier] = Field(min_length=1, description="Visit ids at which it is measured.")
    registry_timepoint: str = Field(description="The timepoint as the registry words it.")
    method_of_measurement: str = Field(description="How it is measured, as registered.")
    analysis: list[AnalysisMethod] = Field(min_length=1, description="Planned analyses; the first is primary.")
    log_scale: bool = Field(default=False, description="Analyse on the log scale (right-skewed markers).")

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in {"primary", "secondary"}:
            raise ValueError("must be primary or secondary")
        return value

    @model_validator(mode="after")
    def _bound(self) -> Outcome:
        if bool(self.variables) == (self.event is not None):
            raise ValueError("an outcome reads either variables (form.field) or an event, not both or neither")
        for variable in self.variables:
            if variable.count(".") != 1:
                raise ValueError(f"variable {variable!r} must be written form.field")
        if self.measure is Measure.CHANGE_FROM_BASELINE and self.baseline is None:
            raise ValueError("a change from baseline needs a baseline visit")
        return self


class AnalysisSet(ProtocolModel):
    """A set of participants an analysis uses."""

    id: Identifier = Field(description="itt, safety, per_protocol, ...")
    name: str = Field(description="Name shown in reports.")
    definition: str = Field(description="Who is in it, and analysed as what.")


class CausalityCategory(ProtocolModel):
    """One category of the causality scale and whether it counts as related."""

    code: Identifier = Field(description="Category code, e.g. probable.")
    label: str = Field(description="Label shown to people.")
    related: bool = Field(description="Whether this category counts as an adverse reaction (related).")


class Deadlines(ProtocolModel):
    """Reporting deadlines; day 0 is when the site became aware."""

    sae_to_sponsor_hours: int = Field(ge=1, description="Investigator to sponsor, for every SAE, in hours.")
    susar_fatal_days: int = Field(ge=1, description="Fatal or life-threatening SUSAR: first report, in days.")
    susar_fatal_complete_days: int = Field(ge=0, description="Then the complete report, in further days.")
    susar_other_days: int = Field(ge=1, description="Any other SUSAR, in days.")


class SafetyPause(ProtocolModel):
    """Stop new randomizations until the DSMB decides."""

    related_saes: int = Field(ge=1, description="Pause after this many related SAEs.")
    description: str | None = Field(default=None, description="The rule as the protocol words it.")


class ExpectedEvent(ProtocolModel):
    """An event the reference safety information lists as expected, up to a CTCAE grade."""

    code: Identifier = Field(description="Code a report names, e.g. infusion_related_reaction.")
    term: str = Field(description="The event as the reference safety information names it.")
    up_to_grade: int = Field(ge=1, le=5, description="Expected up to this CTCAE grade; above it, unexpected.")
    description: str | None = Field(default=None, description="What the reference safety information says.")


class DeathRecord(ProtocolModel):
    """Where a death reported as an adverse event is written into the case report forms."""

    visit: Identifier = Field(description="The visit whose form records the end of the hospital stay.")
    form: Identifier = Field(description="That form, e.g. hospital_course.")
    status_field: Identifier = Field(description="The choice field for how the stay ended.")
    status_value: str = Field(description="Its code for death, e.g. died.")
    alive_values: list[str] = Field(
        default_factory=list,
        description="Its codes for an earlier end alive (discharged, transferred): a later death leaves them.",
    )
    date_field: Identifier = Field(description="The date field for the end of the stay.")
    cause_field: Identifier | None = Field(default=None, description="The text field for the cause of death.")


class BlindedTables(StrEnum):
    """How safety tables are shown to the blinded trial team."""

    POOLED = "pooled"
    UNNAMED_GROUPS = "unnamed_groups"


class SafetySettings(ProtocolModel):
    """How adverse events are graded, judged and reported."""

    ctcae_version: str = Field(description="CTCAE version used for grading, e.g. 5.0.")
    deadlines: Deadlines = Field(description="Reporting deadlines.")
    causality_scale: str = Field(description="Name of the causality scale, e.g. WHO-UMC.")
    causality: list[CausalityCategory] = Field(min_length=2, description="Its categories and mapping.")
    expected_events: list[ExpectedEvent] = Field(
        default_factory=list, description="Events expected from the reference safety information."
    )
    serious_prolongation: str = Field(description="What counts as prolonged hospitalisation here.")
    progression_is_sae: bool = Field(description="Whether progression of the studied disease counts as an SAE.")
    reporting_period: str = Field(description="From when to when adverse events are collected.")
    pause: SafetyPause | None = Field(default=None, description="Optional safety pause rule.")
    blinded_tables: BlindedTables = Field(
        default=BlindedTables.POOLED,
        description="Safety tables for the blinded team: pooled, or arms as unnamed groups (Group A, B, ...).",
    )
    death_record: DeathRecord | None = Field(
        default=None, description="Where a fatal adverse event's death is written into the forms."
    )

    @model_validator(mode="after")
    def _both_kinds(self) -> SafetySettings:
        kinds = {c.related for c in self.causality}
        if kinds != {True, False}:
            raise ValueError("the causality scale must map some categories to related and some to not related")
        codes = [c.code for c in self.causality]
        if len(codes) != len(set(codes)):
            raise ValueError("causality codes must be unique")
        expected = [e.code for e in self.expected_events]
        if len(expected) != len(set(expected)):
            raise ValueError("expected event codes must be unique")
        return self


class ConsentVersion(ProtocolModel):
    """A version of the informed consent form."""

    version: str = Field(description="Version label, e.g. 1.0.")
    effective_from: dt.date = Field(description="First day it is in use.")
    languages: list[str] = Field(default_factory=lambda: ["fa"], description="Languages it exists in.")
    reconsent_required: bool = Field(
        default=False, description="Whether participants consented on an earlier version must re-consent."
    )
    note: str | None = Field(default=None, description="What changed.")
