"""Cross-checks of derived form fields, named or declared: what ``protocol check`` refuses about them.

Every input must name a field that exists (same form, ``form.field`` at the same visit, or
``screening.field``) and has the type the derivation reads; bands must cover every value of their input
exactly once (no gap, no overlap, judged on whole numbers for an integer input and within the input's
hard limits when it has them); points and value sets must give a number for every code of their field
and none for a code it does not have; a formula may only name fields and may not divide by a written
zero; a derived field holding whole numbers must not be fed something fractional; and derived fields
must not depend on themselves, directly or through others (the order the engine computes them in,
``derivation_graph``, must exist). Which visits an input's form is collected at: ``derivation_visits``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

from trialwright.protocol.base import a_kind
from trialwright.protocol.declared import Aggregate, Band, Bands, CodePoints, Condition, Formula, ValueSet
from trialwright.protocol.derivations import INPUT_TYPES, Derivation
from trialwright.protocol.formula import BinaryOp, Name, Negate, Node, Number, zero_divisors
from trialwright.protocol.model import Protocol
from trialwright.protocol.references import Found, unknown

__all__ = ["band_problems", "derivation_graph", "derived_fields", "resolve"]

_NUMERIC = frozenset({"integer", "decimal"})


@dataclass(frozen=True)
class _Input:
    """What a derivation needs to know about a field it reads."""

    kind: str  # the field's type
    codes: tuple[str, ...]  # choice codes
    limits: tuple[float | None, float | None] | None  # hard limits


def resolve(form_id: str, source: str) -> tuple[str, str]:
    """(form id, field id) of an input written on form ``form_id``; the form is ``screening`` for one."""
    other, dot, name = source.partition(".")
    return (other, name) if dot else (form_id, source)


def derived_fields(p: Protocol) -> Iterator[tuple[int, int]]:
    """(form index, field index) of every derived form field, in file order."""
    for i, form in enumerate(p.forms):
        for j, field in enumerate(form.fields):
            if field.derived is not None:
                yield i, j


def derivation_graph(p: Protocol) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """Each derived form field (form id, field id) -> the form fields it reads; a field comes after
    everything it reads in ``graphlib.TopologicalSorter(graph).static_order()``."""
    graph: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for i, j in derived_fields(p):
        form, field = p.forms[i], p.forms[i].fields[j]
        assert field.derived is not None
        reads = {resolve(form.id, s) for s in field.derived.sources}
        graph[(form.id, field.id)] = {r for r in reads if r[0] != "screening"}
    return graph


def check(p: Protocol) -> Iterator[Found]:
    """Every problem of the protocol's derived form fields, in file order, then any cycle."""
    for i, j in derived_fields(p):
        yield from _field(p, i, j)
    yield from _cycles(p)


def _lookup(p: Protocol, form_id: str, source: str) -> tuple[_Input | None, str | None]:
    """The input a source names, or the message saying why it names none."""
    other, dot, name = source.partition(".")
    if not dot:
        other, name = form_id, source
    if other == "screening":
        screening = {f.id: f for f in p.eligibility.screening_fields}
        if name not in screening:
            return None, unknown(name, screening, "screening field")
        s = screening[name]
        return _Input(s.type, tuple(s.codes), s.hard_limits), None
    forms = {f.id: f for f in p.forms}
    if other not in forms:
        return None, unknown(other, forms, "form")
    fields = {f.id: f for f in forms[other].fields}
    if name not in fields:
        if not dot:
            return None, f"form {form_id!r} has no field {name!r} (write form.field for another form)"
        return None, f"form {other!r} has no field {name!r}"
    f = fields[name]
    limits = None if f.hard_limits is None else (f.hard_limits.min, f.hard_limits.max)
    return _Input(f.type.value, tuple(c.code for c in f.choices), limits), None


