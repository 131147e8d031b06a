"""Stata (.dta), SPSS (.sav) and SAS transport (.xpt): the tabular tables, one table at a time.

The tables are those of every tabular format (``trialwright.exports.tabular``). Rows are gathered into Arrow
record batches and spooled to Parquet as they stream; when a table is complete its spool goes to the format's
writer. Stata and SPSS go through pyreadstat, which takes a whole table: the Parquet file is read back as Arrow
columns and each column is converted as a column (``trialwright.exports.readstat``): yes/no to 0/1, whole-number
codes to numbers where the format labels numbers, text cut to the format's limit, dates to the format's day
numbers. So their peak memory is the largest table's columns (the long table, one row per stored value); no
Python object is made per cell, except the row pyreadstat holds while it writes it. SAS transport is written by
the project's own writer a batch at a time (``trialwright.exports.sas``), its peak one batch.
"""

from __future__ import annotations

import abc
import csv
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trialwright.domain.text import spreadsheet_row
from trialwright.exports.base import ExportSource, Progress
from trialwright.exports.columnar import BATCH_ROWS, ParquetSink
from trialwright.exports.readstat import (
    cut_text,
    date_numbers,
    fit_bytes,
    frame,
    is_whole_number_code,
    short_names,
    utc_moments,
    whole_numbers,
)
from trialwright.exports.tabular import Column, Sink, Table, TabularExporter, _Run

__all__ = ["SpssExporter", "StataExporter", "StatisticalExporter", "write_csv"]


class _SpoolSink:
    """Rows spooled to Parquet, then the spool handed to the format's writer (removed when it is done)."""

    def __init__(self, spool: Path, table: Table, save: Callable[[Path], list[Path]], batch: int) -> None:
        self._parquet, self._save = ParquetSink(spool, table, batch), save
        self.rows = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self._parquet.add(row)
        self.rows += 1

    def close(self) -> list[Path]:
        (path,) = self._parquet.close()
        try:
            return self._save(path)
        finally:
            path.unlink()


