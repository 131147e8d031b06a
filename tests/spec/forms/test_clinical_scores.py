"""Derived clinical scores at every band edge, from the tables in shared/reference/clinical.md
(NEWS2: RCP 2017, SpO2 scale 1; PRIEST: Goodacre et al. 2021; Brixia: Borghesi and Maroldi 2020).
The expected points are copied from the published tables, not computed by the code under test."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialkit.domain.derivations import (
    brixia_total,
    cd4_cd8_ratio,
    derive,
    length_of_stay,
    news2,
    news2_band,
    news2_components,
    priest_band,
    priest_components,
    priest_score,
)

#: Every NEWS2 parameter at zero points.
NORMAL: dict[str, Any] = {
    "resp_rate": 16, "spo2": 98, "on_oxygen": False, "systolic_bp": 120, "pulse": 70,
    "consciousness": "alert", "temperature": 37.0,
}  # fmt: skip
COMPONENT = {"on_oxygen": "oxygen"}

NEWS2_EDGES = [
    # Respiration rate: <=8: 3; 9-11: 1; 12-20: 0; 21-24: 2; >=25: 3
    ("resp_rate", 8, 3), ("resp_rate", 9, 1), ("resp_rate", 11, 1), ("resp_rate", 12, 0),
    ("resp_rate", 20, 0), ("resp_rate", 21, 2), ("resp_rate", 24, 2), ("resp_rate", 25, 3),
    # SpO2 scale 1: <=91: 3; 92-93: 2; 94-95: 1; >=96: 0
    ("spo2", 91, 3), ("spo2", 92, 2), ("spo2", 93, 2), ("spo2", 94, 1), ("spo2", 95, 1), ("spo2", 96, 0),
    # Air or oxygen: oxygen 2; air 0
    ("on_oxygen", True, 2), ("on_oxygen", False, 0),
    # Systolic BP: <=90: 3; 91-100: 2; 101-110: 1; 111-219: 0; >=220: 3
    ("systolic_bp", 90, 3), ("systolic_bp", 91, 2), ("systolic_bp", 100, 2), ("systolic_bp", 101, 1),
    ("systolic_bp", 110, 1), ("systolic_bp", 111, 0), ("systolic_bp", 219, 0), ("systolic_bp", 220, 3),
    # Pulse: <=40: 3; 41-50: 1; 51-90: 0; 91-110: 1; 111-130: 2; >=131: 3
    ("pulse", 40, 3), ("pulse", 41, 1), ("pulse", 50, 1), ("pulse", 51, 0), ("pulse", 90, 0),
    ("pulse", 91, 1), ("pulse", 110, 1), ("pulse", 111, 2), ("pulse", 130, 2), ("pulse", 131, 3),
    # Consciousness: alert 0; new confusion, voice, pain, unresponsive 3
    ("consciousness", "alert", 0), ("consciousness", "new_confusion", 3), ("consciousness", "voice", 3),
    ("consciousness", "pain", 3), ("consciousness", "unresponsive", 3),
    # Temperature: <=35.0: 3; 35.1-36.0: 1; 36.1-38.0: 0; 38.1-39.0: 1; >=39.1: 2 (one decimal, half up)
    ("temperature", 35.0, 3), ("temperature", 35.1, 1), ("temperature", 36.0, 1), ("temperature", 36.1, 0),
    ("temperature", 38.0, 0), ("temperature", 38.1, 1), ("temperature", 39.0, 1), ("temperature", 39.1, 2),
    ("temperature", 35.04, 3), ("temperature", 35.05, 1), ("temperature", 36.05, 0), ("temperature", 38.05, 1),
]  # fmt: skip


@pytest.mark.parametrize(("parameter", "value", "points"), NEWS2_EDGES)
def test_news2_points_at_every_band_edge(parameter: str, value: Any, points: int) -> None:
    components = news2_components(**{**NORMAL, parameter: value})
    assert components[COMPONENT.get(parameter, parameter)] == points
    assert sum(components.values()) == points == news2(**{**NORMAL, parameter: value})


def test_news2_bands() -> None:
    assert news2_band(**NORMAL) == "low"
    assert news2_band(**{**NORMAL, "resp_rate": 21, "pulse": 111}) == "low"  # 2 + 2 = 4, no single 3
    assert news2_band(**{**NORMAL, "consciousness": "voice"}) == "low-medium"  # 3 from one parameter
    assert news2_band(**{**NORMAL, "resp_rate": 21, "on_oxygen": True, "spo2": 95}) == "medium"  # 2 + 2 + 1
    assert news2_band(**{**NORMAL, "resp_rate": 21, "on_oxygen": True, "spo2": 94, "pulse": 91}) == "medium"  # 6
    assert news2_band(**{**NORMAL, "resp_rate": 25, "on_oxygen": True, "spo2": 92}) == "high"  # 3 + 2 + 2 = 7


def test_a_worked_news2_example() -> None:
    # RR 26 (3), SpO2 90 (3), on oxygen (2), SBP 105 (1), pulse 115 (2), alert (0), 38.5 C (1): 12, high.
    patient = {"resp_rate": 26, "spo2": 90, "on_oxygen": True, "systolic_bp": 105, "pulse": 115,
               "consciousness": "alert", "temperature": 38.5}  # fmt: skip
    assert news2(**patient) == 12 and news2_band(**patient) == "high"
    with pytest.raises(ValueError, match="consciousness must be one of alert"):
        news2(**{**patient, "consciousness": "drowsy"})


BANDS = [[16, 49, 0], [50, 65, 2], [66, 80, 3], [81, 200, 4]]  # the first trial's protocol (Goodacre 2021)


@pytest.mark.parametrize(("age", "points"), [(16, 0), (49, 0), (50, 2), (65, 2), (66, 3), (80, 3), (81, 4)])
def test_priest_age_points_at_the_band_edges(age: int, points: int) -> None:
    parts = priest_components(**NORMAL, age=age, sex="female", performance_status="0", age_bands=BANDS)
    assert parts["age"] == points


def test_priest_sex_performance_and_threshold() -> None:
    base = {**NORMAL, "age": 30, "age_bands": BANDS}
    assert priest_components(**base, sex="male", performance_status="0")["sex"] == 1
    for level in range(5):
        assert priest_components(**base, sex="female", performance_status=str(level))["performance_status"] == level
    assert priest_score(**base, sex="male", performance_status="3") == 4
    assert priest_band(**base, sex="male", performance_status="3") == "low risk"  # 4 is low risk
    assert priest_band(**base, sex="male", performance_status="4") == "not low risk"  # above 4
    with pytest.raises(ValueError, match="age 12 is in none of the protocol's PRIEST age bands"):
        priest_score(**{**base, "age": 12}, sex="male", performance_status="0")


def test_a_worked_priest_example_and_its_maximum() -> None:
    # NEWS2 12 (the worked example above) + age 58 (2) + male (1) + performance status 3 (3) = 18.
    patient = {"resp_rate": 26, "spo2": 90, "on_oxygen": True, "systolic_bp": 105, "pulse": 115,
               "consciousness": "alert", "temperature": 38.5}  # fmt: skip
    assert priest_score(**patient, age=58, sex="male", performance_status="3", age_bands=BANDS) == 18
    worst = {"resp_rate": 5, "spo2": 80, "on_oxygen": True, "systolic_bp": 80, "pulse": 30,
             "consciousness": "unresponsive", "temperature": 34.0}  # fmt: skip
    assert news2(**worst) == 20
    assert priest_score(**worst, age=90, sex="male", performance_status="4", age_bands=BANDS) == 29


def test_brixia_ratio_and_length_of_stay() -> None:
    zones = dict(zip("abcdef", [1, 2, 3, 0, 1, 2], strict=True))  # "ABC/DEF 123/012" = 9
    assert brixia_total(**{f"zone_{k}": v for k, v in zones.items()}) == 9
    assert brixia_total(**{f"zone_{k}": 0 for k in "abcdef"}) == 0
    assert brixia_total(**{f"zone_{k}": 3 for k in "abcdef"}) == 18
    with pytest.raises(ValueError, match="zone_c must be 0-3"):
        brixia_total(**{f"zone_{k}": (4 if k == "c" else 0) for k in "abcdef"})
    assert cd4_cd8_ratio(800, 400) == 2.0
    with pytest.raises(ValueError, match="cd8 is zero"):
        cd4_cd8_ratio(800, 0)
    assert length_of_stay(dt.date(2021, 5, 20), dt.date(2021, 5, 20)) == 0
    assert length_of_stay(dt.date(2021, 5, 28), dt.date(2021, 6, 3)) == 6
    with pytest.raises(ValueError, match="before the admission"):
        length_of_stay(dt.date(2021, 6, 3), dt.date(2021, 5, 28))


def test_derive_passes_parameters_and_gives_none_for_missing_inputs() -> None:
    inputs = {**NORMAL, "age": 58, "sex": "male", "performance_status": "1"}
    assert derive("priest_score", inputs, {"age_bands": BANDS}) == 0 + 2 + 1 + 1
    assert derive("priest_score", {**inputs, "pulse": None}, {"age_bands": BANDS}) is None
    with pytest.raises(NotImplementedError):
        derive("sofa", {"x": 1})


@given(
    resp_rate=st.integers(0, 80), spo2=st.integers(50, 100), on_oxygen=st.booleans(),
    systolic_bp=st.integers(40, 300), pulse=st.integers(20, 250),
    consciousness=st.sampled_from(["alert", "new_confusion", "voice", "pain", "unresponsive"]),
    temperature=st.decimals(30, 43, places=1).map(float),
)  # fmt: skip
def test_news2_is_the_sum_of_its_parts_within_0_and_20(**vitals: Any) -> None:
    parts = news2_components(**vitals)
    assert news2(**vitals) == sum(parts.values()) and 0 <= sum(parts.values()) <= 20
    assert all(p in {0, 1, 2, 3} for p in parts.values())
