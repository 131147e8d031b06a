"""The analysis reads a snapshot's form values as the definition reads them, by its fast path (issue 23 item 4: the
analysis in under 60 s at 100,000 participants), as the specification.

``FormValuesReader`` (``services.analysis_values``) turns each form record's stored JSON into analysis values per
participant and visit, and finds who the treatment form says was given the treatment, with as little Python per
value as it can. What it must give is the definition, written out here as ``analysis_data`` read values before:
every declared field of every record through ``_value(StoredValue.from_json(raw))``, undeclared ones skipped (a record
saved with no value at all: each declared field there, empty, so the form counts as saved), and
``treatment_given(StoredValue.from_json(raw))`` of the treatment form's given field at the treatment visit.

| input                                                                     | reader gives                        |
|---------------------------------------------------------------------------|-------------------------------------|
| a simulated trial (60 screened, seed 3): missing values, deaths,          | the definition's values and given,  |
| withdrawals, an infusion interrupted (intercurrent events)                | and the same analysis data set      |
| generated records: any status (censored below or above a limit, not done, | the definition's values and given;  |
| missing), limit, key set, undeclared fields, the given field recorded or  | refused where the definition is     |
| not, forms not in the protocol                                            |                                     |
| a record whose JSON has text after it, or is not JSON                     | refused as ``json.loads`` refuses   |
| generated JSON texts (the parse alone): numbers spelt every way (long      | what ``json.loads`` gives: the same |
| digits, exponents, huge integers, NaN and infinities), text with escapes   | values of the same types in the     |
| and lone surrogates, repeated keys, whitespace, and texts with a character | same key order, or a refusal where  |
| put in or taken out                                                        | it refuses                          |

The trial runs on both databases.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.trialfixtures import FIRST_PROTOCOL, Trial, first_protocol, make_trial, who
from trialwright.domain.forms import StoredValue
from trialwright.domain.roles import Role
from trialwright.domain.treatment import treatment_given
from trialwright.protocol import Protocol
from trialwright.protocol.analysis_plan import BelowLimitRule
from trialwright.services.analysis import analysis_data
from trialwright.services.analysis_values import FormValuesReader, _parsed, _value
from trialwright.services.simulation import simulate
from trialwright.services.trial import current_protocol
from trialwright.store.data_tables import form_records, visit_records

Values = dict[str, dict[str, dict[str, Any]]]


def definition(
    protocol: Protocol, rule: BelowLimitRule, visit_of: Mapping[int, tuple[str, str]],
    records: Iterable[tuple[int, str, str]],
) -> tuple[Values, set[str]]:  # fmt: skip
    """Values and the treated, as ``analysis_data`` read them before the reader: one object per stored value."""
    declared = {f.id: {x.id: (f"{f.id}.{x.id}", x.type) for x in f.fields} for f in protocol.forms}
    plan = protocol.analysis_plan
    given_key = (plan.treatment.visit, f"{plan.treatment.form}.{plan.treatment.given_field}") if (
        plan and plan.treatment) else None  # fmt: skip
    values: Values = {}
    treated: set[str] = set()
    for record_id, form_id, text in records:
        pid, visit_id = visit_of[record_id]
        slot = values.setdefault(pid, {}).setdefault(visit_id, {})
        fields = declared.get(form_id, {})
        parsed = json.loads(text)
        if parsed == {}:  # a form saved with every field blank is still saved: its declared fields there, empty
            for key, _ in fields.values():
                slot.setdefault(key, None)
        for name, raw in parsed.items():
            known = fields.get(name)
            if known is not None:
                key, kind = known
                slot[key] = _value(StoredValue.from_json(raw), kind, rule)
                if (visit_id, key) == given_key and treatment_given(StoredValue.from_json(raw)):
                    treated.add(pid)
    return values, treated


def read(
    protocol: Protocol, rule: BelowLimitRule, visit_of: Mapping[int, tuple[str, str]],
    records: Iterable[tuple[int, str, str]],
) -> tuple[Values, set[str]]:  # fmt: skip
    reader = FormValuesReader(protocol, rule, visit_of)
    reader.read(records)
    return reader.values, reader.given


def outcome(how: Any, *args: Any) -> Any:
    """What a reading gives: its result, or the type of its refusal."""
    try:
        return how(*args)
    except (TypeError, ValueError, AttributeError) as exc:
        return type(exc)


def same(got: Any, expected: Any) -> bool:
    """Equal, and each value of the same type (a float is not a str, ``1.0`` is not ``True``)."""
    if isinstance(expected, type) or isinstance(got, type):
        return got is expected
    (values, treated), (want, want_treated) = got, expected
    typed = {(p, v, k): type(x) for p, per in values.items() for v, slot in per.items() for k, x in slot.items()}
    wanted = {(p, v, k): type(x) for p, per in want.items() for v, slot in per.items() for k, x in slot.items()}
    return values == want and treated == want_treated and typed == wanted


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 60, seed=3)
    yield t
    t.engine.dispose()


def test_a_simulated_trial_is_read_as_the_definition_reads_it(trial: Trial) -> None:
    protocol = current_protocol(trial.engine).protocol
    with trial.engine.connect() as conn:
        visit_of = {r.id: (r.participant_id, r.visit_id) for r in conn.execute(select(visit_records))}
        records = [tuple(r) for r in conn.execute(
            select(form_records.c.visit_record_id, form_records.c.form_id, form_records.c.form_values))]  # fmt: skip
    for rule in BelowLimitRule:
        got, expected = read(protocol, rule, visit_of, records), definition(protocol, rule, visit_of, records)
        assert same(got, expected)
    values, treated = expected
    data = analysis_data(trial.engine, who(trial, Role.BLINDED_STATISTICIAN))
    # The trial has what the fast path must get right: missing values (a primary outcome's value absent at its
    # visit, missed visits), deaths, withdrawals, and the treatment stopped (intercurrent events).
    primary = protocol.outcomes[0].estimand.variable
    assert primary.at is not None
    assert any(s.value(primary.at, primary.fields[0]) is None for s in data.subjects)
    assert any(s.value(primary.at, primary.fields[0]) is not None for s in data.subjects)
    assert any(s.death_day is not None for s in data.subjects)
    assert any("follow_up" in s.withdrawn for s in data.subjects)
    plan = protocol.analysis_plan
    assert plan is not None
    stopped = f"{plan.per_protocol.exclude_when[0]} yes"  # the infusion interrupted: the treatment stopped
    assert any(stopped in s.not_per_protocol for s in data.subjects)
    # The analysis data set carries exactly these values, and treats exactly these participants.
    assert len(data.subjects) > 20
    for s in data.subjects:
        assert s.values == values.get(s.participant_id, {})
        assert s.treated == (s.participant_id in treated)


PROTOCOL = first_protocol().protocol  # loaded once, for the generated records
FORMS = {f.id: [x.id for x in f.fields] for f in PROTOCOL.forms}
TREATMENT = PROTOCOL.analysis_plan.treatment if PROTOCOL.analysis_plan else None

STATUSES = st.sampled_from(["value", "derived", "not_done", "not_applicable", "below_lloq", "above_uloq", "other"])
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4), st.lists(st.sampled_from(["a", "b", "1"]), max_size=3),
)  # fmt: skip


@st.composite
def stored(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:
        return draw(VALUES)  # not a stored value's shape at all
    raw: dict[str, Any] = {"value": draw(VALUES)}
    for key, values in (("status", STATUSES), ("limit", st.floats(0.001, 1000)), ("entered", st.text(max_size=3)),
                        ("unit", st.just("mg/L")), ("reason", st.just("not measured"))):  # fmt: skip
        if draw(st.booleans()):
            raw[key] = draw(values)
    if draw(st.booleans()):
        del raw["value"]
    if draw(st.integers(0, 20)) == 0:
        raw["colour"] = "red"  # a key a stored value does not have
    return raw


@st.composite
def records(draw: st.DrawFn) -> tuple[dict[int, tuple[str, str]], list[tuple[int, str, str]]]:
    visits = ["baseline", "day7", TREATMENT.visit if TREATMENT else "infusion"]
    visit_of = {n: (f"P{n % 3}", visits[n % len(visits)]) for n in range(draw(st.integers(1, 6)))}
    out = []
    for record_id in visit_of:
        form_id = draw(st.sampled_from([*FORMS, "not_a_form"]))
        names = FORMS.get(form_id, ["x"])
        fields = draw(st.lists(st.sampled_from([*names, "undeclared"]), max_size=6, unique=True))
        if TREATMENT and form_id == TREATMENT.form and draw(st.booleans()):
            fields.append(TREATMENT.given_field)
        out.append((record_id, form_id, json.dumps({name: draw(stored()) for name in fields})))
    return visit_of, out


@settings(max_examples=300, deadline=None)
@given(records(), st.sampled_from(list(BelowLimitRule)))
def test_generated_records_are_read_as_the_definition_reads_them(
    made: tuple[dict[int, tuple[str, str]], list[tuple[int, str, str]]], rule: BelowLimitRule
) -> None:
    visit_of, rows = made
    assert same(outcome(read, PROTOCOL, rule, visit_of, rows), outcome(definition, PROTOCOL, rule, visit_of, rows))


@pytest.mark.parametrize("text", ['{"a": 1} {"b": 2}', '{"a": 1}x', "not json", "", '  {"a": 1}', '{"a": 1}  ', "[1]"])
def test_a_record_that_is_not_one_json_object_is_refused_or_read_as_json_loads_reads_it(text: str) -> None:
    visit_of, rows = {1: ("P1", "baseline")}, [(1, "labs", text)]
    expected = outcome(definition, PROTOCOL, BelowLimitRule.LIMIT, visit_of, rows)
    got = outcome(read, PROTOCOL, BelowLimitRule.LIMIT, visit_of, rows)
    assert same(got, expected)


# The parse alone: each record's text is parsed by pydantic-core's parser, and by ``json.loads`` when that refuses it;
# for every text, what comes back (values, their types and the keys' order) or the refusal is ``json.loads``'s.

NUMBER_TEXT = st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)
#: Any character, with the awkward ones often: lone surrogates (which ``json`` keeps), escapes, quotes, NUL, newlines.
AWKWARD = st.sampled_from(["\ud800", "\udc00", "\udfff", "\U0001f600", "é", "\\", '"', "\x00", "\n", "/"])
TEXT = st.lists(st.one_of(AWKWARD, st.characters()), max_size=6).map("".join)
LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(), TEXT,
    NUMBER_TEXT.map(lambda n: RawJSON(n)),
)  # fmt: skip
WHITESPACE = st.text(st.sampled_from(" \t\n\r\x0b\x0c"), max_size=2)


class RawJSON(str):
    """A number's JSON spelling, written as it is (not as Python would print the number)."""


