"""Form records' stored JSON read as Arrow columns gives the cells ``json.loads`` gives (issue 23: CSV and Parquet
for 100,000 participants).

The tabular exports hand the stored texts of a chunk of form records to Arrow's JSON reader in one call
(``trialwright.exports.stored_columns.read_stored``) and build the form's wide table and the long table from its
columns (``tabular._arrow_columns``). For any chunk, either every cell of both tables is the cell the Python path
gives (each text parsed by ``json.loads``, then ``_wide_columns`` and ``_long_columns``), or the reader refuses the
chunk and the Python path builds it:

| stored text                                                        | Arrow reader                 |
|--------------------------------------------------------------------|------------------------------|
| keys sorted, ``json.dumps`` separators, values of the field's type  | read; cells as Python's      |
| whole numbers below 2**53, floats, text, yes/no, lists of choices   | read; cells as Python's      |
| ``-0``, ``1E16``, an integer of 2**53 or more, NaN, Infinity, 1e400  | refused                      |
| ``"status": null``, a repeated key, an undeclared field, keys unsorted | refused                      |
| a backslash, a control character, another spacing, another type    | refused                      |
| a field holding ``null`` or anything but an object                   | refused                      |
| a derived value's ``components`` (in no table)                      | skipped unread; cells as Python's |
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from trialwright.exports import tabular
from trialwright.exports.stored_columns import read_stored, stored_schema
from trialwright.exports.tabular import Column, Table

#: The form: one field of each kind (the stored kind Arrow reads it as, the column kind of the wide table).
_FIELDS = {"age": ("number", "number"), "alive": ("yesno", "yesno"), "ctx": ("list", "text"),
           "grade": ("text", "code"), "note": ("text", "text"), "seen_on": ("text", "date"),
           "taken_at": ("text", "datetime"), "value": ("number", "number")}  # fmt: skip
_UNITS = {"age": "years", "value": "mg/L"}


def _plan(with_status: bool) -> Any:
    fields = tuple(
        tabular._FieldPlan(f, kind, _UNITS.get(f), f"{f}_flag", f"{f}_status", f"{f}_reason", with_status)
        for f, (_, kind) in _FIELDS.items()
    )
    return tabular._FormPlan(Table("forms/f", "F", (Column("participant_id", "text", "Participant id"),)), fields,
                             {f: _UNITS.get(f) for f in _FIELDS})  # fmt: skip


_SCHEMA = stored_schema({f: stored for f, (stored, _) in _FIELDS.items()})

_NUMBERS = (
    st.integers(-(2**54), 2**54) | st.floats() | st.integers(-(2**70), 2**70)
    | st.sampled_from([-0.0, 0.0, 1e-07, 1.5e17, 1e16, 9.999e-05, 2.0**53, 2**53 - 1, 123456789.125, 3.0, 1e300])
)  # fmt: skip
#: Numbers as a stored text may spell them (``json.dumps`` writes none of these): put in place of a placeholder.
_SPELLINGS = ("-0", "1E16", "1e16", "10000000000000000", "9007199254740993", "-0.0", "1E+2", "2.50", "0e0", "5",
              "123456789012345678901234567890", "1e400", "-1e-400", "NaN", "-Infinity", "4.0000000000000001")
_SPELT = st.sampled_from([f"SPELT{i}" for i in range(len(_SPELLINGS))])
_TEXTS = st.text(max_size=5) | st.sampled_from(["2021-05-01", "2021-05-01T11:09+00:00", "2021-13-01", "x\\y", "é"])
_AWKWARD = st.none() | st.booleans() | _NUMBERS | _TEXTS | st.lists(_TEXTS | _NUMBERS, max_size=2)
_OF_KIND = {
    "number": _NUMBERS | _SPELT,
    "yesno": st.booleans(),
    "list": st.lists(st.text(max_size=3), max_size=3),
    "text": _TEXTS,
}
#: What a chunk Arrow may read holds: values of the field's type, finite, text without quotes, backslashes or
#: control characters.
_PLAIN_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\'), max_size=5)
_OF_KIND_CLEAN = {
    "number": st.integers(-(2**54), 2**54) | st.floats(allow_nan=False, allow_infinity=False) | _SPELT,
    "yesno": st.booleans(),
    "list": st.lists(_PLAIN_TEXT, max_size=3),
    "text": _PLAIN_TEXT | st.sampled_from(["2021-05-01", "2021-05-01T11:09+00:00", "2021-13-01", "é"]),
}


_STATUSES = st.sampled_from(["value", "derived", "not_done", "not_applicable", "below_lloq", "above_uloq"])


@st.composite
def _stored(draw: st.DrawFn, stored_kind: str, clean: bool) -> Any:
    """One stored value: of its field's type (``clean``), else nine times in ten, anything the rest."""
    if not clean and draw(st.integers(0, 30)) == 0:
        return draw(st.none() | _NUMBERS | st.text(max_size=2))  # not a stored value at all
    typed = (_OF_KIND_CLEAN if clean else _OF_KIND)[stored_kind]
    value = typed if clean else st.one_of(typed, typed, typed, typed, typed, typed, typed, typed, typed, _AWKWARD)
    return draw(st.fixed_dictionaries({}, optional={
        "status": _STATUSES if clean else _STATUSES | st.none(),
        "value": value,
        "entered": value,
        "unit": st.none() | st.sampled_from(["mg/L", "°C"]),
        "limit": st.none() | _NUMBERS | _SPELT | (st.nothing() if clean else st.booleans()),
        "reason": st.none() | (_PLAIN_TEXT if clean else st.text(max_size=4)),
        "components": st.dictionaries(st.sampled_from(["pulse", "age", "value"]), st.integers(0, 3), max_size=2),
    }))  # fmt: skip


