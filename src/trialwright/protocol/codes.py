"""Standard codes a form field declares for the exports (``codes:`` on a field): the trial's facts, not the engine's.

A numeric field may say what it is in the standard terminologies::

    codes:
      observation: vital-signs      # a FHIR Observation with this category (laboratory or vital-signs)
      ucum: mm[Hg]                  # the UCUM code of the field's canonical unit (the unit values are stored in)
      loinc:
        - {code: 8480-6, display: Systolic blood pressure, checked: where the code was checked}
      sdtm: {domain: VS, testcd: SYSBP, test: Systolic Blood Pressure, checked: CDISC CT term C25298,
             units: {mmHg: mmHg}}  # protocol unit -> the unit written in --ORRESU / --STRESU

The FHIR export writes an Observation only for a field with ``observation``, coded with its LOINC codes and
always with the trial's local code (``form.field``); its ``valueQuantity`` carries ``ucum``. The SDTM export
writes a field to LB or VS only when it declares ``sdtm``. Nothing is looked up from a field's name or unit.

A field of any type may also carry its CDASH variable name (``cdash: VSORRES``, written as an ODM Alias) and
SNOMED CT concepts (``snomed: [{code: 271649006, display: Systolic blood pressure}]``, in the FHIR coding and the
ODM Alias); an SDTM test may name its category (--CAT) and specimen (LBSPEC).

Checks when the protocol loads: a LOINC code's mod-10 check digit and a SNOMED CT concept identifier's Verhoeff
check digit and partition (a mistyped code is refused); an SDTM test code's syntax (at most 8 characters,
upper-case letters and digits, not starting with a digit); a UCUM code by the UCUM specification's grammar and
table of atoms and prefixes (the ucumvert parser): ``mm Hg``, ``mg/L FEU``, ``mg//L``, ``mg/Lx`` and ``°C`` are
refused. Where a field's unit is itself a UCUM expression, it must be the declared UCUM code's unit (a field in
g/dL declared as g/L would export values ten times off), and each alternative unit that is UCUM and
commensurable with it must declare the factor and offset the UCUM definitions give (``trialwright.protocol.
forms``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from trialwright.protocol.base import ProtocolModel

if TYPE_CHECKING:
    from trialwright.protocol.model import Protocol

__all__ = [
    "FieldCodes",
    "LoincCode",
    "SdtmTest",
    "SnomedConcept",
    "export_gaps",
    "loinc_check_digit",
    "repeated_tests",
    "ucum_conversion",
    "ucum_error",
    "verhoeff_valid",
]


def loinc_check_digit(number: str) -> int:
    """The LOINC mod-10 check digit of the part before the hyphen (catches a mistyped code)."""
    digits = [int(c) for c in reversed(number)]
    doubled = "".join(str(d) for d in digits[0::2])  # odd positions from the right, read right to left
    total = sum(int(c) for c in str(int(doubled[::-1]) * 2)) + sum(digits[1::2])
    return (10 - total % 10) % 10


@cache
def _ucum_parser() -> Any:
    from ucumvert import get_ucum_parser  # the UCUM grammar and atom table (ucumvert); built once, ~0.4 s

    return get_ucum_parser()


@cache
def _ucum_registry() -> Any:
    from ucumvert import PintUcumRegistry  # UCUM units as pint quantities, for conversions; built once, ~0.5 s

    return PintUcumRegistry()


@lru_cache(maxsize=4096)
def ucum_error(code: str) -> str | None:
    """Why ``code`` is not a UCUM expression (the grammar of the UCUM specification and its table of atoms and
    prefixes, by the ucumvert parser), or None if it is. Remembered per code: a protocol names the same few units
    many times, and the parser takes milliseconds per expression."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

    if not code or any(not ("!" <= c <= "~") for c in code):
        return "a UCUM code is printable ASCII without spaces"
    try:
        _ucum_parser().parse(code)
    except UnexpectedCharacters as exc:
        return f"not a UCUM unit at position {exc.column} ({code[exc.column - 1]!r})"
    except UnexpectedEOF:
        return "the expression ends before it is complete"
    except UnexpectedInput as exc:
        return f"not a UCUM unit at position {exc.column}"
    return None


