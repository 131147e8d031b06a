"""The ODM export does less work per row, and writes the same bytes (issue 23 item 3: the ODM export at
100,000 participants).

A shortcut and a guard, each checked here against the long way:

| shortcut                                                   | the long way it must equal                           |
|------------------------------------------------------------|------------------------------------------------------|
| ``ValueCodec``'s key for a stored value (a guard: any      | ``to_odm`` of each value: values equal in Python but |
| faster key must still tell apart what JSON tells apart)    | two JSON texts (``1``, ``1.0``, ``true``; ``0.0``,   |
|                                                            | ``-0.0``; ``[1]``, ``[1.0]``) never share an answer   |
| the audit rows' time stamps read as stored and converted   | the time stamp the column's type gives each entry    |
| by the column's type once per distinct stored value (the   | (a plain select of the column), once per row         |
| entries of one save share their time)                      |                                                      |

The file as a whole is pinned elsewhere: ``test_odm_merge_join`` (the merge join against the whole index, blinded,
with arms, imported) and the byte-identical re-export of ``import odm``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.odm import values
from trialwright.exports.odm.audit_index import AUDIT_ACTIONS, AUDIT_COLUMNS, AUDIT_ONLY, AUDIT_PREFIXES, AUDIT_UNNAMED
from trialwright.exports.odm.values import ValueCodec
from trialwright.protocol import FieldType, FormField
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate
from trialwright.store.coltypes import UTCDateTime
from trialwright.store.engine import make_engine
from trialwright.store.tables import audit_entries

READ = (AUDIT_COLUMNS, AUDIT_ACTIONS, AUDIT_PREFIXES, AUDIT_ONLY, AUDIT_UNNAMED)

#: Stored values that Python finds equal (or that hash alike) but whose JSON texts differ, in the order they come.
LOOK_ALIKE = [
    {"status": "value", "value": 1},
    {"status": "value", "value": 1.0},
    {"status": "value", "value": True},
    {"status": "value", "value": 0},
    {"status": "value", "value": 0.0},
    {"status": "value", "value": -0.0},
    {"status": "value", "value": False},
    {"status": "value", "value": 0.0},
    {"status": "value", "value": [1]},
    {"status": "value", "value": [1.0]},
    {"status": "value", "value": [True]},
    {"status": "value", "value": [-0.0]},
    {"status": "value", "value": [0.0]},
    {"status": "value", "value": 2.5, "entered": "2.5", "unit": "mg"},
    {"status": "value", "value": 2.5, "entered": "2.50", "unit": "mg"},
    {"status": "derived", "value": 3, "components": {"a": 1, "b": 2}},
    {"status": "derived", "value": 3, "components": {"a": 1.0, "b": 2}},
]


def _field(kind: FieldType) -> FormField:
    return FormField.model_validate({"id": "x", "label": "X", "type": kind})


@pytest.mark.parametrize("kind", [FieldType.DECIMAL, FieldType.INTEGER, FieldType.TEXT])
def test_values_equal_in_python_but_not_as_json_never_share_an_answer(kind: FieldType) -> None:
    f = _field(kind)
    codec = ValueCodec(64)
    for order in (LOOK_ALIKE, LOOK_ALIKE[::-1], LOOK_ALIKE * 2):
        for stored in order:
            try:
                expected: Any = values.to_odm(f, stored)
            except ValueError as refused:  # a value this field's type cannot carry: refused the same way
                with pytest.raises(ValueError, match="would not come back exactly"):
                    codec.to_odm("IT.f.x", f, stored)
                assert "would not come back exactly" in str(refused)
                continue
            assert codec.to_odm("IT.f.x", f, stored) == expected, stored


@pytest.fixture(scope="module")
def simulated(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 6, seed=5)
    yield t
    t.engine.dispose()


def test_each_stored_time_stamp_is_converted_once_and_as_its_entry_holds_it(
    simulated: Trial, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(simulated.engine) as session:  # each entry's time as its column's type reads it, row by row
        typed = {s: a for s, a in session.execute(select(audit_entries.c.seq, audit_entries.c.at))}
    converted: list[Any] = []
    real = UTCDateTime.process_result_value

    def counting(self: UTCDateTime, value: Any, dialect: Any) -> dt.datetime | None:
        converted.append(value)
        return real(self, value, dialect)

    monkeypatch.setattr(UTCDateTime, "process_result_value", counting)
    engine = make_engine(simulated.url)  # a new engine: its dialect makes its result processors afresh, counting
    try:
        source = dataclasses.replace(export_source(engine, who(simulated, Role.DATA_MANAGER)), batch=7)
        with source.snapshot():
            converted.clear()  # only the audit rows' conversions
            rows = list(source.audit_columns(*READ))
            counted = len(converted)
    finally:
        engine.dispose()
    seq, at = AUDIT_COLUMNS.index("seq"), AUDIT_COLUMNS.index("at")
    assert len(rows) > 200
    assert [r[at] for r in rows] == [typed[r[seq]] for r in rows]
    assert all(r[at].tzinfo is dt.UTC for r in rows)
    distinct = len({r[at] for r in rows})
    assert distinct < len(rows) // 2  # the entries of one save share their time
    assert distinct <= counted <= distinct * 2  # once per distinct stored value (again after a forgetting)
