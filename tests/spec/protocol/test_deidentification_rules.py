"""The de-identification rules of the IPD: what ``protocol check`` accepts and refuses.

A new user's walk: ``deidentification.age_field: screening.age`` was refused as "unknown form 'screening'", though
the age field is "one of demographics.age's fields" and demographics.age takes a screening field; their package then
held no age, and its README said ages were banded and that k-anonymity over nothing passed.

* ``age_field`` is written as demographics.age's sources are: ``form.field`` or ``screening.field``, a number;
* every form field demographics.age reads is the ``age_field`` (banded) or an ``identifier`` (removed): shared as
  recorded it would undo the bands;
* ``age_band_width`` and ``age_top`` band the ``age_field``: stated without one, nothing would be banded;
* the package is issued only when its k-anonymity check passes (docs/exports.md), and the check groups by the
  ``quasi_identifiers``: at least one is declared.

Each refusal names the file's line, the field and the rule; a version stored before these rules keeps loading (its
export is refused naming the rule: tests/spec/exports/test_ipd_screening_age.py).
"""

from __future__ import annotations

import pytest

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.protocol import ProtocolError, load_protocol_text

FIRST = FIRST_PROTOCOL.read_text(encoding="utf-8")
AGE_FIELD = "  age_field: demographics.age_at_enrolment\n"
IDENTIFIERS = "  identifiers: [demographics.birth_date]\n"
REMOVED = "  identifiers: [demographics.birth_date, demographics.age_at_enrolment]\n"
QUASI = "  quasi_identifiers: [demographics.sex, age]\n"
BANDS = "  age_band_width: 20\n  age_top: 89\n"


def _edited(*changes: tuple[str, str]) -> str:
    text = FIRST
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def test_a_screening_field_is_an_age_field_as_demographics_age_takes_it() -> None:
    loaded = load_protocol_text(_edited((AGE_FIELD, "  age_field: screening.age\n"), (IDENTIFIERS, REMOVED)))
    assert loaded.protocol.deidentification is not None
    assert loaded.protocol.deidentification.age_field == "screening.age"


#: (what is wrong, the edits, the path refused, the words of the rule, the key on the reported line)
REFUSED = [
    ("no such screening field", [(AGE_FIELD, "  age_field: screening.agee\n"), (IDENTIFIERS, REMOVED)],
     "deidentification.age_field", "unknown screening field 'agee'", "age_field"),
    ("a screening field that is not a number", [(AGE_FIELD, "  age_field: screening.sex\n"), (IDENTIFIERS, REMOVED)],
     "deidentification.age_field", "screening.sex is a choice field; this needs decimal or integer", "age_field"),
    ("a form's age left unbanded beside a screening age", [(AGE_FIELD, "  age_field: screening.age\n")],
     "deidentification.age_field",
     "demographics.age_at_enrolment holds the age too (demographics.age.from[0]) and would be shared as recorded, "
     "not banded: list it in identifiers (removed) or name it as age_field", "age_field"),
    ("bands without an age to band", [(AGE_FIELD, ""), (IDENTIFIERS, REMOVED), (QUASI, "  quasi_identifiers: "
                                                                                    "[demographics.sex]\n")],
     "deidentification.age_band_width",
     "age_band_width bands the age named by deidentification.age_field, and none is named", "age_band_width"),
    ("no quasi-identifier", [(QUASI, "")], "deidentification.quasi_identifiers",
     "none declared: the IPD is issued only when its k-anonymity check passes", "deidentification"),
]  # fmt: skip


@pytest.mark.parametrize(("wrong", "changes", "path", "words", "key"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_naming_line_field_and_rule(
    wrong: str, changes: list[tuple[str, str]], path: str, words: str, key: str
) -> None:
    text = _edited(*changes)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="trial.yaml")
    matches = [p for p in caught.value.problems if p.path == path and words in p.message]
    assert matches, caught.value
    line = matches[0].line
    assert line is not None and key in text.splitlines()[line - 1]
    assert f"trial.yaml:{line}: {path}: " in str(caught.value)
    if "screening." not in words and "agee" not in words:  # a rule added now: a stored version keeps loading
        load_protocol_text(text, stored=True)
