"""What the trial measures and how it stays safe: outcomes, analysis sets, safety rules, consent forms.

Each outcome declares its estimand (``trialwright.protocol.estimands``): population, variable, intercurrent events
with their strategies, summary and estimators, so the analysis the protocol promises runs from the protocol alone.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from trialwright.protocol.base import Identifier, ProtocolModel
from trialwright.protocol.estimands import Estimand

__all__ = [
    "STANDARD_ACTIONS_TAKEN",
    "ActionTakenChoice",
    "AdverseEventAction",
    "AnalysisSet",
    "BlindedTables",
    "CausalityCategory",
    "ConsentVersion",
    "Deadlines",
    "DeathRecord",
    "ExpectedEvent",
    "Outcome",
    "SafetyPause",
    "SafetySettings",
    "VitalStatus",
]


class Outcome(ProtocolModel):
    """A primary or secondary outcome: as registered, and the estimand the analysis computes for it."""

    id: Identifier = Field(description="Outcome id, e.g. tnf_alpha.")
    kind: str = Field(description="primary or secondary.")
    description: str = Field(description="Description as registered.")
    description_translations: dict[str, str] = Field(
        default_factory=dict, description="The description in other languages (e.g. {fa: ...})."
    )
    registry_timepoint: str = Field(description="The timepoint as the registry words it.")
    registry_timepoint_translations: dict[str, str] = Field(
        default_factory=dict, description="The timepoint in other languages."
    )
    method_of_measurement: str = Field(description="How it is measured, as registered.")
    method_of_measurement_translations: dict[str, str] = Field(
        default_factory=dict, description="How it is measured, in other languages."
    )
    estimand: Estimand = Field(description="What the analysis estimates (ICH E9(R1)); see docs/analysis.md.")

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in {"primary", "secondary"}:
            raise ValueError("must be primary or secondary")
        return value


class AnalysisSet(ProtocolModel):
    """A set of participants an analysis uses."""

    id: Identifier = Field(description="itt, safety, per_protocol, ...")
    name: str = Field(description="Name shown in reports.")
    translations: dict[str, str] = Field(default_factory=dict, description="Name in other languages.")
    definition: str = Field(description="Who is in it, and analysed as what.")
    definition_translations: dict[str, str] = Field(
        default_factory=dict, description="The definition in other languages."
    )


class CausalityCategory(ProtocolModel):
    """One category of the causality scale and whether it counts as related."""

    code: Identifier = Field(description="Category code, e.g. probable.")
    label: str = Field(description="Label shown to people.")
    translations: dict[str, str] = Field(default_factory=dict, description="Label in other languages.")
    related: bool = Field(description="Whether this category counts as an adverse reaction (related).")


class AdverseEventAction(StrEnum):
    """SDTM controlled terminology for the action taken with study treatment (codelist ACN, C66767)."""

    DOSE_INCREASED = "DOSE INCREASED"
    DOSE_NOT_CHANGED = "DOSE NOT CHANGED"
    DOSE_RATE_REDUCED = "DOSE RATE REDUCED"
    DOSE_REDUCED = "DOSE REDUCED"
    DRUG_INTERRUPTED = "DRUG INTERRUPTED"
    DRUG_WITHDRAWN = "DRUG WITHDRAWN"
    NOT_APPLICABLE = "NOT APPLICABLE"
    UNKNOWN = "UNKNOWN"


class ActionTakenChoice(ProtocolModel):
    """One answer to "action taken with the investigational product" on an adverse event report, in the words of
    this trial's product (an oral syrup is stopped, an infusion interrupted)."""

    code: Identifier = Field(description="Code a report stores, e.g. dose_not_changed.")
    label: str = Field(description="Label shown to people.")
    translations: dict[str, str] = Field(default_factory=dict, description="Label in other languages.")
    sdtm: AdverseEventAction = Field(description="Its SDTM term (AEACN, codelist ACN), e.g. DRUG WITHDRAWN.")


