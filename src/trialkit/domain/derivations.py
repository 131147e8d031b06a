"""Derived values the engine computes, never typed in: one small function per derivation name.

The protocol names a derivation (``trialkit.protocol.DERIVATIONS``) and binds its inputs to fields; this
module computes it. A derivation returns None when any input is missing; a protocol's ``parameters``
(e.g. PRIEST's age bands) are passed as keyword arguments.

Sources (see ``shared/reference/clinical.md``): NEWS2, Royal College of Physicians 2017 (SpO2 scale 1);
PRIEST, Goodacre et al., PLoS ONE 2021;16:e0245840; Brixia, Borghesi and Maroldi, Radiol Med
2020;125:509-513.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = [
    "DERIVATION_FUNCTIONS",
    "age_at",
    "brixia_total",
    "cd4_cd8_ratio",
    "derive",
    "length_of_stay",
    "news2",
    "news2_band",
    "news2_components",
    "pf_ratio",
    "priest_band",
    "priest_components",
    "priest_score",
    "sf_ratio",
]


def pf_ratio(pao2_mmhg: float, fio2: float) -> float:
    """PaO2 (mmHg) divided by FiO2 (a fraction, 0.21-1.00), in mmHg (Berlin definition)."""
    if not 0.21 <= fio2 <= 1.0:
        raise ValueError(f"fio2 must be a fraction from 0.21 to 1.00 (got {fio2:g})")
    return pao2_mmhg / fio2


def sf_ratio(spo2: float, fio2: float) -> float:
    """SpO2 (%) divided by FiO2 (fraction); a surrogate for P/F only when SpO2 <= 97%."""
    if not 0.21 <= fio2 <= 1.0:
        raise ValueError(f"fio2 must be a fraction from 0.21 to 1.00 (got {fio2:g})")
    return spo2 / fio2


def age_at(birth_date: dt.date, on_date: dt.date) -> int:
    """Age in completed years on a date."""
    if on_date < birth_date:
        raise ValueError("the date is before the date of birth")
    years = on_date.year - birth_date.year
    return years - ((on_date.month, on_date.day) < (birth_date.month, birth_date.day))


def _band(value: float, bands: Sequence[tuple[float, float, int]]) -> int:
    for low, high, points in bands:
        if low <= value <= high:
            return points
    raise ValueError(f"{value:g} is in no band")


_INF = float("inf")
_RESP = ((-_INF, 8, 3), (9, 11, 1), (12, 20, 0), (21, 24, 2), (25, _INF, 3))
_SPO2_SCALE1 = ((-_INF, 91, 3), (92, 93, 2), (94, 95, 1), (96, _INF, 0))
_SYSTOLIC = ((-_INF, 90, 3), (91, 100, 2), (101, 110, 1), (111, 219, 0), (220, _INF, 3))
_PULSE = ((-_INF, 40, 3), (41, 50, 1), (51, 90, 0), (91, 110, 1), (111, 130, 2), (131, _INF, 3))
_TEMPERATURE = ((-_INF, 35.0, 3), (35.1, 36.0, 1), (36.1, 38.0, 0), (38.1, 39.0, 1), (39.1, _INF, 2))
_CONSCIOUSNESS = {"alert": 0, "new_confusion": 3, "voice": 3, "pain": 3, "unresponsive": 3}


def news2_components(
    resp_rate: float,
    spo2: float,
    on_oxygen: bool,
    systolic_bp: float,
    pulse: float,
    consciousness: str,
    temperature: float,
) -> dict[str, int]:
    """NEWS2 points per parameter (SpO2 scale 1).

    Whole-number parameters are rounded half up to whole numbers, and the temperature to one decimal,
    before banding, so that a value between two bands (e.g. 35.05 C) belongs to exactly one of them.
    """
    if consciousness not in _CONSCIOUSNESS:
        raise ValueError(f"consciousness must be one of {', '.join(_CONSCIOUSNESS)} (got {consciousness!r})")
    whole = {k: _half_up(v, 0) for k, v in (("rr", resp_rate), ("spo2", spo2), ("sbp", systolic_bp), ("hr", pulse))}
    return {
        "resp_rate": _band(whole["rr"], _RESP),
        "spo2": _band(whole["spo2"], _SPO2_SCALE1),
        "oxygen": 2 if on_oxygen else 0,
        "systolic_bp": _band(whole["sbp"], _SYSTOLIC),
        "pulse": _band(whole["hr"], _PULSE),
        "consciousness": _CONSCIOUSNESS[consciousness],
        "temperature": _band(_half_up(temperature, 1), _TEMPERATURE),
    }


def _half_up(value: float, places: int) -> float:
    return float(Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def news2(**inputs: Any) -> int:
    """The NEWS2 total, 0-20."""
    return sum(news2_components(**inputs).values())


def news2_band(**inputs: Any) -> str:
    """NEWS2 clinical risk: high (>= 7), medium (5-6), low-medium (a 3 in any one parameter), low."""
    components = news2_components(**inputs)
    total = sum(components.values())
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    return "low-medium" if 3 in components.values() else "low"


def priest_components(
    *, age: float, sex: str, performance_status: str | int, age_bands: Sequence[Sequence[float]], **vitals: Any
) -> dict[str, int]:
    """PRIEST points: the seven NEWS2 parameters, age (from the protocol's bands), sex, performance status."""
    bands = [(float(low), float(high), int(points)) for low, high, points in age_bands]
    try:
        age_points = _band(float(age), bands)
    except ValueError:
        raise ValueError(f"age {age:g} is in none of the protocol's PRIEST age bands") from None
    if sex not in {"female", "male"}:
        raise ValueError(f"sex must be female or male (got {sex!r})")
    level = int(performance_status)
    if not 0 <= level <= 4:
        raise ValueError(f"performance status must be 0-4 (got {performance_status!r})")
    return {
        **news2_components(**vitals),
        "age": age_points,
        "sex": 1 if sex == "male" else 0,
        "performance_status": level,
    }


def priest_score(**inputs: Any) -> int:
    """The PRIEST score, 0-29."""
    return sum(priest_components(**inputs).values())


def priest_band(**inputs: Any) -> str:
    """PRIEST: a score above 4 is "not low risk" (the validated threshold), otherwise "low risk"."""
    return "not low risk" if priest_score(**inputs) > 4 else "low risk"


def brixia_total(**zones: int) -> int:
    """The Brixia chest radiograph score: six zones A-F, each 0-3, total 0-18."""
    for name, points in zones.items():
        if not 0 <= points <= 3:
            raise ValueError(f"{name} must be 0-3 (got {points})")
    return sum(zones.values())


def cd4_cd8_ratio(cd4: float, cd8: float) -> float:
    """CD4+ over CD8+ absolute counts."""
    if cd8 == 0:
        raise ValueError("cd8 is zero")
    return cd4 / cd8


def length_of_stay(admission: dt.date, end: dt.date) -> int:
    """Whole days from admission to discharge, transfer or death."""
    first = admission.date() if isinstance(admission, dt.datetime) else admission
    last = end.date() if isinstance(end, dt.datetime) else end
    if last < first:
        raise ValueError("the end of the stay is before the admission")
    return (last - first).days


#: Implemented derivations, by the name a protocol uses.
DERIVATION_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "pf_ratio": pf_ratio,
    "sf_ratio": sf_ratio,
    "age_at": age_at,
    "news2": news2,
    "news2_band": news2_band,
    "priest_score": priest_score,
    "priest_band": priest_band,
    "brixia_total": brixia_total,
    "cd4_cd8_ratio": cd4_cd8_ratio,
    "length_of_stay": length_of_stay,
}


def derive(name: str, inputs: Mapping[str, Any], parameters: Mapping[str, Any] | None = None) -> Any:
    """Compute derivation ``name`` from its inputs by role (and the protocol's parameters); None when an
    input is missing."""
    if any(value is None for value in inputs.values()):
        return None
    try:
        function = DERIVATION_FUNCTIONS[name]
    except KeyError:
        raise NotImplementedError(f"derivation {name!r} is not implemented yet") from None
    return function(**inputs, **(parameters or {}))
