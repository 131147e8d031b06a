"""The tabular exports parse the stored JSON of form records as ``json.loads`` parses it, by pydantic-core's parser
(issue 23 item 3/4, CSV and Parquet at scale).

``DatabaseSource.form_rows`` parses each participant's records of a form in one text (a JSON array of the records'
objects) with ``trialwright.services.stored_json.loads``: ``pydantic_core.from_json``, and ``json.loads`` for a text
it refuses. For every text, what comes back is ``json.loads``'s: each value's type and text, NaN, -0.0, integers of
any size, the keys' order (a repeated key: its first place, its last value), or the same refusal.

| text                                                      | parsed as          |
|-----------------------------------------------------------|--------------------|
| any generated array of records (numbers spelt 25 digits, lone surrogates, escapes, repeated keys) | ``json.loads`` |
| a record's text the export joins with others               | ``json.loads`` of the joined array |
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.spec.analysis.test_form_values_reader import DOCUMENTS, WHITESPACE, parsed_as, to_text
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports import tabular
from trialwright.exports.tabular import CsvExporter
from trialwright.services import exports as export_service
from trialwright.services import stored_json
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate

RECORD = st.lists(st.tuples(st.one_of(st.sampled_from(["value", "status", "unit"]), st.text(max_size=4)), DOCUMENTS),
                  max_size=5).map(tuple)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(RECORD, min_size=1, max_size=4), st.booleans(), WHITESPACE)
def test_a_participants_records_joined_are_parsed_as_json_loads_parses_them(
    records: list[Any], ascii_only: bool, pad: str
) -> None:
    text = "[" + ",".join(to_text(r, ascii_only, pad) for r in records) + "]"
    assert parsed_as(stored_json.loads, text) == parsed_as(json.loads, text)


@pytest.mark.parametrize(
    "text",
    ['[{"a": 1e400, "b": -0.0, "c": NaN, "d": -Infinity}]', '[{"a": 123456789012345678901234567890}]',
     '[{"a": 1, "b": 2, "a": 3}]', '[{"\\ud800": "\\udc00x"}]', '[{"a": "\ud800"}]',
     '[{"a": 0.1000000000000000055511}]',
     '[{"a": 1}{"b": 2}]', "[]", '[{"a": 1}] x', '[{"a": 17.000000000000001}, {"b": 1E+2}]'],
)  # fmt: skip
def test_awkward_joined_texts_are_parsed_as_json_loads_parses_them(text: str) -> None:
    assert parsed_as(stored_json.loads, text) == parsed_as(json.loads, text)


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 6, seed=2)
    yield t
    t.engine.dispose()


def test_the_export_parses_the_form_records_with_the_shared_parser(
    trial: Trial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    fast: list[str] = []

    def counted(text: str) -> Any:
        parsed.append(text)
        return stored_json.loads(text)

    def from_json(text: str) -> Any:
        fast.append(text)
        return stored_json.pydantic_core.from_json(text)

    source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
    records = sum(1 for form in source.protocol.forms for _ in source.form_rows(form.id))
    monkeypatch.setattr(export_service, "loads", counted)
    monkeypatch.setattr(stored_json, "_from_json", from_json)
    # Every chunk refused by the Arrow reader (``stored_columns``): what it refuses is parsed by the shared parser.
    monkeypatch.setattr(tabular, "read_stored", lambda texts, schema: None)
    with source.snapshot():
        CsvExporter().write(source, tmp_path)
    assert parsed and fast == parsed  # every joined text went to pydantic-core's parser (none refused here)
    assert sum(len(json.loads(t)) for t in parsed) == records


@pytest.mark.parametrize("exporter", ["csv", "parquet"])
def test_the_export_reads_the_stored_json_into_arrow_without_a_dict_per_record(
    trial: Trial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exporter: str
) -> None:
    """As trialwright writes them, every chunk of form records is read by Arrow's JSON reader
    (``trialwright.exports.stored_columns``): the shared parser, which makes a dict per record, is never called."""
    from trialwright.exports.tabular import ParquetExporter

    parsed: list[str] = []

    def counted(text: str) -> Any:
        parsed.append(text)
        return stored_json.loads(text)

    source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
    monkeypatch.setattr(export_service, "loads", counted)
    with source.snapshot():
        (CsvExporter() if exporter == "csv" else ParquetExporter()).write(source, tmp_path)
    assert (tmp_path / f"values_long.{exporter}").stat().st_size > 0
    assert parsed == []
