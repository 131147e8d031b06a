"""Derived clinical scores at every band edge: NEWS2 (RCP 2017, SpO2 scales 1 and 2), PRIEST (Goodacre
et al. 2021), Brixia (Borghesi and Maroldi 2020), the CD4/CD8 ratio and length of stay.

The expected points are copied by hand from the tables in shared/reference/clinical.md, never computed
by the code under test. Each NEWS2 case starts from a record scoring 0 in every parameter and changes
one parameter, so the total equals that parameter's points.
"""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialwright.domain.derivations import (
    DERIVATION_FUNCTIONS,
    brixia_total,
    cd4_cd8_ratio,
    components,
    derive,
    length_of_stay,
    news2,
    news2_band,
    news2_components,
    priest_band,
    priest_components,
    priest_score,
)
from trialwright.protocol.derivations import DERIVATIONS

#: Every NEWS2 parameter at 0 points: RR 16, SpO2 98 on air, SBP 120, pulse 70, alert, 37.0 C.
BASELINE: dict[str, Any] = {
    "resp_rate": 16, "spo2": 98, "on_oxygen": False, "systolic_bp": 120, "pulse": 70,
    "consciousness": "alert", "temperature": 37.0,
}  # fmt: skip

#: The component key for an input, where the two differ.
COMPONENT = {"on_oxygen": "oxygen"}

# NEWS2, Royal College of Physicians 2017, SpO2 scale 1 (clinical.md):
# | Parameter        | 3      | 2      | 1         | 0         | 1         | 2       | 3          |
# | Respiration rate | <=8    |        | 9-11      | 12-20     |           | 21-24   | >=25       |
# | SpO2 scale 1 (%) | <=91   | 92-93  | 94-95     | >=96      |           |         |            |
# | Air or oxygen    |        | oxygen |           | air       |           |         |            |
# | Systolic BP      | <=90   | 91-100 | 101-110   | 111-219   |           |         | >=220      |
# | Pulse            | <=40   |        | 41-50     | 51-90     | 91-110    | 111-130 | >=131      |
# | Consciousness    |        |        |           | alert     |           |         | CVPU       |
# | Temperature (C)  | <=35.0 |        | 35.1-36.0 | 36.1-38.0 | 38.1-39.0 | >=39.1  |            |
NEWS2_EDGES: list[tuple[str, Any, int]] = [
    ("resp_rate", 8, 3), ("resp_rate", 9, 1), ("resp_rate", 11, 1), ("resp_rate", 12, 0),
    ("resp_rate", 20, 0), ("resp_rate", 21, 2), ("resp_rate", 24, 2), ("resp_rate", 25, 3),
    ("spo2", 91, 3), ("spo2", 92, 2), ("spo2", 93, 2), ("spo2", 94, 1), ("spo2", 95, 1), ("spo2", 96, 0),
    ("on_oxygen", True, 2), ("on_oxygen", False, 0),
    ("systolic_bp", 90, 3), ("systolic_bp", 91, 2), ("systolic_bp", 100, 2), ("systolic_bp", 101, 1),
    ("systolic_bp", 110, 1), ("systolic_bp", 111, 0), ("systolic_bp", 219, 0), ("systolic_bp", 220, 3),
    ("pulse", 40, 3), ("pulse", 41, 1), ("pulse", 50, 1), ("pulse", 51, 0), ("pulse", 90, 0),
    ("pulse", 91, 1), ("pulse", 110, 1), ("pulse", 111, 2), ("pulse", 130, 2), ("pulse", 131, 3),
    ("consciousness", "alert", 0), ("consciousness", "new_confusion", 3), ("consciousness", "voice", 3),
    ("consciousness", "pain", 3), ("consciousness", "unresponsive", 3),
    ("temperature", 35.0, 3), ("temperature", 35.1, 1), ("temperature", 36.0, 1), ("temperature", 36.1, 0),
    ("temperature", 38.0, 0), ("temperature", 38.1, 1), ("temperature", 39.0, 1), ("temperature", 39.1, 2),
    # Rounded to one decimal, half up, before banding: 36.05 -> 36.1 (0); 35.04 -> 35.0 (3).
    ("temperature", 36.05, 0), ("temperature", 35.04, 3), ("temperature", 35.05, 1), ("temperature", 39.05, 2),
]  # fmt: skip


