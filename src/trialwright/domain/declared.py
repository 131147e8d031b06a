"""Computing the derivations a protocol declares (sums, counts, bands, code points, value sets, formulas).

The protocol says what to compute (``trialwright.protocol.declared``); this module computes it from the
values of its inputs, keyed by the input as the protocol writes it (``sofa_cns``, ``labs.creatinine``).
An input without a usable value is passed as ``Missing`` with why (empty, not done, not applicable,
below the LLOQ, above the ULOQ, not computed), never as zero. What a missing input does is the
declaration's ``missing`` rule:

- ``refuse``: no value, and the reason names every missing input;
- ``{min_present: N, prorate: false}``: with at least N inputs holding a value, the sum, count, mean,
  min or max of those (a mean, min or max is always of the values present); fewer, no value;
- ``{min_present: N, prorate: true}`` (sum and count): the sum or count of the inputs present times
  (inputs named / inputs present), i.e. their mean times the number of inputs.

A value computed from fewer inputs than named carries a note saying from how many and which were
missing, stored with it. An input outside what the declaration defines (a number in no band, a code
without points, a division by a field holding zero) raises ValueError, which the data-collection
service records as "not computable".
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from graphlib import TopologicalSorter
from typing import Any

from trialwright.protocol.declared import (
    Aggregate,
    Bands,
    CodePoints,
    Condition,
    DeclaredDerivation,
    Formula,
    MinPresent,
    ValueSet,
)
from trialwright.protocol.derivation_checks import derivation_graph
from trialwright.protocol.formula import BinaryOp, Name, Negate, Node, Number
from trialwright.protocol.model import Protocol

__all__ = ["Derived", "Missing", "derivation_order", "evaluate"]


@dataclass(frozen=True)
class Missing:
    """An input without a usable value, and why (``empty``, ``not done``, ``below the LLOQ``, ...)."""

    why: str


@dataclass(frozen=True)
class Derived:
    """A declared derivation's result: the value (None when none could be computed) and a note saying
    why there is none, or how it was computed from fewer inputs than named (None when from all)."""

    value: float | int | None
    note: str | None = None


#: Each loaded protocol's derivation order, by the protocol's identity (a loaded protocol never changes; a weak
#: reference, so a protocol no longer used is not kept alive): every form save asks for it.
_ORDERS: dict[int, tuple[weakref.ref[Protocol], tuple[tuple[str, str], ...]]] = {}


def derivation_order(protocol: Protocol) -> Iterator[tuple[str, str]]:
    """Every derived form field as (form id, field id), each after the derived fields it reads.

    ``protocol check`` refuses a cycle, so the order always exists."""
    known = _ORDERS.get(id(protocol))
    if known is None or known[0]() is not protocol:
        graph = derivation_graph(protocol)
        order = tuple(node for node in TopologicalSorter(graph).static_order() if node in graph)
        if len(_ORDERS) >= 64:  # protocols come and go in long-lived processes (tests): forget the old ones
            _ORDERS.clear()
        known = _ORDERS[id(protocol)] = (weakref.ref(protocol), order)
    return iter(known[1])


def evaluate(spec: DeclaredDerivation, values: Mapping[str, Any]) -> Derived:
    """Compute a declared derivation from its inputs' values (``Missing`` for those without one)."""
    absent = [(ref, v.why) for ref in spec.sources if isinstance(v := values[ref], Missing)]
    if isinstance(spec, Aggregate):
        return _aggregate(spec, values, absent)
    if absent:
        return Derived(None, _refused(absent))
    if isinstance(spec, Bands):
        value = values[spec.input]
        for band in spec.bands:
            if band.holds(value):
                return Derived(band.points)
        raise ValueError(f"{spec.input} = {value:g} is in no band")
    if isinstance(spec, CodePoints):
        return Derived(_level(spec.points, values[spec.input], spec.input, "points"))
    if isinstance(spec, ValueSet):
        total = Decimal(str(spec.constant))
        for dim in spec.dimensions:
            total -= Decimal(str(_level(dim.decrements, values[dim.input], dim.input, "a decrement")))
        return Derived(float(total))
    assert isinstance(spec, Formula)
    return Derived(_formula(spec.tree, values))


def _listed(absent: list[tuple[str, str]]) -> str:
    return ", ".join(f"{ref} ({why})" for ref, why in absent)


def _refused(absent: list[tuple[str, str]]) -> str:
    return f"not computed: missing {_listed(absent)}"


def _aggregate(spec: Aggregate, values: Mapping[str, Any], absent: list[tuple[str, str]]) -> Derived:
    present = [values[ref] for ref in spec.fields if not isinstance(values[ref], Missing)]
    named, held = len(spec.fields), len(present)
    if spec.when == "present":
        return Derived(held)
    rule = spec.missing
    if absent and rule == "refuse":
        return Derived(None, _refused(absent))
    assert rule == "refuse" or isinstance(rule, MinPresent)
    if isinstance(rule, MinPresent) and held < rule.min_present:
        return Derived(
            None, f"not computed: {held} of {named} inputs hold a value, {rule.min_present} needed; "
            f"missing {_listed(absent)}"
        )  # fmt: skip
    if spec.kind == "count":
        assert isinstance(spec.when, Condition)
        condition = spec.when
        result: float = sum(1 for v in present if _meets(condition, v))
    elif spec.kind == "sum":
        result = sum(present)
    elif spec.kind == "mean":
        result = sum(present) / held
    else:
        result = min(present) if spec.kind == "min" else max(present)
    if not absent:
        return Derived(result)
    if isinstance(rule, MinPresent) and rule.prorate:
        return Derived(
            result * named / held,
            f"from {held} of {named} inputs, pro-rated x {named}/{held}; missing {_listed(absent)}",
        )
    return Derived(result, f"from {held} of {named} inputs; missing {_listed(absent)}")


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge, "eq": operator.eq,
}  # fmt: skip


def _meets(condition: Condition, value: Any) -> bool:
    if condition.in_ is not None:
        return str(value) in condition.in_
    for key, compare in _COMPARE.items():
        bound = getattr(condition, key)
        if bound is not None:
            return compare(value, bound)
    raise AssertionError("a condition has one comparison")  # pragma: no cover - the model refuses it


def _level(table: Mapping[str, float], value: Any, ref: str, what: str) -> float:
    if isinstance(value, bool):
        lowered = {k.lower(): v for k, v in table.items()}
        key = "true" if value else "false"
        if key in lowered:
            return lowered[key]
    elif str(value) in table:
        return table[str(value)]
    raise ValueError(f"{ref} = {value!r} has no {what}")


def _formula(node: Node, values: Mapping[str, Any]) -> float:
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Name):
        return float(values[node.ref])
    if isinstance(node, Negate):
        return -_formula(node.operand, values)
    left, right = _formula(node.left, values), _formula(node.right, values)
    if node.op == "/":
        if right == 0:
            raise ValueError(f"division by zero ({_shown(node.right)} is 0)")
        return left / right
    return {"+": left + right, "-": left - right, "*": left * right}[node.op]


def _shown(node: Node) -> str:
    if isinstance(node, Name):
        return node.ref
    if isinstance(node, Number):
        return f"{node.value:g}"
    if isinstance(node, Negate):
        return f"-{_shown(node.operand)}"
    assert isinstance(node, BinaryOp)
    return f"({_shown(node.left)} {node.op} {_shown(node.right)})"
