"""Stored values as ODM and back: ``Value`` in ODM's format for the field's DataType, and ``tw:StoredValue``
for what plain ODM cannot hold. ``to_odm`` refuses a stored value that would not come back exactly through
``from_odm``; ``ValueCodec`` runs it once per distinct stored value in an export (most values repeat: codes,
booleans, dates, rounded measurements), so every value written is still one that came back exactly."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from trialwright.protocol import FieldType, FormField

__all__ = [
    "XML_UNSAFE",
    "ValueCodec",
    "decode_value",
    "encode_value",
    "from_odm",
    "json_text",
    "same_json",
    "to_odm",
]

_STORED_KEYS = ("value", "status", "entered", "unit", "reason", "limit", "components")
_STORED_KEYSET = frozenset(_STORED_KEYS)
_TEXT_KEYS = ("status", "reason", "unit")
_JSON_KEYS = ("entered", "limit", "components")
#: Each stored key with its ``tw:StoredValue`` attribute (its name capitalized), made once.
_TEXT_ATTRS = tuple((key, key.capitalize()) for key in _TEXT_KEYS)
_JSON_ATTRS = tuple((key, key.capitalize()) for key in _JSON_KEYS)
_READ_ATTRS = tuple((key, key.capitalize()) for key in ("reason", "unit"))
_WHOLE = re.compile(r"[+-]?[0-9]+")
XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


#: ``json.dumps(value, sort_keys=True, ensure_ascii=False)`` without a new encoder per call (what ``dumps`` makes
#: whenever it is given options): the same text.
_ENCODE = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode


def json_text(value: Any) -> str:
    """``value`` as JSON text, keys sorted (how a stored value is compared and written)."""
    kind = type(value)
    if kind is int:  # the encoder's own text for the plain scalars, without its generator
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return _ENCODE(value)


_PLAIN = frozenset({str, int, float, bool, type(None), list, dict})


def same_json(a: Any, b: Any) -> bool:
    """``json_text(a) == json_text(b)``, without writing either: values of two JSON types never give the same text
    (``1``, ``1.0``, ``true``, ``"1"``), a float is its shortest repr (so ``-0.0`` is not ``0.0``), lists and
    objects compare element by element; anything else (a tuple, non-text keys) is compared as text."""
    kind = type(a)
    if kind is not type(b) or kind not in _PLAIN:
        return False if kind in _PLAIN and type(b) in _PLAIN else json_text(a) == json_text(b)
    if kind is float:
        return repr(a) == repr(b)
    if kind is list:
        if len(a) != len(b):
            return False
        return all(same_json(x, y) for x, y in zip(a, b, strict=True))
    if kind is dict:
        if a.keys() != b.keys():
            return json_text(a) == json_text(b)  # 1 and "1" are the same key in JSON
        for k, v in a.items():
            if type(k) is not str:
                return json_text(a) == json_text(b)
            if not same_json(v, b[k]):
                return False
        return True
    return bool(a == b)


def encode_value(kind: FieldType, value: Any) -> str:
    """A canonical value as ODM's ``Value`` text for the field's DataType."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        text = format(Decimal(repr(value)), "f")
        return text if "." in text else text + ".0"
    if isinstance(value, str) and kind is FieldType.DATETIME:
        try:
            return dt.datetime.fromisoformat(value).isoformat(timespec="seconds")
        except ValueError:
            return value
    if isinstance(value, str) and kind is FieldType.TIME:
        try:
            return dt.time.fromisoformat(value).isoformat(timespec="seconds")
        except ValueError:
            return value
    return str(value)


def decode_value(kind: FieldType, text: str) -> Any:
    """ODM ``Value`` text back to the canonical value (ValueError if it is not one)."""
    if kind in {FieldType.INTEGER, FieldType.DECIMAL}:
        number = int(text) if _WHOLE.fullmatch(text) else float(text)
        if kind is FieldType.INTEGER and not isinstance(number, int):
            raise ValueError(f"{text!r} is not an integer")
        return number
    if kind is FieldType.BOOLEAN:
        if text not in _BOOLEANS:
            raise ValueError(f"{text!r} is not a boolean (true or false)")
        return _BOOLEANS[text]
    if kind is FieldType.MULTI_CHOICE:
        return text.split(",") if text else []
    if kind is FieldType.DATE:
        return dt.date.fromisoformat(text).isoformat()
    if kind is FieldType.DATETIME:
        return dt.datetime.fromisoformat(text).isoformat(timespec="minutes")
    if kind is FieldType.TIME:
        return dt.time.fromisoformat(text).isoformat(timespec="minutes")
    return text


