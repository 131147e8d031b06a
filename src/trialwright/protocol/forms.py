"""Case report forms, their fields, and the visit schedule that says when each form is due.

A field declares its type, canonical unit and accepted alternative units (with the conversion to the
canonical unit), hard limits (refused) and soft limits (saved with a query), whether "not done" is
allowed, choice codes, limits of quantification, or the derivation that computes it (named, or declared
in the file: ``trialwright.protocol.declared``), and the standard codes the exports use (LOINC, UCUM, SDTM
test, FHIR Observation category: ``trialwright.protocol.codes``).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Literal

from pydantic import Field, ValidationInfo, model_validator

from trialwright.protocol.base import FREE_TEXT, LONGEST_TEXT, SHORT_TEXT, Identifier, ProtocolModel, Range, stored_text
from trialwright.protocol.codes import FieldCodes, ucum_conversion, ucum_error
from trialwright.protocol.declared import DerivedField
from trialwright.protocol.encounters import EncounterClass

__all__ = [
    "RECORD_COLUMNS",
    "Choice",
    "DataCheck",
    "FieldType",
    "FormDef",
    "FormField",
    "ReferenceEvent",
    "UnitConversion",
    "Visit",
    "VisitWindow",
    "units_once",
]


class FieldType(StrEnum):
    """The value types a form field can hold."""

    INTEGER = "integer"
    DECIMAL = "decimal"
    TEXT = "text"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    BOOLEAN = "boolean"


class Choice(ProtocolModel):
    """One coded answer."""

    code: str = Field(min_length=1, description="Stored code.")
    label: str = Field(description="Label shown to people.")
    translations: dict[str, str] = Field(default_factory=dict, description="Label in other languages.")


class UnitConversion(ProtocolModel):
    """An accepted alternative unit: canonical = value x factor + offset."""

    unit: str = Field(description="The alternative unit as people enter it, e.g. mg/dL.")
    factor: float = Field(gt=0, description="Multiply by this to get the canonical unit.")
    offset: float = Field(default=0.0, description="Then add this (for temperature scales).")
    note: str | None = Field(default=None, description="Source or assumption behind the conversion.")


#: The columns every form's table in the exports begins with (CSV, Parquet, Stata, SPSS, SAS, Dataset-JSON): a field
#: may not take one of these ids, or its column would repeat the name (a duplicate column; a Parquet file no reader
#: opens; Stata, SPSS and SAS refuse it).
RECORD_COLUMNS = ("participant_id", "site", "visit_id", "visit_date", "form_state")


class FormField(ProtocolModel):
    """One field of a case report form."""

    id: Identifier = Field(
        description="Field id, unique within its form; not participant_id, site, visit_id, visit_date or form_state "
        "(the columns every form's table in the exports begins with)."
    )
    label: str = Field(description="Label shown to people.")
    type: FieldType = Field(description="Value type.")
    unit: str | None = Field(default=None, description="Canonical unit the value is stored in.")
    unit_translations: dict[str, str] = Field(
        default_factory=dict,
        description="Optional: the unit in other languages (e.g. {fa: میلی‌گرم}), as pages show it to a reader of "
        "that language; the value is stored in ``unit``. Without it the unit is shown as written. Given, it needs "
        "every language the protocol declares.",
    )
    alternative_units: list[UnitConversion] = Field(
        default_factory=list, description="Other units accepted on entry, converted to the canonical unit."
    )
    hard_limits: Range | None = Field(default=None, description="Outside these the value is refused.")
    soft_limits: Range | None = Field(default=None, description="Outside these it is saved and a query raised.")
    normal_range: Range | None = Field(
        default=None,
        description="The reference (normal) range in the canonical unit, from the laboratory or the protocol: "
        "SDTM LBORNRLO/LBORNRHI, LBSTNRLO/LBSTNRHI and LBNRIND, and FHIR Observation.referenceRange. Not the limits: "
        "none is assumed without it. At least one end; each end declared lies within hard_limits.",
    )
    decimals: int | None = Field(
        default=None,
        ge=0,
        le=6,
        description="Decimal places kept: a number typed with more is refused; one converted from an "
        "alternative unit, or derived, is rounded half away from zero to this many. Required for a derived decimal "
        "field.",
    )
    required: bool = Field(default=True, description="Whether a value (or not done with a reason) is needed.")
    not_done_allowed: bool = Field(default=True, description="Whether 'not done' with a reason may be recorded.")
    not_applicable_allowed: bool = Field(default=False, description="Whether 'not applicable' may be recorded.")
    choices: list[Choice] = Field(
        default_factory=list,
        description="Codes for choice and multi_choice fields, each `{code, label, translations}`: a form shows the "
        "label, so a bare code (`[intracapsular, extracapsular]`, as a screening field may list) is refused.",
    )
    quantification_limits: bool = Field(
        default=False, description="Whether values may be recorded as below the LLOQ or above the ULOQ (censored)."
    )
    derived: DerivedField | None = Field(
        default=None,
        description=(
            "Computed by the engine, never typed in: a named derivation ({name, inputs}) or a declared one "
            "({kind: sum, mean, min, max, count, bands, codes, value_set or formula, ...})."
        ),
    )
    may_precede_enrolment: bool = Field(
        default=False, description="A date that may lie before enrolment (date of birth, of admission)."
    )
    not_before: list[str] = Field(
        default_factory=list,
        description=(
            "Date and date-time fields: what this value may not precede, refused on save: a field of this form, "
            "form.field at the same visit, or participant.consented_at, participant.enrolled_at or "
            "participant.randomized_at (e.g. an infusion's stop is not_before [started_at])."
        ),
    )
    codes: FieldCodes | None = Field(
        default=None,
        description=(
            "Standard codes for the exports: {observation: vital-signs or laboratory, ucum, loinc: [{code, "
            "display, checked}], sdtm: {domain: LB or VS, testcd, test, category, specimen, checked, units}} for "
            "integer and decimal fields; {cdash, snomed: [{code, display, checked}]} for any field. Without "
            "observation the field is no FHIR Observation, without loinc an Observation carries the trial's "
            "local code only, without sdtm the field is left out of LB and VS; nothing is looked up from the "
            "field's name or unit."
        ),
    )
    max_length: int | None = Field(
        default=None,
        ge=1,
        le=LONGEST_TEXT,
        description=(
            "text fields: the most characters accepted (longer text is refused, never cut); default 200, or "
            "2,000 for a multiline field; at most 10,000."
        ),
    )
    multiline: bool = Field(
        default=False,
        description=(
            "text fields: free text over several lines (a text area; line breaks and tabs accepted). "
            "One-line text refuses them."
        ),
    )
    help: str | None = Field(default=None, description="Help text for data entry.")
    redcap_name: Identifier | None = Field(
        default=None,
        max_length=100,
        description=(
            "The field's REDCap variable name, when it is not `<form>_<field>` (kept by protocol from-redcap, so "
            "the REDCap-compatible API and to-redcap keep a project's names); one variable per field in the "
            "project, never participant_id or a name ending in _complete."
        ),
    )
    translations: dict[str, str] = Field(default_factory=dict, description="Label in other languages.")
    help_translations: dict[str, str] = Field(default_factory=dict, description="Help text in other languages.")

    @property
    def text_limit(self) -> int:
        """The most characters a text field (or a reason given for any field) accepts."""
        if self.max_length is not None:
            return self.max_length
        return FREE_TEXT if self.multiline else SHORT_TEXT

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> FormField:
        if self.id in RECORD_COLUMNS:
            raise ValueError(
                f"id: {self.id!r} is a column every form's table in the exports begins with "
                f"({', '.join(RECORD_COLUMNS)}); give the field another id (e.g. the form's name and {self.id})"
            )
        if (self.max_length is not None or self.multiline) and self.type is not FieldType.TEXT:
            raise ValueError("max_length and multiline are only for text fields")
        if self.type in {FieldType.CHOICE, FieldType.MULTI_CHOICE} and not self.choices:
            raise ValueError(f"a {self.type.value} field needs choices")
        if self.not_before and self.type not in {FieldType.DATE, FieldType.DATETIME}:
            raise ValueError("not_before is only for date and datetime fields")
        if self.choices and self.type not in {FieldType.CHOICE, FieldType.MULTI_CHOICE}:
            raise ValueError("choices are only for choice and multi_choice fields")
        numeric = self.type in {FieldType.INTEGER, FieldType.DECIMAL}
        if (self.hard_limits or self.soft_limits or self.alternative_units or self.normal_range) and not numeric:
            raise ValueError("limits, normal ranges and alternative units are only for integer and decimal fields")
        if self.alternative_units and not self.unit:
            raise ValueError("alternative_units need a canonical unit")
        if self.type is FieldType.DECIMAL and self.decimals is None and self.derived:
            raise ValueError(
                f"field {self.id}: a derived decimal field needs decimals: the places its value is rounded to (never "
                "a default)"
            )
        units_once(self.unit, self.alternative_units)
        if self.hard_limits and self.soft_limits and not self.soft_limits.within(self.hard_limits):
            raise ValueError("soft_limits must lie within hard_limits")
        if self.normal_range is not None and not stored_text(info):  # a stored text: its exports refused instead
            self._normal_range_possible(self.normal_range)
        codes = [c.code for c in self.choices]
        if len(codes) != len(set(codes)):
            raise ValueError("choice codes must be unique")
        if self.codes is not None and not numeric and (only := self.codes.numeric_only):
            raise ValueError(f"codes.{', codes.'.join(only)}: only for integer and decimal fields")
        if self.codes is not None and self.codes.ucum is not None:
            self._units_agree_with_ucum(self.codes.ucum)
        if self.codes is not None and self.codes.sdtm is not None:
            known = {self.unit, *(a.unit for a in self.alternative_units)} - {None}
            if odd := sorted(set(self.codes.sdtm.units) - known):
                raise ValueError(f"codes.sdtm.units: {', '.join(odd)} is not a unit of this field")
            mapped = self.codes.sdtm.units
            unwritable = sorted(u for u in known if u is not None and u not in mapped and not u.isascii())
            if unwritable and not stored_text(info):  # a stored text: written as spelled, listed in not_ascii.csv
                raise ValueError(
                    f"codes.sdtm.units: give the SDTM unit (e.g. CDISC UNIT, ASCII) for {', '.join(unwritable)}: "
                    "SDTM --ORRESU/--STRESU are ASCII (SAS transport v5) and a unit not listed is written as spelled"
                )
        return self

    def _normal_range_possible(self, normal: Range) -> None:
        """A normal range declares at least one end, and each end it declares is a value the field can hold (inside
        the hard limits): a range no value can reach would flag every result, and the exports would carry it."""
        if normal.min is None and normal.max is None:
            raise ValueError("normal_range declares neither min nor max: give one end or both, or leave it out")
        hard = self.hard_limits
        if hard is None:
            return
        outside = [f"{name} ({value:g})" for name, value in (("min", normal.min), ("max", normal.max))
                   if value is not None and not hard.contains(value)]  # fmt: skip
        if outside:
            ends = ", ".join(f"{name} {value:g}" for name, value in (("min", hard.min), ("max", hard.max))
                             if value is not None)  # fmt: skip
            raise ValueError(
                f"normal_range must lie within hard_limits ({ends}): its {' and '.join(outside)} "
                f"{'is a value' if len(outside) == 1 else 'are values'} the field refuses"
            )

    def _units_agree_with_ucum(self, ucum: str) -> None:
        """Where the unit or an alternative unit is written as UCUM, its conversion is the UCUM one: the unit
        is the declared code's (factor 1), an alternative's factor and offset are what UCUM defines."""
        if self.unit is not None and not ucum_error(self.unit):
            same = ucum_conversion(self.unit, ucum)
            if same is None or not (math.isclose(same[0], 1, rel_tol=1e-9) and abs(same[1]) < 1e-9):
                raise ValueError(
                    f"codes.ucum {ucum!r} is not the field's unit {self.unit!r}"
                    + (f" (1 {self.unit} = {same[0]:g} {ucum})" if same else " (not commensurable)")
                    + ": the exports would write the stored values under the wrong unit"
                )
        for alt in self.alternative_units:
            to_canonical = None if ucum_error(alt.unit) else ucum_conversion(alt.unit, ucum)
            if to_canonical is None:
                continue  # not UCUM, or not convertible by definition (mg/dL to mmol/L needs a molar mass)
            factor, offset = to_canonical
            close = math.isclose(alt.factor, factor, rel_tol=1e-3)  # a factor rounded to 4 digits passes
            if not (close and math.isclose(alt.offset, offset, abs_tol=1e-3 * max(1.0, abs(offset)))):
                raise ValueError(
                    f"alternative unit {alt.unit}: factor {alt.factor:g} and offset {alt.offset:g}, but UCUM "
                    f"defines 1 {alt.unit} = {factor:.6g} {ucum}"
                    + (f" + {offset:.6g}" if offset else "")
                    + " (a wrong factor stores every converted value wrong)"
                )


class FormDef(ProtocolModel):
    """A case report form."""

    id: Identifier = Field(description="Form id, e.g. labs.")
    name: str = Field(description="Name shown to people.")
    description: str | None = Field(default=None, description="What the form records.")
    description_translations: dict[str, str] = Field(
        default_factory=dict, description="The description in other languages."
    )
    fields: list[FormField] = Field(min_length=1, description="The form's fields, in display order.")
    translations: dict[str, str] = Field(default_factory=dict, description="Name in other languages.")
    reveals_arm: bool = Field(
        default=False,
        description="The form's values differ by arm (e.g. a count of dressing changes, filled by unmasked ward "
        "staff): a role the masking keeps from the arms neither opens, fills nor reads it, on any page, API, "
        "export, report, audit entry or query (see docs/roles.md). Only in a trial that masks some role.",
    )

    def field(self, field_id: str) -> FormField:
        """The field with this id (KeyError if none)."""
        found = self._held()[1].get(field_id)
        if found is None:
            raise KeyError(f"form {self.id!r} has no field {field_id!r}")
        return found

    def derived_ids(self) -> tuple[str, ...]:
        """The ids of the derived fields in the protocol's order (a save audits the changed ones in that order, so
        the audit trail is the same in every process: a set's order would follow ``PYTHONHASHSEED``)."""
        return self._held()[2]

    def _held(self) -> tuple[FormDef, dict[str, FormField], tuple[str, ...]]:
        """The form's fields by id (the first with an id, as a search in order finds) and its derived ids, made
        once: the form is frozen, and a save looks fields up by id hundreds of times."""
        held = _FIELDS.get(id(self))
        if held is None or held[0] is not self:
            index: dict[str, FormField] = {}
            for f in self.fields:
                index.setdefault(f.id, f)
            held = (self, index, tuple(dict.fromkeys(f.id for f in self.fields if f.derived is not None)))
            if len(_FIELDS) >= 1024:
                _FIELDS.clear()
            _FIELDS[id(self)] = held
        return held


