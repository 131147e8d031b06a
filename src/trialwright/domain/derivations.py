"""Derived values the engine computes, never typed in: one small pure function per derivation name.

The protocol names a derivation (``trialwright.protocol.DERIVATIONS``) and binds each of its inputs to a
field; this module computes it. ``derive`` looks the name up in ``DERIVATION_FUNCTIONS``, returns None
when any input is missing, and passes the protocol's ``parameters`` (e.g. PRIEST's ``age_bands``) as
keyword arguments beside the inputs. ``components`` gives the points per parameter behind a NEWS2 or
PRIEST result, so the parts are stored with the total. An input outside what a score defines raises
ValueError, which the data-collection service records as "not computable".

Sources (see ``shared/reference/clinical.md``): NEWS2, Royal College of Physicians 2017 (SpO2 scales 1
and 2);
PRIEST, Goodacre et al., PLoS ONE 2021;16:e0245840; Brixia, Borghesi and Maroldi, Radiol Med
2020;125:509-513; P/F and S/F, the Berlin definition (JAMA 2012) and Rice et al. (Chest 2007).
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = [
    "DERIVATION_FUNCTIONS",
    "age_at",
    "brixia_total",
    "cd4_cd8_ratio",
    "components",
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


# --- NEWS2 (RCP 2017), SpO2 scale 1: (low, high, points) rows, both ends inclusive -------------------

_INF = float("inf")
_RESP = ((-_INF, 8, 3), (9, 11, 1), (12, 20, 0), (21, 24, 2), (25, _INF, 3))
_SPO2_SCALE1 = ((-_INF, 91, 3), (92, 93, 2), (94, 95, 1), (96, _INF, 0))
# Scale 2 (a prescribed target of 88-92%, e.g. hypercapnic respiratory failure): up to 92% on either;
# from 93% the points depend on oxygen (none on air).
_SPO2_SCALE2 = ((-_INF, 83, 3), (84, 85, 2), (86, 87, 1), (88, 92, 0))
_SPO2_SCALE2_ON_OXYGEN = ((93, 94, 1), (95, 96, 2), (97, _INF, 3))
_SYSTOLIC = ((-_INF, 90, 3), (91, 100, 2), (101, 110, 1), (111, 219, 0), (220, _INF, 3))
_PULSE = ((-_INF, 40, 3), (41, 50, 1), (51, 90, 0), (91, 110, 1), (111, 130, 2), (131, _INF, 3))
_TEMPERATURE = ((-_INF, 35.0, 3), (35.1, 36.0, 1), (36.1, 38.0, 0), (38.1, 39.0, 1), (39.1, _INF, 2))
_CONSCIOUSNESS = {"alert": 0, "new_confusion": 3, "voice": 3, "pain": 3, "unresponsive": 3}


def _band(value: float, bands: Sequence[tuple[float, float, int]]) -> int:
    for low, high, points in bands:
        if low <= value <= high:
            return points
    raise ValueError(f"{value:g} is in no band")


def _half_up(value: float, places: int) -> float:
    # str() first, so 36.05 is rounded as the decimal the user typed, not as its binary approximation.
    return float(Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def _spo2_points(spo2: float, on_oxygen: bool, scale2: bool) -> int:
    value = _half_up(spo2, 0)
    if not scale2:
        return _band(value, _SPO2_SCALE1)
    if value <= 92:
        return _band(value, _SPO2_SCALE2)
    return _band(value, _SPO2_SCALE2_ON_OXYGEN) if on_oxygen else 0


def news2_components(
    resp_rate: float,
    spo2: float,
    on_oxygen: bool,
    systolic_bp: float,
    pulse: float,
    consciousness: str,
    temperature: float,
    spo2_scale2: bool = False,
) -> dict[str, int]:
    """NEWS2 points per parameter, keyed resp_rate, spo2, oxygen, systolic_bp, pulse, consciousness,
    temperature.

    SpO2 is scored on scale 1 unless ``spo2_scale2`` is true (the protocol binds it to a yes/no field,
    e.g. "target SpO2 88-92% prescribed"): scale 2 scores <=83: 3, 84-85: 2, 86-87: 1, 88-92: 0, and
    from 93% 0 on air, 93-94: 1, 95-96: 2, >=97: 3 on oxygen. The air-or-oxygen row scores on both
    scales (oxygen 2).

    Rounding before banding, so that every value falls in exactly one band of the published table:
    the temperature is rounded to one decimal, half up, from its decimal text
    (``Decimal(str(value))`` with ``ROUND_HALF_UP``: 36.05 -> 36.1 scores 0; 35.04 -> 35.0 scores 3);
    the other measurements, recorded as whole numbers, are rounded to whole numbers the same way.
    Consciousness codes: alert (0); new_confusion, voice, pain, unresponsive (3).
    """
    if consciousness not in _CONSCIOUSNESS:
        raise ValueError(f"consciousness must be one of {', '.join(_CONSCIOUSNESS)} (got {consciousness!r})")
    return {
        "resp_rate": _band(_half_up(resp_rate, 0), _RESP),
        "spo2": _spo2_points(spo2, on_oxygen, spo2_scale2),
        "oxygen": 2 if on_oxygen else 0,
        "systolic_bp": _band(_half_up(systolic_bp, 0), _SYSTOLIC),
        "pulse": _band(_half_up(pulse, 0), _PULSE),
        "consciousness": _CONSCIOUSNESS[consciousness],
        "temperature": _band(_half_up(temperature, 1), _TEMPERATURE),
    }


def news2(
    resp_rate: float,
    spo2: float,
    on_oxygen: bool,
    systolic_bp: float,
    pulse: float,
    consciousness: str,
    temperature: float,
    spo2_scale2: bool = False,
) -> int:
    """The NEWS2 total, 0-20: the sum of ``news2_components``."""
    parts = news2_components(
        resp_rate, spo2, on_oxygen, systolic_bp, pulse, consciousness, temperature, spo2_scale2
    )  # fmt: skip
    return sum(parts.values())


def news2_band(
    resp_rate: float,
    spo2: float,
    on_oxygen: bool,
    systolic_bp: float,
    pulse: float,
    consciousness: str,
    temperature: float,
    spo2_scale2: bool = False,
) -> str:
    """NEWS2 clinical risk: "high" (total >= 7), "medium" (5-6), "low-medium" (0-4 with a 3 in any one
    parameter), otherwise "low"."""
    parts = news2_components(
        resp_rate, spo2, on_oxygen, systolic_bp, pulse, consciousness, temperature, spo2_scale2
    )  # fmt: skip
    total = sum(parts.values())
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    return "low-medium" if 3 in parts.values() else "low"


# --- PRIEST (Goodacre et al. 2021): NEWS2 points + age + sex + performance status --------------------

_SEX = {"female": 0, "male": 1}
_PERFORMANCE = {str(level): level for level in range(5)}


def priest_components(
    resp_rate: float,
    spo2: float,
    on_oxygen: bool,
    systolic_bp: float,
    pulse: float,
    consciousness: str,
    temperature: float,
    age: int,
    sex: str,
    performance_status: str | int,
    age_bands: Sequence[Sequence[int]],
) -> dict[str, int]:
    """PRIEST points: the seven NEWS2 parameters (scale 1), then age, sex and performance status.

    ``age_bands`` is the protocol's parameter, rows of [low, high, points] with both ends inclusive (the
    published bands are disputed at 65, so the protocol file chooses). Sex: female 0, male 1.
    Performance status: points = level, 0-4, given as an int or its code "0".."4".
    """
    age_points = None
    for low, high, points in age_bands:
        if low <= age <= high:
            age_points = int(points)
            break
    if age_points is None:
        raise ValueError(f"age {age} is in none of the protocol's PRIEST age bands")
    if sex not in _SEX:
        raise ValueError(f"sex must be one of {', '.join(_SEX)} (got {sex!r})")
    if isinstance(performance_status, bool) or str(performance_status) not in _PERFORMANCE:
        raise ValueError(f"performance status must be 0-4 (got {performance_status!r})")
    return {
        **news2_components(resp_rate, spo2, on_oxygen, systolic_bp, pulse, consciousness, temperature),
        "age": age_points,
        "sex": _SEX[sex],
        "performance_status": _PERFORMANCE[str(performance_status)],
    }


def priest_score(
    resp_rate: float,
    spo2: float,
    on_oxygen: bool,
    systolic_bp: float,
    pulse: float,
    consciousness: str,
    temperature: float,
    age: int,
    sex: str,
    performance_status: str | int,
    age_bands: Sequence[Sequence[int]],
) -> int:
    """The PRIEST score, 0-29: the sum of ``priest_components``."""
    parts = priest_components(
        resp_rate, spo2, on_oxygen, systolic_bp, pulse, consciousness, temperature,
        age, sex, performance_status, age_bands,
    )  # fmt: skip
    return sum(parts.values())


def priest_band(
    resp_rate: float,
    spo2: float,
    on_oxygen: bool,
    systolic_bp: float,
    pulse: float,
    consciousness: str,
    temperature: float,
    age: int,
    sex: str,
    performance_status: str | int,
    age_bands: Sequence[Sequence[int]],
) -> str:
    """PRIEST risk: a score above 4 is "not low risk" (the validated threshold), otherwise "low risk"."""
    score = priest_score(
        resp_rate, spo2, on_oxygen, systolic_bp, pulse, consciousness, temperature,
        age, sex, performance_status, age_bands,
    )  # fmt: skip
    return "not low risk" if score > 4 else "low risk"


# --- Chest radiograph, lymphocyte subsets, hospital course --------------------------------------------


def brixia_total(zone_a: int, zone_b: int, zone_c: int, zone_d: int, zone_e: int, zone_f: int) -> int:
    """The Brixia chest radiograph score: zones A-C right lung, D-F left lung, each 0-3; total 0-18."""
    scores = (zone_a, zone_b, zone_c, zone_d, zone_e, zone_f)
    for letter, points in zip("abcdef", scores, strict=True):
        if isinstance(points, bool) or points not in (0, 1, 2, 3):
            raise ValueError(f"zone_{letter} must be 0-3 (got {points!r})")
    return sum(scores)


def cd4_cd8_ratio(cd4: float, cd8: float) -> float:
    """CD4+ over CD8+ absolute counts (cells/uL); no unit."""
    if cd8 == 0:
        raise ValueError("cd8 is zero")
    return cd4 / cd8


def length_of_stay(admission: dt.date, end: dt.date) -> int:
    """Whole days from admission to discharge, transfer or death; datetimes count by their calendar date."""
    first = admission.date() if isinstance(admission, dt.datetime) else admission
    last = end.date() if isinstance(end, dt.datetime) else end
    if last < first:
        raise ValueError("the end of the stay is before the admission")
    return (last - first).days


#: Implemented derivations, by the name a protocol uses (``trialwright.protocol.DERIVATIONS``).
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
    """Compute derivation ``name`` from its inputs (by role) and the protocol's ``parameters`` (passed as
    keyword arguments too); None when any input is missing.

    Raises NotImplementedError for an unknown name, and ValueError when the protocol leaves out an input
    or parameter the derivation needs (e.g. PRIEST without ``age_bands``) or an input is out of range.
    """
    try:
        function = DERIVATION_FUNCTIONS[name]
    except KeyError:
        raise NotImplementedError(f"derivation {name!r} is not implemented yet") from None
    return _call(name, function, inputs, parameters)


#: The derivations whose parts are worth keeping beside the total, and the function giving the parts.
_COMPONENT_FUNCTIONS: Mapping[str, Callable[..., dict[str, int]]] = {
    "news2": news2_components,
    "news2_band": news2_components,
    "priest_score": priest_components,
    "priest_band": priest_components,
}


def components(
    name: str, inputs: Mapping[str, Any], parameters: Mapping[str, Any] | None = None
) -> dict[str, int] | None:
    """The points per parameter behind derivation ``name`` (NEWS2 and PRIEST), to store beside the total:
    a change in PRIEST over a trial is a change in its parts. None for a derivation without parts or when
    an input is missing; errors as ``derive``."""
    function = _COMPONENT_FUNCTIONS.get(name)
    if function is None:
        return None
    parts: dict[str, int] | None = _call(name, function, inputs, parameters)
    return parts


def _call(
    name: str, function: Callable[..., Any], inputs: Mapping[str, Any], parameters: Mapping[str, Any] | None
) -> Any:
    if any(value is None for value in inputs.values()):
        return None
    arguments = {**inputs, **(parameters or {})}
    missing = [role for role in _needed(function) if role not in arguments]
    if missing:
        raise ValueError(f"derivation {name!r} needs {', '.join(missing)}")
    return function(**arguments)


@functools.cache
def _needed(function: Callable[..., Any]) -> tuple[str, ...]:
    """The arguments a derivation function cannot do without (read once per function: a bulk load derives
    millions of values)."""
    return tuple(
        p.name
        for p in inspect.signature(function).parameters.values()
        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
