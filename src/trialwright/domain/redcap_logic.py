"""REDCap calculations as the protocol's declared derivations, and back.

A REDCap calculated field holds an expression over ``[variable]`` names. The part that is plain arithmetic maps
onto the protocol's own languages (``trialwright.protocol.declared``):

- ``[a] + [b] * 2``, ``([a] - [b]) / [c]`` (numbers, + - * / and parentheses) is a ``formula``; REDCap leaves
  the result blank while any variable is blank, which is the formula's ``missing: refuse``;
- ``sum([a], [b], ...)``, ``mean(...)``, ``min(...)``, ``max(...)`` over variables is that aggregate; REDCap's
  functions leave blank values out, which is ``missing: {min_present: 1}`` (a sum not prorated);
- either one inside ``round(..., n)`` gives the places kept: ``decimals: n``.

Everything else (``^``, ``if()``, ``datediff()``, a checkbox's ``[v(1)]``, another event's ``[event][v]``, smart
variables) is not mapped: :class:`NotMapped` says why, and the caller lists it. Going back, a formula or such an
aggregate is written as REDCap's expression over the fields' REDCap names (``derivation_expression``); any
other derivation has no REDCap expression.

Pure: text in, text or plain data out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from trialwright.protocol.declared import Aggregate, Formula, MinPresent
from trialwright.protocol.forms import FieldType, FormField
from trialwright.protocol.formula import FormulaError, parse

__all__ = ["Calculation", "NotMapped", "calculation", "derivation_expression"]

_VARIABLE = re.compile(r"\[([^\[\]]*)\]")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ROUND = re.compile(r"^round\s*\((.*),\s*(\d+)\s*\)$", re.DOTALL)
_AGGREGATE = re.compile(r"^(sum|mean|min|max)\s*\((.*)\)$", re.DOTALL)
# A protocol field reference in a formula: ``field`` or ``form.field`` (not the exponent of ``1e5``).
_REFERENCE = re.compile(r"(?<![\w.])([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)?)")


class NotMapped(ValueError):  # a finding the caller lists, not a failure
    """A calculation the protocol's languages cannot say; the message is the reason."""


@dataclass(frozen=True)
class Calculation:
    """A calculation as the protocol declares it: ``derived`` (plain data for the protocol file) and the
    places kept (None when the expression does not round)."""

    derived: dict[str, Any]
    decimals: int | None


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _whole_call(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """``pattern``'s match when its parentheses wrap the whole expression (not ``round(a) + round(b)``)."""
    m = pattern.match(text)
    return m if m and _balanced(m.group(1) if pattern is _ROUND else m.group(2)) else None


def calculation(expression: str, here: str, names: Mapping[str, tuple[str, str]]) -> Calculation:
    """The derivation of a calculated field of form ``here``; ``names`` maps each REDCap variable to its
    (form, field). NotMapped when the expression is not one the protocol can say."""
    text = expression.strip()
    if not text:
        raise NotMapped("a calculated field without a calculation")
    decimals = None
    if m := _whole_call(_ROUND, text):
        text, decimals = m.group(1).strip(), int(m.group(2))
    if "][" in text.replace(" ", ""):
        raise NotMapped("it reads a variable of another event ([event][variable]): a derivation reads one visit")

    def ref(variable: str) -> str:
        if variable not in names:
            if not _NAME.match(variable):
                raise NotMapped(f"[{variable}] is not a plain variable (checkbox option, smart variable or instance)")
            raise NotMapped(f"[{variable}] is not a field of this dictionary")
        form, field = names[variable]
        return field if form == here else f"{form}.{field}"

    if m := _whole_call(_AGGREGATE, text):
        parts = [p.strip() for p in m.group(2).split(",")]
        if not all(_VARIABLE.fullmatch(p) for p in parts):
            raise NotMapped(f"{m.group(1)}() over anything but variables is not an aggregate of fields")
        fields = [ref(p[1:-1]) for p in parts]
        if len(set(fields)) != len(fields):
            raise NotMapped(f"{m.group(1)}() names a variable twice")
        missing: dict[str, Any] = {"min_present": 1}
        if m.group(1) == "sum":
            missing["prorate"] = False
        return Calculation({"kind": m.group(1), "fields": fields, "missing": missing}, decimals)
    formula = _VARIABLE.sub(lambda v: ref(v.group(1)), text)
    try:
        parse(formula)
    except FormulaError as exc:
        raise NotMapped(f"not arithmetic over fields: {exc}") from None
    return Calculation({"kind": "formula", "expression": formula, "missing": "refuse"}, decimals)


def derivation_expression(f: FormField, name_of: Callable[[str], str]) -> str | None:
    """REDCap's calculation for a derived field (``name_of``: a protocol reference, ``field`` or
    ``form.field``, to its REDCap name), or None when its derivation has none."""
    derived = f.derived
    if isinstance(derived, Formula):
        text = _REFERENCE.sub(lambda m: f"[{name_of(m.group(1))}]", derived.expression)
    elif (
        isinstance(derived, Aggregate)
        and derived.kind in {"sum", "mean", "min", "max"}
        and isinstance(derived.missing, MinPresent)
        and derived.missing.min_present == 1
        and not derived.missing.prorate
    ):
        text = f"{derived.kind}({', '.join(f'[{name_of(x)}]' for x in derived.fields)})"
    else:
        return None
    if f.type is FieldType.DECIMAL and f.decimals is not None:
        return f"round({text}, {f.decimals})"
    return text