#: Each form's fields by id and its derived ids, by the form's id(), holding the form itself so that its id is not
#: reused while it is here (as ``model._FORMS`` holds protocols).
_FIELDS: dict[int, tuple[FormDef, dict[str, FormField], tuple[str, ...]]] = {}


class ReferenceEvent(StrEnum):
    """Events the records themselves date; any other reference event (first dose, surgery, discharge) is
    declared by an event visit held on it (``kind: event``, ``day: 0``, ``reference:`` the event's name)."""

    SCREENING = "screening"
    ENROLMENT = "enrolment"
    RANDOMIZATION = "randomization"


class VisitWindow(ProtocolModel):
    """How many days before and after the target day a visit still counts as in window."""

    before: int = Field(default=0, ge=0, description="Days before the target day.")
    after: int = Field(default=0, ge=0, description="Days after the target day.")


class Visit(ProtocolModel):
    """A scheduled visit."""

    id: Identifier = Field(description="Visit id, e.g. day7.")
    name: str = Field(description="Name shown to people.")
    reference: Identifier = Field(
        description="The event day is counted from: screening, enrolment or randomization (dated by their "
        "records), or any event the protocol names (first_dose, surgery, discharge, ...) that an event visit "
        "(kind: event, day: 0, reference: that name) records the day of."
    )
    day: int = Field(description="Day offset from the reference event (0 = the same day).")
    window: VisitWindow = Field(default_factory=VisitWindow, description="Allowed days before and after.")
    forms: list[Identifier] = Field(default_factory=list, description="Forms due at this visit.")
    kind: Literal["scheduled", "event"] = Field(
        default="scheduled", description="scheduled, or event (happens when it happens, e.g. discharge)."
    )
    epoch: str | None = Field(
        default=None,
        pattern=r"^[A-Z][A-Z0-9 -]{0,39}$",
        description="The trial epoch the visit belongs to, as SDTM EPOCH writes it (CDISC EPOCH C99079, e.g. "
        "SCREENING, TREATMENT, FOLLOW-UP); every visit or none. Without it SDTM leaves EPOCH empty.",
    )
    encounter_class: EncounterClass | None = Field(
        default=None,
        description="Where the visit happens, an HL7 v3 ActEncounterCode as FHIR R4 Encounter.class uses it: AMB "
        "(ambulatory), EMER, FLD, HH, IMP (inpatient), ACUTE, NONAC, OBSENC, PRENC, SS, VR (virtual). Left out: the "
        "Encounter's class is sent as unknown (v3 NullFlavor UNK) and `protocol check` notes the visit.",
    )
    translations: dict[str, str] = Field(default_factory=dict, description="Name in other languages.")

    @property
    def earliest(self) -> int:
        """First day (from the reference event) inside the window."""
        return self.day - self.window.before

    @property
    def latest(self) -> int:
        """Last day (from the reference event) inside the window."""
        return self.day + self.window.after