@pytest.mark.parametrize(("parameter", "value", "points"), NEWS2_EDGES)
def test_news2_points_at_every_band_edge(parameter: str, value: Any, points: int) -> None:
    vitals = {**BASELINE, parameter: value}
    components = news2_components(**vitals)
    assert components[COMPONENT.get(parameter, parameter)] == points
    assert news2(**vitals) == points  # every other parameter scores 0


# NEWS2 SpO2 scale 2, Royal College of Physicians, National Early Warning Score (NEWS) 2, 2017 chart,
# as checked in shared/reference/clinical.md: for a prescribed target of 88-92% (e.g. hypercapnic
# respiratory failure): <=83: 3; 84-85: 2; 86-87: 1; 88-92, or >=93 on air: 0; 93-94 on oxygen: 1;
# 95-96 on oxygen: 2; >=97 on oxygen: 3. The air-or-oxygen row (oxygen: 2) scores on both scales.
# (spo2, on_oxygen, SpO2 points on scale 2)
NEWS2_SCALE2_EDGES: list[tuple[int, bool, int]] = [
    (50, False, 3), (83, False, 3), (83, True, 3), (84, False, 2), (85, True, 2), (86, False, 1),
    (87, True, 1), (88, False, 0), (88, True, 0), (92, False, 0), (92, True, 0),
    (93, False, 0), (93, True, 1), (94, True, 1), (95, True, 2), (96, True, 2), (97, True, 3),
    (100, True, 3), (94, False, 0), (97, False, 0), (100, False, 0),
]  # fmt: skip


@pytest.mark.parametrize(("spo2", "on_oxygen", "points"), NEWS2_SCALE2_EDGES)
def test_news2_spo2_scale_2_at_every_band_edge(spo2: int, on_oxygen: bool, points: int) -> None:
    vitals = {**BASELINE, "spo2": spo2, "on_oxygen": on_oxygen}
    parts = news2_components(**vitals, spo2_scale2=True)
    assert parts["spo2"] == points
    assert parts["oxygen"] == (2 if on_oxygen else 0)
    assert news2(**vitals, spo2_scale2=True) == points + (2 if on_oxygen else 0)


@pytest.mark.parametrize(("spo2", "on_oxygen", "scale1", "scale2"), [
    (88, True, 3, 0),   # the target range of scale 2 scores 0 there, 3 on scale 1
    (97, True, 0, 3),   # above target on oxygen: 3 on scale 2, 0 on scale 1
    (93, False, 2, 0),
])  # fmt: skip
def test_the_same_reading_scores_by_the_participants_scale(
    spo2: int, on_oxygen: bool, scale1: int, scale2: int
) -> None:
    vitals = {**BASELINE, "spo2": spo2, "on_oxygen": on_oxygen}
    assert news2_components(**vitals)["spo2"] == scale1  # no scale input: scale 1, as before
    assert news2_components(**vitals, spo2_scale2=False)["spo2"] == scale1
    assert news2_components(**vitals, spo2_scale2=True)["spo2"] == scale2
    assert derive("news2", {**vitals, "spo2_scale2": True}) == scale2 + (2 if on_oxygen else 0)
    assert derive("news2_band", {**vitals, "spo2_scale2": True}) == news2_band(**vitals, spo2_scale2=True)


def test_news2_is_not_guessed_while_the_scale_field_is_empty() -> None:
    assert derive("news2", {**BASELINE, "spo2_scale2": None}) is None
    assert components("news2", {**BASELINE, "spo2_scale2": None}) is None


def test_priest_stays_on_scale_1() -> None:
    # Goodacre et al. 2021 derived PRIEST from the NEWS2 parameters on scale 1; it takes no scale input.
    assert "spo2_scale2" not in inspect.signature(priest_components).parameters


def test_news2_components_are_named_per_parameter() -> None:
    assert news2_components(**BASELINE) == {
        "resp_rate": 0, "spo2": 0, "oxygen": 0, "systolic_bp": 0, "pulse": 0, "consciousness": 0, "temperature": 0,
    }  # fmt: skip


def test_an_unknown_consciousness_code_is_refused_naming_the_codes() -> None:
    with pytest.raises(ValueError, match="alert, new_confusion, voice, pain, unresponsive"):
        news2_components(**{**BASELINE, "consciousness": "drowsy"})


