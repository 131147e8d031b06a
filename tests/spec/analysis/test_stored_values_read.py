"""The analysis reads each stored value from its JSON as the stored value object reads it, as the specification
(issue 23, the read path at scale).

``analysis_data`` no longer builds a ``StoredValue`` per value: ``_stored_value`` reads the stored JSON directly,
and must give what ``_value(StoredValue.from_json(raw))`` gives, for every field type, status and below-limit rule,
on generated values; a stored value ``from_json`` refuses (an unknown key) is refused the same way.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialwright.domain.forms import StoredValue
from trialwright.protocol.analysis_plan import BelowLimitRule
from trialwright.protocol.forms import FieldType
from trialwright.services.analysis_values import _stored_value, _value

STATUSES = st.sampled_from(["value", "derived", "not_done", "not_applicable", "below_lloq", "above_uloq"])
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5), st.lists(st.sampled_from(["a", "b", "1"]), max_size=3),
)  # fmt: skip


@st.composite
def stored(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = {"value": draw(VALUES)}
    if draw(st.booleans()):
        raw["status"] = draw(STATUSES)
    if draw(st.booleans()):
        raw["limit"] = draw(st.floats(0.001, 1000))
    if draw(st.booleans()):
        raw["reason"] = "not measured"
    if draw(st.booleans()):
        del raw["value"]
    return raw


@settings(max_examples=300, deadline=None)
@given(stored(), st.sampled_from(list(FieldType)), st.sampled_from(list(BelowLimitRule)))
def test_a_value_read_from_its_json_is_the_value_read_from_the_stored_object(
    raw: dict[str, Any], kind: FieldType, rule: BelowLimitRule
) -> None:
    try:
        expected: Any = _value(StoredValue.from_json(raw), kind, rule)
    except (TypeError, ValueError) as exc:
        expected = type(exc)
    try:
        got: Any = _stored_value(raw, kind, rule)
    except (TypeError, ValueError) as exc:
        got = type(exc)
    assert got == expected and type(got) is type(expected)


def test_a_stored_value_with_a_key_the_object_does_not_have_is_refused_as_before() -> None:
    raw = {"value": 3.5, "status": "value", "colour": "red"}
    with pytest.raises(TypeError):
        StoredValue.from_json(raw)
    with pytest.raises(TypeError):
        _stored_value(raw, FieldType.DECIMAL, BelowLimitRule.LIMIT)
