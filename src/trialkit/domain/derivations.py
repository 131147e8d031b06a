"""Derived values the engine computes, never typed in: one small function per derivation name.

The protocol names a derivation (``trialkit.protocol.DERIVATIONS``) and binds its inputs to fields; this
module computes it. A derivation returns None when any input is missing. The clinical scores (NEWS2,
PRIEST, Brixia) join this registry with issue 6.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["DERIVATION_FUNCTIONS", "age_at", "derive", "pf_ratio", "sf_ratio"]


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


#: Implemented derivations, by the name a protocol uses.
DERIVATION_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "pf_ratio": pf_ratio,
    "sf_ratio": sf_ratio,
    "age_at": age_at,
}


def derive(name: str, inputs: Mapping[str, Any]) -> Any:
    """Compute derivation ``name`` from its inputs by role; None when an input is missing."""
    if any(value is None for value in inputs.values()):
        return None
    try:
        function = DERIVATION_FUNCTIONS[name]
    except KeyError:
        raise NotImplementedError(f"derivation {name!r} is not implemented yet") from None
    return function(**inputs)
