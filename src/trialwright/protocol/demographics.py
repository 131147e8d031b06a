"""Where a participant's age and sex are recorded, for the exports' demographics (SDTM DM, FHIR Patient).

Nothing is looked up from a field's name: the protocol says which fields hold the age and the sex, first
recorded wins, and how its sex codes read in CDISC controlled terminology::

    demographics:
      age: {from: [demographics.age_at_enrolment, screening.age], unit: years}
      sex: {from: [demographics.sex, screening.sex], codes: {female: F, male: M}}

A source is ``form.field`` or ``screening.field`` (``protocol.sources``, the rule Table 1 and the IPD's
quasi-identifiers read theirs by). Without this section (or one of its parts) DM leaves AGE
and SEX empty (SEX as U) and the FHIR Patient has no gender; ``protocol check`` notes it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field, ValidationInfo, field_validator

from trialwright.protocol.base import ProtocolModel, stored_text
from trialwright.protocol.cdisc_ct import sdtm_ct
from trialwright.protocol.references import Found
from trialwright.protocol.sources import source, source_ref

if TYPE_CHECKING:
    from trialwright.protocol.design import Rule
    from trialwright.protocol.model import Protocol

__all__ = [
    "AgeSource", "Demographics", "SexSource", "demographics_checks", "fhir_gender", "registered_ages"
]

#: CDISC SEX (C66731) submission values and the FHIR administrative gender each is written as.
_FHIR_GENDER = {"F": "female", "M": "male", "U": "unknown", "INTERSEX": "other", "UNDIFFERENTIATED": "other"}
#: SEX values no longer CT terms that a protocol stored before the CT package shipped may hold: it still loads (its
#: trial keeps working); the SDTM export refuses it, naming it (``sdtm._check_sex_terms``).
RETIRED_SEX = frozenset({"UNDIFFERENTIATED"})


class AgeSource(ProtocolModel):
    """The fields that hold the participant's age."""

    sources: list[str] = Field(
        alias="from", min_length=1, description="form.field or screening.field, a number; first recorded wins."
    )
    unit: Literal["years", "months", "weeks", "days"] = Field(description="The age's unit (DM AGEU).")


