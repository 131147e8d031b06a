"""What every statistical method shares: the result base class, JSON-ready values and input checks.

Each method module (``statistics`` and ``methods.*``) returns frozen dataclasses built on ``Result``: a
one-line ``summary()`` and ``as_dict()`` of JSON-ready values (None where a quantity is undefined). Inputs are
plain sequences or numpy arrays, with None or NaN for a missing value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FloatArray",
    "Result",
    "Values",
    "check_level",
    "dummies",
    "floats",
    "fmt",
    "fmt_p",
    "fmt_pct",
    "group_indicator",
    "in_levels",
    "is_missing",
    "levels_at_an_end",
    "plain",
    "probability",
]

FloatArray = NDArray[np.float64]
#: How far a probability computed in floating point may stray outside [0, 1] by rounding alone
PROBABILITY_NOISE = 1e-9
Values = Sequence[Any] | NDArray[Any]  # numbers, None or NaN for missing


def plain(value: Any) -> Any:
    """A JSON-ready copy: numpy scalars to Python, non-finite floats to None, tuples to lists."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Result):
        return value.as_dict()
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    raise TypeError(f"cannot make {type(value).__name__} JSON-ready")


class Result:
    """Base of the result dataclasses: ``as_dict()`` over the dataclass fields."""

    __slots__ = ()

    def as_dict(self) -> dict[str, Any]:
        """The fields as JSON-serialisable values (None where undefined)."""
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


def fmt(x: float | None, digits: int = 3) -> str:
    """A number in a summary line (NA when undefined)."""
    return "NA" if x is None else f"{x:.{digits}g}"


def fmt_p(p: float) -> str:
    """A p-value in a summary line."""
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def fmt_pct(level: float) -> str:
    """A confidence level as a percentage (0.95 -> 95%)."""
    return f"{100 * level:g}%"


def is_missing(v: Any) -> bool:
    """None or NaN."""
    if v is None:
        return True
    if v.__class__ is float:  # the common case, without the isinstance of a union
        return v != v  # NaN only
    return isinstance(v, float | np.floating) and math.isnan(v)


def floats(values: Values, name: str) -> FloatArray:
    """A float array with NaN for every None/NaN; a value that is not a number is refused, naming ``name``."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return np.asarray(values, dtype=np.float64).ravel()
    try:
        # A float that is a number goes in as itself (``float`` of it is itself), without the two calls.
        return np.array(
            [v if v.__class__ is float and v == v else np.nan if is_missing(v) else float(v) for v in values],
            dtype=np.float64,
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must hold numbers (None or NaN for missing): {error}") from None


def check_level(level: float) -> float:
    """A confidence level strictly between 0 and 1."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    return float(level)


def group_indicator(group: Values) -> FloatArray:
    """The arm indicator: 1 treatment, 0 reference, NaN missing; anything else is refused."""
    arr = floats(group, "group")
    bad = ~np.isnan(arr) & (arr != 0) & (arr != 1)
    if bad.any():
        raise ValueError(f"group must be 1 (treatment), 0 (reference) or missing; found {sorted(set(arr[bad]))}")
    return arr


def dummies(values: Values, keep: NDArray[np.bool_]) -> FloatArray | None:
    """Treatment-coded columns for one categorical covariate over the kept rows, levels compared as text and
    the first in sorted order dropped (an arm's effect does not depend on which level is dropped); None when only
    one level remains."""
    labels = [str(v) for v, k in zip(values, keep, strict=True) if k]
    levels = sorted(set(labels))
    if len(levels) < 2:
        return None
    columns = np.array([[label == level for level in levels[1:]] for label in labels], dtype=float)
    return columns.reshape(len(labels), len(levels) - 1)


def levels_at_an_end(
    outcome: NDArray[Any], covariates: Mapping[str, Values], rows: NDArray[np.bool_], *, floor: float | None = None
) -> tuple[tuple[str, str], ...]:
    """The covariate levels (name, level; levels compared as text, as ``dummies`` does) whose ``rows`` all have
    the lowest outcome of the rows, or all the highest (a binary outcome: all 0 or all 1), found again among the
    rows left after each round until none is found (leaving one level out can leave another at an end). Only a
    covariate with another level among the rows left counts: a one-level covariate is not in the design. In a
    logit model (binary or cumulative) such a level is separated on its own: see ``binary.odds_ratio``.

    With ``floor``, only the levels whose rows all have that outcome: a count model's (``floor=0``: no events),
    where a level whose counts are all 0 has no finite coefficient but one whose counts are all high has one."""
    found: list[tuple[str, str]] = []
    while covariates:
        left = rows & ~in_levels(covariates, tuple(found))
        if not left.any():
            break
        low, high = float(np.min(outcome[left])), float(np.max(outcome[left]))
        ends = ({low}, {high}) if floor is None else ({float(floor)},)
        more: list[tuple[str, str]] = []
        for name, values in covariates.items():
            seen: dict[str, set[float]] = {}
            for value, y, k in zip(values, outcome, left, strict=True):
                if k:
                    seen.setdefault(str(value), set()).add(float(y))
            if len(seen) > 1:
                more.extend((name, label) for label in sorted(seen) if seen[label] in ends)
        if not more:
            break
        found.extend(more)
    return tuple(found)


def in_levels(covariates: Mapping[str, Values], levels: tuple[tuple[str, str], ...]) -> NDArray[np.bool_]:
    """Rows whose value of some covariate is one of ``levels`` (name, level as text)."""
    rows = np.zeros(len(next(iter(covariates.values()))), dtype=bool)
    for name, values in covariates.items():
        mine = {level for covariate, level in levels if covariate == name}
        rows |= np.array([not is_missing(v) and str(v) in mine for v in values], dtype=bool)
    return rows


def probability(value: float, what: str) -> float:
    """A probability computed in floating point, kept in [0, 1]: rounding can carry it just outside (an
    Aalen-Johansen sum of S(t-) d / n over times where everyone left has the event reaches 1.0000000000000002),
    so an excess below ``PROBABILITY_NOISE`` is clamped to the bound. A larger excess is a bug in the
    computation, not rounding, and raises ArithmeticError naming ``what``; NaN is passed on as it came."""
    if math.isnan(value) or 0.0 <= value <= 1.0:
        return value
    if -PROBABILITY_NOISE < value < 0.0:
        return 0.0
    if 1.0 < value < 1.0 + PROBABILITY_NOISE:
        return 1.0
    raise ArithmeticError(f"{what} = {value!r} lies outside [0, 1] by more than rounding: a bug, not reported")
