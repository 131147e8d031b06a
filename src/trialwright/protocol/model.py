"""The Protocol: one trial's whole design, as one validated, frozen object.

The top level mirrors the protocol file's sections: trial (the registry record), sites, arms,
sample_size, masking, eligibility, randomization, visits, forms, logs, outcomes, analysis_sets, analysis_plan, safety,
consent, version and amendments.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import Field

from trialwright.protocol.analysis_plan import AnalysisPlan
from trialwright.protocol.base import ProtocolModel
from trialwright.protocol.deidentification import Deidentification
from trialwright.protocol.demographics import Demographics
from trialwright.protocol.design import Arm, Eligibility, Masking, Randomization, SampleSize, ScreeningField
from trialwright.protocol.elements import Element
from trialwright.protocol.forms import DataCheck, FormDef, FormField, Visit
from trialwright.protocol.lock import LockPolicy
from trialwright.protocol.logs import LogDef
from trialwright.protocol.outcomes import AnalysisSet, ConsentVersion, Outcome, SafetySettings
from trialwright.protocol.registry import Amendment, Site, TrialInfo, Version

__all__ = ["Protocol"]


class Protocol(ProtocolModel):
    """A trial's protocol as code."""

    format: Literal[1, 2] = Field(
        description="Version of the protocol file format: 2 (estimands); 1 is read as 2 (trialwright.protocol.format1)."
    )
    languages: list[str] = Field(
        default_factory=lambda: ["en"],
        description=(
            "Languages the protocol's texts are in, English first (the texts themselves); every label, choice, "
            "visit, form, criterion, check message and site name carries a translation for each other one "
            "(`translations: {fa: ...}`), and so does the signature's meaning, the default one included "
            "(`signature_meaning_translations`), or `protocol check` refuses the file."
        ),
    )
    calendars: list[Literal["gregorian", "solar_hijri"]] | None = Field(
        default=None,
        min_length=1,
        description=(
            "Optional: the calendars the trial's dates are shown in, on pages and by the CLI: `[gregorian]`, "
            "`[solar_hijri]` or `[gregorian, solar_hijri]` (both, the default then). A person may choose only among "
            "them. Absent: both calendars by default, any of the three preferences allowed (docs/i18n.md)."
        ),
    )
    trial: TrialInfo = Field(description="The registry record: ids, titles, dates, ethics, sponsors, contacts.")
    sites: list[Site] = Field(min_length=1, description="Recruitment centres.")
    arms: list[Arm] = Field(min_length=2, description="Arms, with allocation ratios.")
    sample_size: SampleSize = Field(description="Target sample size, overall and per arm.")
    masking: Masking = Field(description="Who is masked.")
    eligibility: Eligibility = Field(description="Screening fields, inclusion and exclusion criteria.")
    randomization: Randomization = Field(description="The randomization method and its settings.")
    visits: list[Visit] = Field(min_length=1, description="The visit schedule.")
    elements: list[Element] = Field(
        default_factory=list,
        description="The trial's elements per epoch and arm (SDTM TE, TA, SE; see docs/exports.md); optional.",
    )
    forms: list[FormDef] = Field(min_length=1, description="Case report forms.")
    logs: list[LogDef] = Field(
        default_factory=list,
        description=(
            "Log forms: entries repeated per participant, not per visit (concomitant medications, medical "
            "history), each with the SDTM domain (CM, MH) and the variables its fields fill; see docs/logs.md."
        ),
    )
    data_checks: list[DataCheck] = Field(
        default_factory=list, description="Cross-field and cross-form checks that raise queries."
    )
    signature_meaning: str = Field(
        default="I confirm that I have reviewed the data on this form and that they are complete and accurate.",
        description="The meaning of an investigator's electronic signature, shown and stored with it.",
    )
    signature_meaning_translations: dict[str, str] = Field(
        default_factory=dict,
        description="The signature's meaning in other languages, shown to a signer reading that language.",
    )
    lock_policy: LockPolicy = Field(
        default_factory=LockPolicy,
        description="What the data must be before the database lock (form state, final SAE follow-up).",
    )
    outcomes: list[Outcome] = Field(min_length=1, description="Primary and secondary outcomes.")
    analysis_sets: list[AnalysisSet] = Field(min_length=1, description="Analysis sets (ITT, safety, ...).")
    analysis_plan: AnalysisPlan | None = Field(
        default=None, description="Table 1, treatment received, per protocol, limits of quantification, progression."
    )
    safety: SafetySettings = Field(description="Adverse event grading, causality and reporting deadlines.")
    demographics: Demographics | None = Field(
        default=None, description="Where the exports read each participant's age and sex (SDTM DM, FHIR Patient)."
    )
    deidentification: Deidentification | None = Field(
        default=None, description="How the de-identified IPD of the sharing plan is made."
    )
    consent_versions: list[ConsentVersion] = Field(min_length=1, description="Consent form versions.")
    version: Version = Field(description="This protocol file's version and date.")
    amendments: list[Amendment] = Field(
        default_factory=list,
        description="Amendments, oldest first. A locked trial database takes none (`trialwright init` refuses it, "
        "naming the lock: unlock it, with a reason, first) unless its only change is `deidentification`.",
    )

    @property
    def trial_id(self) -> str:
        """The primary registry id, e.g. IRCT20190101042197N2."""
        return next(i.id for i in self.trial.ids if i.primary)

    @property
    def short_name(self) -> str:
        """A short name for page headers."""
        return self.trial.titles.short or self.trial.titles.acronym or self.trial_id

    @property
    def site_codes(self) -> list[str]:
        """Site codes in protocol order."""
        return [s.code for s in self.sites]

    @property
    def arm_codes(self) -> list[str]:
        """Arm codes in protocol order."""
        return [a.code for a in self.arms]

    @property
    def ratio_sum(self) -> int:
        """Sum of the allocation ratio weights (the smallest balanced block)."""
        return sum(a.ratio for a in self.arms)

    @property
    def primary_outcomes(self) -> list[Outcome]:
        """The primary outcomes in protocol order."""
        return [o for o in self.outcomes if o.kind == "primary"]

    def site(self, code: str) -> Site:
        """The site with this code (KeyError if none)."""
        return _find(self.sites, "code", code, "site")

    def arm_by_code(self, code: str) -> Arm:
        """The arm with this code (KeyError if none)."""
        return _find(self.arms, "code", code, "arm")

    def form(self, form_id: str) -> FormDef:
        """The form with this id (KeyError if none)."""
        held = _FORMS.get(id(self))
        if held is None or held[0] is not self:  # the protocol is frozen: its forms by id, made once
            index: dict[str, FormDef] = {}
            for f in self.forms:
                index.setdefault(f.id, f)  # the first with the id, as a search in order would find
            held = (self, index)
            if len(_FORMS) >= 16:
                _FORMS.clear()
            _FORMS[id(self)] = held
        found = held[1].get(form_id)
        if found is None:
            raise KeyError(f"no form {form_id!r}")
        return found

    def log(self, log_id: str) -> LogDef:
        """The log with this id (KeyError if none)."""
        return _find(self.logs, "id", log_id, "log")

    def visit(self, visit_id: str) -> Visit:
        """The visit with this id (KeyError if none)."""
        return _find(self.visits, "id", visit_id, "visit")

    def field(self, form_id: str, field_id: str) -> FormField:
        """A form's field (KeyError if either is unknown)."""
        return self.form(form_id).field(field_id)

    def screening_field(self, field_id: str) -> ScreeningField:
        """The screening field with this id (KeyError if none)."""
        return _find(self.eligibility.screening_fields, "id", field_id, "screening field")


_T = TypeVar("_T")

#: Each protocol's forms by id, by the protocol's id(), holding the protocol itself so that its id is not reused
#: while it is here (a save looks forms up by id hundreds of times; a protocol is parsed once per version).
_FORMS: dict[int, tuple[Protocol, dict[str, FormDef]]] = {}


def _find(items: list[_T], attribute: str, value: str, what: str) -> _T:
    for item in items:
        if getattr(item, attribute) == value:
            return item
    raise KeyError(f"no {what} {value!r}")