class SexSource(ProtocolModel):
    """The fields that hold the participant's sex, and their codes in CDISC terminology."""

    sources: list[str] = Field(
        alias="from", min_length=1, description="form.field or screening.field, a choice; first recorded wins."
    )
    codes: dict[str, str] = Field(
        description="Each choice code of the sources -> its CDISC SEX (C66731) term in the shipped SDTM CT (F, M, U "
        "or INTERSEX); FHIR gender follows from it (INTERSEX: other)."
    )

    @field_validator("codes")
    @classmethod
    def _sex_terms(cls, codes: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        sex = sdtm_ct()["SEX"]
        for code, value in codes.items():
            if value in RETIRED_SEX and stored_text(info):
                continue  # a text stored before the CT package shipped reads as its engine read it
            if value not in sex or value not in _FHIR_GENDER:
                raise ValueError(f"{code}: {value!r} is not a term of CDISC CT SEX ({sex.code}, SDTM CT "
                                 f"{sdtm_ct().version}: {', '.join(sex.terms)})")  # fmt: skip
        return codes


class Demographics(ProtocolModel):
    """Where the exports read age and sex."""

    age: AgeSource | None = Field(default=None, description="The age's fields and unit.")
    sex: SexSource | None = Field(default=None, description="The sex's fields and CDISC codes.")


def fhir_gender(cdisc: str) -> str:
    """The FHIR administrative gender of a CDISC SEX value."""
    return _FHIR_GENDER[cdisc]


def demographics_checks(p: Protocol) -> Iterator[Found]:
    """Each source names a field of the right kind; every choice code of a sex source has its CDISC value."""
    d = p.demographics
    if d is None:
        return
    for part, kinds in (("age", {"integer", "decimal"}), ("sex", {"choice"})):
        declared = getattr(d, part)
        if declared is None:
            continue
        for i, ref in enumerate(declared.sources):
            found = list(source_ref(p, ref, f"demographics.{part}.from[{i}]", kinds))
            yield from found
            if part == "sex" and not found:
                yield from _sex_codes(d, [c.code for c in source(p, ref).field.choices], ref)


def _sex_codes(d: Demographics, choices: list[str], ref: str) -> Iterator[Found]:
    if d.sex is not None and (missing := [c for c in choices if c not in d.sex.codes]):
        yield "demographics.sex.codes", (
            f"{ref}'s choice {', '.join(missing)} has no CDISC SEX value (F, M, U or INTERSEX)"
        )


#: A registered age of one amount (P18Y, P6M): its number and unit; anything else (P1Y6M) is not compared.
_AGE = re.compile(r"^P(\d+)([YMWD])$")
_UNITS = {"Y": "years", "M": "months", "W": "weeks", "D": "days"}
#: (value, inclusive, where): an eligible age's bound and the criterion that sets it.
_Bound = tuple[float, bool, str]


def registered_ages(p: Protocol) -> Iterator[Found]:
    """The registered ages (``trial.design.minimum_age``, ``maximum_age``) against the eligibility rules over the age
    at screening (each screening field among demographics.age's sources, and the assent rule's age field; each in
    the unit the field declares): an age the rules admit outside the registered range is refused, naming the
    criterion. Ages are in completed units, as registries write them: P65Y admits 65 years and 364 days, so a decimal
    age admitted up to 65.5 is within it and one of 66 is not; an integer age of ``lt: 66`` is at most 65. A bound
    the rules set only inside any_of or not is not read (never guessed); a rule admitting fewer ages than registered
    is not refused (the registry states the planned range)."""
    design = p.trial.design
    if design.minimum_age is None and design.maximum_age is None:
        return
    for name, unit, kind in _screening_ages(p):
        low, high = _eligible_range(p, name)
        for key, registered in (("minimum_age", design.minimum_age), ("maximum_age", design.maximum_age)):
            amount = _amount(registered, unit)
            bound = low if key == "minimum_age" else high
            if amount is None or bound is None:
                continue
            value, inclusive, where = bound
            integer = kind == "integer"
            if key == "minimum_age":
                lowest = (math.floor(value) + 1 if not inclusive else math.ceil(value)) if integer else value
                outside = lowest < amount
            else:
                outside = (value > amount + 1) if not inclusive else (
                    math.floor(value) > amount if integer else value >= amount + 1
                )
            if outside:
                side = "from" if key == "minimum_age" else "up to"
                yield f"trial.design.{key}", (
                    f"{where} admits screening.{name} {side} {_number(value)} {unit} "
                    f"({'inclusive' if inclusive else 'exclusive'}), outside the registered {key} {registered}: the "
                    "ages the eligibility rules admit are within the registered range: correct the one that is wrong"
                )


def _screening_ages(p: Protocol) -> Iterator[tuple[str, str, str]]:
    """(screening field, its unit, integer or decimal) of every screening field that holds the age: the unit the
    field itself declares (the rules compare its values), else demographics.age's; another unit is not compared."""
    screening = {f.id: f for f in p.eligibility.screening_fields}
    age = p.demographics.age if p.demographics else None
    seen = set()
    for ref in age.sources if age else []:
        where, _, name = ref.partition(".")
        if where == "screening" and name in screening and age is not None and name not in seen:
            seen.add(name)
            unit = screening[name].unit or age.unit
            if unit in _UNITS.values():
                yield name, unit, screening[name].type
    assent = p.eligibility.assent
    if assent is not None and assent.age_field in screening and assent.age_field not in seen:
        field = screening[assent.age_field]
        if field.unit in {"years", "months"}:
            yield assent.age_field, field.unit, field.type


def _amount(duration: str | None, unit: str) -> float | None:
    """A registered age in ``unit``: the same unit, or years in months; None when it cannot be said exactly."""
    match = _AGE.match(duration or "")
    if match is None:
        return None
    number, written = int(match[1]), _UNITS[match[2]]
    if written == unit:
        return number
    return number * 12 if (written, unit) == ("years", "months") else None


def _eligible_range(p: Protocol, name: str) -> tuple[_Bound | None, _Bound | None]:
    """The tightest lowest and highest age the criteria admit: an inclusion's comparison (alone or in all_of) holds
    for everyone eligible, an exclusion's (alone or in any_of) holds for nobody."""
    lows: list[_Bound] = []
    highs: list[_Bound] = []
    for kind in ("inclusion", "exclusion"):
        for i, criterion in enumerate(getattr(p.eligibility, kind)):
            where = f"eligibility.{kind}[{i}] ({criterion.id})"
            for rule in _conjuncts(criterion.rule, "all_of" if kind == "inclusion" else "any_of"):
                if rule.field != name:
                    continue
                admits = _admitted(rule) if kind == "inclusion" else _excluded(rule)
                lows += [(v, inc, where) for v, inc in admits[0]]
                highs += [(v, inc, where) for v, inc in admits[1]]
    low = max(lows, key=lambda b: (b[0], not b[1]), default=None)
    high = min(highs, key=lambda b: (b[0], b[1]), default=None)
    return low, high


def _conjuncts(rule: Rule, combinator: str) -> Iterator[Rule]:
    children = getattr(rule, combinator)
    if children is None:
        yield rule
        return
    for child in children:
        yield from _conjuncts(child, combinator)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _admitted(rule: Rule) -> tuple[list[tuple[float, bool]], list[tuple[float, bool]]]:
    """(lower bounds, upper bounds) a comparison that holds sets: each (value, inclusive)."""
    if rule.between is not None:
        return [(rule.between[0], True)], [(rule.between[1], True)]
    number = rule.eq if isinstance(rule.eq, int | float) and not isinstance(rule.eq, bool) else None
    lows = [(v, inc) for v, inc in ((rule.ge, True), (rule.gt, False), (number, True)) if v is not None]
    highs = [(v, inc) for v, inc in ((rule.le, True), (rule.lt, False), (number, True)) if v is not None]
    return lows, highs


def _excluded(rule: Rule) -> tuple[list[tuple[float, bool]], list[tuple[float, bool]]]:
    """(lower bounds, upper bounds) an exclusion's comparison sets on who stays: excluded above 85 admits up to 85."""
    lows = [(v, inc) for v, inc in ((rule.lt, True), (rule.le, False)) if v is not None]
    highs = [(v, inc) for v, inc in ((rule.gt, True), (rule.ge, False)) if v is not None]
    return lows, highs