@lru_cache(maxsize=4096)
def ucum_conversion(source: str, target: str) -> tuple[float, float] | None:
    """``(factor, offset)`` with ``target = source x factor + offset`` by the UCUM library's definitions (the
    offset is non-zero only between Cel and [degF]); None when either is not UCUM or the two are not
    commensurable (mass and amount of substance, or a unit the library cannot convert, such as [pH]). Remembered
    per pair of codes."""
    if ucum_error(source) or ucum_error(target):
        return None
    import pint

    registry = _ucum_registry()
    try:
        a, b = registry.from_ucum(source), registry.from_ucum(target)
        if not isinstance(a, pint.Quantity) or not isinstance(b, pint.Quantity):
            return None  # an annotation alone ({score}) is text to the library

        def value(x: float) -> float:
            return float(registry.Quantity(x * a.m, a.units).to(b.units).m / b.m)

        offset = value(0.0)
        return value(1.0) - offset, offset
    except Exception:
        return None


_VERHOEFF_D = tuple(tuple(int(c) for c in row) for row in (
    "0123456789", "1234067895", "2340178956", "3401289567", "4012395678",
    "5987604321", "6598710432", "7659821043", "8765932104", "9876543210"))  # fmt: skip
_VERHOEFF_P = tuple(tuple(int(c) for c in row) for row in (
    "0123456789", "1576283094", "5803796142", "8916043527", "9453126870",
    "4286573901", "2793806415", "7046913258"))  # fmt: skip


def verhoeff_valid(number: str) -> bool:
    """Whether ``number`` (its last digit the check digit) passes Verhoeff's dihedral check, which SNOMED CT
    identifiers use."""
    check = 0
    for i, digit in enumerate(reversed(number)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(digit)]]
    return check == 0


class SnomedConcept(ProtocolModel):
    """A SNOMED CT concept the field records."""

    code: str = Field(pattern=r"^[1-9]\d{5,17}$", description="The concept identifier (SCTID), e.g. 271649006.")
    display: str = Field(min_length=1, description="The concept's preferred term or fully specified name.")
    checked: str | None = Field(default=None, description="Where the code and its name were checked.")

    @field_validator("code")
    @classmethod
    def _sctid(cls, code: str) -> str:
        if not verhoeff_valid(code):
            raise ValueError(f"SNOMED CT {code}: the Verhoeff check digit does not match (a mistyped code)")
        if code[-3:-1] not in {"00", "10"}:
            raise ValueError(f"SNOMED CT {code}: partition {code[-3:-1]} is not a concept's (00 or 10)")
        return code


class LoincCode(ProtocolModel):
    """A LOINC code the field's values are reported under."""

    code: str = Field(pattern=r"^\d{1,7}-\d$", description="The LOINC number with its check digit, e.g. 8480-6.")
    display: str = Field(min_length=1, description="The LOINC long common name (or its short form).")
    checked: str | None = Field(default=None, description="Where the code and its name were checked.")

    @field_validator("code")
    @classmethod
    def _check_digit(cls, code: str) -> str:
        number, _, check = code.partition("-")
        if loinc_check_digit(number) != int(check):
            raise ValueError(
                f"LOINC {code}: the check digit of {number} is {loinc_check_digit(number)}, not {check} "
                "(a mistyped code)"
            )
        return code


class SdtmTest(ProtocolModel):
    """The SDTM findings test the field is tabulated under (LB or VS). Two fields collected at one visit may not
    give the same test (domain, test code and specimen): the protocol has no timepoint (--TPT) to tell apart
    their records, which would share VISITNUM and date."""

    domain: Literal["LB", "VS"] = Field(description="LB (laboratory) or VS (vital signs).")
    testcd: str = Field(description="--TESTCD: at most 8 characters, A-Z and 0-9, not starting with a digit.")
    test: str = Field(min_length=1, description="--TEST: the test name, at most 40 characters (SDTMIG 3.4).")
    checked: str | None = Field(
        default=None, description="The controlled terminology the code was checked in, or 'sponsor-defined'."
    )
    category: str | None = Field(default=None, min_length=1, description="--CAT, e.g. HEMATOLOGY or CHEMISTRY.")
    specimen: str | None = Field(
        default=None, min_length=1, description="LBSPEC, the specimen material (e.g. SERUM, BLOOD); LB only."
    )
    units: dict[str, str] = Field(
        default_factory=dict,
        description="Protocol unit -> the unit written in --ORRESU / --STRESU (e.g. CDISC VSRESU); "
        "a unit not listed is written as the protocol spells it.",
    )

    @field_validator("testcd")
    @classmethod
    def _testcd(cls, code: str) -> str:
        if not re.fullmatch(r"[A-Z][A-Z0-9]{0,7}", code):
            raise ValueError(
                f"SDTM test code {code!r}: at most 8 characters, upper-case letters and digits, "
                "not starting with a digit"
            )
        return code

    @field_validator("test")
    @classmethod
    def _test(cls, name: str) -> str:
        if len(name) > 40:
            raise ValueError(
                f"SDTM test name {name!r}: {len(name)} characters; --TEST holds at most 40 (SDTMIG 3.4, and SAS "
                "transport v5 labels): use the controlled terminology's submission value, never a cut name"
            )
        return name


