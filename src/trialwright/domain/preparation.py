"""The pharmacist's preparation record: the values an arm's protocol declares, checked before they are stored.

Each arm declares its own attributes (``Intervention.preparation``): an id, a type (integer, decimal or
text), the unit a number is recorded in, hard limits and whether it is required. A value is refused, never
converted or trimmed to fit: a number given in another unit, outside the limits, or not a number at all is
named with the attribute and the rule it breaks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from trialwright.domain.masking import MASKED
from trialwright.domain.numerals import typed_number
from trialwright.domain.text import text_problem
from trialwright.protocol import Protocol
from trialwright.protocol.base import Range
from trialwright.protocol.design import Preparation, PreparationAttribute

__all__ = ["PreparationError", "nothing_to_prepare", "validate_preparation"]


def nothing_to_prepare(protocol: Protocol, shown_arm: str) -> bool:
    """Whether the viewer may be told that this allocation's arm receives no product (so its preparation code
    stands for nothing to prepare). Only when the arm is shown: to a blinded viewer every allocation has a
    preparation code, or an arm without a product would be told apart."""
    if shown_arm == MASKED:
        return False
    arm = next((a for a in protocol.arms if a.code == shown_arm), None)
    return arm is not None and arm.preparation() is None


class PreparationError(ValueError):
    """Values refused; ``problems`` holds one ``attribute: rule`` message per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


def _range_text(r: Range, unit: str | None) -> str:
    low = "" if r.min is None else f"{r.min:g}"
    high = "" if r.max is None else f"{r.max:g}"
    text = f"{low} to {high}" if low and high else (f"at least {low}" if low else f"at most {high}")
    return f"{text} {unit}" if unit else text


def _number(a: PreparationAttribute, raw: Any) -> int | float:
    if isinstance(raw, bool):
        raise ValueError("must be a number")
    try:
        number = float(typed_number(raw) if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number, not {raw!r}") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    if a.type == "integer":
        if number != round(number):
            raise ValueError(f"must be a whole number, not {number:g}")
        return round(number)
    return number


def _one(a: PreparationAttribute, raw: Any) -> int | float | str:
    if isinstance(raw, Mapping):
        if "value" not in raw or set(raw) - {"value", "unit"}:
            raise ValueError("give a value, or {value, unit}")
        unit, raw = raw.get("unit"), raw["value"]
        if unit is not None and unit != (a.unit or ""):
            declared = f"in {a.unit}" if a.unit else "without a unit"
            raise ValueError(f"is recorded {declared}, not in {unit!r} (values are never converted)")
    if a.type == "text":
        if not isinstance(raw, str):
            raise ValueError(f"must be text, not {raw!r}")
        text = raw.strip()
        # One line, at most the declared length (200 by default); longer text is refused, never cut.
        problem = text_problem(text, limit=a.text_limit, multiline=False)
        if problem is not None:
            raise ValueError(problem)
        return text
    number = _number(a, raw)
    if a.hard_limits is not None and not a.hard_limits.contains(number):
        shown = f"{number:g} {a.unit}" if a.unit else f"{number:g}"
        raise ValueError(f"{shown} is outside the hard limits {_range_text(a.hard_limits, a.unit)}")
    return number


def validate_preparation(preparation: Preparation, values: Mapping[str, Any]) -> dict[str, int | float | str]:
    """The values to store for one dose, in declaration order; every problem is reported at once.

    An empty value (``None`` or blank text) is a value left out: refused when the attribute is required.
    """
    declared = {a.id: a for a in preparation.attributes}
    problems = [
        f"{name}: not an attribute of this preparation (attributes: {', '.join(declared) or 'none'})"
        for name in values
        if name not in declared
    ]
    stored: dict[str, int | float | str] = {}
    for a in preparation.attributes:
        raw = values.get(a.id)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if a.required:
                problems.append(f"{a.id}: {a.label} is required")
            continue
        try:
            stored[a.id] = _one(a, raw)
        except ValueError as exc:
            problems.append(f"{a.id}: {exc}")
    if problems:
        raise PreparationError(problems)
    return stored