def _typed(
    p: Protocol, form_id: str, source: str, path: str, kinds: frozenset[str] | None, why: str = ""
) -> tuple[_Input | None, list[Found]]:
    found, message = _lookup(p, form_id, source)
    if message is not None:
        return None, [(path, message)]
    assert found is not None
    if kinds is not None and found.kind not in kinds:
        needs = " or ".join(sorted(kinds))
        return found, [(path, f"{source} is {a_kind(found.kind)} field; {why or 'this'} needs {needs}")]
    return found, []


def _field(p: Protocol, i: int, j: int) -> Iterator[Found]:
    form, field = p.forms[i], p.forms[i].fields[j]
    spec = field.derived
    path = f"forms[{i}].fields[{j}].derived"
    if isinstance(spec, Derivation):
        for role, source in spec.inputs.items():
            yield from _typed(p, form.id, source, f"{path}.inputs.{role}", INPUT_TYPES.get(role), role)[1]
        return
    assert spec is not None
    if field.type.value not in _NUMERIC:
        yield f"forms[{i}].fields[{j}].type", f"a {spec.name} gives a number: declare type integer or decimal"
        return
    problems: list[Found] = []
    decimal_inputs = False
    if isinstance(spec, Aggregate):
        kinds = _NUMERIC if spec.kind != "count" else _condition_kinds(spec.when)
        for k, source in enumerate(spec.fields):
            found, more = _typed(p, form.id, source, f"{path}.fields[{k}]", kinds, f"a {spec.name}")
            problems += more
            decimal_inputs |= found is not None and found.kind == "decimal"
            if found is not None and not more and isinstance(spec.when, Condition):
                problems += _condition(spec.when, source, found, f"{path}.when")
    elif isinstance(spec, Bands):
        found, more = _typed(p, form.id, spec.input, f"{path}.input", _NUMERIC, "bands")
        problems += more
        if found is not None and not more:
            gaps = band_problems(spec.bands, found.kind, found.limits)
            problems += [(f"{path}.bands{where}", m) for where, m in gaps]
    elif isinstance(spec, CodePoints):
        found, more = _typed(p, form.id, spec.input, f"{path}.input", frozenset({"choice", "boolean"}), "codes")
        problems += more
        if found is not None and not more:
            problems += [(f"{path}.points", m) for m in _levels(spec.points, found, spec.input, "points")]
    elif isinstance(spec, ValueSet):
        for k, dim in enumerate(spec.dimensions):
            where = f"{path}.dimensions[{k}].input"
            found, more = _typed(p, form.id, dim.input, where, frozenset({"choice"}), "a value set")
            problems += more
            if found is not None and not more:
                where = f"{path}.dimensions[{k}].decrements"
                problems += [(where, m) for m in _levels(dim.decrements, found, dim.input, "decrement")]
    else:
        for source in spec.sources:
            found, more = _typed(p, form.id, source, f"{path}.expression", _NUMERIC, "a formula")
            problems += [(where, f"unknown name {source!r}: {m}" if found is None else m) for where, m in more]
            decimal_inputs |= found is not None and found.kind == "decimal"
        for divisor in zero_divisors(spec.tree):
            problems.append((f"{path}.expression", f"divides by {divisor}, which is zero"))
    yield from problems
    if not problems and field.type.value == "integer" and _fractional(spec, decimal_inputs):
        yield (
            f"forms[{i}].fields[{j}].type",
            (
                f"this {spec.name} can give a fraction ({_fraction_why(spec, decimal_inputs)}); "
                "declare type decimal, with decimals"
            ),
        )


def _condition_kinds(when: Condition | str | None) -> frozenset[str] | None:
    if not isinstance(when, Condition):
        return None  # a count of present values reads any field
    if when.in_ is not None or isinstance(when.eq, str):
        return frozenset({"choice"})
    if isinstance(when.eq, bool):
        return frozenset({"boolean"})
    return _NUMERIC


