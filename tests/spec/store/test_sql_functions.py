"""The expressions both databases spell differently (``store.sql_functions``) give the same answers on each.

``json_scalar`` reads a JSON text column as Python's ``str`` writes the value (what ``death_of`` compares a
form's value with); ``local_day`` is the day an instant falls on at a site (what ``domain.calendars.local_date``
gives in Python), across a summer-time change; ``days_before`` counts back from an ISO day.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert, literal, select

from trialwright.domain.calendars import local_date
from trialwright.store.coltypes import UTCDateTime
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.sql_functions import days_before, json_scalar, local_day

VALUES = {"yes": True, "no": False, "n": 3, "x": 1.5, "code": "died", "none": None, "nested": {"value": "True"}}

#: Instants near midnight at each site, and across London's and Tehran's clocks (London changes in March).
INSTANTS = [
    dt.datetime(2025, 3, 29, 23, 30, tzinfo=dt.UTC),
    dt.datetime(2025, 3, 30, 0, 30, tzinfo=dt.UTC),
    dt.datetime(2025, 3, 30, 23, 30, tzinfo=dt.UTC),
    dt.datetime(2025, 6, 1, 20, 29, tzinfo=dt.UTC),
    dt.datetime(2025, 6, 1, 20, 31, tzinfo=dt.UTC),
]

metadata = MetaData()
things = Table("things", metadata, Column("id", Integer, primary_key=True), Column("body", Text),
               Column("at", UTCDateTime()))  # fmt: skip


@pytest.fixture
def engine(database_url: str):  # type: ignore[no-untyped-def]
    e = make_engine(database_url)
    metadata.create_all(e)
    with session_scope(e) as session:
        session.execute(insert(things), [{"id": n, "body": json.dumps(VALUES), "at": at}
                                         for n, at in enumerate(INSTANTS)])  # fmt: skip
    yield e
    e.dispose()


@pytest.mark.parametrize("key", ["yes", "no", "n", "x", "code", "none", "absent"])
def test_json_scalar_is_pythons_str_of_the_value(engine, key: str) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        got = session.execute(select(json_scalar(things.c.body, key)).where(things.c.id == 0)).scalar_one()
    value = VALUES.get(key)
    assert got == (None if value is None else str(value))  # "True", "False", "3", "1.5", "died"


def test_json_scalar_follows_a_path(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        got = session.execute(select(json_scalar(things.c.body, "nested", "value")).where(things.c.id == 0))
        assert got.scalar_one() == "True"  # the string "True", as stored


@pytest.mark.parametrize("zone", ["Europe/London", "Asia/Tehran"])
def test_local_day_is_the_sites_day(engine, zone: str) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        rows = session.execute(select(things.c.id, local_day(things.c.at, zone)).order_by(things.c.id)).all()
    got = [dt.date.fromisoformat(str(day)) for _, day in rows]
    assert got == [local_date(at, ZoneInfo(zone)) for at in INSTANTS]


@pytest.mark.parametrize(("day", "n", "expected"), [("2024-03-01", 1, "2024-02-29"), ("2025-01-03", 7, "2024-12-27"),
                                                      ("2025-06-01", 0, "2025-06-01")])  # fmt: skip
def test_days_before_counts_back_from_an_iso_day(engine, day: str, n: int, expected: str) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        got = session.execute(select(days_before(literal(day, String), n))).scalar_one()
    assert str(got) == expected == (dt.date.fromisoformat(day) - dt.timedelta(days=n)).isoformat()