def _spelt(text: str) -> str:
    for i, spelling in reversed(list(enumerate(_SPELLINGS))):
        text = text.replace(f'"SPELT{i}"', spelling)
    return text


@st.composite
def _record_text(draw: st.DrawFn, clean: bool) -> str:
    """A record's stored text: as trialwright writes it (``clean``), else also written otherwise."""
    return _spelt(draw(_written(clean)))


@st.composite
def _written(draw: st.DrawFn, clean: bool) -> str:
    names = draw(st.lists(st.sampled_from([*_FIELDS] if clean else [*_FIELDS, "undeclared"]), unique=True,
                          max_size=len(_FIELDS)))  # fmt: skip
    record = {n: draw(_stored(_FIELDS[n][0] if n in _FIELDS else "text", clean)) for n in names}
    others = ["unsorted", "compact", "ascii", "repeated", "spaced"]
    how = "sorted" if clean else draw(st.sampled_from(["sorted"] * 6 + others))
    if how == "unsorted":
        return json.dumps(dict(reversed(record.items())), ensure_ascii=False)
    if how == "compact":
        return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if how == "ascii":
        return json.dumps(record, sort_keys=True)
    if how == "spaced":
        return json.dumps(record, sort_keys=True, indent=draw(st.sampled_from([None, 1])), ensure_ascii=False)
    text = json.dumps(record, sort_keys=True, ensure_ascii=False)
    if how == "repeated" and record:
        key = draw(st.sampled_from(sorted(record)))
        again = draw(_stored(_FIELDS.get(key, ("text",))[0], clean))
        return text[:-1] + f', "{key}": ' + json.dumps(again) + "}"
    return text


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return type(a) is type(b) and a == b


def _cells(columns: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: c.to_pylist() if hasattr(c, "to_pylist") else list(c) for k, c in columns.items()}


def _rows(texts: list[str]) -> list[tuple[Any, ...]]:
    return [(f"P{i // 2}", "S1", f"v{i}", dt.date(2021, 5, 1 + i % 20), "f", "complete", t)
            for i, t in enumerate(texts)]  # fmt: skip


def _python_path(plan: Any, rows: list[tuple[Any, ...]]) -> tuple[dict[str, list[Any]], dict[str, list[Any]], int]:
    """The cells as the exports built them before: each text parsed by ``json.loads``."""
    parsed = [(*r[:6], json.loads(r[6])) for r in rows]
    long_columns, count = tabular._long_columns(plan.units, parsed)
    return _cells(tabular._wide_columns(plan, parsed)), _cells(long_columns), count


def _assert_same_cells(expected: dict[str, list[Any]], got: dict[str, list[Any]], count: int) -> None:
    for name in sorted(set(expected) | set(got)):
        want, have = expected.get(name, [None] * count), got.get(name, [None] * count)
        assert len(want) == len(have) == count, (name, len(want), len(have), count)
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            assert _same(h, w), (name, i, h, w)