def to_text(value: Any, ascii_only: bool, pad: str) -> str:
    """``value`` as JSON text, number spellings written as drawn, objects with their (possibly repeated) keys."""
    if isinstance(value, RawJSON):
        return str(value)
    if isinstance(value, list):
        return "[" + ",".join(to_text(v, ascii_only, pad) for v in value) + "]"
    if isinstance(value, tuple):  # an object as (key, value) pairs, keys possibly repeated
        items = (json.dumps(k, ensure_ascii=ascii_only) + pad + ":" + to_text(v, ascii_only, pad) for k, v in value)
        return "{" + pad + ",".join(items) + "}"
    return json.dumps(value, ensure_ascii=ascii_only)


DOCUMENTS = st.recursive(
    LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(st.tuples(st.one_of(st.sampled_from(["status", "value", "a"]), TEXT), inner), max_size=5).map(tuple),
    ),
    max_leaves=12,
)


def parsed_as(parse: Any, text: str) -> tuple[str, str]:
    """What a parse gives, in full: the value's repr (types, NaN, -0.0 and key order shown), or the refusal."""
    try:
        return "value", repr(parse(text))
    except ValueError:
        return "refused", ""


@settings(max_examples=1000, deadline=None)
@given(DOCUMENTS, st.booleans(), WHITESPACE, WHITESPACE, st.integers(0, 3), st.integers(0, 10**6), TEXT)
def test_a_record_text_is_parsed_as_json_loads_parses_it(
    document: Any, ascii_only: bool, pad: str, around: str, change: int, where: int, extra: str
) -> None:
    text = around + to_text(document, ascii_only, pad) + around
    if change == 1:  # a character (or a few) put in somewhere
        text = text[: where % (len(text) + 1)] + extra + text[where % (len(text) + 1) :]
    elif change == 2 and text:  # one taken out
        text = text[: where % len(text)] + text[where % len(text) + 1 :]
    assert parsed_as(_parsed, text) == parsed_as(json.loads, text)


@pytest.mark.parametrize(
    "text",
    ['{"v": "\\ud800"}', '{"v": "\ud800"}', '{"v": NaN, "w": -Infinity}', '{"v": 1e400, "w": -0.0, "x": -0}',
     '{"v": 123456789012345678901234567890}', '{"v": 1.00000000000000011102230246251565404236316680908203125}',
     '{"v": 2.2250738585072011e-308}', '{"a": 1, "b": 2, "a": 3}', ' \n{"v": 1}\r\t', '{"v": "\x00"}',
     '\x0c{"v": 1}', '{"v": 01}', '{"v": .5}', '{"v": 1.}'],
)  # fmt: skip
def test_awkward_record_texts_are_parsed_as_json_loads_parses_them(text: str) -> None:
    assert parsed_as(_parsed, text) == parsed_as(json.loads, text)