#: The answers a protocol that declares no ``actions_taken`` offers: CDISC's action-taken terms themselves (codelist
#: ACN, C66767), in words for any product; no trial's words. ``protocol show`` and docs/safety.md say so.
STANDARD_ACTIONS_TAKEN: tuple[dict[str, Any], ...] = (
    {"code": "dose_not_changed", "label": "Dose not changed", "sdtm": "DOSE NOT CHANGED",
     "translations": {"fa": "دوز تغییر نکرد"}},
    {"code": "dose_reduced", "label": "Dose reduced", "sdtm": "DOSE REDUCED", "translations": {"fa": "دوز کاهش یافت"}},
    {"code": "dose_increased", "label": "Dose increased", "sdtm": "DOSE INCREASED",
     "translations": {"fa": "دوز افزایش یافت"}},
    {"code": "drug_interrupted", "label": "Treatment interrupted", "sdtm": "DRUG INTERRUPTED",
     "translations": {"fa": "درمان موقتاً قطع شد"}},
    {"code": "drug_withdrawn", "label": "Treatment withdrawn", "sdtm": "DRUG WITHDRAWN",
     "translations": {"fa": "درمان قطع شد"}},
    {"code": "not_applicable", "label": "Not applicable", "sdtm": "NOT APPLICABLE",
     "translations": {"fa": "کاربرد ندارد"}},
    {"code": "unknown", "label": "Unknown", "sdtm": "UNKNOWN", "translations": {"fa": "نامعلوم"}},
)  # fmt: skip



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
    translations: dict[str, str] = Field(default_factory=dict, description="Term in other languages.")
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
    date_field: Identifier = Field(
        description="The date field for the end of the stay (a date field: a date-time would be cut to its UTC day)."
    )
    cause_field: Identifier | None = Field(default=None, description="The text field for the cause of death.")


class VitalStatus(ProtocolModel):
    """A form field that records a death (e.g. vital status at a follow-up call), read by the analysis as one more
    source of deaths besides fatal adverse events and the death record."""

    field: str = Field(description="The choice or yes/no form.field that says whether the participant died.")
    died_values: list[str] = Field(min_length=1, description="Its codes that mean died ('True' for a yes/no field).")
    date_field: str = Field(description="The date form.field (same form) with the date of death.")


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
    actions_taken: list[ActionTakenChoice] | None = Field(
        default=None,
        min_length=1,
        description="The answers to 'action taken with the investigational product' on an adverse event report, in "
        "this product's words (e.g. dose not changed, syrup stopped), each with its SDTM term. When absent, the "
        "report offers CDISC's own terms (codelist ACN): dose not changed, dose reduced, dose increased, treatment "
        "interrupted, treatment withdrawn, not applicable, unknown (codes dose_not_changed, dose_reduced, "
        "dose_increased, drug_interrupted, drug_withdrawn, not_applicable, unknown).",
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
    vital_status: list[VitalStatus] = Field(
        default_factory=list,
        description="Other form fields that record a death with its date; the analysis takes the earliest death any "
        "source gives.",
    )

    @property
    def action_choices(self) -> list[ActionTakenChoice]:
        """The answers a report offers: the declared ones, else CDISC's standard terms (``STANDARD_ACTIONS_TAKEN``)."""
        if self.actions_taken is not None:
            return self.actions_taken
        return [ActionTakenChoice.model_validate(a) for a in STANDARD_ACTIONS_TAKEN]

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
        actions = [a.code for a in self.action_choices]
        if len(actions) != len(set(actions)):
            raise ValueError("action taken codes must be unique")
        return self


class ConsentVersion(ProtocolModel):
    """A version of the informed consent form."""

    version: str = Field(description="Version label, e.g. 1.0.")
    effective_from: dt.date = Field(description="First day it is in use.")
    languages: list[str] = Field(
        default_factory=lambda: ["fa"],
        description="Languages it exists in; a later version exists in every language of the one before it (it "
        "supersedes that one in every language: a consent does not record its language).",
    )
    reconsent_required: bool = Field(
        default=False, description="Whether participants consented on an earlier version must re-consent."
    )
    note: str | None = Field(default=None, description="What changed.")