def _check(texts: list[str], with_status: bool) -> bool:
    """Both paths on one chunk; whether Arrow's was taken."""
    plan, rows = _plan(with_status), _rows(texts)
    stored = read_stored(texts, _SCHEMA)
    built = None if stored is None else tabular._arrow_columns(plan, rows, stored)
    try:
        wide, long_cells, count = _python_path(plan, rows)
    except ValueError:  # the Python path refuses the chunk (a missing value without its status column)
        assert built is None
        return False
    if built is None:
        return False
    arrow_wide, (arrow_long, arrow_count) = built
    assert arrow_count == count
    _assert_same_cells(wide, _cells(arrow_wide), len(texts))
    _assert_same_cells(long_cells, _cells(arrow_long), count)
    return True


_CHUNKS = st.booleans().flatmap(lambda clean: st.lists(_record_text(clean), min_size=1, max_size=6))


@settings(max_examples=400, deadline=None)
@given(_CHUNKS, st.booleans())
def test_every_cell_read_by_arrow_is_the_cell_json_loads_gives(texts: list[str], with_status: bool) -> None:
    event("read by Arrow" if _check(texts, with_status) else "refused: built from json.loads")


def test_records_as_trialwright_writes_them_are_read_by_arrow() -> None:
    records = [
        {"age": {"entered": 344, "status": "value", "unit": "years", "value": 344.0},
         "alive": {"status": "value", "value": True}, "ctx": {"status": "value", "value": ["a", "b"]},
         "grade": {"status": "value", "value": "2"}, "note": {"status": "not_done", "reason": "lost"},
         "seen_on": {"status": "value", "value": "2021-05-01"},
         "taken_at": {"entered": "2021-05-01T15:39+04:30", "status": "value", "value": "2021-05-01T11:09+00:00"},
         "value": {"components": {"pulse": 1}, "limit": 0.5, "status": "below_lloq", "unit": "mg/L"}},
        {"age": {"entered": 12345678901234, "status": "value", "value": 0.1}, "ctx": {"status": "value", "value": []}},
        {},
    ]  # fmt: skip
    texts = [json.dumps(r, sort_keys=True, ensure_ascii=False) for r in records]
    assert _check(texts, with_status=True)


def test_what_arrow_could_read_otherwise_is_refused() -> None:
    plain = '{"age": {"status": "value", "value": 1}}'
    for text in [
        '{"age": {"status": "value", "value": -0}}',  # Python: the integer 0; Arrow: -0.0
        '{"age": {"status": "value", "value": 10000000000000000}}',  # written 1e+16 from a float
        '{"age": {"status": "value", "value": 9007199254740993}}',  # no float holds it
        '{"age": {"status": null, "value": 1}}',  # Python: status None; Arrow: absent
        '{"age": {"status": "value", "value": NaN}}',  # Arrow reads it (after a number): refused all the same
        '{"age": {"status": "value", "entered": -Infinity}}',
        '{"age": {"value": 1}, "age": {"value": 2}}',
        '{"undeclared": {"value": 1}}',
        '{"age": {"value": 1}, "undeclared": 5}',  # a field that is not a stored value: the Python path leaves it out
        '{"age": null}',  # Python: no stored value (left out); a key the long table would not have
        '{"age": {"value": 1}, "note": "x"}',
        '{"value": {"value": 1}, "age": {"value": 2}}',  # unsorted: the long table's rows would change order
        '{"age":{"value": 1}}',
        '{"note": {"value": "a\\"b"}}',
        '{"note": {"value": 5}}',
        '{"ctx": {"status": "value", "value": [null, "a"]}}',  # Python: "None|a"; Arrow would join it to a null
        "null",  # not a record (and a line Arrow's reader would crash the process on, with an explicit schema)
        "[]",
    ]:
        assert read_stored([plain, text], _SCHEMA) is None, text
    assert read_stored([plain], _SCHEMA) is not None


def test_what_no_table_uses_is_not_read() -> None:
    """A derived value's ``components`` (the score's parts, a third of a vitals record's bytes) are in no table: the
    reader skips them rather than building columns for them (Arrow's ``ignore``, not ``infer``), and the cells are
    still the cells ``json.loads`` gives."""
    text = json.dumps({"age": {"components": {"pulse": 1, "spo2": [3, 2]}, "status": "derived", "value": 9},
                       "grade": {"components": {"age": 2}, "status": "derived", "value": "high"}},
                      sort_keys=True)  # fmt: skip
    stored = read_stored([text, text], _SCHEMA)
    assert stored is not None
    assert [f.name for f in stored.fields["age"].type] == ["value", "status", "reason", "limit", "entered", "unit"]
    assert _check([text, text], with_status=False)