class StatisticalExporter(TabularExporter, abc.ABC):
    """Stata, SPSS and SAS files through pyreadstat: short variable names (listed in names.csv), variable
    labels from the field labels with units, value labels where the format has them."""

    name_limit: ClassVar[int]
    upper_names: ClassVar[bool] = False
    label_limit: ClassVar[int]
    text_limit: ClassVar[int]
    string_value_labels: ClassVar[bool] = False
    value_labels: ClassVar[bool] = True
    #: Whether choices with text codes are written as numbers 1..n with value labels (Stata labels only numbers).
    numbered_codes: ClassVar[bool] = False
    reserved: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, batch_rows: int = BATCH_ROWS) -> None:
        super().__init__(batch_rows)
        self._names: list[tuple[str, str, str, str, str]] = []
        self._datasets: dict[str, str] = {}
        #: Choice variables with their codes and labels: (file, dataset, column, variable, kind, choices).
        self._choices: list[tuple[str, str, str, str, str, tuple[tuple[str, str], ...]]] = []
        #: Codes written as numbers with value labels (Stata): (file, variable, number, code, label).
        self._numbered: list[tuple[str, str, int, str, str]] = []

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        self._names, self._datasets, self._choices, self._numbered = [], {}, [], []
        return super().write(source, folder, progress)

    def save(self, frame: Any, path: Path, *, dataset: str, label: str, labels: dict[str, str | None],
             value_labels: dict[str, dict[Any, str]], formats: dict[str, str],
             measures: dict[str, str]) -> None:  # fmt: skip
        """Write one whole table (``formats``: display formats by variable, for dates; ``measures``: SPSS measure
        levels by variable): the formats written through pyreadstat say how; a format with its own streaming
        writer overrides ``_convert`` instead."""
        raise NotImplementedError(f"{self.name}: writes its tables through _convert")

    def open(self, folder: Path, table: Table, run: _Run) -> Sink:
        spool = folder / ".spool" / f"{table.name.replace('/', '-')}.parquet"
        return _SpoolSink(spool, table, lambda path: self._convert(folder, table, path, run), self.batch_rows)

    def _variable_names(self, table: Table) -> tuple[dict[str, str], str]:
        """The table's variable names by column and its dataset (member) name."""
        names = short_names([c.name for c in table.columns], self.name_limit, upper=self.upper_names,
                            reserved=self.reserved)  # fmt: skip
        stems = [*self._datasets, table.name]
        dataset = short_names([n.rsplit("/", 1)[-1] for n in stems], 8, upper=True)[table.name.rsplit("/", 1)[-1]]
        self._datasets[table.name] = dataset
        return names, dataset

    def _convert(self, folder: Path, table: Table, spool: Path, run: _Run) -> list[Path]:
        """The spooled table read back whole as Arrow columns, converted and handed to ``save``."""
        data = pq.read_table(spool)
        names, dataset = self._variable_names(table)
        columns: dict[str, pa.ChunkedArray | np.ndarray] = {}
        labels: dict[str, str | None] = {}
        value_labels: dict[str, dict[Any, str]] = {}
        formats: dict[str, str] = {}
        measures: dict[str, str] = {}
        file = f"{table.name}.{self.extension}"
        for c in table.columns:
            name = names[c.name]
            columns[name], labelled, display = self._column(table, c, data.column(c.name), run, file, name)
            if labelled is not None:
                value_labels[name] = labelled
            if display is not None:
                formats[name] = display
            measures[name] = "scale" if c.kind in {"number", "date", "datetime"} else "nominal"
            label = labels[name] = self._label(c.label, file, name)
            self._names.append((file, dataset, c.name, name, label))
            if c.kind == "yesno":
                self._choices.append((file, dataset, c.name, name, "yesno", (("0", "No"), ("1", "Yes"))))
            elif c.kind == "code" and c.choices:
                kind = "number" if labelled is not None and not self.string_value_labels else "text"
                self._choices.append((file, dataset, c.name, name, kind, c.choices))
        path = folder / file
        path.parent.mkdir(parents=True, exist_ok=True)
        self.save(frame(columns, self.batch_rows), path, dataset=dataset, label=self._label(table.label, file, ""),
                  labels=labels, value_labels=value_labels if self.value_labels else {}, formats=formats,
                  measures=measures)  # fmt: skip
        return [path]

    def _column(
        self, table: Table, c: Column, column: pa.ChunkedArray, run: _Run, file: str, name: str
    ) -> tuple[pa.ChunkedArray | np.ndarray, dict[Any, str] | None, str | None]:
        """One column as the format holds it, with its value labels and display format (if any)."""
        if c.kind == "datetime":
            return utc_moments(column), None, None
        if c.kind == "date":
            numbers, display = date_numbers(column, self.extension)
            return numbers, None, display
        if c.kind == "yesno":
            return column.cast(pa.float64()).to_numpy(), {0.0: "No", 1.0: "Yes"}, None
        if c.kind == "number":
            return column.to_numpy(), None, None
        codes = [k for k, _ in c.choices]
        labelled: dict[Any, str] | None = None
        if c.choices and self.string_value_labels:
            labelled = {k: self._label(v) for k, v in c.choices}
        elif c.kind == "code" and c.choices and self.value_labels and is_whole_number_code(codes, column):
            return whole_numbers(column), {float(k): self._label(v) for k, v in c.choices}, None
        elif c.kind == "code" and c.choices and self.value_labels and self.numbered_codes:
            numbers = pc.index_in(column, value_set=pa.array(codes, pa.string()))
            if numbers.null_count == column.null_count:  # every stored code is declared: numbered 1..n
                self._numbered += [(file, name, i, k, v) for i, (k, v) in enumerate(c.choices, 1)]
                values = np.asarray(pc.add(numbers, 1).cast(pa.float64()).to_numpy(zero_copy_only=False), "float64")
                return values, {float(i): self._label(v) for i, (_, v) in enumerate(c.choices, 1)}, None
            run.notes.append(f"{table.name}.{c.name}: holds codes the protocol does not declare, so its codes are "
                             "kept as text (no value labels).")  # fmt: skip
        text, cut = cut_text(column, self.text_limit)
        note = f"{table.name}.{c.name}: text longer than {self.text_limit} bytes was cut to fit the format."
        if cut and note not in run.notes:
            run.notes.append(note)
        return text, labelled, None

    def _label(self, text: str, file: str = "", name: str = "") -> str:
        return fit_bytes(text, self.label_limit)

    def finish(self, folder: Path, run: _Run) -> list[Path]:
        shutil.rmtree(folder / ".spool", ignore_errors=True)
        path = folder / "names.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "dataset", "column", "variable", "label"])
            writer.writerows(spreadsheet_row(r) for r in self._names)
        run.tables.append(("names.csv", "each table's columns and their variable names and labels in this format",
                           len(self._names)))  # fmt: skip
        written = [path]
        if self._numbered:
            written.append(write_csv(folder / "value_codes.csv", ["file", "variable", "number", "code", "label"],
                                self._numbered))  # fmt: skip
            run.tables.append(("value_codes.csv", "each choice written as a number: its number, code and label",
                               len(self._numbered)))  # fmt: skip
        return written


