"""The registry and administrative part of a protocol: what a trial registry record holds.

Ids, titles, dates, ethics approval, sponsors and funding, contacts, conditions, sites, the data sharing
plan, the protocol version and its amendments. Dates are Gregorian ISO dates; the Solar Hijri form a
registry may print is derived for display (``trialwright.domain.calendars``).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from trialwright.protocol.base import Code, Duration, ProtocolModel

__all__ = [
    "Address",
    "Amendment",
    "Condition",
    "Contact",
    "Contacts",
    "EthicsCommittee",
    "FundingSource",
    "Investigator",
    "Phase",
    "RecruitmentStatus",
    "Registration",
    "RegistryId",
    "Sex",
    "SharingItem",
    "SharingPlan",
    "Site",
    "Sponsor",
    "StudyDesign",
    "Summary",
    "Titles",
    "TrialDates",
    "TrialInfo",
    "Version",
]

_ICD10 = re.compile(r"^[A-TV-Z][0-9][0-9AB](\.[0-9A-Z]{1,4})?$")


class Phase(StrEnum):
    """Trial phase as registries record it."""

    NA = "not_applicable"
    EARLY_1 = "early_1"
    P1 = "1"
    P1_2 = "1/2"
    P2 = "2"
    P2_3 = "2/3"
    P3 = "3"
    P4 = "4"


class RecruitmentStatus(StrEnum):
    """Where recruitment stands."""

    NOT_YET = "not_yet_recruiting"
    RECRUITING = "recruiting"
    SUSPENDED = "suspended"
    COMPLETE = "complete"
    STOPPED_EARLY = "stopped_early"


class RegistryId(ProtocolModel):
    """One id of the trial in a registry."""

    registry: str = Field(description="Registry name, e.g. IRCT or ClinicalTrials.gov.")
    id: str = Field(min_length=3, description="The id in that registry, e.g. IRCT20190101042197N2.")
    primary: bool = Field(default=False, description="Whether this is the trial's primary id (exactly one is).")


class Titles(ProtocolModel):
    """The trial's names."""

    scientific: str = Field(min_length=5, description="Scientific title as registered.")
    public: str = Field(min_length=5, description="Public (lay) title as registered.")
    acronym: str | None = Field(default=None, description="Acronym, if any.")
    short: str | None = Field(default=None, description="Short name shown in page headers.")
    translations: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Titles in other languages: {language: {scientific|public|short: text}}.",
    )


class Summary(ProtocolModel):
    """The registry's protocol summary, in the registrant's words."""

    aim: str = Field(description="Study aim.")
    design: str = Field(description="Design in one paragraph.")
    settings_and_conduct: str = Field(description="Settings and conduct.")
    participants: str = Field(description="Participants and their inclusion and exclusion criteria, as text.")
    interventions: str = Field(description="Intervention groups, as text.")
    main_outcomes: str = Field(description="Main outcome variables, as text.")


class Sex(StrEnum):
    """Sex of participants, as CDISC's codelist C66732 (Sex of Participants) names it."""

    BOTH = "BOTH"
    F = "F"
    M = "M"


