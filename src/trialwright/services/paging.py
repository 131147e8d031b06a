"""Keyset pages of a SQL list: the SQL form of ``domain/paging.py``, shared by every list use case.

A list use case builds its query (site scoping, masking-safe columns and filters applied) and names its order
key, a few expressions that together are unique per row (ending with the row's id); ``keyset_page`` adds the
cursor condition, the order (descending on every key) and the limit, counts the rows that match the filter,
and turns the rows into the use case's views. Paging never changes what a user may see: it only narrows a
query that is already scoped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Date, DateTime, Integer, Row, Select, String, and_, false, func, or_
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator, TypeEngine

from trialwright.domain.paging import Key, Page, check_limit, decode_cursor, encode_cursor

__all__ = ["keyset_page"]

T = TypeVar("T")
_LABEL = "_page_key"


def _beyond(keys: Sequence[ColumnElement[Any]], values: Key, *, after: bool) -> ColumnElement[bool]:
    """Rows strictly after (smaller key) or strictly before (larger key) ``values`` in descending order."""
    terms = []
    for n, (column, value) in enumerate(zip(keys, values, strict=True)):
        equal = [k == v for k, v in zip(keys[:n], values[:n], strict=True)]
        terms.append(and_(*equal, column < value if after else column > value))
    return or_(false(), *terms)


def _kind(column_type: TypeEngine[Any]) -> type | None:
    """What a cursor must hold for a key of this SQL type (see ``domain.paging.Kinds``), so a forged cursor is
    refused before it is bound; a type not known here is not checked, so every list's key is one of these."""
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(column_type, DateTime):
        return dt.datetime if column_type.timezone else None  # every stored time is aware (UTCDateTime)
    for sql, kind in ((Date, dt.date), (Integer, int), (String, str)):
        if isinstance(column_type, sql):
            return kind
    return None


def _count(session: Session, query: Select[Any]) -> int:
    counting = query.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)
    return int(session.execute(counting).scalar_one())


def keyset_page(
    session: Session,
    query: Select[Any],
    keys: Sequence[ColumnElement[Any]],
    convert: Callable[[Session, Sequence[Row[Any]]], Sequence[T]],
    *,
    limit: int,
    cursor: str | None,
) -> Page[T]:
    """One page of ``query`` in descending order of ``keys``, starting at ``cursor`` (None: the first page)."""
    check_limit(limit)
    found = decode_cursor(cursor, len(keys), [_kind(k.type) for k in keys]) if cursor else None
    total = _count(session, query)
    ranked = query.add_columns(*(k.label(f"{_LABEL}{n}") for n, k in enumerate(keys)))
    if found is None or found.forward:
        if found is not None:
            ranked = ranked.where(_beyond(keys, found.key, after=True))
        fetched = session.execute(ranked.order_by(*(k.desc() for k in keys)).limit(limit + 1)).all()
        rows, more_after = fetched[:limit], len(fetched) > limit
    else:
        ranked = ranked.where(_beyond(keys, found.key, after=False))
        fetched = session.execute(ranked.order_by(*(k.asc() for k in keys)).limit(limit)).all()
        rows, more_after = list(reversed(fetched)), True
    row_keys = [tuple(r._mapping[f"{_LABEL}{n}"] for n in range(len(keys))) for r in rows]
    if rows:
        start = _count(session, query.where(_beyond(keys, row_keys[0], after=False)))
    else:
        start = total if found is not None and found.forward else 0
    return Page(
        items=tuple(convert(session, rows)),
        total=total,
        start=start,
        limit=limit,
        next_cursor=encode_cursor(row_keys[-1]) if rows and more_after else None,
        prev_cursor=encode_cursor(row_keys[0], forward=False) if rows and start > 0 else None,
    )
