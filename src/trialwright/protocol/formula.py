"""The arithmetic a protocol may write in a ``formula`` derivation: + - * / over numbers and field names.

The text is parsed by Python's own parser (``ast.parse`` in ``eval`` mode, which only builds a tree and
runs nothing) and every node is then checked against a short list: numbers, field names (``spo2`` on the
same form, ``vitals.spo2`` on another form of the visit), unary + and -, the four operators and
parentheses. Anything else (calls, powers, comparisons, strings, subscripts) is refused, so nothing in a
protocol file is ever evaluated as Python. The result is a small tree of frozen nodes that
``trialwright.domain.declared`` evaluates.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = ["BinaryOp", "FormulaError", "Name", "Negate", "Node", "Number", "names", "parse", "zero_divisors"]

#: Longer than any score needs; a bound keeps the parser's recursion small.
MAX_LENGTH = 2000

Operator = Literal["+", "-", "*", "/"]


class FormulaError(ValueError):
    """A formula that is not arithmetic over numbers and field names."""


@dataclass(frozen=True)
class Number:
    """A literal number."""

    value: float


@dataclass(frozen=True)
class Name:
    """A field: ``field`` on the same form, or ``form.field``."""

    ref: str


@dataclass(frozen=True)
class Negate:
    """Unary minus."""

    operand: Node


@dataclass(frozen=True)
class BinaryOp:
    """``left op right``."""

    op: Operator
    left: Node
    right: Node


Node = Number | Name | Negate | BinaryOp

_OPERATORS: dict[type[ast.operator], Operator] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def parse(text: str) -> Node:
    """The tree of a formula; FormulaError naming what is not allowed."""
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"a formula is at most {MAX_LENGTH} characters")
    if not text.strip():
        raise FormulaError("the formula is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"not a formula: {exc.msg} at column {exc.offset}") from None
    return _convert(tree.body)


def _convert(node: ast.expr) -> Node:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise FormulaError(f"{node.value!r} is not a number")
        return Number(float(node.value))
    if isinstance(node, ast.Name):
        return Name(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return Name(f"{node.value.id}.{node.attr}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _convert(node.operand)
        return Negate(operand) if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return BinaryOp(_OPERATORS[type(node.op)], _convert(node.left), _convert(node.right))
    shown = ast.unparse(node)
    raise FormulaError(f"{shown!r} is not allowed: only numbers, field names, + - * / and parentheses")


def names(node: Node) -> Iterator[str]:
    """Every field a formula reads, in the order written (repeats included)."""
    if isinstance(node, Name):
        yield node.ref
    elif isinstance(node, Negate):
        yield from names(node.operand)
    elif isinstance(node, BinaryOp):
        yield from names(node.left)
        yield from names(node.right)


def _constant(node: Node) -> float | None:
    """The value of a part without field names (None when it reads a field)."""
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Name):
        return None
    if isinstance(node, Negate):
        inner = _constant(node.operand)
        return None if inner is None else -inner
    left, right = _constant(node.left), _constant(node.right)
    if left is None or right is None:
        return None
    if node.op == "/":
        return math.nan if right == 0 else left / right
    return {"+": left + right, "-": left - right, "*": left * right}[node.op]


def zero_divisors(node: Node) -> Iterator[str]:
    """Each divisor written without field names that is zero (``x / 0``, ``x / (2 - 2)``)."""
    if isinstance(node, Negate):
        yield from zero_divisors(node.operand)
    elif isinstance(node, BinaryOp):
        yield from zero_divisors(node.left)
        yield from zero_divisors(node.right)
        if node.op == "/":
            value = _constant(node.right)
            if value is not None and (value == 0 or math.isnan(value)):
                yield _text(node.right)


def _text(node: Node) -> str:
    if isinstance(node, Number):
        return f"{node.value:g}"
    if isinstance(node, Name):
        return node.ref
    if isinstance(node, Negate):
        return f"-{_text(node.operand)}"
    return f"({_text(node.left)} {node.op} {_text(node.right)})"