class PharmacologicClass(ProtocolModel):
    """The investigational product's pharmacologic class (SDTM TS PCLAS), as the sponsor states it."""

    name: str = Field(min_length=1, max_length=200, description="The class, e.g. Anti-inflammatory Agent.")
    code: str | None = Field(
        default=None, min_length=1, max_length=64,
        description="Its code in the terminology (TS TSVALCD), e.g. an NCI Thesaurus C-code or a MED-RT NUI.",
    )  # fmt: skip
    terminology: str | None = Field(
        default=None, min_length=1, max_length=64,
        description="The terminology the code is from (TS TSVCDREF), e.g. NCI or MED-RT; with code.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _code_with_terminology(self) -> PharmacologicClass:
        if (self.code is None) != (self.terminology is None):
            raise ValueError("code and terminology go together (TS TSVALCD and TSVCDREF)")
        return self


class StudyDesign(ProtocolModel):
    """Design features the registry records."""

    purpose: str = Field(description="Purpose, e.g. treatment, prevention, diagnostic.")
    allocation: str = Field(description="randomized or non_randomized.")
    assignment: str = Field(
        description="parallel: trialwright runs parallel arms only, so `protocol check` refuses crossover, factorial, "
        "single_group or any other word."
    )
    blinding: str = Field(
        description="open, single, double, triple (investigator's opinion): `protocol check` refuses it differing "
        "from masking.blinding (triple registered double stands; custom: docs/roles.md)."
    )
    placebo: bool = Field(
        description="Whether a placebo is used: true needs a placebo_comparator or sham_comparator arm, false allows "
        "no placebo_comparator arm."
    )
    pilot: bool = Field(default=False, description="Whether the trial is a pilot or feasibility study.")
    other_features: str | None = Field(default=None, description="Other design features, as registered.")
    randomization_description: str | None = Field(default=None, description="As registered.")
    blinding_description: str | None = Field(default=None, description="As registered.")
    minimum_age: Duration | None = Field(
        default=None,
        description="The planned minimum age of participants as registered, an ISO 8601 duration (P18Y; SDTM TS "
        "AGEMIN). Left out: not declared (the eligibility rules still decide who is eligible). No age the eligibility "
        "rules admit (over demographics.age's screening fields) is below it.",
    )
    maximum_age: Duration | None = Field(
        default=None,
        description="The planned maximum age of participants as registered, ISO 8601 (P65Y; TS AGEMAX), in completed "
        "units: no age the eligibility rules admit is above it.",
    )
    sex: Sex | None = Field(
        default=None, description="Sex of participants as registered: BOTH, F or M (CDISC C66732; TS SEXPOP)."
    )
    participation_length: Duration | None = Field(
        default=None,
        description="Planned length of each participant's participation, ISO 8601 (e.g. P28D; TS LENGTH).",
    )
    pharmacologic_class: PharmacologicClass | None = Field(
        default=None,
        description="The investigational product's pharmacologic class (TS PCLAS; written with arms only, as TRT). "
        "Left out, and listed as left out, when not declared.",
    )

    @model_validator(mode="after")
    def _ages_in_order(self) -> StudyDesign:
        low, high = self.minimum_age, self.maximum_age
        years = re.compile(r"^P(\d+)Y$")
        if low and high and (a := years.match(low)) and (b := years.match(high)) and int(a[1]) > int(b[1]):
            raise ValueError(f"minimum_age {low} is above maximum_age {high}")
        return self


class Registration(ProtocolModel):
    """When and how the trial was registered and updated."""

    date: dt.date = Field(description="Registration date.")
    timing: str = Field(description="prospective or retrospective.")
    last_update: dt.date | None = Field(default=None, description="Date of the registry record's last update.")
    update_count: int = Field(default=0, ge=0, description="Number of updates to the registry record.")

    @field_validator("timing")
    @classmethod
    def _timing(cls, value: str) -> str:
        if value not in {"prospective", "retrospective"}:
            raise ValueError("must be prospective or retrospective")
        return value


class TrialDates(ProtocolModel):
    """Recruitment and completion dates; actual dates stay empty until they happen."""

    expected_recruitment_start: dt.date = Field(description="Expected recruitment start date.")
    expected_recruitment_end: dt.date = Field(description="Expected recruitment end date.")
    actual_recruitment_start: dt.date | None = Field(default=None, description="Actual recruitment start.")
    actual_recruitment_end: dt.date | None = Field(default=None, description="Actual recruitment end.")
    completion: dt.date | None = Field(default=None, description="Trial completion date.")


class Address(ProtocolModel):
    """A postal address with phone and e-mail."""

    street: str | None = Field(default=None, description="Street address.")
    city: str | None = Field(default=None, description="City.")
    province: str | None = Field(default=None, description="Province or state.")
    postal_code: str | None = Field(default=None, description="Postal code.")
    country: str | None = Field(default=None, description="Country.")
    phone: str | None = Field(default=None, description="Phone number.")
    email: str | None = Field(default=None, description="E-mail address.")


class EthicsCommittee(ProtocolModel):
    """An ethics committee's approval."""

    name: str = Field(description="Name of the ethics committee.")
    address: Address = Field(default_factory=Address, description="Where it sits.")
    approval_date: dt.date = Field(description="Date of approval.")
    reference_number: str = Field(min_length=3, description="The committee's reference number.")


class Condition(ProtocolModel):
    """A health condition studied."""

    description: str = Field(description="Description of the condition.")
    icd10: str = Field(description="ICD-10 code, e.g. J80.")
    icd10_description: str | None = Field(default=None, description="The ICD-10 code's own wording.")

    @field_validator("icd10")
    @classmethod
    def _icd10(cls, value: str) -> str:
        if not _ICD10.match(value):
            raise ValueError("must be an ICD-10 code: a letter, two characters, optional .subcode (e.g. J80)")
        return value


class Contact(ProtocolModel):
    """A person the registry names for inquiries."""

    name: str = Field(description="Full name of the responsible person.")
    organisation: str | None = Field(default=None, description="Organisation or entity.")
    position: str | None = Field(default=None, description="Position.")
    degree: str | None = Field(default=None, description="Latest degree.")
    specialty: str | None = Field(default=None, description="Other areas of specialty or work.")
    address: Address = Field(default_factory=Address, description="Address, phone and e-mail.")


class Investigator(ProtocolModel):
    """A principal investigator as the protocol names them (a person's name is written as given and not
    translated, as the registry's responsible persons are)."""

    name: str = Field(min_length=1, max_length=200, description="Full name, as the protocol or registry gives it.")
    degree: str | None = Field(
        default=None, min_length=1, max_length=200, description="Latest degree or qualification, e.g. MD, PhD."
    )
    address: Address = Field(default_factory=Address, description="Address, phone and e-mail, if given.")


class Contacts(ProtocolModel):
    """The three contacts a registry record names."""

    general: Contact = Field(description="Person responsible for general inquiries.")
    scientific: Contact = Field(description="Person responsible for scientific inquiries.")
    updating: Contact = Field(description="Person responsible for updating data.")
    registrant: Contact | None = Field(default=None, description="The registrant, if named separately.")


class Sponsor(ProtocolModel):
    """A sponsor of the trial."""

    organisation: str = Field(description="Name of the organisation or entity.")
    responsible_person: str | None = Field(default=None, description="Full name of the responsible person.")
    address: Address = Field(default_factory=Address, description="Address, phone and e-mail.")


class FundingSource(ProtocolModel):
    """A source of funding."""

    title: str = Field(description="Title of the funding source.")
    same_as_sponsor: bool = Field(default=False, description="Whether it is the sponsor organisation itself.")
    proportion: float = Field(ge=0, le=100, description="Percentage of the funding it provides.")
    sector: str | None = Field(default=None, description="public or private.")
    origin: str | None = Field(default=None, description="domestic or foreign.")
    organisation_type: str | None = Field(default=None, description="Type of organisation providing it.")
    grant_name: str | None = Field(default=None, description="Grant name.")
    grant_code: str | None = Field(default=None, description="Grant code or reference number.")


class SharingItem(ProtocolModel):
    """Whether one kind of document or data set will be shared."""

    shared: bool = Field(description="Whether there is a plan to make it available.")
    note: str | None = Field(default=None, description="Comment on this item.")


class SharingPlan(ProtocolModel):
    """The data sharing plan as registered."""

    ipd: SharingItem = Field(description="De-identified individual participant data set.")
    study_protocol: SharingItem = Field(description="Study protocol.")
    statistical_analysis_plan: SharingItem = Field(description="Statistical analysis plan.")
    informed_consent_form: SharingItem = Field(description="Informed consent form.")
    clinical_study_report: SharingItem = Field(description="Clinical study report.")
    analytic_code: SharingItem = Field(description="Analytic code.")
    data_dictionary: SharingItem = Field(description="Data dictionary.")
    details: str | None = Field(default=None, description="Title and more details about the data/document.")
    when_available: str | None = Field(default=None, description="When the data become available and for how long.")
    access_delay_months: int | None = Field(
        default=None, ge=0, description="Months after publication when access opens (machine-readable)."
    )
    to_whom: str | None = Field(default=None, description="To whom the data are available.")
    criteria: str | None = Field(default=None, description="Under which criteria the data may be used.")
    where: str | None = Field(default=None, description="From where the data are obtainable.")
    request_process: str | None = Field(default=None, description="What processes a request involves.")


class Site(ProtocolModel):
    """A recruitment centre."""

    code: Code = Field(description="Short upper-case code used in participant ids, e.g. RAZ.")
    name: str = Field(description="Name of the recruitment centre.")
    responsible_person: str | None = Field(default=None, description="Full name of the responsible person.")
    principal_investigator: Investigator | None = Field(
        default=None,
        description="The centre's principal investigator (FHIR: a PractitionerRole coded principal investigator). "
        "Left out when the protocol does not name one: the responsible person is not taken for it.",
    )
    address: Address = Field(default_factory=Address, description="Address, phone and e-mail.")
    timezone: str = Field(description="IANA time zone of the site, e.g. Asia/Tehran.")
    country: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        description="ISO 3166-1 alpha-3 code of the site's country, e.g. IRN: SDTM DM.COUNTRY (an SDTM export "
        "refuses a site without it).",
    )
    translations: dict[str, str] = Field(default_factory=dict, description="Site name in other languages.")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone name (e.g. Asia/Tehran)") from None
        return value


