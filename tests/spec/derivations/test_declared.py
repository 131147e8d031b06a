"""Declared derivations, computed: each rule as a table of inputs and the value (or the note) it gives.

The SOFA bands and the EQ-5D-5L value set are the protocol fragments in ``fragments.py``, loaded through
the protocol loader, so what is tested is what a protocol file declares. Expected values are copied by
hand from the published tables (sources in ``fragments.py`` and beside each table), never computed by
the code under test.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.spec.derivations.fragments import EQ5D_FORM, SOFA_FORM, with_forms
from trialwright.domain.declared import Derived, Missing, derivation_order, evaluate
from trialwright.protocol import load_protocol_text
from trialwright.protocol.declared import Aggregate, Band, DeclaredDerivation, Formula
from trialwright.protocol.derivation_checks import band_problems
from trialwright.protocol.formula import FormulaError, parse, zero_divisors

#: Few examples in CI, no deadline: the machine is shared and a slow example is not a wrong one.
PROPERTY = settings(max_examples=100, deadline=None)

PROTOCOL = load_protocol_text(with_forms(SOFA_FORM, EQ5D_FORM)).protocol


def declared(form: str, field: str) -> DeclaredDerivation:
    spec = PROTOCOL.form(form).field(field).derived
    assert spec is not None and not hasattr(spec, "inputs")
    return spec  # type: ignore[return-value]


def aggregate(kind: str, missing: Any = "refuse", when: Any = None, fields: str = "a b c d") -> Aggregate:
    spec: dict[str, Any] = {"kind": kind, "fields": fields.split(), "missing": missing}
    if when is not None:
        spec["when"] = when
    if when == "present":
        del spec["missing"]
    return Aggregate.model_validate(spec)


def inputs(*values: Any, names: str = "a b c d") -> dict[str, Any]:
    return {n: Missing("empty") if v is None else v for n, v in zip(names.split(), values, strict=True)}


# --- sum, mean, min, max, count, with the missing-data rule -------------------------------------------

# (kind, missing rule, when, the four inputs (None: empty), value, note)
AGGREGATES: list[tuple[str, Any, Any, tuple[Any, ...], float | None, str | None]] = [
    ("sum", "refuse", None, (1, 2, 3, 4), 10, None),
    ("sum", "refuse", None, (1, None, 3, 4), None, "not computed: missing b (empty)"),
    ("sum", {"min_present": 3, "prorate": False}, None, (1, None, 3, 4), 8, "from 3 of 4 inputs; missing b (empty)"),
    ("sum", {"min_present": 3, "prorate": True}, None, (1, None, 3, 4), 8 * 4 / 3,
     "from 3 of 4 inputs, pro-rated x 4/3; missing b (empty)"),
    ("sum", {"min_present": 3, "prorate": True}, None, (1, None, None, 4), None,
     "not computed: 2 of 4 inputs hold a value, 3 needed; missing b (empty), c (empty)"),
    ("sum", {"min_present": 3, "prorate": False}, None, (1, 2, 3, 4), 10, None),
    ("mean", "refuse", None, (1, 2, 3, 4), 2.5, None),
    ("mean", {"min_present": 2}, None, (2, None, 4, None), 3, "from 2 of 4 inputs; missing b (empty), d (empty)"),
    ("min", "refuse", None, (5, 2, 9, 4), 2, None),
    ("max", "refuse", None, (5, 2, 9, 4), 9, None),
    ("max", "refuse", None, (5, 2, None, 4), None, "not computed: missing c (empty)"),
    ("max", {"min_present": 1}, None, (None, None, 7, None), 7,
     "from 1 of 4 inputs; missing a (empty), b (empty), d (empty)"),
    ("count", "refuse", {"ge": 3}, (1, 3, 4, 2), 2, None),
    ("count", "refuse", {"lt": 3}, (1, 3, 4, 2), 2, None),
    ("count", "refuse", {"eq": 4}, (1, 3, 4, 2), 1, None),
    ("count", {"min_present": 2, "prorate": True}, {"ge": 3}, (3, None, 1, 4), 2 * 4 / 3,
     "from 3 of 4 inputs, pro-rated x 4/3; missing b (empty)"),
    ("count", {"min_present": 2, "prorate": False}, {"ge": 3}, (3, None, 1, 4), 2,
     "from 3 of 4 inputs; missing b (empty)"),
    ("count", None, "present", (1, None, None, 4), 2, None),
    ("count", None, "present", (None, None, None, None), 0, None),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "missing", "when", "values", "value", "note"), AGGREGATES)
def test_aggregates_and_their_missing_data_rules(
    kind: str, missing: Any, when: Any, values: tuple[Any, ...], value: float | None, note: str | None
) -> None:
    result = evaluate(aggregate(kind, missing, when), inputs(*values))
    assert result.note == note
    assert result.value == (None if value is None else pytest.approx(value))


def test_the_reason_names_why_each_input_is_missing_never_a_zero() -> None:
    values = {"a": 2, "b": Missing("not done"), "c": Missing("below the LLOQ"), "d": Missing("not computed")}
    assert evaluate(aggregate("sum"), values) == Derived(
        None, "not computed: missing b (not done), c (below the LLOQ), d (not computed)"
    )


def test_a_count_of_codes() -> None:
    spec = aggregate("count", when={"in": ["yes", "unsure"]}, fields="a b c")
    assert evaluate(spec, inputs("yes", "no", "unsure", names="a b c")).value == 2
    spec = aggregate("count", when={"eq": True}, fields="a b c")
    assert evaluate(spec, inputs(True, False, True, names="a b c")).value == 2


@pytest.mark.parametrize(("declaration", "message"), [
    ({"kind": "sum", "fields": ["a", "b"]}, "declare missing: refuse, or missing: {min_present: N"),
    ({"kind": "sum", "fields": ["a", "b"], "missing": {"min_present": 1}}, "must say prorate: true or false"),
    ({"kind": "mean", "fields": ["a", "b"], "missing": {"min_present": 1, "prorate": True}},
     "prorate is for sum and count"),
    ({"kind": "sum", "fields": ["a", "b"], "missing": {"min_present": 3, "prorate": False}}, "more than the 2 fields"),
    ({"kind": "count", "fields": ["a"], "missing": "refuse"}, "a count needs when"),
    ({"kind": "sum", "fields": ["a"], "missing": "refuse", "when": "present"}, "when is only for count"),
    ({"kind": "count", "fields": ["a"], "when": "present", "missing": "refuse"}, "drop missing"),
    ({"kind": "count", "fields": ["a"], "when": {"ge": 1, "lt": 3}, "missing": "refuse"}, "exactly one of"),
    ({"kind": "sum", "fields": ["a", "a"], "missing": "refuse"}, "each field is named once"),
    ({"kind": "sum", "fields": ["a"], "missing": "zero"}, "refuse"),
])  # fmt: skip
def test_an_aggregate_must_say_what_it_does_with_missing_inputs(declaration: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("{", r"\{")):
        Aggregate.model_validate(declaration)


@PROPERTY
@given(
    st.lists(st.one_of(st.none(), st.integers(-1000, 1000), st.floats(-1e6, 1e6)), min_size=1, max_size=12),
    st.integers(1, 12),
    st.booleans(),
)
def test_a_sum_is_pythons_sum_of_the_values_present(values: list[Any], min_present: int, prorate: bool) -> None:
    names = " ".join(f"f{i}" for i in range(len(values)))
    min_present = min(min_present, len(values))
    spec = aggregate("sum", {"min_present": min_present, "prorate": prorate}, fields=names)
    result = evaluate(spec, inputs(*values, names=names))
    present = [v for v in values if v is not None]
    if len(present) < min_present:
        assert result.value is None and result.note is not None and result.note.startswith("not computed")
    elif prorate and len(present) < len(values):
        assert result.value == pytest.approx(sum(present) * len(values) / len(present))
    else:
        assert result.value == sum(present)
    refused = evaluate(aggregate("sum", fields=names), inputs(*values, names=names))
    assert refused.value == (sum(present) if len(present) == len(values) else None)


# --- bands: SOFA (Vincent et al. 1996; the table in fragments.py) --------------------------------------

SOFA_BANDS: list[tuple[str, str, float, int]] = [
    # respiration, PaO2/FiO2 mmHg: >=400 0, <400 1, <300 2, <200 3, <100 4 (support not expressed)
    ("respiration", "blood_gas.pf_ratio", 450, 0), ("respiration", "blood_gas.pf_ratio", 400, 0),
    ("respiration", "blood_gas.pf_ratio", 399.9, 1), ("respiration", "blood_gas.pf_ratio", 300, 1),
    ("respiration", "blood_gas.pf_ratio", 299.9, 2), ("respiration", "blood_gas.pf_ratio", 200, 2),
    ("respiration", "blood_gas.pf_ratio", 199.9, 3), ("respiration", "blood_gas.pf_ratio", 100, 3),
    ("respiration", "blood_gas.pf_ratio", 99.9, 4), ("respiration", "blood_gas.pf_ratio", 40, 4),
    # coagulation, platelets x10^3/uL: >=150 0, <150 1, <100 2, <50 3, <20 4
    ("coagulation", "platelets", 150, 0), ("coagulation", "platelets", 149, 1), ("coagulation", "platelets", 100, 1),
    ("coagulation", "platelets", 99, 2), ("coagulation", "platelets", 50, 2), ("coagulation", "platelets", 49, 3),
    ("coagulation", "platelets", 20, 3), ("coagulation", "platelets", 19, 4), ("coagulation", "platelets", 0, 4),
    # liver, bilirubin mg/dL: <1.2 0, 1.2-1.9 1, 2.0-5.9 2, 6.0-11.9 3, >12.0 4 (12.0 itself: 4)
    ("liver", "bilirubin", 1.1, 0), ("liver", "bilirubin", 1.2, 1), ("liver", "bilirubin", 1.9, 1),
    ("liver", "bilirubin", 2.0, 2), ("liver", "bilirubin", 5.9, 2), ("liver", "bilirubin", 6.0, 3),
    ("liver", "bilirubin", 11.9, 3), ("liver", "bilirubin", 12.0, 4), ("liver", "bilirubin", 25, 4),
    # CNS, Glasgow coma score: 15 0, 13-14 1, 10-12 2, 6-9 3, <6 4
    ("cns", "gcs", 15, 0), ("cns", "gcs", 14, 1), ("cns", "gcs", 13, 1), ("cns", "gcs", 12, 2),
    ("cns", "gcs", 10, 2), ("cns", "gcs", 9, 3), ("cns", "gcs", 6, 3), ("cns", "gcs", 5, 4), ("cns", "gcs", 3, 4),
    # renal, creatinine mg/dL: <1.2 0, 1.2-1.9 1, 2.0-3.4 2, 3.5-4.9 3, >5.0 4 (5.0 itself: 4)
    ("renal_creatinine", "creatinine", 1.1, 0), ("renal_creatinine", "creatinine", 1.2, 1),
    ("renal_creatinine", "creatinine", 1.9, 1), ("renal_creatinine", "creatinine", 2.0, 2),
    ("renal_creatinine", "creatinine", 3.4, 2), ("renal_creatinine", "creatinine", 3.5, 3),
    ("renal_creatinine", "creatinine", 4.9, 3), ("renal_creatinine", "creatinine", 5.0, 4),
    # renal, urine output mL/day: <500 3, <200 4
    ("renal_urine", "urine_output", 500, 0), ("renal_urine", "urine_output", 499, 3),
    ("renal_urine", "urine_output", 200, 3), ("renal_urine", "urine_output", 199, 4),
]  # fmt: skip


@pytest.mark.parametrize(("field", "source", "value", "points"), SOFA_BANDS)
def test_sofa_component_points_at_every_published_cut_off(field: str, source: str, value: float, points: int) -> None:
    assert evaluate(declared("sofa", field), {source: value}) == Derived(points)


@pytest.mark.parametrize(("code", "points"), [
    ("map_ge_70", 0), ("map_lt_70", 1), ("dopamine_le_5_or_dobutamine", 2),
    ("dopamine_gt_5_or_adrenaline_le_01", 3), ("dopamine_gt_15_or_adrenaline_gt_01", 4),
])  # fmt: skip
def test_sofa_cardiovascular_points_by_code(code: str, points: int) -> None:
    assert evaluate(declared("sofa", "cardiovascular_points"), {"cardiovascular": code}) == Derived(points)


def test_a_band_or_code_input_missing_gives_no_points_with_the_reason() -> None:
    assert evaluate(declared("sofa", "liver"), {"bilirubin": Missing("not done")}) == Derived(
        None, "not computed: missing bilirubin (not done)"
    )
    with pytest.raises(ValueError, match="cardiovascular = 'shock' has no points"):
        evaluate(declared("sofa", "cardiovascular_points"), {"cardiovascular": "shock"})


def test_a_worked_sofa_total() -> None:
    # P/F 180 (3), platelets 90 (2), bilirubin 2.5 (2), MAP < 70 (1), GCS 13 (1), creatinine 1.5 (1) with
    # urine 450 mL/day (3): renal is the worse, 3. Total 3 + 2 + 2 + 1 + 1 + 3 = 12; organs at 3 or 4: 2.
    entered = {"blood_gas.pf_ratio": 180, "platelets": 90, "bilirubin": 2.5, "cardiovascular": "map_lt_70",
               "gcs": 13, "creatinine": 1.5, "urine_output": 450}  # fmt: skip
    values = dict(entered)
    for form_id, field_id in derivation_order(PROTOCOL):
        spec = PROTOCOL.form(form_id).field(field_id).derived
        if form_id == "sofa" and isinstance(spec, DeclaredDerivation):
            values[field_id] = evaluate(spec, values).value
    expected = {"respiration": 3, "coagulation": 2, "liver": 2, "cardiovascular_points": 1, "cns": 1,
                "renal_creatinine": 1, "renal_urine": 3, "renal": 3, "sofa_total": 12, "organ_failures": 2}  # fmt: skip
    assert {k: values[k] for k in expected} == expected


def test_renal_takes_the_criterion_recorded_when_urine_output_is_not() -> None:
    result = evaluate(declared("sofa", "renal"), {"renal_creatinine": 2, "renal_urine": Missing("not computed")})
    assert result == Derived(2, "from 1 of 2 inputs; missing renal_urine (not computed)")


def _bands(cuts: list[float], closed_above: list[bool]) -> list[Band]:
    """Bands split at ``cuts``; at each cut the upper band holds the cut when ``closed_above``."""
    bands = []
    for k in range(len(cuts) + 1):
        bound: dict[str, float] = {}
        if k > 0:
            bound["ge" if closed_above[k - 1] else "gt"] = cuts[k - 1]
        if k < len(cuts):
            bound["lt" if closed_above[k] else "le"] = cuts[k]
        bands.append(Band.model_validate({**bound, "points": k}))
    return bands


@PROPERTY
@given(
    st.lists(st.integers(-500, 500), min_size=1, max_size=6, unique=True).map(sorted),
    st.lists(st.booleans(), min_size=6, max_size=6),
    st.lists(st.floats(-600, 600), min_size=1, max_size=20),
)
def test_bands_split_at_cut_points_partition_the_line(cuts: list[int], closed: list[bool], probes: list[float]) -> None:
    bands = _bands([float(c) for c in cuts], closed)
    assert list(band_problems(bands)) == []
    for value in [*probes, *cuts]:
        assert sum(b.holds(value) for b in bands) == 1
    # Taking a middle band away leaves a gap; widening one into the next makes an overlap.
    if len(bands) > 2:
        assert any("in no band" in m for _, m in band_problems(bands[:1] + bands[2:]))
        wider = Band.model_validate({**bands[0].model_dump(exclude_none=True), "lt": None, "le": cuts[0] + 1})
        assert any("overlaps" in m for _, m in band_problems([wider, *bands[1:]]))


@pytest.mark.parametrize(("bands", "kind", "limits", "message"), [
    ([{"lt": 10, "points": 0}, {"gt": 10, "points": 1}], "decimal", None, "values in [10, 10] are in no band"),
    ([{"le": 10, "points": 0}, {"ge": 10, "points": 1}], "decimal", None, "overlaps"),
    ([{"lt": 10, "points": 0}, {"ge": 11, "points": 1}], "decimal", None, "values in [10, 11) are in no band"),
    ([{"le": 10, "points": 0}, {"ge": 11, "points": 1}], "integer", None, None),
    ([{"le": 10, "points": 0}, {"ge": 12, "points": 1}], "integer", None, "whole numbers 11 to 11 are in no band"),
    ([{"ge": 3, "le": 10, "points": 0}, {"ge": 11, "points": 1}], "integer", (3, 15), None),
    ([{"ge": 4, "le": 10, "points": 0}, {"ge": 11, "points": 1}], "integer", (3, 15), "whole numbers 3 to 3"),
    ([{"ge": 0, "points": 0}], "decimal", None, "values below 0 are in no band"),
    ([{"ge": 0, "lt": 5, "points": 0}], "decimal", (0, 5), "values from 5 are in no band"),
    ([{"ge": 0, "le": 5, "points": 0}], "decimal", (0, 5), None),
])  # fmt: skip
def test_gaps_and_overlaps_are_named(
    bands: list[dict[str, float]], kind: str, limits: Any, message: str | None
) -> None:
    found = [m for _, m in band_problems([Band.model_validate(b) for b in bands], kind, limits)]
    assert (found == []) if message is None else any(message in m for m in found), found


# --- value set: EQ-5D-5L, England (Devlin et al., Health Econ 2018;27:7-22) ----------------------------

# Published index values: 11111 = 1 and 55555 = -0.285 (the range of the England value set, Devlin et al.
# 2018); the other states are the England examples of the eq5d R package's tests (Morton and Nijjar,
# tests/testthat/test-eq5d5l.R), an implementation independent of this one.
EQ5D_ENGLAND = [
    ("11111", 1.000), ("55555", -0.285), ("23245", 0.247), ("11112", 0.922), ("11121", 0.937),
    ("11211", 0.950), ("12111", 0.950), ("21111", 0.942),
]  # fmt: skip
DIMENSIONS = ("mobility", "self_care", "usual_activities", "pain_discomfort", "anxiety_depression")


@pytest.mark.parametrize(("state", "index"), EQ5D_ENGLAND)
def test_eq5d_5l_england_index_of_published_states(state: str, index: float) -> None:
    result = evaluate(declared("eq5d", "index"), dict(zip(DIMENSIONS, state, strict=True)))
    assert result.note is None
    assert round(result.value or math.nan, 3) == index


def test_eq5d_without_a_dimension_gives_no_index() -> None:
    values: dict[str, Any] = {**dict(zip(DIMENSIONS, "12345", strict=True)), "self_care": Missing("empty")}
    assert evaluate(declared("eq5d", "index"), values) == Derived(None, "not computed: missing self_care (empty)")


# --- formula --------------------------------------------------------------------------------------------


def formula(text: str) -> Formula:
    return Formula.model_validate({"kind": "formula", "expression": text, "missing": "refuse"})


@pytest.mark.parametrize(("text", "values", "value"), [
    ("a + b * c", {"a": 1, "b": 2, "c": 3}, 7),
    ("(a + b) * c", {"a": 1, "b": 2, "c": 3}, 9),
    ("-a + 10 / b", {"a": 1, "b": 2}, 4),
    ("a - b - c", {"a": 10, "b": 3, "c": 2}, 5),   # left to right
    ("a / b / c", {"a": 12, "b": 3, "c": 2}, 2),
    ("vitals.spo2 / blood_gas.fio2", {"vitals.spo2": 90, "blood_gas.fio2": 0.5}, 180),
    ("2 * (sofa_total - 1.5)", {"sofa_total": 4}, 5),
])  # fmt: skip
def test_formulas_follow_arithmetic(text: str, values: dict[str, float], value: float) -> None:
    assert evaluate(formula(text), values) == Derived(pytest.approx(value))


def test_a_formula_refuses_a_missing_input_and_a_division_by_a_zero_value() -> None:
    assert evaluate(formula("a / b"), {"a": 1, "b": Missing("not done")}) == Derived(
        None, "not computed: missing b (not done)"
    )
    with pytest.raises(ValueError, match=r"division by zero \(\(b - 2\) is 0\)"):
        evaluate(formula("a / (b - 2)"), {"a": 1, "b": 2})


@pytest.mark.parametrize("text", [
    "a ** 2", "abs(a)", "a // 2", "a % 2", "'a'", "a[0]", "a if b else c", "__import__('os').system('true')",
    "a.b.c", "lambda: 1", "True", "a < b", "", "a +", "1j",
])  # fmt: skip
def test_anything_but_arithmetic_is_refused_and_never_run(text: str) -> None:
    with pytest.raises(FormulaError):
        parse(text)


@pytest.mark.parametrize(("text", "zeros"), [
    ("a / 0", ["0"]), ("a / 0.0", ["0"]), ("a / (1 - 1)", ["(1 - 1)"]), ("a / -0", ["-0"]),
    ("a / (2 * 0)", ["(2 * 0)"]),
    ("a / b", []), ("a / (b - b)", []), ("a / 2", []), ("0 / a", []),
])  # fmt: skip
def test_a_division_by_a_written_zero_is_found(text: str, zeros: list[str]) -> None:
    assert list(zero_divisors(parse(text))) == zeros


@PROPERTY
@given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.floats(0.5, 1e3))
def test_a_formula_equals_the_same_arithmetic_in_python(a: float, b: float, c: float) -> None:
    assert evaluate(formula("(a + b) * c - a / c"), {"a": a, "b": b, "c": c}).value == pytest.approx(
        (a + b) * c - a / c
    )