def to_odm(f: FormField, stored: Mapping[str, Any]) -> tuple[str | None, dict[str, str]]:
    """A stored value as ODM: the ``Value`` text (None: ``IsNull="Yes"``) and the ``tw:StoredValue``
    attributes that keep the rest; ValueError if the stored value cannot come back exactly."""
    unknown = () if _STORED_KEYSET.issuperset(stored) else sorted(set(stored) - _STORED_KEYSET)
    if unknown:
        raise ValueError(f"{f.id}: stored keys {', '.join(unknown)} have no place in ODM")
    detail: dict[str, str] = {}
    text: str | None = None
    if stored.get("value") is not None:
        value = stored["value"]
        text = encode_value(f.type, value)
        try:
            exact = same_json(decode_value(f.type, text), value)
        except ValueError:
            exact = False
        if not exact or XML_UNSAFE.search(text):
            detail["Value"] = json_text(value)
            text = detail["Value"] if XML_UNSAFE.search(text) else text
    for key, attr in _TEXT_ATTRS:
        if key in stored and not (key == "status" and stored[key] == "value"):
            if not isinstance(stored[key], str):
                raise ValueError(f"{f.id}: {key} {stored[key]!r} is not text")
            detail[attr] = stored[key]
    for key, attr in _JSON_ATTRS:
        if key in stored:
            detail[attr] = json_text(stored[key])
    if not same_json(from_odm(f, text, detail), dict(stored)):
        raise ValueError(f"{f.id}: the stored value {json_text(dict(stored))} would not come back exactly from ODM")
    return text, detail


def from_odm(f: FormField, text: str | None, detail: Mapping[str, str]) -> dict[str, Any]:
    """The stored value (as JSON) from ODM's ``Value`` and the ``tw:StoredValue`` attributes."""
    stored: dict[str, Any] = {}
    if "Value" in detail:
        stored["value"] = json.loads(detail["Value"])
    elif text is not None:
        stored["value"] = decode_value(f.type, text)
    stored["status"] = detail.get("Status", "value")
    for key, attr in _READ_ATTRS:
        if attr in detail:
            stored[key] = detail[attr]
    for key, attr in _JSON_ATTRS:
        if attr in detail:
            stored[key] = json.loads(detail[attr])
    return stored


def _exact_key(value: Any) -> Any:
    """A key equal for two JSON values only if their JSON texts are equal: the type is part of it (``true`` is not
    ``1``, ``1`` is not ``1.0``), a float is its repr (``-0.0`` is not ``0.0``), a list or object its JSON text."""
    kind = type(value)
    if kind is float:
        return float, repr(value)
    if kind is str or kind is int or kind is bool or value is None:
        return kind, value
    return list, json_text(value)


class ValueCodec:
    """``to_odm`` for one export, remembering at most ``size`` stored values and what they became, so memory stays
    bounded; each distinct stored value is checked the first time it comes after it was forgotten. Two generations
    of half the size each: when the newer is full it becomes the older (the older forgotten), and a value found in
    the older moves to the newer, so the values that keep coming (codes, booleans, common measurements) stay
    remembered while the ones seen once go."""

    def __init__(self, size: int = 1024) -> None:
        self._half = max(1, size // 2)
        self._seen: dict[tuple[Any, ...], list[Any]] = {}
        self._older: dict[tuple[Any, ...], list[Any]] = {}

    def _found(self, oid: str, f: FormField, stored: Mapping[str, Any]) -> list[Any]:
        # The key: the ItemDef and each key with ``_exact_key`` of its value (written out for the common kinds).
        key: list[Any] = [oid]
        for k, v in stored.items():
            kind = type(v)
            if kind is str or kind is int or kind is bool or v is None:
                key.append((k, kind, v))
            else:
                key.append((k, *_exact_key(v)))
        held = tuple(key)
        found = self._seen.get(held)
        if found is None:
            found = self._older.pop(held, None)
            if found is None:
                found = list(to_odm(f, stored))
            if len(self._seen) >= self._half:
                self._older, self._seen = self._seen, {}
            self._seen[held] = found
        return found

    def to_odm(self, oid: str, f: FormField, stored: Mapping[str, Any]) -> tuple[str | None, Mapping[str, str]]:
        """``to_odm(f, stored)`` for the field with ItemDef OID ``oid`` (the answer is shared: do not change it)."""
        found = self._found(oid, f, stored)
        return found[0], found[1]

    def written(
        self, oid: str, f: FormField, stored: Mapping[str, Any],
        render: Callable[[str, FormField, str | None, Mapping[str, str]], Any],
    ) -> Any:  # fmt: skip
        """``render(oid, f, *to_odm(f, stored))``, remembered with the value (a writer's text for it, made once per
        distinct value; one codec is given one ``render``)."""
        found = self._found(oid, f, stored)
        if len(found) == 2:
            found.append(render(oid, f, found[0], found[1]))
        return found[2]