class FieldCodes(ProtocolModel):
    """What a field is in the standard terminologies, for the FHIR and SDTM exports. Checked when the protocol
    loads: each LOINC code's check digit, the SDTM test code's syntax (at most 8 characters, A-Z and 0-9, not
    starting with a digit), the UCUM code's syntax (the grammar of the UCUM specification, section 2; atoms
    are not looked up), and that an Observation states the UCUM code of the unit its values are stored in."""

    observation: Literal["vital-signs", "laboratory"] | None = Field(
        default=None, description="FHIR Observation category; without it the field is not an Observation."
    )
    ucum: str | None = Field(
        default=None, description="UCUM code of the field's canonical unit (unity 1, [pH], {score} if unitless)."
    )
    fhir_ucum: str | None = Field(
        default=None,
        description="UCUM code a FHIR Observation states its value in when it is not ucum (the unit LOINC gives its "
        "code, e.g. % for 3150-0 where the field holds a fraction, ucum 1): the value is converted by the UCUM "
        "library's definitions; a unit that cannot be converted from ucum is refused when the protocol loads.",
    )
    loinc: list[LoincCode] = Field(default_factory=list, description="LOINC codes (FHIR Observation.code).")
    sdtm: SdtmTest | None = Field(default=None, description="SDTM LB or VS test; without it not in LB/VS.")
    cdash: str | None = Field(
        default=None,
        pattern=r"^[A-Z][A-Z0-9_]{0,31}$",
        description="The CDASH variable name the field is collected as (e.g. VSORRES, SYSBP_VSORRES); an ODM Alias.",
    )
    snomed: list[SnomedConcept] = Field(
        default_factory=list, description="SNOMED CT concepts (FHIR Observation.code coding, ODM Alias)."
    )

    @field_validator("ucum", "fhir_ucum")
    @classmethod
    def _ucum(cls, code: str | None) -> str | None:
        if code is not None and (why := ucum_error(code)):
            raise ValueError(f"UCUM code {code!r}: {why}")
        return code

    @model_validator(mode="after")
    def _complete(self) -> FieldCodes:
        if (self.observation or self.loinc) and self.ucum is None:
            raise ValueError("an Observation (observation or loinc) needs the ucum code of the field's unit")
        if self.loinc and self.observation is None:
            raise ValueError("loinc codes need observation (the FHIR Observation category)")
        if self.fhir_ucum is not None and (self.ucum is None or ucum_conversion(self.ucum, self.fhir_ucum) is None):
            raise ValueError(
                f"fhir_ucum {self.fhir_ucum!r}: the field's ucum {self.ucum!r} cannot be converted to it by the UCUM "
                "library's definitions"
            )
        if self.sdtm is not None and self.sdtm.specimen is not None and self.sdtm.domain != "LB":
            raise ValueError("sdtm.specimen is for LB tests only (VS has no specimen)")
        return self

    @property
    def numeric_only(self) -> tuple[str, ...]:
        """The codes declared here that only a number can carry (an Observation's quantity, an LB/VS result)."""
        named = {"observation": self.observation, "ucum": self.ucum, "loinc": self.loinc, "sdtm": self.sdtm}
        return tuple(name for name, value in named.items() if value)