def _condition(when: Condition, source: str, found: _Input, path: str) -> list[Found]:
    codes = [*([when.eq] if isinstance(when.eq, str) else []), *(when.in_ or [])]
    return [(path, f"{code!r} is not a code of {source} ({', '.join(found.codes)})") for code in codes
            if code not in found.codes]  # fmt: skip


def _levels(table: dict[str, float], found: _Input, source: str, what: str) -> list[str]:
    codes = ("true", "false") if found.kind == "boolean" else found.codes
    keys = {k.lower() for k in table} if found.kind == "boolean" else set(table)
    problems = []
    absent = [c for c in codes if c not in keys]
    if absent:
        problems.append(f"no {what} for {', '.join(absent)} of {source} (every code needs one)")
    extra = sorted(keys - set(codes))
    if extra:
        problems.append(f"{', '.join(extra)} is not a code of {source} ({', '.join(codes)})")
    return problems


# --- bands: every value in exactly one band ------------------------------------------------------------


def _integer_span(band: Band) -> tuple[float, float]:
    """The whole numbers a band holds, as [lowest, highest] (infinite when open)."""
    low, high = band.lower, band.upper
    lo = -math.inf if low is None else (math.ceil(low[0]) if low[1] else math.floor(low[0]) + 1)
    hi = math.inf if high is None else (math.floor(high[0]) if high[1] else math.ceil(high[0]) - 1)
    return lo, hi


def band_problems(
    bands: Sequence[Band], kind: str = "decimal", limits: tuple[float | None, float | None] | None = None
) -> Iterator[tuple[str, str]]:
    """(``[index]`` of the band concerned, message) for each value in no band or in two; on whole
    numbers for an ``integer`` input, and only within the input's hard ``limits`` when it has them."""
    whole = kind == "integer"
    what = "whole number" if whole else "value"
    low_limit, high_limit = limits or (None, None)
    if whole:
        spans = [_integer_span(b) for b in bands]
        for k, (lo, hi) in enumerate(spans):
            if lo > hi:
                yield f"[{k}]", f"band {bands[k].describe()} holds no whole number"
                return
        order = sorted(range(len(bands)), key=lambda k: spans[k][0])
        first, last = spans[order[0]][0], max(hi for _, hi in spans)
        floor = -math.inf if low_limit is None else math.ceil(low_limit)
        if first > floor:
            yield f"[{order[0]}]", f"{_below(floor, first - 1, what)} in no band"
        reach, holder = spans[order[0]][1], order[0]
        for k in order[1:]:
            lo, hi = spans[k]
            if lo <= reach:
                yield f"[{k}]", f"band {bands[k].describe()} overlaps band {bands[holder].describe()}"
            elif lo > reach + 1 and (high_limit is None or reach < high_limit):
                yield f"[{k}]", f"whole numbers {reach + 1:g} to {lo - 1:g} are in no band"
            if hi > reach:
                reach, holder = hi, k
        ceiling = math.inf if high_limit is None else math.floor(high_limit)
        if last < ceiling:
            yield f"[{holder}]", f"{_above(last + 1, ceiling, what)} in no band"
        return
    order = sorted(range(len(bands)), key=lambda k: _lower_key(bands[k]))
    start = bands[order[0]].lower
    if start is not None and not _covers_low(start, low_limit):
        yield f"[{order[0]}]", f"values {'below' if start[1] else 'up to'} {start[0]:g} are in no band"
    holder = order[0]
    for k in order[1:]:
        edge, low = bands[holder].upper, bands[k].lower
        if edge is None or low is None or low[0] < edge[0] or (low[0] == edge[0] and low[1] and edge[1]):
            yield f"[{k}]", f"band {bands[k].describe()} overlaps band {bands[holder].describe()}"
        elif (low[0] > edge[0] or not (low[1] or edge[1])) and (high_limit is None or edge[0] < high_limit):
            gap = f"{'(' if edge[1] else '['}{edge[0]:g}, {low[0]:g}{')' if low[1] else ']'}"
            yield f"[{k}]", f"values in {gap} are in no band"
        if _upper_key(bands[k]) > _upper_key(bands[holder]):
            holder = k
    end = bands[holder].upper
    if end is not None and not _covers_high(end, high_limit):
        yield f"[{holder}]", f"values {'above' if end[1] else 'from'} {end[0]:g} are in no band"