class DataCheck(ProtocolModel):
    """A cross-field or cross-form check; when it fails on saved data, a query is raised automatically.

    ``compare``: the sum of the ``left`` fields, compared by ``op`` with the sum of the ``right`` fields
    plus ``tolerance`` (fields of forms at the same visit, written ``form.field``); skipped while any
    of them is empty. ``in_window``: the date or time in ``field`` must fall inside its visit's window.
    """

    id: Identifier = Field(description="Check id, named in the queries it raises.")
    kind: Literal["compare", "in_window"] = Field(description="compare or in_window.")
    message: str = Field(description="The query text shown to the site.")
    translations: dict[str, str] = Field(default_factory=dict, description="Query text in other languages.")
    left: list[str] = Field(default_factory=list, description="compare: fields summed on the left (form.field).")
    op: Literal["lt", "le", "gt", "ge", "eq", "ne"] | None = Field(default=None, description="compare: operator.")
    right: list[str] = Field(default_factory=list, description="compare: fields summed on the right.")
    tolerance: float = Field(default=0.0, description="compare: added to the right side.")
    field: str | None = Field(default=None, description="in_window: the date or time field (form.field).")
    severity: Literal["query", "refuse"] = Field(
        default="query",
        description="query: a failed check opens a query on saved data; refuse: the save is refused, naming fields.",
    )

    @model_validator(mode="after")
    def _shape(self) -> DataCheck:
        if self.kind == "compare" and (not self.left or not self.right or self.op is None):
            raise ValueError("a compare check needs left, op and right")
        if self.kind == "in_window" and not self.field:
            raise ValueError("an in_window check needs field")
        if self.kind == "compare" and self.field is not None:
            raise ValueError("field is for an in_window check; a compare check reads left and right")
        if self.kind == "in_window" and (self.left or self.right or self.op is not None or self.tolerance):
            raise ValueError("left, op, right and tolerance are for a compare check; an in_window check reads field")
        return self


def units_once(unit: str | None, alternatives: list[UnitConversion]) -> None:
    """Each unit names one conversion: an alternative unit listed twice (the first factor would silently win) or
    spelt as the canonical unit (its conversion would never apply) is refused."""
    seen: set[str] = set()
    for alternative in alternatives:
        if alternative.unit == unit:
            raise ValueError(f"alternative_units: {alternative.unit!r} is the canonical unit itself")
        if alternative.unit in seen:
            raise ValueError(f"alternative_units: {alternative.unit!r} is listed twice")
        seen.add(alternative.unit)
