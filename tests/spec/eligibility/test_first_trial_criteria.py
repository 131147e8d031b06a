"""The first trial's eligibility, criterion by criterion, at every boundary.

Each row: the values that differ from an eligible patient, and the decision with the criteria that
decide it. Values are validated first, as the screening form will do.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.domain.derivations import age_at, pf_ratio
from trialwright.domain.eligibility import Decision, ScreeningValueError, evaluate, validate_values
from trialwright.protocol import load_protocol

P = load_protocol(FIRST_PROTOCOL).protocol

EXCLUSIONS = [
    "malignancy", "hepatic_failure", "renal_failure", "lung_transplant", "lung_surgery", "bone_marrow_transplant",
    "autoimmune_disease", "metabolic_disease", "dialysis", "contagious_infection", "active_epilepsy",
    "coagulopathy", "trauma", "concurrent_trial",
]  # fmt: skip

ELIGIBLE: dict[str, Any] = {
    "age": 45, "sex": "male", "pcr_positive": True, "pao2_mmhg": 90, "fio2": 0.6,  # P/F 150
    "on_oxygen": True, "spo2_on_oxygen": 88, "bilateral_infiltrates": True, "informed_consent": True,
    **dict.fromkeys(EXCLUSIONS, False),
}  # fmt: skip


def decide(**changes: Any):  # type: ignore[no-untyped-def]
    values = {**ELIGIBLE, **changes}
    return evaluate(P, validate_values(P, {k: v for k, v in values.items() if v is not None}))


CASES = [
    ("eligible", {}, Decision.ELIGIBLE, []),
    ("age 17", {"age": 17}, Decision.NOT_ELIGIBLE, ["I1"]),
    ("age 18", {"age": 18}, Decision.ELIGIBLE, []),
    ("age 65", {"age": 65}, Decision.ELIGIBLE, []),
    ("age 66", {"age": 66}, Decision.NOT_ELIGIBLE, ["I1"]),
    ("PCR negative", {"pcr_positive": False}, Decision.NOT_ELIGIBLE, ["I2"]),
    ("P/F just below 200 (199.8)", {"pao2_mmhg": 99.9, "fio2": 0.5}, Decision.ELIGIBLE, []),
    ("P/F exactly 200", {"pao2_mmhg": 100, "fio2": 0.5}, Decision.NOT_ELIGIBLE, ["I3"]),
    ("P/F just above 200 (200.2)", {"pao2_mmhg": 100.1, "fio2": 0.5}, Decision.NOT_ELIGIBLE, ["I3"]),
    ("SpO2 92 on oxygen", {"spo2_on_oxygen": 92}, Decision.ELIGIBLE, []),
    ("SpO2 93 on oxygen", {"spo2_on_oxygen": 93}, Decision.NOT_ELIGIBLE, ["I4"]),
    ("not on oxygen", {"on_oxygen": False}, Decision.NOT_ELIGIBLE, ["I4"]),
    ("no bilateral infiltrates", {"bilateral_infiltrates": False}, Decision.NOT_ELIGIBLE, ["I5"]),
    ("no written consent", {"informed_consent": False}, Decision.NOT_ELIGIBLE, ["I6"]),
    ("pregnant woman", {"sex": "female", "pregnant": True}, Decision.NOT_ELIGIBLE, ["E2"]),
    ("woman not pregnant", {"sex": "female", "pregnant": False}, Decision.ELIGIBLE, []),
    ("two failures at once", {"age": 70, "dialysis": True}, Decision.NOT_ELIGIBLE, ["I1", "E10"]),
    *[
        (f"exclusion: {name}", {name: True}, Decision.NOT_ELIGIBLE, [c.id])
        for name in EXCLUSIONS
        for c in P.eligibility.exclusion
        if c.rule.field == name
    ],
]


@pytest.mark.parametrize(("case", "changes", "decision", "failed"), CASES, ids=[c[0] for c in CASES])
def test_criteria_at_their_boundaries(
    case: str, changes: dict[str, Any], decision: Decision, failed: list[str]
) -> None:
    result = decide(**changes)
    assert result.decision is decision
    assert [r.id for r in result.failed] == failed


def test_every_criterion_of_the_first_trial_is_covered() -> None:
    decided = {f for _, _, _, failed in CASES for f in failed}
    assert decided == {c.id for c in (*P.eligibility.inclusion, *P.eligibility.exclusion)}


def test_a_failed_criterion_shows_the_value_that_failed_it() -> None:
    (failed,) = decide(pao2_mmhg=100, fio2=0.5).failed
    assert failed.id == "I3" and failed.values == {"pf_ratio": 200.0}


@pytest.mark.parametrize(
    ("missing_field", "needed"),
    [("age", ["age"]), ("pao2_mmhg", ["pao2_mmhg"]), ("fio2", ["fio2"]), ("malignancy", ["malignancy"])],
)
def test_missing_values_make_the_decision_incomplete(missing_field: str, needed: list[str]) -> None:
    result = decide(**{missing_field: None})
    assert result.decision is Decision.INCOMPLETE and list(result.missing) == needed


def test_pregnancy_is_asked_only_of_women() -> None:
    assert decide(sex="male").decision is Decision.ELIGIBLE
    woman = decide(sex="female")
    assert woman.decision is Decision.INCOMPLETE and woman.missing == ("pregnant",)


def test_a_failure_is_known_before_everything_is_entered() -> None:
    result = evaluate(P, validate_values(P, {"age": 80}))
    assert result.decision is Decision.NOT_ELIGIBLE and [r.id for r in result.failed] == ["I1"]


def test_fio2_in_percent_is_converted() -> None:
    values = validate_values(P, {"fio2": {"value": 50, "unit": "%"}, "pao2_mmhg": 99})
    assert values["fio2"] == pytest.approx(0.5)
    assert evaluate(P, {**ELIGIBLE, **values}).values["pf_ratio"] == pytest.approx(198)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"fio2": {"value": 150, "unit": "%"}}, "fio2: 150 % is outside the plausible range 0.21 to 1"),
        ({"age": 300}, "age: 300 is outside the plausible range 0 to 120 years"),
        ({"pao2_mmhg": -5}, "pao2_mmhg: -5 is outside the plausible range 20 to 700 mmHg"),
        ({"age": "forty"}, "age: must be a whole number"),
        ({"sex": "unknown"}, "sex: must be one of female, male"),
        ({"pf_ratio": 150}, "pf_ratio: is derived (pf_ratio) and cannot be entered"),
        ({"fio2": {"value": 50, "unit": "permille"}}, "fio2: unknown unit 'permille'"),
        ({"shoe_size": 42}, "shoe_size: not a screening field"),
    ],
)
def test_implausible_values_are_refused_naming_the_field_and_rule(raw: dict[str, Any], words: str) -> None:
    with pytest.raises(ScreeningValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        validate_values(P, raw)


def test_a_number_typed_in_persian_digits_with_the_persian_decimal_separator_is_read_as_on_the_forms() -> None:
    """A screening value is read as a form value is (``domain.numerals.typed_number``): ``۰٫۴۵`` is 0.45, ``۴۰`` is
    40; a comma is refused, never guessed."""
    values = validate_values(P, {"fio2": "۰٫۴۵", "age": "۴۰", "pao2_mmhg": "٨٠٫٥"})
    assert (values["fio2"], values["age"], values["pao2_mmhg"]) == (0.45, 40, 80.5)
    with pytest.raises(ScreeningValueError, match="no thousands separator"):
        validate_values(P, {"pao2_mmhg": "1,000"})
    with pytest.raises(ScreeningValueError, match="fio2: must be a finite number"):
        validate_values(P, {"fio2": "nan"})


@given(pao2=st.floats(20, 700), fio2=st.floats(0.21, 1.0))
def test_the_pf_rule_agrees_with_the_ratio(pao2: float, fio2: float) -> None:
    """I3 reads the ratio at the protocol's 1 decimal place (``decimals``): the value read is a whole number of
    tenths within half a tenth of PaO2 / FiO2, and "P/F < 200" holds exactly when that value is below 200."""
    result = decide(pao2_mmhg=pao2, fio2=fio2)
    i3 = next(r for r in result.results if r.id == "I3")
    read = result.values["pf_ratio"]
    assert abs(read * 10 - round(read * 10)) < 1e-6 and abs(read - pao2 / fio2) <= 0.05 + 1e-9
    assert i3.holds is (read < 200)
    assert i3.holds is (pao2 / fio2 < 199.95) or abs(pao2 / fio2 - 199.95) < 1e-9
    assert pf_ratio(pao2, fio2) == pytest.approx(pao2 / fio2)


def test_age_in_completed_years() -> None:
    import datetime as dt

    assert age_at(dt.date(2003, 5, 20), dt.date(2021, 5, 19)) == 17
    assert age_at(dt.date(2003, 5, 20), dt.date(2021, 5, 20)) == 18
    assert age_at(dt.date(2000, 2, 29), dt.date(2021, 2, 28)) == 20
