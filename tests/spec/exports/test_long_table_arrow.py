"""The long table's stored values become cells through Arrow, not a Python call each (issue 23 items 3-4: CSV and
Parquet for 100,000 participants).

``values_long`` holds one row per stored value (about 170 per participant in the first trial), so what runs once per
value decides the export's time. Each chunk of form records' stored values is gathered with ``dict.get`` mapped in C,
the values of one type picked out together (``itertools.compress``) and converted by Arrow; only a value of a kind no
Arrow conversion gives exactly (a list of choices, a mapping) is converted by Python, and a chunk Arrow cannot hold
(a whole number beyond 64 bits) is built by the exact list path. The cells are those the one-value-at-a-time rules
give (``value_text``, ``_number``), which ``test_tabular_oracle.py`` also checks against its own reading:

| stored ``value`` (or ``entered``)  | ``value`` (``entered``) text      | ``value_num``          |
|------------------------------------|-----------------------------------|------------------------|
| text                               | as stored                         | empty                  |
| float                              | ``repr`` without ``.0``           | the float              |
| whole number                       | ``str``                           | ``float(n)``           |
| yes/no                             | ``1`` / ``0``                     | empty                  |
| list of choices                    | joined by ``|`` (``str`` each)    | empty                  |
| censored (below/above a limit)     | empty                             | empty (the limit: ``limit``) |
| none                               | empty                             | empty                  |
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports import tabular
from trialwright.exports.tabular import CsvExporter, ParquetExporter, value_text
from trialwright.services.exports import export_source
from trialwright.services.simulation import simulate

#: The rules that turn one value into its cells, called once per stored value by the list path.
_PER_VALUE = frozenset({"_text_and_number", "value_text", "_number"})
#: What builds the long table's columns: from Python's values, or from the values Arrow read (``stored_columns``).
_BUILDERS = frozenset({"_long_columns", "_arrow_columns"})


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 8, seed=3)
    yield t
    t.engine.dispose()


@pytest.mark.parametrize("exporter", [CsvExporter, ParquetExporter], ids=["csv", "parquet"])
def test_no_python_call_per_stored_value_builds_the_long_table(
    trial: Trial, tmp_path: Path, exporter: type[CsvExporter] | type[ParquetExporter]
) -> None:
    source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
    calls: dict[str, int] = dict.fromkeys(_PER_VALUE, 0)
    in_long = [0]

    def watch(frame: Any, event: str, arg: Any) -> None:
        if event != "call":
            return
        name = frame.f_code.co_name
        if name in _BUILDERS:
            in_long[0] += 1
        if name in _PER_VALUE and frame.f_code.co_filename == tabular.__file__:
            caller = frame.f_back
            while caller is not None and caller.f_code.co_name not in _BUILDERS:
                caller = caller.f_back
            if caller is not None:
                calls[name] += 1

    sys.setprofile(watch)
    try:
        exporter().write(source, tmp_path)
    finally:
        sys.setprofile(None)
    long_file = tmp_path / f"values_long.{exporter.extension}"
    assert long_file.exists() and in_long[0] > 0  # the long table was built, by _long_columns or _arrow_columns
    assert calls == dict.fromkeys(_PER_VALUE, 0), calls


# --- the cells against the one-value-at-a-time rules -------------------------------------------------------------

_SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6)
    | st.sampled_from([-0.0, 0.0, 1e-07, 1.5e17, 1e16, 9.999e-05, 2.0**53 + 2, 123456789.125, 3.0])
)  # fmt: skip
_VALUES = _SCALARS | st.lists(_SCALARS, max_size=3)
_STORED = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["value", "derived", "not_done", "not_applicable", "below_lloq", "above_uloq"]),
        "value": _VALUES,
        "entered": _VALUES,
        "unit": st.none() | st.sampled_from(["mg/L", "°C"]),
        "limit": st.none() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False) | st.booleans(),
        "reason": st.none() | st.text(max_size=4),
    },
)


def _expected(stored: dict[str, Any]) -> dict[str, Any]:
    status = stored.get("status", "value")
    value = None if status in ("below_lloq", "above_uloq") else stored.get("value")
    number = None if isinstance(value, bool) or not isinstance(value, int | float) else float(value)
    limit = stored.get("limit")
    entered = stored.get("entered")
    return {
        "value": value_text(value),
        "value_num": number,
        "status": status,
        "limit": None if isinstance(limit, bool) or not isinstance(limit, int | float) else float(limit),
        "entered": entered if entered is None or isinstance(entered, str) else value_text(entered),
        "entered_unit": stored.get("unit"),
        "reason": stored.get("reason"),
    }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return type(a) is type(b) and a == b


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(_STORED, min_size=1, max_size=4), min_size=1, max_size=5))
def test_each_cell_is_what_the_one_value_rules_give(records: list[list[dict[str, Any]]]) -> None:
    import datetime as dt

    rows = [("P1", "S1", "v1", dt.date(2021, 5, 1), "labs", "complete", {f"f{i}": s for i, s in enumerate(r)})
            for r in records]  # fmt: skip
    columns, count = tabular._long_columns({"f0": "mg/L"}, rows)
    cells = {k: c.to_pylist() if hasattr(c, "to_pylist") else list(c) for k, c in columns.items()}
    expected = [_expected(s) for r in records for s in r]
    assert count == len(expected)
    for i, want in enumerate(expected):
        for key, cell in want.items():
            assert _same(cells[key][i], cell), (i, key, cells[key][i], cell)
    assert cells["unit"] == [{"f0": "mg/L"}.get(f"f{j}") for r in records for j in range(len(r))]