class TrialInfo(ProtocolModel):
    """Everything the registry record says about the trial as a whole."""

    ids: list[RegistryId] = Field(min_length=1, description="Registry ids; exactly one is primary.")
    titles: Titles = Field(description="Scientific, public and short titles.")
    phase: Phase = Field(description="Trial phase.")
    recruitment_status: RecruitmentStatus = Field(description="Where recruitment stands.")
    design: StudyDesign = Field(description="Design features as registered.")
    summary: Summary = Field(description="The registry's protocol summary.")
    registration: Registration = Field(description="Registration and update dates.")
    dates: TrialDates = Field(description="Recruitment and completion dates.")
    conditions: list[Condition] = Field(min_length=1, description="Health conditions studied.")
    ethics_committees: list[EthicsCommittee] = Field(min_length=1, description="Ethics approvals.")
    sponsors: list[Sponsor] = Field(min_length=1, description="Sponsors.")
    funding: list[FundingSource] = Field(default_factory=list, description="Funding sources.")
    contacts: Contacts = Field(description="General, scientific and updating contacts.")
    principal_investigator: Investigator | None = Field(
        default=None,
        description="The trial's principal investigator (FHIR ResearchStudy.principalInvestigator). Left out when "
        "the protocol does not name one: no contact is taken for it.",
    )
    sharing: SharingPlan = Field(description="The data sharing plan.")
    comments: str | None = Field(default=None, description="The registry record's comments.")

    @field_validator("ids")
    @classmethod
    def _one_primary(cls, value: list[RegistryId]) -> list[RegistryId]:
        if sum(1 for i in value if i.primary) != 1:
            raise ValueError("exactly one registry id must have primary: true")
        return value


class Version(ProtocolModel):
    """This protocol file's version."""

    number: str = Field(min_length=1, description="Version number, e.g. 2.0.")
    date: dt.date = Field(description="Version date.")


class Amendment(ProtocolModel):
    """A change to the approved protocol, with its reason."""

    number: int = Field(ge=1, description="Amendment number, from 1.")
    date: dt.date = Field(
        description="Date of the amendment (or of the registry update): the day the version it produced takes "
        "effect. A visit that version adds is due only for a participant whose window of it had not closed by then "
        "(else not due, listed with the amendment: forms.md)."
    )
    version: str = Field(description="The protocol version this amendment produced.")
    reason: str = Field(min_length=5, description="Reason for the change (the registry's 'Reason for update').")
    changes: list[str] = Field(default_factory=list, description="What changed, item by item.")
