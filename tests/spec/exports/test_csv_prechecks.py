"""CSV cells: the formula and quoting tests skipped for a column that cannot need them, found from its bytes (issue 23
item 3/4, CSV at scale).

Each text column of a CSV batch was searched twice by a regular expression: for a cell that starts a formula
(``=``, ``+``, ``-``, ``@``, TAB, CR) and for a cell to quote (a comma, a quote, CR or LF). Most columns hold
neither, so ``csv_cells`` now looks at the column's bytes first (each non-empty cell's first byte, and all the
bytes at once) and runs the expression only when one may be there; numbers' text is tested for formulas the same
way. The cells are the ones the csv module and ``spreadsheet_cell`` make, for any text, nulls and slices.

| column                                   | regular-expression searches | cells                                  |
|------------------------------------------|-----------------------------|----------------------------------------|
| codes, ids, plain text, plain numbers    | none                        | as before                              |
| a cell starting ``-``/``=`` or holding ``,``/``"``/CR/LF | as before   | as before (apostrophe, quotes doubled) |
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialwright.domain.text import spreadsheet_cell
from trialwright.exports import columnar
from trialwright.exports.columnar import csv_cells

AWKWARD = st.sampled_from([",", '"', "\r", "\n", "=", "+", "-", "@", "\t", "é", "\U0001f600", "1", " ", "'"])
TEXT = st.lists(st.one_of(AWKWARD, st.characters(exclude_categories=("Cs",))), max_size=6).map("".join)


def expected_cell(value: Any) -> str:
    """A cell as the csv module writes it after ``spreadsheet_cell`` (the row-by-row writer)."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = repr(value)
        value = text[:-2] if text.endswith(".0") else text
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(["", spreadsheet_cell(value)])
    return out.getvalue()[1:-2]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.none(), TEXT), max_size=30), st.integers(0, 5), st.integers(0, 5))
def test_text_cells_are_the_csv_modules_for_any_text_and_slice(values: list[str | None], start: int, cut: int) -> None:
    column = pa.array(values, pa.string()).slice(start, max(0, len(values) - start - cut))
    assert csv_cells(column).to_pylist() == [expected_cell(v) for v in column.to_pylist()]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(), st.integers(-(10**6), 10**6).map(float)), max_size=30), st.integers(0, 3)
)
def test_number_cells_are_the_csv_modules_for_any_float(values: list[float | None], start: int) -> None:
    column = pa.array(values, pa.float64()).slice(start)
    got = csv_cells(column).to_pylist()
    assert got == [expected_cell(v) for v in column.to_pylist()]
    values = column.to_pylist()
    assert all(not (isinstance(v, float) and math.isnan(v)) or c == "nan" for v, c in zip(values, got, strict=True))


@pytest.mark.parametrize(
    ("values", "searches"),
    [
        (["RAZ-001", "baseline", None, "mg/L"], 0),  # a dash inside, none first: both tests skipped
        (["baseline", "day_7", None, "not_done"], 0),
        ([1.5, 2.0, None, 1e-3], 0),
        ([-1.5, 2.0], 1),  # a negative number: the formula test runs (spreadsheet_cell leaves it as it is)
        (["a,b", "c"], 1),
        (["=1+1", "x"], 1),  # the formula test; nothing to quote
        (["=1,1", "x"], 2),
    ],
)
def test_the_regular_expressions_run_only_for_a_column_that_may_need_them(
    values: list[Any], searches: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    search = pc.match_substring_regex

    def counted(text: Any, pattern: str, **kwargs: Any) -> Any:
        calls.append(pattern)
        return search(text, pattern, **kwargs)

    monkeypatch.setattr(columnar.pc, "match_substring_regex", counted)
    column = pa.array(values, pa.float64() if isinstance(values[0], float) else pa.string())
    assert csv_cells(column).to_pylist() == [expected_cell(v) for v in values]
    assert len(calls) == searches, calls
