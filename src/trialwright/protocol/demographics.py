"""Where a participant's age and sex are recorded, for the exports' demographics (SDTM DM, FHIR Patient).

Nothing is looked up from a field's name: the protocol says which fields hold the age and the sex, first
recorded wins, and how its sex codes read in CDISC controlled terminology::

    demographics:
      age: {from: [demographics.age_at_enrolment, screening.age], unit: years}
      sex: {from: [demographics.sex, screening.sex], codes: {female: F, male: M}}

A source is ``form.field`` or ``screening.field``. Without this section (or one of its parts) DM leaves AGE
and SEX empty (SEX as U) and the FHIR Patient has no gender; ``protocol check`` notes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field, ValidationInfo, field_validator

from trialwright.protocol.base import ProtocolModel, stored_text
from trialwright.protocol.cdisc_ct import sdtm_ct
from trialwright.protocol.references import Found, field_ref, unknown

if TYPE_CHECKING:
    from trialwright.protocol.model import Protocol

__all__ = ["AgeSource", "Demographics", "SexSource", "demographics_checks", "fhir_gender"]

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
    forms = {f.id: f for f in p.forms}
    screening = {f.id: f for f in p.eligibility.screening_fields}
    for part, kinds in (("age", {"integer", "decimal"}), ("sex", {"choice"})):
        source = getattr(d, part)
        if source is None:
            continue
        for i, ref in enumerate(source.sources):
            path = f"demographics.{part}.from[{i}]"
            where, _, name = ref.partition(".")
            if where != "screening":
                found = list(field_ref(forms, ref, path, kinds))
                yield from found
                if part == "sex" and not found:
                    yield from _sex_codes(d, [c.code for c in forms[where].field(name).choices], ref)
            elif name not in screening:
                yield path, unknown(name, screening, "screening field")
            elif screening[name].type not in kinds:
                yield path, f"{ref} is a {screening[name].type} field; this needs {' or '.join(sorted(kinds))}"
            elif part == "sex":
                yield from _sex_codes(d, screening[name].codes, ref)


def _sex_codes(d: Demographics, choices: list[str], ref: str) -> Iterator[Found]:
    if d.sex is not None and (missing := [c for c in choices if c not in d.sex.codes]):
        yield "demographics.sex.codes", (
            f"{ref}'s choice {', '.join(missing)} has no CDISC SEX value (F, M, U or INTERSEX)"
        )
