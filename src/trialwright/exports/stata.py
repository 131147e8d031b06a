"""Stata .dta (format 118) files of the tabular tables, written a record batch at a time.

Each table is spooled to Parquet as its rows stream (``trialwright.exports.statistical``); then it is read back
twice, a batch at a time: a first pass decides what only the whole column can decide (each text variable's
width after the 2045-byte cut, whether a date column holds any date, the distinct codes each choice column
holds, whether any text was cut), a second converts each batch again and hands it to the project's Stata writer
(``trialwright.exports.dta``), which fills in the row count at the end. So the heap holds one batch, never the
table. The conversions are those pyreadstat was given: yes/no 0/1 and whole-number codes as numbers, both with
value labels; text codes numbered 1..n in the protocol's order with value labels (value_codes.csv) when every
stored code is declared, else kept as text with a note; dates as Stata day numbers (%td), UTC date-times as
Stata milliseconds (%tc); text cut to 2045 bytes; a date column without any date is a text column of missing
values.

A Stata date-time (%tc) is whole milliseconds from 1960-01-01, so a stored time with microseconds is written
rounded once to the nearest millisecond (half a millisecond to the later one), and never silently: every such
time is listed in datetimes_rounded.csv (file, variable, row, the stored time, the time read back) as the batches
come (``trialwright.exports.rounded_times``, SPSS's listing too). A whole millisecond is written as before, the
same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trialwright.exports.dta import DtaVariable, DtaWriter, whole_label_values
from trialwright.exports.readstat import cut_text, is_whole_number_code, whole_numbers
from trialwright.exports.rounded_times import ROUNDED, RoundedWords, stored_microseconds
from trialwright.exports.statistical import StatisticalExporter, chunked
from trialwright.exports.tabular import Column, Table, _Run

__all__ = ["StataExporter", "stata_milliseconds"]

#: Days from Stata's day zero (1960-01-01) to 1970-01-01, and the same in milliseconds.
_STATA_DAYS = 3653
_STATA_MILLISECONDS = _STATA_DAYS * 86_400_000


def stata_milliseconds(column: pa.Array) -> np.ndarray:
    """UTC date-times as Stata %tc values: whole milliseconds from 1960-01-01 as doubles (missing: NaN), each the
    millisecond nearest its instant, half a millisecond to the later one; one rounding, in whole numbers. A whole
    millisecond is the double the microseconds over 1000 made before (exact either way), so its bytes are unchanged;
    a whole number of milliseconds is a double up to 2**53 (some 285,000 years), so it reads back as written."""
    micro, missing = stored_microseconds(column)
    milliseconds = (micro + 500) // 1000 + _STATA_MILLISECONDS  # floor division: ties go to the later millisecond
    out = milliseconds.astype(np.float64)
    out[missing] = np.nan
    return out


@dataclass
class _Survey:
    """What the first pass over a table learns, by column name."""

    widths: dict[str, int] = field(default_factory=dict)
    cut: dict[str, bool] = field(default_factory=dict)
    dated: dict[str, bool] = field(default_factory=dict)
    stored: dict[str, set[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Plan:
    """How one column is written: "double", "text", "empty" (a date column without a date), "whole" (whole-number
    codes) or "numbered" (text codes numbered 1..n)."""

    how: str
    codes: tuple[str, ...] = ()


class StataExporter(StatisticalExporter):
    """Stata .dta files (format 118, read by Stata 14 and later)."""

    name = "stata"
    description = "Stata .dta files with variable labels and value labels."
    extension = "dta"
    name_limit, label_limit, text_limit = 32, 80, 2045
    reserved = frozenset({"_ALL", "_B", "BYTE", "_COEF", "_CONS", "DOUBLE", "FLOAT", "IF", "IN", "INT", "LONG",
                          "_N", "_PI", "_PRED", "_RC", "_SKIP", "STRL", "USING", "WITH"})  # fmt: skip
    rounded_words = RoundedWords(
        "each date-time Stata cannot hold to the microsecond (%tc is whole milliseconds): the stored time and the "
        "time read back",
        "{count} date-times cannot be held to the microsecond by Stata (%tc holds whole milliseconds; each rounded to "
        f"the nearest); {ROUNDED} lists each with the time read back.",
    )
    format_notes = (
        "Stata labels only numbers: yes/no are 0/1 and choices with whole-number codes keep their codes, both with "
        "value labels; choices with text codes are numbered 1, 2, ... in the protocol's order, with value labels, "
        "and value_codes.csv gives each number's code and label (the code is never lost).",
        "Stata holds a date-time (%tc) as whole milliseconds from 1960-01-01: a time with microseconds is written "
        "rounded to the nearest millisecond (half a millisecond to the later one) and listed in "
        f"{ROUNDED} with the stored time and the time read back; the CSV and Parquet exports hold every time as "
        "stored.",
    )

    def _convert(self, folder: Path, table: Table, spool: Path, run: _Run) -> list[Path]:
        """The spooled table written a batch at a time (after a first pass, ``_survey``)."""
        names, dataset = self._variable_names(table)
        file = f"{table.name}.{self.extension}"
        parquet = pq.ParquetFile(spool)
        survey = self._survey(table, parquet)
        variables: list[DtaVariable] = []
        plans: list[_Plan] = []
        tables: dict[str, dict[int, str]] = {}
        for c in table.columns:
            name = names[c.name]
            plan = self._plan(table, c, survey, run)
            labelled: dict[float, str] | None = None
            if c.kind == "yesno":
                labelled = {0.0: "No", 1.0: "Yes"}
            elif plan.how == "whole":
                labelled = {float(k): self._label(v, file, f"{name}={k}") for k, v in c.choices}
            elif plan.how == "numbered":
                self._numbered += [(file, name, i, k, v) for i, (k, v) in enumerate(c.choices, 1)]
                labelled = {float(i): self._label(v, file, f"{name}={i}") for i, (_, v) in enumerate(c.choices, 1)}
            elif plan.how == "text":
                note = f"{table.name}.{c.name}: text longer than {self.text_limit} bytes was cut to fit the format."
                if survey.cut[c.name] and note not in run.notes:
                    run.notes.append(note)
            label = self._label(c.label, file, name)
            self._names.append((file, dataset, c.name, name, label))
            if c.kind == "yesno":
                self._choices.append((file, dataset, c.name, name, "yesno", (("0", "No"), ("1", "Yes"))))
            elif c.kind == "code" and c.choices:
                self._choices.append((file, dataset, c.name, name, "number" if labelled else "text", c.choices))
            if labelled is not None:
                tables[name] = whole_label_values(labelled, name)
            plans.append(plan)
            if plan.how in {"text", "empty"}:
                variables.append(DtaVariable(name, label, "str", survey.widths.get(c.name, 1)))
            else:
                display = {"date": "%td", "datetime": "%tc"}.get(c.kind, "")
                variables.append(DtaVariable(name, label, "double", format=display,
                                             value_labels=name if labelled is not None else ""))  # fmt: skip
        path = folder / file
        path.parent.mkdir(parents=True, exist_ok=True)
        with DtaWriter(path, self._label(table.label, file, ""), variables, tables) as writer:
            start = 1
            for batch in parquet.iter_batches(batch_size=self.batch_rows):
                values = [self._values(c, plan, batch.column(c.name))
                          for c, plan in zip(table.columns, plans, strict=True)]  # fmt: skip
                for c, v in zip(table.columns, values, strict=True):
                    if c.kind == "datetime":  # read back: the whole milliseconds written, as microseconds from 1970
                        read = (np.nan_to_num(np.asarray(v)).astype(np.int64) - _STATA_MILLISECONDS) * 1000
                        self._rounded.add(folder, file, names[c.name], batch.column(c.name), read, None, start)
                writer.write(values)
                start += batch.num_rows
        return [path]

    def _plan(self, table: Table, c: Column, survey: _Survey, run: _Run) -> _Plan:
        if c.kind == "date":
            return _Plan("double" if survey.dated[c.name] else "empty")
        if c.kind in {"datetime", "yesno", "number"}:
            return _Plan("double")
        codes = tuple(k for k, _ in c.choices)
        if c.kind == "code" and c.choices:
            stored = survey.stored[c.name]
            if is_whole_number_code(codes, chunked(pa.array(sorted(stored), pa.string()))):
                return _Plan("whole", codes)
            if stored <= set(codes):  # every stored code is declared: numbered 1..n
                return _Plan("numbered", codes)
            run.notes.append(f"{table.name}.{c.name}: holds codes the protocol does not declare, so its codes are "
                             "kept as text (no value labels).")  # fmt: skip
        return _Plan("text")

    def _survey(self, table: Table, parquet: pq.ParquetFile) -> _Survey:
        """The first pass: each text column's width as written (at least 1) and whether any was cut, whether each
        date column holds a date, the distinct codes of each choice column."""
        survey = _Survey()
        read = [c for c in table.columns if c.kind in {"text", "code", "date"}]
        for c in read:
            if c.kind == "date":
                survey.dated[c.name] = False
                continue
            survey.widths[c.name], survey.cut[c.name] = 1, False
            if c.kind == "code" and c.choices:
                survey.stored[c.name] = set()
        for batch in parquet.iter_batches(batch_size=self.batch_rows, columns=[c.name for c in read] or None):
            for c in read:
                column = batch.column(c.name)
                if c.kind == "date":
                    survey.dated[c.name] = survey.dated[c.name] or column.null_count < len(column)
                    continue
                if c.name in survey.stored:
                    survey.stored[c.name].update(pc.unique(column).drop_null().to_pylist())
                text, cut = cut_text(chunked(column), self.text_limit)
                survey.cut[c.name] = survey.cut[c.name] or cut
                survey.widths[c.name] = max(survey.widths[c.name], pc.max(pc.binary_length(text)).as_py() or 0)
        return survey

    def _values(self, c: Column, plan: _Plan, column: pa.Array) -> pa.Array | pa.ChunkedArray | np.ndarray:
        """One batch of a column as the Stata file holds it."""
        if plan.how == "empty":
            return pa.nulls(len(column), pa.string())
        if plan.how == "whole":
            return whole_numbers(chunked(column))
        if plan.how == "numbered":
            numbers = pc.index_in(column, value_set=pa.array(plan.codes, pa.string()))
            return pc.add(numbers, 1).cast(pa.float64())
        if c.kind == "datetime":
            return stata_milliseconds(column)
        if c.kind == "date":
            return pc.add(column.cast(pa.int32()), _STATA_DAYS).cast(pa.float64())
        if c.kind in {"yesno", "number"}:
            return column.cast(pa.float64())
        return cut_text(chunked(column), self.text_limit)[0]
