"""``screening.<field>`` is a source wherever demographics takes one: Table 1 and the IPD's quasi-identifiers too.

A new user's walk (walk 5, F8): ``demographics`` accepted ``screening.age`` while ``analysis_plan.baseline_table``
and ``deidentification.quasi_identifiers`` refused it as "unknown form 'screening'". All three now read a reference
by one rule (``protocol.sources``): ``form.field``, or ``screening.field`` for a field of the screening form. What
``protocol check`` refuses, naming the file's line, the path and the rule:

* a screening field the protocol does not declare (the known ones listed), in either list;
* a screening field of the age (one of demographics.age's sources) as a quasi-identifier when it is not the
  ``age_field``: the package keeps its quasi-identifiers, so that age would be shared exactly, undoing the bands.
"""

from __future__ import annotations

import pytest

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.protocol import ProtocolError, load_protocol_text

FIRST = FIRST_PROTOCOL.read_text(encoding="utf-8")
TABLE = "  baseline_table:\n    - demographics.age_at_enrolment\n"
QUASI = "  quasi_identifiers: [demographics.sex, age]\n"


def _edited(old: str, new: str) -> str:
    assert FIRST.count(old) == 1, old
    return FIRST.replace(old, new)


def test_baseline_table_and_quasi_identifiers_take_screening_fields() -> None:
    text = _edited(TABLE, "  baseline_table:\n    - screening.sex\n    - screening.pf_ratio\n" + TABLE[17:])
    text = text.replace(QUASI, "  quasi_identifiers: [screening.sex, age]\n")
    p = load_protocol_text(text).protocol
    assert p.analysis_plan is not None and p.analysis_plan.baseline_table[:3] == [
        "screening.sex", "screening.pf_ratio", "demographics.age_at_enrolment"]  # fmt: skip
    assert p.deidentification is not None and p.deidentification.quasi_identifiers == ["screening.sex", "age"]


REFUSED = [
    ("an unknown screening field in Table 1", (TABLE, "  baseline_table:\n    - screening.x\n" + TABLE[17:]),
     "analysis_plan.baseline_table[0]", "unknown screening field 'x' (known: active_epilepsy, age, ",
     "screening.x"),
    ("an unknown screening field as a quasi-identifier", (QUASI, "  quasi_identifiers: [screening.x, age]\n"),
     "deidentification.quasi_identifiers[0]", "unknown screening field 'x' (known: active_epilepsy, age, ",
     "quasi_identifiers"),
    ("the age at screening shared exactly beside the banded age", (QUASI, "  quasi_identifiers: [screening.age]\n"),
     "deidentification.quasi_identifiers[0]", "screening.age holds the age (demographics.age.from[1]) and a "
     "quasi-identifier is shared as recorded, not banded: name it as age_field, or write age", "quasi_identifiers"),
    ("a date in Table 1, which has no row for it (it was counted as yes: 0)",
     (TABLE, "  baseline_table:\n    - screening.pcr_date\n" + TABLE[17:]),
     "analysis_plan.baseline_table[0]", "screening.pcr_date is a date field; this needs boolean or choice or decimal "
     "or integer", "screening.pcr_date"),
    ("a date-time form field in Table 1",
     (TABLE, "  baseline_table:\n    - vitals.assessed_at\n" + TABLE[17:]),
     "analysis_plan.baseline_table[0]", "this needs boolean or choice or decimal or integer", "vitals.assessed_at"),
]  # fmt: skip


@pytest.mark.parametrize(("wrong", "change", "path", "words", "key"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_naming_line_field_and_rule(
    wrong: str, change: tuple[str, str], path: str, words: str, key: str
) -> None:
    text = _edited(*change)
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(text, source="trial.yaml")
    matches = [p for p in caught.value.problems if p.path == path and words in p.message]
    assert matches, caught.value
    line = matches[0].line
    assert line is not None and key in text.splitlines()[line - 1]
    assert f"trial.yaml:{line}: {path}: " in str(caught.value)


def test_a_stored_text_with_a_date_in_table_1_keeps_loading_and_its_row_says_it_is_not_described() -> None:
    """A trial stored before the rule keeps loading (its engine read it), and Table 1 says the row is not described
    instead of counting a date as "yes: 0 (0%)"."""
    import dataclasses
    import datetime as dt

    from tests.spec.analysis.test_blinded_grouping import _subject
    from trialwright.analysis.dataset import AnalysisData, Grouping, Screened
    from trialwright.analysis.engine import analyse

    text = _edited(TABLE, "  baseline_table:\n    - screening.pcr_date\n" + TABLE[17:])
    protocol = load_protocol_text(text, stored=True).protocol
    people = tuple(dataclasses.replace(_subject(i, "Exosomes" if i % 2 else "Placebo")) for i in range(6))
    data = AnalysisData("T", "1", Grouping.BY_ARM, ("Exosomes", "Placebo"), people,
                        Screened(6, 6, 0, 0, {}, 6, 0, 6, 1.0), dt.datetime(2021, 9, 1, tzinfo=dt.UTC), 0,
                        "limit_over_sqrt2")  # fmt: skip
    rows = {r.variable: r for r in analyse(protocol, data, software_version="test", unblinded=True).table_one}
    said = "not described: a date field has no Table 1 row"
    assert rows["screening.pcr_date"].cells == {"Exosomes": said, "Placebo": said}
    assert not any(key.startswith("screening.pcr_date=") for key in rows)
