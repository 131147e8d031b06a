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

Checks when the protocol loads: a LOINC code's mod-10 check digit (a mistyped code is refused); an SDTM test
code's syntax (at most 8 characters, upper-case letters and digits, not starting with a digit); a UCUM code's
syntax by the grammar of the UCUM specification (section 2: terms of components joined by ``.`` and ``/``,
components made of atoms with optional prefixes and a signed integer exponent, ``[...]`` atoms, ``{...}``
annotations, integer factors, parentheses). The grammar check does not look atoms up in the UCUM table (no
UCUM library is installed here): ``mg/Lx`` passes it, ``mm Hg``, ``mg/L FEU``, ``mg//L`` and ``°C`` do not.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from trialwright.protocol.base import ProtocolModel

if TYPE_CHECKING:
    from trialwright.protocol.model import Protocol

__all__ = ["FieldCodes", "LoincCode", "SdtmTest", "export_gaps", "loinc_check_digit", "ucum_syntax_error"]


def loinc_check_digit(number: str) -> int:
    """The LOINC mod-10 check digit of the part before the hyphen (catches a mistyped code)."""
    digits = [int(c) for c in reversed(number)]
    doubled = "".join(str(d) for d in digits[0::2])  # odd positions from the right, read right to left
    total = sum(int(c) for c in str(int(doubled[::-1]) * 2)) + sum(digits[1::2])
    return (10 - total % 10) % 10


# UCUM section 2.1 (case-sensitive c/s syntax): an annotation is {...} of printable ASCII without braces;
# an atom symbol is printable ASCII without ()[]{}./ and digits only after a non-digit; [...] is a bracketed
# atom part; the exponent is a signed integer; a bare integer is a factor.
_ANNOTATION = r"\{[!-z|~ ]*\}"
_SYMBOL = r"(?:[!#-'*,:-Z\\^-z|~]|\[[!-Z\\^-z|~]+\])"
_SIMPLE = rf"\d*{_SYMBOL}(?:\d*{_SYMBOL})*"  # digits inside a symbol (10*, cm[H2O]); trailing ones: exponent
_COMPONENT = re.compile(rf"(?:(?P<unit>{_SIMPLE})(?P<exp>[+-]?\d+)?|\d+)(?:{_ANNOTATION})?|{_ANNOTATION}")


def ucum_syntax_error(code: str) -> str | None:
    """Why ``code`` is not a UCUM expression by the grammar of UCUM section 2, or None if it is."""
    if not code or any(not ("!" <= c <= "~") for c in code):
        return "a UCUM code is printable ASCII without spaces"

    def term(i: int) -> int:
        i = component(i)
        while i < len(code) and code[i] in "./":
            i = component(i + 1)
        return i

    def component(i: int) -> int:
        if i < len(code) and code[i] == "(":
            i = term(i + 1)
            if i >= len(code) or code[i] != ")":
                raise ValueError("an opening parenthesis is not closed")
            return i + 1
        m = _COMPONENT.match(code, i)
        if not m or m.end() == i:
            raise ValueError(f"no unit at position {i + 1}")
        return m.end()

    try:
        end = term(1 if code.startswith("/") else 0)
    except ValueError as exc:
        return str(exc)
    if end != len(code):
        return f"unexpected {code[end]!r} at position {end + 1}"
    return None


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
    """The SDTM findings test the field is tabulated under (LB or VS)."""

    domain: Literal["LB", "VS"] = Field(description="LB (laboratory) or VS (vital signs).")
    testcd: str = Field(description="--TESTCD: at most 8 characters, A-Z and 0-9, not starting with a digit.")
    test: str = Field(min_length=1, description="--TEST: the test name.")
    checked: str | None = Field(
        default=None, description="The controlled terminology the code was checked in, or 'sponsor-defined'."
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
    loinc: list[LoincCode] = Field(default_factory=list, description="LOINC codes (FHIR Observation.code).")
    sdtm: SdtmTest | None = Field(default=None, description="SDTM LB or VS test; without it not in LB/VS.")

    @field_validator("ucum")
    @classmethod
    def _ucum(cls, code: str | None) -> str | None:
        if code is not None and (why := ucum_syntax_error(code)):
            raise ValueError(f"UCUM code {code!r}: {why}")
        return code

    @model_validator(mode="after")
    def _complete(self) -> FieldCodes:
        if (self.observation or self.loinc) and self.ucum is None:
            raise ValueError("an Observation (observation or loinc) needs the ucum code of the field's unit")
        if self.loinc and self.observation is None:
            raise ValueError("loinc codes need observation (the FHIR Observation category)")
        return self


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
    return tuple(notes)


def _count(refs: list[str]) -> str:
    return "1 numeric field has" if len(refs) == 1 else f"{len(refs)} numeric fields have"
