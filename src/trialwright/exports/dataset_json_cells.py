"""The values of a Dataset-JSON dataset: each value as the JSON its column's data type requires, or refused.

One rule (``trialwright.exports.dataset_json`` states it), applied two ways that give the same bytes:

- ``cell``: one value at a time, the rule as written (the writer's ``add``, and any batch the column way cannot
  decide);
- ``column_json``: a whole column at a time, in a few passes the interpreter runs in C (the types of the column
  looked up once, each distinct date or time text matched once, the JSON text of each value made by the encoder
  ``json.dumps`` itself uses), for the batches the exporter writes. A column holding anything the rule would refuse,
  or anything it does not expect, is not decided here (``None``): the writer then takes that batch a row at a time
  through ``cell``, which writes the same values or refuses the same value by name.

A cell's JSON text is what ``json.dumps(..., ensure_ascii=False)`` writes for the value ``cell`` returns; its length
(``length`` in the columns) is that of the value as text (a string's characters, an integer's digits), none for
yes/no.
"""

from __future__ import annotations

import datetime as dt
import json.encoder
import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa

__all__ = ["DataType", "arrow_json", "cell", "column_json", "decimal_text"]

DataType = Literal["string", "integer", "decimal", "boolean", "datetime", "date", "time"]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?")
_TIME = re.compile(r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?")
_PATTERNS = {"date": _DATE, "datetime": _DATETIME, "time": _TIME}

#: The string encoder ``json.dumps(..., ensure_ascii=False)`` uses for every str (CPython's C one).
_ENCODE: Any = json.encoder.encode_basestring
_NONE: type = type(None)
_BOOLEANS = {True: "true", False: "false", None: "null"}


def decimal_text(value: float) -> str:
    """A number as a Dataset-JSON decimal: plain notation with ``.``, the shortest text that reads back as exactly
    ``value`` (Python's ``repr``), never an exponent; a whole number without ``.0`` (as the CSV export writes it).
    A Python int is written as its own digits, never through a float (past 2**53 a float would change it)."""
    if type(value) is int:
        return str(value)
    text = repr(float(value))
    if "e" in text:  # repr's exponent (below 1e-4, from 1e16): the same digits in plain notation
        text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


def _moment(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)  # stored in UTC


def cell(kind: DataType, value: Any, where: str) -> Any:
    """``value`` as the JSON value of data type ``kind``; refused (``ValueError``) when it is not of that type."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value!r} is not a finite number (a missing value is None, never NaN)")
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        if float(value).is_integer():
            return int(value)
        raise ValueError(f"{where}: {value!r} is not a whole number (declared integer); nothing is rounded")
    if kind == "decimal" and isinstance(value, int | float) and not isinstance(value, bool):
        return decimal_text(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if kind == "datetime" and isinstance(value, dt.datetime):
        return _moment(value).isoformat()
    if kind in _PATTERNS and isinstance(value, str):
        if _PATTERNS[kind].fullmatch(value):
            return value
        raise ValueError(f"{where}: {value!r} is not an ISO 8601 {kind}")
    raise ValueError(f"{where}: {value!r} ({type(value).__name__}) is not a value of type {kind}")


def column_json(kind: DataType, values: Sequence[Any]) -> tuple[list[str], int] | None:
    """Each value's JSON text (``null`` for None) and the longest value as text (0: none measured), the same as
    ``cell`` value by value; None when the column holds a value ``cell`` would refuse, or one of a Python type it
    does not expect here (a subclass, a mix): the caller then goes a row at a time.

    Each distinct value is made once and looked up for the others: codes, identifiers, visit numbers, dates and
    units repeat down a column. Values equal to Python make the same text (2 and 2.0 as an integer or a decimal,
    one instant in two time zones as UTC), but for 0.0 and -0.0, so a decimal column holding a zero is made value
    by value."""
    types = set(map(type, values)) - {_NONE}  # of every value: True and 1 are one value to a set, not one type
    if not types:
        return ["null"] * len(values), 0
    if kind == "boolean":
        return (list(map(_BOOLEANS.__getitem__, values)), 0) if types == {bool} else None
    if kind == "decimal" and 0 in values:
        made = _decimals(values) if types <= {int, float} else None
        if made is None:
            return None
        return [f'"{t}"' if t is not None else "null" for t in made], max(map(len, filter(None, made)))
    try:
        distinct = set(values)
    except TypeError:  # a value no column holds (a list, a dict): refused by ``cell``
        return None
    distinct.discard(None)
    keys = list(distinct)
    texts = _texts(kind, types, keys)
    if texts is None:
        return None
    if kind == "integer":
        found = list(map(repr, texts))
        longest = max(map(len, found))
    elif kind == "decimal":  # digits, '-' and '.' only: nothing to escape
        found, longest = [f'"{t}"' for t in texts], max(map(len, texts))
    else:
        found, longest = list(map(_ENCODE, texts)), max(map(len, texts))
    lookup = dict(zip(keys, found, strict=True))
    lookup[None] = "null"
    return list(map(lookup.__getitem__, values)), longest


def arrow_json(kind: DataType, values: pa.Array) -> tuple[pa.Array, int] | None:
    """``column_json`` of an Arrow column, as an Arrow string array: each distinct value (Arrow's dictionary, which
    tells 0.0 from -0.0) made once in Python, then taken for every row by Arrow; None as ``column_json``."""
    encoded = values.dictionary_encode()
    made = column_json(kind, encoded.dictionary.to_pylist())
    if made is None:
        return None
    texts, longest = made
    return pa.array(texts, pa.string()).take(encoded.indices).fill_null("null"), longest


def _texts(kind: DataType, types: set[type], values: Sequence[Any]) -> Sequence[Any] | None:
    """The values ``cell`` returns for ``values`` (none None; ints for an integer column, texts for the others), or
    None when ``cell`` would refuse one or the types are not those expected here."""
    if kind == "string":
        return values if types == {str} else None
    if kind == "integer":
        if not types <= {int, float}:
            return None
        if float not in types:
            return values
        if not all(x.is_integer() for x in values if type(x) is float):  # not whole, or not finite: refused
            return None
        return list(map(int, values))
    if kind == "decimal":
        return _decimals(values) if types <= {int, float} else None
    if types == {str}:  # an ISO 8601 text (SDTM's --DTC, a time field)
        pattern = _PATTERNS[kind]
        return values if all(map(pattern.fullmatch, values)) else None
    if kind == "date" and types == {dt.date}:
        return list(map(dt.date.isoformat, values))
    if kind == "datetime" and types == {dt.datetime}:
        return [_moment(x).isoformat() for x in values]
    return None


def _decimals(values: Sequence[Any]) -> list[Any] | None:
    """``decimal_text`` of each number (None kept), or None when one is not finite (``cell`` refuses it)."""
    reprs = [None if x is None else str(x) if type(x) is int else repr(float(x)) for x in values]
    joined = "".join(filter(None, reprs))
    if "n" in joined:  # 'inf' or 'nan'
        return None
    if "e" in joined:  # a number repr writes with an exponent: in plain notation
        reprs = [format(Decimal(t), "f") if t is not None and "e" in t else t for t in reprs]
    return [t[:-2] if t is not None and t.endswith(".0") else t for t in reprs]