def write_csv(path: Path, header: list[str], rows: list[tuple[Any, ...]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(spreadsheet_row(r) for r in rows)
    return path


class StataExporter(StatisticalExporter):
    """Stata 15 .dta files."""

    name = "stata"
    description = "Stata .dta files with variable labels and value labels."
    extension = "dta"
    name_limit, label_limit, text_limit = 32, 80, 2045
    reserved = frozenset({"_ALL", "_B", "BYTE", "_COEF", "_CONS", "DOUBLE", "FLOAT", "IF", "IN", "INT", "LONG",
                          "_N", "_PI", "_PRED", "_RC", "_SKIP", "STRL", "USING", "WITH"})  # fmt: skip
    numbered_codes = True
    format_notes = (
        "Stata labels only numbers: yes/no are 0/1 and choices with whole-number codes keep their codes, both with "
        "value labels; choices with text codes are numbered 1, 2, ... in the protocol's order, with value labels, "
        "and value_codes.csv gives each number's code and label (the code is never lost).",
    )

    def save(self, frame: Any, path: Path, *, dataset: str, label: str, labels: dict[str, str | None],
             value_labels: dict[str, dict[Any, str]], formats: dict[str, str],
             measures: dict[str, str]) -> None:  # fmt: skip
        import pyreadstat

        pyreadstat.write_dta(frame, path, file_label=label, column_labels=labels, variable_value_labels=value_labels,
                             variable_format=formats)  # fmt: skip


class SpssExporter(StatisticalExporter):
    """SPSS .sav files."""

    name = "spss"
    description = "SPSS .sav files with variable labels and value labels."
    extension = "sav"
    name_limit, label_limit, text_limit = 64, 255, 32767
    reserved = frozenset(["ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH"])
    string_value_labels = True
    format_notes = (
        "Choices keep their codes (text) with value labels; yes/no are 0/1 with value labels.",
        "Measure levels from the field types: numbers, dates and date-times scale; choices, yes/no and text nominal.",
    )

    def save(self, frame: Any, path: Path, *, dataset: str, label: str, labels: dict[str, str | None],
             value_labels: dict[str, dict[Any, str]], formats: dict[str, str],
             measures: dict[str, str]) -> None:  # fmt: skip
        import pyreadstat

        pyreadstat.write_sav(frame, path, file_label=label, column_labels=labels, variable_value_labels=value_labels,
                             variable_format=formats, variable_measure=measures)  # fmt: skip