@pytest.mark.parametrize(
    ("changes", "total", "band"),
    [
        ({}, 0, "low"),
        ({"resp_rate": 21, "pulse": 111}, 4, "low"),  # 2 + 2: 4 with no single 3
        ({"consciousness": "voice"}, 3, "low-medium"),  # 3 from a single parameter
        ({"spo2": 91, "temperature": 38.1}, 4, "low-medium"),  # 3 + 1: a single 3 within 0-4
        ({"resp_rate": 21, "on_oxygen": True, "spo2": 95}, 5, "medium"),  # 2 + 2 + 1
        ({"resp_rate": 21, "on_oxygen": True, "spo2": 94, "pulse": 91}, 6, "medium"),  # 2 + 2 + 1 + 1
        ({"systolic_bp": 90, "on_oxygen": True}, 5, "medium"),  # a 3 in a total of 5 is medium, not low-medium
        ({"resp_rate": 25, "on_oxygen": True, "spo2": 92}, 7, "high"),  # 3 + 2 + 2
    ],
)
def test_news2_band_at_its_edges(changes: dict[str, Any], total: int, band: str) -> None:
    vitals = {**BASELINE, **changes}
    assert news2(**vitals) == total
    assert news2_band(**vitals) == band


#: A patient with several abnormal parameters, scored by hand from the table above.
WORKED: dict[str, Any] = {
    "resp_rate": 23,  # 21-24: 2
    "spo2": 93,  # 92-93: 2
    "on_oxygen": True,  # oxygen: 2
    "systolic_bp": 105,  # 101-110: 1
    "pulse": 112,  # 111-130: 2
    "consciousness": "alert",  # 0
    "temperature": 38.6,  # 38.1-39.0: 1
}  # total 2 + 2 + 2 + 1 + 2 + 0 + 1 = 10: high


def test_a_worked_news2_example() -> None:
    assert news2_components(**WORKED) == {
        "resp_rate": 2, "spo2": 2, "oxygen": 2, "systolic_bp": 1, "pulse": 2, "consciousness": 0, "temperature": 1,
    }  # fmt: skip
    assert news2(**WORKED) == 10
    assert news2_band(**WORKED) == "high"


# --- PRIEST -----------------------------------------------------------------------------------------

#: The first trial's protocol parameter (Goodacre 2021: 16-49: 0; 50-65: 2; 66-80: 3; >80: 4).
AGE_BANDS = [[16, 49, 0], [50, 65, 2], [66, 80, 3], [81, 200, 4]]
WOMAN_30: dict[str, Any] = {"age": 30, "sex": "female", "performance_status": "0", "age_bands": AGE_BANDS}


@pytest.mark.parametrize(("age", "points"), [(16, 0), (49, 0), (50, 2), (65, 2), (66, 3), (80, 3), (81, 4), (200, 4)])
def test_priest_age_points_at_the_protocol_band_edges(age: int, points: int) -> None:
    parts = priest_components(**BASELINE, **{**WOMAN_30, "age": age})
    assert parts["age"] == points
    assert priest_score(**BASELINE, **{**WOMAN_30, "age": age}) == points


@pytest.mark.parametrize("age", [15, 201])
def test_an_age_in_no_band_is_refused(age: int) -> None:
    with pytest.raises(ValueError, match=f"age {age} is in none of the protocol's PRIEST age bands"):
        priest_components(**BASELINE, **{**WOMAN_30, "age": age})


def test_priest_sex_points() -> None:
    assert priest_components(**BASELINE, **WOMAN_30)["sex"] == 0
    assert priest_components(**BASELINE, **{**WOMAN_30, "sex": "male"})["sex"] == 1
    with pytest.raises(ValueError, match="sex must be one of female, male"):
        priest_components(**BASELINE, **{**WOMAN_30, "sex": "other"})


@pytest.mark.parametrize("level", [0, 1, 2, 3, 4])
def test_priest_performance_status_points_are_the_level(level: int) -> None:
    for status in (level, str(level)):  # the form's choice code, or an int
        parts = priest_components(**BASELINE, **{**WOMAN_30, "performance_status": status})
        assert parts["performance_status"] == level


