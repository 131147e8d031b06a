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
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from trialwright.protocol.declared import Aggregate, Formula, MinPresent
from trialwright.protocol.forms import FieldType, FormField
from trialwright.protocol.formula import FormulaError, parse

__all__ = [
    "Calculation",
    "FilterLogic",
    "FilterRefused",
    "NotMapped",
    "calculation",
    "derivation_expression",
    "filter_logic",
]

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


# --- Filter logic: ``filterLogic`` of a records export -------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<ref>\[[^\[\]]*\])|(?P<str>'[^']*'|\"[^\"]*\")|(?P<num>-?(?:\d+\.?\d*|\.\d+))"
    r"|(?P<op><>|!=|<=|>=|==|=|<|>)|(?P<par>[()])|(?P<word>[A-Za-z_][A-Za-z0-9_-]*)|(?P<other>\S))"
)
_NUMBER = re.compile(r"^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")  # as exported: 90, 2.5, 1e-07
_CHECKBOX = re.compile(r"^([a-z][a-z0-9_]*)\(([^()]*)\)$")
_COMPARE = {"=", "!=", "<>", "<", "<=", ">", ">="}


class FilterRefused(ValueError):
    """A filter logic this API cannot evaluate exactly; the message names the construct."""


@dataclass(frozen=True)
class _Ref:
    event: str | None  # None: the row's own event
    column: str  # the export column read


@dataclass(frozen=True)
class _Compare:
    left: _Ref | str
    op: str
    right: _Ref | str


@dataclass(frozen=True)
class _Both:
    conjunction: bool  # and (True) or or (False)
    parts: tuple[_Compare | _Both, ...]


Record = Mapping[str, Mapping[str, str]]  # one record's export rows: event -> column -> raw value


def _order(a: str, b: str) -> int | None:
    """-1, 0 or 1 as REDCap orders two values: as numbers when both are, as text otherwise; None when either
    is blank or exactly one is a number (a blank, or a missing data code against a number, has no order)."""
    if a == "" or b == "":
        return None
    if _NUMBER.match(a) and _NUMBER.match(b):
        x, y = float(a), float(b)
        return (x > y) - (x < y)
    if _NUMBER.match(a) or _NUMBER.match(b):
        return None
    return (a > b) - (a < b)


@dataclass(frozen=True)
class FilterLogic:
    """A parsed ``filterLogic``: :meth:`holds` says whether it is true for one event of one record."""

    text: str
    root: _Compare | _Both

    def holds(self, record: Record, event: str) -> bool:
        return self._holds(self.root, record, event)

    def _holds(self, node: _Compare | _Both, record: Record, event: str) -> bool:
        if isinstance(node, _Both):
            test = all if node.conjunction else any
            return test(self._holds(p, record, event) for p in node.parts)
        a, b = (
            side if isinstance(side, str) else record.get(side.event or event, {}).get(side.column, "")
            for side in (node.left, node.right)
        )
        if node.op == "=":
            return a == b if a == "" or b == "" else _order(a, b) == 0
        if node.op in {"!=", "<>"}:
            return a != b if a == "" or b == "" else _order(a, b) != 0
        order = _order(a, b)
        if order is None:
            return False
        return {"<": order < 0, "<=": order <= 0, ">": order > 0, ">=": order >= 0}[node.op]


