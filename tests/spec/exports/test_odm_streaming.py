"""The ODM export written as it streams (issue 23, the read path at scale), as the specification.

Memory: the export holds a batch of XML text, a batch of audit keys, a participant's form records and indexed
audit entries, and a bounded memory of checked values and masked audit texts, whatever the size of the trial.
The trial grows from 10 screened patients to 40 (form records x3 or more) on SQLite and PostgreSQL; the Python
heap's peak (``tracemalloc``) of an ODM export with batches of 16 may not double. The measure can see growth:
with batches larger than the trial (the file, the audit keys and every value held at once) the same growth
raises the peak by more.

| batches                | peak at 40 patients / peak at 10 |
|------------------------|----------------------------------|
| 16                     | < 2                              |
| larger than the trial  | more than with 16                |

The batch is only what is held: the file is the same byte for byte with batches of 1, 7, 16 and the default.

The audit trail is read as plain rows of a few columns (``ExportSource.audit_columns``): the database's rows are
exactly the definition's (every ``audit`` entry with that action, those columns taken, masked as ``audit`` masks),
blinded and with arms, and a column read only for some actions is None for the others.

The round-trip check compares JSON values without writing them (``same_json``): it answers exactly as comparing
their JSON texts would, on awkward and generated values; ``ValueCodec`` checks each distinct stored value once and
answers as ``to_odm`` does, for values that are equal in Python but not in JSON (``1``, ``1.0``, ``true``;
``0.0``, ``-0.0``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.base import ExportSource
from trialwright.exports.odm import OdmExporter, to_odm
from trialwright.exports.odm.values import ValueCodec, json_text, same_json
from trialwright.protocol import FieldType, FormField
from trialwright.services.exports import DatabaseSource, export_source
from trialwright.services.simulation import simulate

SMALL = 16
TAKEN_AT = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    yield t
    t.engine.dispose()


def _source(trial: Trial, batch: int, role: Role = Role.DATA_MANAGER, with_arms: bool = False) -> DatabaseSource:
    made = export_source(trial.engine, who(trial, role), with_arms=with_arms)
    return dataclasses.replace(made, batch=batch, taken_at=TAKEN_AT)


def _peak(trial: Trial, folder: Path, batch: int) -> int:
    source = _source(trial, batch)
    folder.mkdir(parents=True)
    tracemalloc.start()
    try:
        OdmExporter(batch).write(source, folder)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_peak_memory_of_an_odm_export_stays_flat_as_the_trial_grows(trial: Trial, tmp_path: Path) -> None:
    big = 1_000_000  # larger than the trial: the file, the audit keys and the values held at once
    simulate(trial.engine, FIRST_PROTOCOL, 10, seed=3)
    _peak(trial, tmp_path / "warm", SMALL)  # imports and compiled statements, not the export's own
    small = export_source(trial.engine, who(trial, Role.DATA_MANAGER)).count()
    flat_1, whole_1 = _peak(trial, tmp_path / "f1", SMALL), _peak(trial, tmp_path / "w1", big)
    simulate(trial.engine, FIRST_PROTOCOL, 30, seed=4)
    large = export_source(trial.engine, who(trial, Role.DATA_MANAGER)).count()
    flat_4, whole_4 = _peak(trial, tmp_path / "f4", SMALL), _peak(trial, tmp_path / "w4", big)
    assert large >= 3 * small > 3 * SMALL  # the trial grew, and the file spans many batches
    assert flat_4 / flat_1 < 2
    assert whole_4 / whole_1 > flat_4 / flat_1  # the measure sees what holding everything would cost


def test_the_file_is_the_same_whatever_the_batch(trial: Trial, tmp_path: Path) -> None:
    if export_source(trial.engine, who(trial, Role.DATA_MANAGER)).count() == 0:
        simulate(trial.engine, FIRST_PROTOCOL, 10, seed=3)  # run alone
    files = []
    for batch in (1, 7, SMALL, 4096):
        (tmp_path / str(batch)).mkdir()
        files.append(OdmExporter(batch).write(_source(trial, batch), tmp_path / str(batch))[0].read_bytes())
    assert len(set(files)) == 1 and files[0].count(b"<ItemData ") > 100


# --- the audit trail as plain rows ----------------------------------------------------------------------


COLUMNS = ("seq", "action", "participant", "actor", "at", "old_value", "new_value", "reason", "detail", "hash")


@pytest.mark.parametrize(("role", "with_arms"), [(Role.DATA_MANAGER, False), (Role.UNBLINDED_STATISTICIAN, True)])
def test_the_audit_rows_are_the_entries_columns_masked_as_the_entries_are(
    trial: Trial, role: Role, with_arms: bool
) -> None:
    if export_source(trial.engine, who(trial, Role.DATA_MANAGER)).count() == 0:
        simulate(trial.engine, FIRST_PROTOCOL, 10, seed=3)  # run alone
    source = _source(trial, SMALL, role, with_arms)
    every = sorted({e.action for e in source.audit()})
    for actions, prefixes, only in (
        (every, (), None),  # every action, arm-revealing values among them
        (["participant.enrolled", "visit.held"], ("form.",), {"new_value": ["visit.held"], "old_value": []}),
    ):
        rows = list(source.audit_columns(COLUMNS, actions, prefixes, only))
        definition = list(ExportSource.audit_columns(source, COLUMNS, actions, prefixes, only))
        assert rows == definition and len(rows) > 100
    # The blinded rows hold what the entries hide: the allocation's seal is masked, never shown.
    randomized = [r for r in source.audit_columns(COLUMNS, ["participant.randomized"]) if r[6] is not None]
    assert randomized and all(('"seal":"masked"' in r[6]) is not with_arms for r in randomized)


def test_a_column_read_only_for_some_actions_is_none_for_the_others(trial: Trial) -> None:
    if export_source(trial.engine, who(trial, Role.DATA_MANAGER)).count() == 0:
        simulate(trial.engine, FIRST_PROTOCOL, 10, seed=3)  # run alone
    source = _source(trial, SMALL)
    rows = list(source.audit_columns(("action", "new_value"), [], ("form.", "visit."), {"new_value": ["visit.held"]}))
    held = [value for action, value in rows if action == "visit.held"]
    others = [value for action, value in rows if action != "visit.held"]
    assert held and all(v is not None for v in held)
    assert others and all(v is None for v in others)


# --- the round-trip check ---------------------------------------------------------------------------------

AWKWARD = [0, 0.0, -0.0, 1, 1.0, True, False, None, "1", "", [], {}, [1], [1.0], [True], ["a", "b"],
           {"a": 1}, {"a": 1.0}, {"a": True}, {"1": "x"}, {"b": [0.0]}, {"b": [-0.0]}, float("nan"),
           float("inf"), float("-inf"), 1e16, 1e-05, "١٢", (1, 2), [1, 2], {1: "x"}]  # fmt: skip


def test_same_json_answers_as_comparing_json_texts_on_awkward_values() -> None:
    for a in AWKWARD:
        for b in AWKWARD:
            assert same_json(a, b) == (json_text(a) == json_text(b)), (a, b)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2, width=16) | st.sampled_from(["", "a", "1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "1"]), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(JSON, JSON)
def test_same_json_answers_as_comparing_json_texts_on_generated_values(a: Any, b: Any) -> None:
    assert same_json(a, b) == (json_text(a) == json_text(b))
    assert same_json(a, a)


def _field(kind: FieldType) -> FormField:
    return FormField.model_validate({"id": "x", "label": "X", "type": kind})


def test_the_codec_answers_as_to_odm_for_values_python_thinks_equal() -> None:
    stored = [{"value": v, "status": "value"} for v in (1, 1.0, True, 0.0, -0.0, 1, "1", 0, False)]
    for size in (1, 2, 4096):
        codec = ValueCodec(size)
        for kind in (FieldType.DECIMAL, FieldType.TEXT):
            f = _field(kind)
            for value in stored + stored[::-1]:
                assert codec.to_odm(f"IT.f.{kind}", f, value) == to_odm(f, value), (size, kind, value)


def test_the_codec_refuses_a_value_that_would_not_come_back_every_time_it_comes() -> None:
    codec, f = ValueCodec(), _field(FieldType.DECIMAL)
    for _ in range(2):
        with pytest.raises(ValueError, match="stored keys colour have no place in ODM"):
            codec.to_odm("IT.f.x", f, {"value": 1, "status": "value", "colour": "red"})