@pytest.mark.parametrize("status", ["5", 5, -1, "x", True, 2.5])
def test_a_performance_status_outside_0_to_4_is_refused(status: Any) -> None:
    with pytest.raises(ValueError, match="performance status must be 0-4"):
        priest_components(**BASELINE, **{**WOMAN_30, "performance_status": status})


def test_priest_components_add_age_sex_and_performance_to_the_news2_points() -> None:
    parts = priest_components(**BASELINE, **WOMAN_30)
    assert list(parts) == [
        "resp_rate", "spo2", "oxygen", "systolic_bp", "pulse", "consciousness", "temperature",
        "age", "sex", "performance_status",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "score", "band"),
    [
        ({"sex": "male", "performance_status": "3"}, 4, "low risk"),  # 0 + 1 + 3: 4 is low risk
        ({"sex": "male", "performance_status": "4"}, 5, "not low risk"),  # 0 + 1 + 4: above 4
        ({"age": 50, "performance_status": "2"}, 4, "low risk"),  # age 2 + performance 2
        ({"age": 66, "performance_status": "2"}, 5, "not low risk"),  # age 3 + performance 2
    ],
)
def test_priest_band_at_the_threshold(changes: dict[str, Any], score: int, band: str) -> None:
    inputs = {**BASELINE, **WOMAN_30, **changes}
    assert priest_score(**inputs) == score
    assert priest_band(**inputs) == band


def test_a_worked_priest_example() -> None:
    # The NEWS2 worked example (10) + age 58 (50-65: 2) + male (1) + performance status 2 (2) = 15.
    inputs = {**WORKED, "age": 58, "sex": "male", "performance_status": "2", "age_bands": AGE_BANDS}
    parts = priest_components(**inputs)
    assert (parts["age"], parts["sex"], parts["performance_status"]) == (2, 1, 2)
    assert priest_score(**inputs) == 15
    assert priest_band(**inputs) == "not low risk"


def test_the_priest_maximum_is_29() -> None:
    # RR 5 (3), SpO2 80 (3), oxygen (2), SBP 80 (3), pulse 30 (3), unresponsive (3), 34.0 C (3) = 20;
    # + age 90 (4) + male (1) + performance status 4 (4) = 29.
    worst = {"resp_rate": 5, "spo2": 80, "on_oxygen": True, "systolic_bp": 80, "pulse": 30,
             "consciousness": "unresponsive", "temperature": 34.0}  # fmt: skip
    assert news2(**worst) == 20
    assert priest_score(**worst, age=90, sex="male", performance_status=4, age_bands=AGE_BANDS) == 29


# --- Brixia, CD4/CD8, length of stay ----------------------------------------------------------------

ZONES = ("zone_a", "zone_b", "zone_c", "zone_d", "zone_e", "zone_f")


def test_brixia_totals() -> None:
    assert brixia_total(**dict.fromkeys(ZONES, 0)) == 0
    assert brixia_total(**dict.fromkeys(ZONES, 3)) == 18
    # clinical.md's example "ABC/DEF 123/012, 9": A 1, B 2, C 3, D 0, E 1, F 2.
    assert brixia_total(zone_a=1, zone_b=2, zone_c=3, zone_d=0, zone_e=1, zone_f=2) == 9


@pytest.mark.parametrize(("zone", "points"), [("zone_c", 4), ("zone_f", -1)])
def test_a_brixia_zone_outside_0_to_3_is_refused_by_name(zone: str, points: int) -> None:
    with pytest.raises(ValueError, match=f"{zone} must be 0-3"):
        brixia_total(**{**dict.fromkeys(ZONES, 0), zone: points})


def test_cd4_cd8_ratio() -> None:
    assert cd4_cd8_ratio(800, 400) == 2.0
    assert cd4_cd8_ratio(350.0, 500.0) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="cd8 is zero"):
        cd4_cd8_ratio(800, 0)


