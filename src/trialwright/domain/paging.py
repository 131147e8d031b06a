"""Pages of a list: what one page holds, and the opaque cursor that says where the next one starts.

Every list in the app (participants, the screening log, queries, adverse events, the pharmacy queue, data
access requests) is read a page at a time by *keyset*: the list has a stable order by a key (a tuple such as
``(screened_on, id)``, always descending), and a cursor names the key of the last row shown, so the next page
is "the rows after this key". Unlike an offset, a row inserted while someone pages does not shift the pages:
every row that existed when paging began is shown exactly once. A cursor is opaque to callers (URL-safe
base64 of the key); its direction is ``after`` (the next page) or ``before`` (the previous page).

This module is pure: the SQL form of the same rule lives in ``services/paging.py``; ``page_of`` here pages a
list already in memory by the same cursors (used where a filter can only be evaluated in Python).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Cursor",
    "Key",
    "Kinds",
    "Page",
    "PageError",
    "check_limit",
    "decode_cursor",
    "encode_cursor",
    "page_of",
]

T = TypeVar("T")
#: A row's position in a list's order: compared as a tuple, the list runs from the largest key down.
Key = tuple[Any, ...]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class PageError(ValueError):
    """A malformed cursor or a limit out of range."""


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: strictly after (``forward``) or strictly before (not ``forward``) ``key``."""

    key: Key
    forward: bool = True


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list.

    ``items`` in the list's order; ``total`` rows match the filter; ``start`` rows come before the first item
    (so the page shows rows ``start + 1`` to ``start + len(items)``); ``next_cursor`` and ``prev_cursor`` are
    None at the end and at the start.
    """

    items: tuple[T, ...]
    total: int
    start: int
    limit: int
    next_cursor: str | None
    prev_cursor: str | None

    @property
    def first(self) -> int:
        """The 1-based position of the first item (0 for an empty page)."""
        return self.start + 1 if self.items else 0

    @property
    def last(self) -> int:
        """The 1-based position of the last item (0 for an empty page)."""
        return self.start + len(self.items)


def check_limit(limit: int) -> int:
    """The page size, refused outside 1..MAX_LIMIT."""
    if not 1 <= limit <= MAX_LIMIT:
        raise PageError(f"limit: between 1 and {MAX_LIMIT}")
    return limit


def _encode_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    raise TypeError(f"a page key cannot hold {type(value).__name__}")


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        if isinstance(text, str) and tag == "t":
            return dt.datetime.fromisoformat(text)
        if isinstance(text, str) and tag == "d":
            return dt.date.fromisoformat(text)
    if value is None or isinstance(value, bool | int | str):
        return value
    raise PageError("cursor: not a cursor of this list")


def encode_cursor(key: Key, *, forward: bool = True) -> str:
    """The opaque text of a cursor."""
    body = json.dumps({"k": [_encode_value(v) for v in key], "f": forward}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


#: What a key position holds, so a forged cursor is refused before it reaches the database: ``dt.datetime``
#: (timezone-aware), ``dt.date`` (a date, not a datetime), ``int`` (not bool), ``str``; None: not checked. A
#: position of a known kind never holds null (a list's order key is never null).
Kinds = Sequence[type | None]

#: The widest integer both databases bind (SQLite's and PostgreSQL's 64-bit integer).
_INT_RANGE = range(-(2**63), 2**63)


def _fits(value: Any, kind: type | None) -> bool:
    if kind is None:
        return True
    if kind is dt.datetime:
        return isinstance(value, dt.datetime) and value.utcoffset() is not None
    if kind is dt.date:
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and value in _INT_RANGE
    if kind is str:
        return isinstance(value, str) and "\x00" not in value  # PostgreSQL refuses NUL in text
    return isinstance(value, kind)


def decode_cursor(text: str, width: int, kinds: Kinds | None = None) -> Cursor:
    """A cursor from its text, checked to be a key of ``width`` values, each of its position's kind (``kinds``,
    when given); a malformed or forged one raises PageError."""
    try:
        body = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise PageError("cursor: not a cursor of this list") from None
    if not isinstance(body, dict) or not isinstance(body.get("k"), list) or not isinstance(body.get("f"), bool):
        raise PageError("cursor: not a cursor of this list")
    if len(body["k"]) != width:
        raise PageError("cursor: not a cursor of this list")
    try:
        key = tuple(_decode_value(v) for v in body["k"])
    except ValueError:
        raise PageError("cursor: not a cursor of this list") from None
    if kinds is not None and not all(_fits(v, k) for v, k in zip(key, kinds, strict=True)):
        raise PageError("cursor: not a cursor of this list")
    return Cursor(key, body["f"])


def _kind_of(value: Any) -> type | None:
    """The kind of a key position, judged from a key of the list itself (for lists paged in memory)."""
    for kind in (bool, dt.datetime, dt.date, int, str):
        if isinstance(value, kind):
            return kind
    return None


def page_of(items: Sequence[T], key: Callable[[T], Key], *, limit: int, cursor: str | None = None) -> Page[T]:
    """A page of a list in memory, ordered by ``key`` descending, with the same cursors as the SQL lists."""
    check_limit(limit)
    ordered = sorted(items, key=key, reverse=True)
    keys = [key(i) for i in ordered]
    width = len(keys[0]) if keys else 0
    if cursor is None:
        begin = 0
    else:
        found = decode_cursor(cursor, width, [_kind_of(v) for v in keys[0]]) if keys else None
        if found is None:
            begin = 0
        elif found.forward:
            begin = next((n for n, k in enumerate(keys) if k < found.key), len(keys))
        else:
            end = next((n for n, k in enumerate(keys) if k <= found.key), len(keys))
            begin = max(0, end - limit)
            shown = ordered[begin:end]
            return _page(shown, [key(i) for i in shown], len(keys), begin, limit)
    shown = ordered[begin : begin + limit]
    return _page(shown, keys[begin : begin + limit], len(keys), begin, limit)


def _page(shown: Sequence[T], keys: Sequence[Key], total: int, start: int, limit: int) -> Page[T]:
    more = start + len(shown) < total
    return Page(
        items=tuple(shown),
        total=total,
        start=start,
        limit=limit,
        next_cursor=encode_cursor(keys[-1]) if shown and more else None,
        prev_cursor=encode_cursor(keys[0], forward=False) if shown and start > 0 else None,
    )