def filter_logic(text: str, fields: Mapping[str, Collection[str] | None], events: Collection[str]) -> FilterLogic:
    """Parse REDCap filter logic over the variables a caller may read: ``fields`` maps each REDCap variable to
    None (one column) or its checkbox codes (``[name(code)]``); ``events`` are the unique event names. Comparisons
    (``= != <> < <= > >=``) of variables, numbers and quoted text, joined by ``and``/``or`` and parentheses; any
    other construct is refused naming it, never skipped."""
    tokens: list[tuple[str, str]] = []
    position = 0
    source = text.strip()
    while position < len(source):
        m = _TOKEN.match(source, position)
        assert m is not None and m.lastgroup is not None
        kind, value = m.lastgroup, m.group(m.lastgroup)
        if kind == "other":
            what = "arithmetic" if value in "+-*/^%" else "the character"
            raise FilterRefused(f"filterLogic: {what} {value!r} is not supported (comparisons joined by and/or only)")
        if kind == "word" and value.lower() not in {"and", "or"} and source[m.end() :].lstrip().startswith("("):
            raise FilterRefused(f"filterLogic: the function {value}() is not supported")
        if kind == "op" and value == "==":
            value = "="
        tokens.append((kind, value))
        position = m.end()
    if not tokens:
        raise FilterRefused("filterLogic: empty")
    at = 0

    def peek() -> tuple[str, str]:
        return tokens[at] if at < len(tokens) else ("end", "")

    def take() -> tuple[str, str]:
        nonlocal at
        token = peek()
        at += 1
        return token

    def word(token: tuple[str, str]) -> str:
        return token[1].lower() if token[0] == "word" else ""

    def operand() -> _Ref | str:
        kind, value = take()
        if kind == "str":
            return value[1:-1]
        if kind == "num":
            return value
        if kind == "ref":
            inner = value[1:-1].strip()
            if peek()[0] == "ref":  # [event][variable]
                if inner not in events:
                    raise FilterRefused(f"filterLogic: [{inner}] is not an event of this project")
                return _variable(take()[1][1:-1].strip(), inner)
            return _variable(inner, None)
        raise FilterRefused(f"filterLogic: {value or 'the end'!r} where a variable, number or quoted text belongs")

    def _variable(name: str, event: str | None) -> _Ref:
        if peek()[0] == "ref":
            raise FilterRefused(f"filterLogic: [{name}]{peek()[1]}: instances and other suffixes are not supported")
        box = _CHECKBOX.match(name)
        base = box.group(1) if box else name
        if not _NAME.match(base):
            raise FilterRefused(f"filterLogic: [{name}] (a smart variable) is not supported")
        if base not in fields:
            raise FilterRefused(f"filterLogic: [{base}] is not a field of this project")
        codes = fields[base]
        if box is None and codes is not None:
            raise FilterRefused(f"filterLogic: [{base}] is a checkbox: name its choice, [{base}(code)]")
        if box is not None:
            if codes is None or box.group(2) not in codes:
                raise FilterRefused(f"filterLogic: [{name}]: {box.group(2)!r} is not a choice of checkbox {base}")
            return _Ref(event, f"{base}___{box.group(2)}")
        return _Ref(event, base)

    def atom() -> _Compare | _Both:
        if peek() == ("par", "("):
            take()
            inner = either()
            if take() != ("par", ")"):
                raise FilterRefused("filterLogic: a parenthesis is not closed")
            return inner
        if word(peek()) == "not":
            raise FilterRefused("filterLogic: not is not supported; write the opposite comparison (<> for =)")
        left = operand()
        kind, op = take()
        if kind != "op" or op not in _COMPARE:
            raise FilterRefused(f"filterLogic: a comparison (= != <> < <= > >=) is needed after {_said(left)}")
        return _Compare(left, op, operand())

    def joined(part: Callable[[], _Compare | _Both], keyword: str) -> _Compare | _Both:
        parts = [part()]
        while word(peek()) == keyword:
            take()
            parts.append(part())
        return parts[0] if len(parts) == 1 else _Both(keyword == "and", tuple(parts))

    def both() -> _Compare | _Both:
        return joined(atom, "and")

    def either() -> _Compare | _Both:
        return joined(both, "or")

    root = either()
    if at < len(tokens):
        raise FilterRefused(f"filterLogic: {tokens[at][1]!r} is not understood here (and, or, a comparison)")
    return FilterLogic(source, root)


def _said(side: _Ref | str) -> str:
    return repr(side) if isinstance(side, str) else f"[{side.column}]"