def _lower_key(band: Band) -> tuple[float, int]:
    low = band.lower
    return (-math.inf, 0) if low is None else (low[0], 0 if low[1] else 1)


def _upper_key(band: Band) -> tuple[float, int]:
    high = band.upper
    return (math.inf, 1) if high is None else (high[0], 1 if high[1] else 0)


def _covers_low(start: tuple[float, bool], limit: float | None) -> bool:
    return limit is not None and (start[0] < limit or (start[0] == limit and start[1]))


def _covers_high(end: tuple[float, bool], limit: float | None) -> bool:
    return limit is not None and (end[0] > limit or (end[0] == limit and end[1]))


def _below(low: float, high: float, what: str) -> str:
    return f"{what}s up to {high:g} are" if low == -math.inf else f"{what}s {low:g} to {high:g} are"


def _above(low: float, high: float, what: str) -> str:
    return f"{what}s from {low:g} are" if high == math.inf else f"{what}s {low:g} to {high:g} are"


# --- whole or fractional -------------------------------------------------------------------------------


def _whole(value: float) -> bool:
    return float(value).is_integer()


def _literals(node: Node) -> Iterator[float]:
    if isinstance(node, Number):
        yield node.value
    elif isinstance(node, Negate):
        yield from _literals(node.operand)
    elif isinstance(node, BinaryOp):
        yield from _literals(node.left)
        yield from _literals(node.right)


def _divides(node: Node) -> bool:
    if isinstance(node, Number | Name):
        return False
    if isinstance(node, Negate):
        return _divides(node.operand)
    return node.op == "/" or _divides(node.left) or _divides(node.right)


def _fraction_why(spec: Aggregate | Bands | CodePoints | ValueSet | Formula, decimal_inputs: bool) -> str:
    if isinstance(spec, Aggregate):
        if spec.kind == "mean":
            return "a mean"
        if decimal_inputs and spec.kind != "count":
            return "a decimal input"
        return "pro-rating"
    if isinstance(spec, Bands | CodePoints):
        return "points that are not whole"
    if isinstance(spec, ValueSet):
        return "numbers that are not whole"
    return "division" if _divides(spec.tree) else "a decimal input or number"


def _fractional(spec: Aggregate | Bands | CodePoints | ValueSet | Formula, decimal_inputs: bool) -> bool:
    if isinstance(spec, Aggregate):
        prorate = not isinstance(spec.missing, str) and spec.missing is not None and bool(spec.missing.prorate)
        if spec.kind == "mean":
            return True
        return prorate or (decimal_inputs and spec.kind != "count")
    if isinstance(spec, Bands):
        return not all(_whole(b.points) for b in spec.bands)
    if isinstance(spec, CodePoints):
        return not all(_whole(v) for v in spec.points.values())
    if isinstance(spec, ValueSet):
        numbers = [spec.constant, *(v for d in spec.dimensions for v in d.decrements.values())]
        return not all(_whole(v) for v in numbers)
    return decimal_inputs or _divides(spec.tree) or not all(_whole(v) for v in _literals(spec.tree))


# --- cycles --------------------------------------------------------------------------------------------


def _cycles(p: Protocol) -> Iterator[Found]:
    graph = derivation_graph(p)
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        cycle: list[tuple[str, str]] = exc.args[1]
        places = {(p.forms[i].id, p.forms[i].fields[j].id): (i, j) for i, j in derived_fields(p)}
        first = min((places[n] for n in cycle if n in places), default=None)
        if first is None:
            return
        chain = " -> ".join(f"{form}.{field}" for form, field in cycle)
        yield f"forms[{first[0]}].fields[{first[1]}].derived", f"derived fields form a cycle: {chain}"