def test_length_of_stay() -> None:
    assert length_of_stay(dt.date(2021, 5, 20), dt.date(2021, 5, 20)) == 0
    assert length_of_stay(dt.date(2021, 5, 28), dt.date(2021, 6, 3)) == 6  # across a month end
    assert length_of_stay(dt.date(2020, 2, 27), dt.date(2020, 3, 2)) == 4  # across 29 February
    assert length_of_stay(dt.date(2021, 12, 30), dt.date(2022, 1, 2)) == 3  # across a year end
    # Datetimes count by their calendar date: late evening to early morning is one day.
    assert length_of_stay(dt.datetime(2021, 5, 20, 23, 50), dt.datetime(2021, 5, 21, 0, 10)) == 1  # noqa: DTZ001
    assert length_of_stay(dt.datetime(2021, 5, 20, 9, 0), dt.date(2021, 5, 25)) == 5  # noqa: DTZ001
    with pytest.raises(ValueError, match="the end of the stay is before the admission"):
        length_of_stay(dt.date(2021, 6, 3), dt.date(2021, 5, 28))


# --- derive(): the registry the protocol's derived fields go through -------------------------------


def test_every_protocol_derivation_is_implemented_with_the_protocol_input_roles() -> None:
    assert set(DERIVATION_FUNCTIONS) == set(DERIVATIONS)
    for name, roles in DERIVATIONS.items():
        parameters = list(inspect.signature(DERIVATION_FUNCTIONS[name]).parameters)
        assert parameters[: len(roles)] == list(roles), name


def test_derive_gives_none_when_any_input_is_missing() -> None:
    assert derive("news2", {**BASELINE, "temperature": None}) is None
    assert derive("cd4_cd8_ratio", {"cd4": 800, "cd8": None}) is None
    assert derive("priest_score", {**BASELINE, **WOMAN_30, "age": None}) is None


def test_derive_passes_the_protocol_parameters_as_keyword_arguments() -> None:
    inputs = {**BASELINE, "age": 58, "sex": "male", "performance_status": "1"}
    assert derive("priest_score", inputs, {"age_bands": AGE_BANDS}) == 2 + 1 + 1
    assert derive("priest_band", inputs, {"age_bands": AGE_BANDS}) == "low risk"
    assert derive("news2", WORKED) == 10
    assert derive("news2_band", WORKED, {}) == "high"
    assert derive("brixia_total", dict.fromkeys(ZONES, 3)) == 18
    assert derive("length_of_stay", {"admission": dt.date(2021, 5, 28), "end": dt.date(2021, 6, 3)}) == 6


def test_derive_refuses_a_missing_parameter_and_an_unknown_name() -> None:
    inputs = {**BASELINE, "age": 58, "sex": "male", "performance_status": "1"}
    with pytest.raises(ValueError, match="derivation 'priest_band' needs age_bands"):
        derive("priest_band", inputs)
    with pytest.raises(NotImplementedError, match="'sofa'"):
        derive("sofa", {"x": 1})


def test_components_give_the_parts_behind_news2_and_priest() -> None:
    news2_parts = {"resp_rate": 2, "spo2": 2, "oxygen": 2, "systolic_bp": 1, "pulse": 2, "consciousness": 0,
                   "temperature": 1}  # fmt: skip
    assert components("news2", WORKED) == components("news2_band", WORKED) == news2_parts
    inputs = {**WORKED, "age": 58, "sex": "male", "performance_status": "2"}
    priest_parts = {**news2_parts, "age": 2, "sex": 1, "performance_status": 2}
    assert components("priest_score", inputs, {"age_bands": AGE_BANDS}) == priest_parts
    assert components("priest_band", inputs, {"age_bands": AGE_BANDS}) == priest_parts
    assert components("news2", {**WORKED, "spo2": None}) is None  # an input is missing
    assert components("brixia_total", dict.fromkeys(ZONES, 1)) is None  # its parts are its inputs
    with pytest.raises(ValueError, match="needs age_bands"):
        components("priest_score", inputs)


# --- Invariant ------------------------------------------------------------------------------------


@given(
    resp_rate=st.integers(0, 80), spo2=st.integers(50, 100), on_oxygen=st.booleans(),
    systolic_bp=st.integers(40, 300), pulse=st.integers(20, 250),
    consciousness=st.sampled_from(["alert", "new_confusion", "voice", "pain", "unresponsive"]),
    temperature=st.floats(30.0, 43.0) | st.decimals(30, 43, places=1).map(float),
)  # fmt: skip
def test_news2_is_the_sum_of_its_components_within_0_and_20(**vitals: Any) -> None:
    parts = news2_components(**vitals)
    total = news2(**vitals)
    assert total == sum(parts.values())
    assert 0 <= total <= 20
    assert all(points in {0, 1, 2, 3} for points in parts.values())
