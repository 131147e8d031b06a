"""SQL the two databases spell differently, as small expressions each compiles in its own words.

- ``json_scalar(column, key, ...)``: the scalar at a path of a JSON text column, as text the way Python's ``str``
  writes it (``True``/``False`` for a JSON boolean, the number's text, the string itself), NULL when absent;
- ``local_day(instant, zone)``: the calendar day an instant falls on in an IANA time zone (PostgreSQL's
  ``AT TIME ZONE``; on SQLite a function each connection registers, ``tw_local_day``, in Python's ``zoneinfo``);
- ``days_before(iso_day, n)``: the day ``n`` days before an ISO date held as text.

Days compare as days on PostgreSQL and as ISO text on SQLite (where a date column holds ISO text), so the three
combine with date columns in a ``WHERE`` on either database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, String, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["days_before", "json_scalar", "local_day", "sqlite_local_day"]


class json_scalar(FunctionElement[str]):
    """The scalar at ``keys`` of the JSON text in ``column``, as Python's ``str`` writes it."""

    type = String()
    name = "json_scalar"
    inherit_cache = True

    def __init__(self, column: Any, *keys: str) -> None:
        super().__init__(column, *(literal(k, String) for k in keys))


class local_day(FunctionElement[dt.date]):
    """The day ``instant`` (a UTC timestamp column) falls on in ``zone``."""

    type = Date()
    name = "local_day"
    inherit_cache = True

    def __init__(self, instant: Any, zone: str) -> None:
        ZoneInfo(zone)  # an unknown zone is refused here, not by the database
        super().__init__(instant, literal(zone, String))


class days_before(FunctionElement[dt.date]):
    """The day ``n`` days before ``day`` (ISO text)."""

    type = Date()
    name = "days_before"
    inherit_cache = True

    def __init__(self, day: Any, n: int) -> None:
        super().__init__(day, literal(int(n), Integer))


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(c, **kw) for c in element.clauses]


@compiles(json_scalar, "sqlite")
def _json_scalar_sqlite(element: json_scalar, compiler: SQLCompiler, **kw: Any) -> str:
    column, *keys = _args(element, compiler, **kw)
    path = " || ".join(["'$'", *(f"'.\"' || {k} || '\"'" for k in keys)])
    return (
        f"CASE json_type({column}, {path}) WHEN 'true' THEN 'True' WHEN 'false' THEN 'False' "
        f"ELSE CAST(json_extract({column}, {path}) AS TEXT) END"
    )


@compiles(json_scalar, "postgresql")
def _json_scalar_postgresql(element: json_scalar, compiler: SQLCompiler, **kw: Any) -> str:
    column, *keys = _args(element, compiler, **kw)
    node = f"CAST({column} AS JSON)"
    for k in keys[:-1]:
        node = f"({node} -> CAST({k} AS TEXT))"
    last = f"CAST({keys[-1]} AS TEXT)"
    return (
        f"CASE json_typeof({node} -> {last}) WHEN 'boolean' THEN "
        f"CASE WHEN ({node} ->> {last}) = 'true' THEN 'True' ELSE 'False' END "
        f"ELSE ({node} ->> {last}) END"
    )


@compiles(local_day, "sqlite")
def _local_day_sqlite(element: local_day, compiler: SQLCompiler, **kw: Any) -> str:
    instant, zone = _args(element, compiler, **kw)
    return f"tw_local_day({instant}, {zone})"


@compiles(local_day, "postgresql")
def _local_day_postgresql(element: local_day, compiler: SQLCompiler, **kw: Any) -> str:
    instant, zone = _args(element, compiler, **kw)
    return f"CAST(({instant} AT TIME ZONE CAST({zone} AS TEXT)) AS DATE)"


@compiles(days_before, "sqlite")
def _days_before_sqlite(element: days_before, compiler: SQLCompiler, **kw: Any) -> str:
    day, n = _args(element, compiler, **kw)
    return f"date({day}, (-({n})) || ' days')"


@compiles(days_before, "postgresql")
def _days_before_postgresql(element: days_before, compiler: SQLCompiler, **kw: Any) -> str:
    day, n = _args(element, compiler, **kw)
    return f"(CAST({day} AS DATE) - CAST({n} AS INTEGER))"


def sqlite_local_day(stored: str | None, zone: str | None) -> str | None:
    """``tw_local_day`` on SQLite: a stored UTC timestamp's (naive ISO text) day in ``zone``, as ISO text."""
    if stored is None or zone is None:
        return None
    instant = dt.datetime.fromisoformat(stored).replace(tzinfo=dt.UTC)
    return instant.astimezone(ZoneInfo(zone)).date().isoformat()
