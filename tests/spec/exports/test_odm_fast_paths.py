"""The ODM export's shortcuts answer as the long way does (issue 23 item 4: the ODM export at 100,000 participants).

The export writes every value of the trial, so three pieces of per-value work take a shortcut; each gives what the
long way gives, checked here against that long way computed independently:

| shortcut                                          | the long way it must equal                              |
|---------------------------------------------------|---------------------------------------------------------|
| ``json_text`` of an integer or finite float        | ``json.dumps(value, sort_keys=True, ensure_ascii=False)`` |
| ``mask_value`` of a JSON object whose keys are all | each key classified and masked (``classify``), the text  |
| visible for its action: the text as it is          | written again only if a key was masked                   |
| ``ValueCodec``: values that keep coming stay       | ``to_odm`` of each value; at most ``size`` remembered     |
| remembered while ones seen once come between them  |                                                          |
| the audit index's time stamp text, made once per   | ``at.isoformat()`` of each entry's own time, its zone's   |
| distinct time                                      | offset kept (the same instant in two zones is two texts) |

The codec keeps two generations: a value that comes again while the others pass is moved to the newer one, so a
code repeated between distinct measurements is checked once, not once each time the memory fills (which is what a
memory forgotten all at once did).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialwright.domain.audit_masking import AUDITED, MASKED, Shown, classify, mask_value
from trialwright.exports.odm import values
from trialwright.exports.odm.audit_index import AUDIT_COLUMNS, AuditIndex
from trialwright.exports.odm.values import ValueCodec, json_text
from trialwright.protocol import FieldType, FormField

SCALARS = st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.none() | st.text()
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3))


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_json_text_is_json_dumps(value: Any) -> None:
    assert json_text(value) == json.dumps(value, sort_keys=True, ensure_ascii=False)


def test_json_text_of_awkward_numbers_is_json_dumps() -> None:
    for value in (0, -0.0, 0.0, 1e16, 1e-05, 1e308, -1e-320, 10**40, float("nan"), float("inf"), True, False):
        assert json_text(value) == json.dumps(value, sort_keys=True, ensure_ascii=False), value


def _masked_key_by_key(action: str, column: str, raw: str) -> str:
    """What a blinded reader sees, key by key: the long way, without the shortcut."""
    value = json.loads(raw)
    assert isinstance(value, dict)
    shown = {k: (v if classify(action, k) is Shown.VISIBLE else MASKED) for k, v in value.items()}
    return raw if shown == value else json.dumps(shown, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


ACTIONS = sorted(AUDITED)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(ACTIONS), st.sampled_from(["new_value", "old_value", "detail"]), st.data())
def test_a_json_object_is_masked_as_key_by_key(action: str, column: str, data: st.DataObject) -> None:
    known = sorted(AUDITED[action]) or ["value"]
    keys = st.sampled_from(known) | st.sampled_from(["arm", "kit", "lot", "limit", "value", "*"])
    value = data.draw(st.dictionaries(keys, SCALARS.filter(lambda v: v == v), max_size=4))
    raw = json.dumps(value, ensure_ascii=False)
    assert mask_value(action, column, raw) == _masked_key_by_key(action, column, raw)


def test_a_value_with_a_key_its_action_does_not_show_is_masked_and_one_without_is_not() -> None:
    raw = '{"status":"value","value":3,"entered":"3"}'
    assert mask_value("form.value_entered", "new_value", raw) is raw
    hidden = mask_value("form.value_entered", "new_value", '{"status":"value","value":3,"limit":1}')
    assert json.loads(hidden or "") == {"status": "value", "value": 3, "limit": MASKED}


def _field() -> FormField:
    return FormField.model_validate({"id": "x", "label": "X", "type": FieldType.DECIMAL})


def test_a_value_that_keeps_coming_is_checked_once_while_others_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[Any] = []
    real = values.to_odm

    def counting(f: FormField, stored: Any) -> Any:
        checked.append(stored["value"])
        return real(f, stored)

    monkeypatch.setattr(values, "to_odm", counting)
    codec, f = ValueCodec(4), _field()
    common = {"value": 1.5, "status": "value"}
    for n in range(100):  # the common value between values seen once, 25 times the codec's memory
        assert codec.to_odm("IT.f.x", f, common) == real(f, common)
        once = {"value": float(n) + 0.25, "status": "value"}
        assert codec.to_odm("IT.f.x", f, once) == real(f, once)
        assert len(codec._seen) + len(getattr(codec, "_older", {})) <= 4  # never more than its size remembered
    assert checked.count(1.5) == 1
    assert len(checked) == 101  # each value seen once checked once


def test_the_text_written_for_a_value_is_made_once_and_is_that_of_its_odm_answer() -> None:
    codec, f = ValueCodec(8), _field()
    made: list[tuple[Any, ...]] = []

    def render(oid: str, field: FormField, text: str | None, detail: Any) -> tuple[str, str | None]:
        made.append((oid, text))
        return oid, text

    stored = {"value": 2.5, "status": "value", "unit": "mg"}
    for _ in range(3):
        assert codec.written("IT.f.x", f, stored, render) == ("IT.f.x", values.to_odm(f, stored)[0])
    assert made == [("IT.f.x", "2.5")]


def test_each_entry_keeps_its_own_time_stamp_text_when_equal_times_repeat(tmp_path: Path) -> None:
    """The entries of one save share their time, so its text is made once per distinct time; an entry at the same
    instant written in another zone (a source that does not read them in UTC) still gets its own text."""
    utc = dt.datetime(2026, 12, 5, 8, 30, 15, 123456, tzinfo=dt.UTC)
    tehran = utc.astimezone(dt.timezone(dt.timedelta(hours=3, minutes=30)))
    assert utc == tehran  # equal to Python, not the same text
    times = [utc, utc, tehran, utc, tehran, utc + dt.timedelta(seconds=1), utc]
    detail = json.dumps({"visit": "day1"})
    entry = ("seq", "at", "dm", "data_manager", "THR", None, "hash", "form.value_entered", "P-001", "vitals", "pulse",
             detail, json.dumps({"value": 80, "status": "value"}), None)  # fmt: skip
    rows = [dict(zip(AUDIT_COLUMNS, (n, at, *entry[2:]), strict=True)) for n, at in enumerate(times)]
    index = AuditIndex(tmp_path / "audit.sqlite", batch=2)  # a small memory: forgotten and made again
    try:
        written = list(index.entries((tuple(r.values()) for r in rows), {}))
    finally:
        index.close()
    seq, at = 5, 6  # the columns of an indexed entry (``AuditIndex.entries``)
    assert len(written) == 2 * len(rows)  # the form and the value, for each entry
    assert [(e[seq], e[at]) for e in written] == [(r["seq"], r["at"].isoformat()) for r in rows for _ in (1, 2)]
    assert written[4][at] == "2026-12-05T12:00:15.123456+03:30"