def export_gaps(protocol: Protocol) -> tuple[str, ...]:
    """What the FHIR and SDTM exports will leave uncoded or out, and why (notes for ``protocol check``, not
    errors: a value exported with the trial's local code only is honest)."""
    numeric = [
        (f"{form.id}.{f.id}", f.codes)
        for form in protocol.forms
        for f in form.fields
        if f.type.value in {"integer", "decimal"}
    ]
    local = [ref for ref, c in numeric if c is not None and c.observation and not c.loinc]
    none = [ref for ref, c in numeric if c is None or not c.observation]
    untested = [ref for ref, c in numeric if c is None or c.sdtm is None]
    notes = []
    if local:
        notes.append(
            f"FHIR: {_count(local)} no LOINC code and {'is' if len(local) == 1 else 'are'} exported with the "
            f"local code only: {', '.join(local)}"
        )
    if none:
        notes.append(
            f"FHIR: {_count(none)} no codes.observation and {'is' if len(none) == 1 else 'are'} not exported "
            f"as Observations: {', '.join(none)}"
        )
    if untested:
        notes.append(
            f"SDTM: {_count(untested)} no codes.sdtm test code and {'is' if len(untested) == 1 else 'are'} "
            f"left out of LB and VS: {', '.join(untested)}"
        )
    unclassed = [v.id for v in protocol.visits if v.encounter_class is None]
    if unclassed:
        notes.append(
            f"FHIR: {len(unclassed)} visit{'' if len(unclassed) == 1 else 's'} without encounter_class: "
            f"{'its' if len(unclassed) == 1 else 'their'} Encounters are sent with class unknown (v3 NullFlavor "
            f"UNK): {', '.join(unclassed)}"
        )
    if protocol.trial.principal_investigator is None and not any(s.principal_investigator for s in protocol.sites):
        notes.append(
            "FHIR: no principal investigator is declared (trial.principal_investigator, "
            "sites[].principal_investigator): ResearchStudy.principalInvestigator and the investigators' "
            "PractitionerRoles are left out"
        )
    treatment = protocol.analysis_plan.treatment if protocol.analysis_plan else None
    if treatment is not None and treatment.end_field is None and not treatment.single_administration:
        notes.append(
            "SDTM DM: RFXENDTC and EX's EXENDTC are left empty: analysis_plan.treatment declares neither end_field "
            "nor single_administration, so no exposure's end is known"
        )
    d = protocol.demographics
    if d is None or d.age is None:
        notes.append(
            "SDTM DM: AGE is left empty: the protocol's demographics section does not say where age is recorded"
        )
    if d is None or d.sex is None:
        notes.append(
            "SDTM DM: SEX is written U and the FHIR Patient has no gender: the protocol's demographics section does "
            "not say where sex is recorded"
        )
    return tuple(notes)


def repeated_tests(protocol: Protocol) -> Iterator[tuple[str, str]]:
    """(path, message) for each field giving the same SDTM test (domain, test code and specimen) as another field
    collected at the same visit: the export would write two LB/VS records with the same VISITNUM and date and nothing
    to tell them apart (the protocol has no timepoint, --TPT, to say which is which)."""
    reported: set[tuple[str, str]] = set()
    for visit in protocol.visits:
        first: dict[tuple[str, str, str | None], str] = {}
        for i, form in enumerate(protocol.forms):  # in file order: the later field of a pair is refused
            for j, f in enumerate(form.fields if form.id in visit.forms else ()):
                test = f.codes.sdtm if f.codes is not None else None
                if test is None:
                    continue
                ref, key = f"{form.id}.{f.id}", (test.domain, test.testcd, test.specimen)
                if key not in first:
                    first[key] = ref
                elif (first[key], ref) not in reported:
                    reported.add((first[key], ref))
                    specimen = f" (specimen {test.specimen})" if test.specimen else ""
                    yield (
                        f"forms[{i}].fields[{j}].codes.sdtm.testcd",
                        f"{first[key]} and {ref} both give {test.domain} test {test.testcd}{specimen} at visit "
                        f"{visit.id}: two {test.domain} records with the same VISITNUM and date and nothing to tell "
                        "them apart (the protocol has no timepoint, --TPT); declare the test on one of them only",
                    )


def _count(refs: list[str]) -> str:
    return "1 numeric field has" if len(refs) == 1 else f"{len(refs)} numeric fields have"
