"""Stata (.dta), SPSS (.sav) and SAS transport (.xpt): the tabular tables, one table at a time.

The tables are those of every tabular format (``trialwright.exports.tabular``). Rows are gathered into Arrow
record batches and spooled to Parquet as they stream; when a table is complete its spool goes to the format's
writer, and names.csv (and Stata's value_codes.csv) list what each format made of the columns. Stata and SAS
transport are written a batch at a time by the project's own writers (``trialwright.exports.stata`` and
``trialwright.exports.sas``), so their peak is one batch. SPSS goes through pyreadstat, which takes a whole table:
the Parquet file is read back as Arrow columns and each column is converted as a column
(``trialwright.exports.readstat``): yes/no to 0/1, text cut to the format's limit, dates to the format's seconds;
so its peak is the largest table's columns (the long table, one row per stored value); no Python object is made
per cell, except the row pyreadstat holds while it writes it.
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
import pyarrow.parquet as pq

from trialwright.domain.text import spreadsheet_row
from trialwright.exports.base import ExportSource, Progress
from trialwright.exports.columnar import BATCH_ROWS, ParquetSink
from trialwright.exports.readstat import (
    cut_text,
    date_numbers,
    fit_bytes,
    frame,
    short_names,
    utc_moments,
)
from trialwright.exports.tabular import Column, Sink, Table, TabularExporter, _Run

__all__ = ["SpssExporter", "StatisticalExporter", "chunked", "write_csv"]


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
    """Stata, SPSS and SAS files: short variable names (listed in names.csv), variable labels from the field
    labels with units, value labels where the format has them; each format writes a table from its spool."""

    name_limit: ClassVar[int]
    upper_names: ClassVar[bool] = False
    label_limit: ClassVar[int]
    text_limit: ClassVar[int]
    reserved: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, batch_rows: int = BATCH_ROWS) -> None:
        super().__init__(batch_rows)
        self._names: list[tuple[str, str, str, str, str]] = []
        self._datasets: dict[str, str] = {}
        #: Choice variables with their codes and labels: (file, dataset, column, variable, kind, choices).
        self._choices: list[tuple[str, str, str, str, str, tuple[tuple[str, str], ...]]] = []
        #: Codes written as numbers with value labels (Stata): (file, variable, number, code, label).
        self._numbered: list[tuple[str, str, int, str, str]] = []
        #: Labels longer than the format holds, cut to fit: (file, variable, label written, the whole label).
        self._labels_cut: list[tuple[str, str, str, str]] = []

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        self._names, self._datasets, self._choices, self._numbered, self._labels_cut = [], {}, [], [], []
        return super().write(source, folder, progress)

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

    @abc.abstractmethod
    def _convert(self, folder: Path, table: Table, spool: Path, run: _Run) -> list[Path]:
        """Write one table from its Parquet spool (``spool``); return the files written."""

    def _label(self, text: str, file: str = "", name: str = "") -> str:
        return self._fit_label(text, file, name, text)

    def _fit_label(self, text: str, file: str, name: str, whole: str) -> str:
        """``text`` cut to the format's label limit, never silently: every cut label is listed with the whole label
        in labels_cut.csv (``whole``: the label as the protocol words it, before any spelling for the format)."""
        fitted = fit_bytes(text, self.label_limit)
        if fitted == text:
            return text
        fitted = fitted.rstrip()
        self._labels_cut.append((file, name, fitted, whole))
        return fitted

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
        if self._labels_cut:
            written.append(write_csv(folder / "labels_cut.csv", ["file", "variable", "label", "whole_label"],
                                     self._labels_cut))  # fmt: skip
            run.tables.append(("labels_cut.csv", f"each label longer than {self.label_limit} bytes, cut to fit the "
                               "format: the label written and the whole label", len(self._labels_cut)))  # fmt: skip
            run.notes.append(f"{len(self._labels_cut)} labels longer than {self.label_limit} bytes were cut to fit "
                             "the format; labels_cut.csv gives each whole.")  # fmt: skip
        return written


def chunked(array: pa.Array) -> pa.ChunkedArray:
    """One array as the chunked array the ``readstat`` column helpers take (the SAS and Stata exporters' batches)."""
    return pa.chunked_array([array], array.type)


def write_csv(path: Path, header: list[str], rows: list[tuple[Any, ...]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(spreadsheet_row(r) for r in rows)
    return path


class SpssExporter(StatisticalExporter):
    """SPSS .sav files."""

    name = "spss"
    description = "SPSS .sav files with variable labels and value labels."
    extension = "sav"
    name_limit, label_limit, text_limit = 64, 255, 32767
    reserved = frozenset(["ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH"])
    format_notes = (
        "Choices keep their codes (text) with value labels; yes/no are 0/1 with value labels.",
        "Measure levels from the field types: numbers, dates and date-times scale; choices, yes/no and text nominal.",
    )

    def _convert(self, folder: Path, table: Table, spool: Path, run: _Run) -> list[Path]:
        """The spooled table read back whole as Arrow columns, converted and written by pyreadstat."""
        import pyreadstat

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
                self._choices.append((file, dataset, c.name, name, "text", c.choices))
        path = folder / file
        path.parent.mkdir(parents=True, exist_ok=True)
        pyreadstat.write_sav(frame(columns, self.batch_rows), path, file_label=self._label(table.label, file, ""),
                             column_labels=labels, variable_value_labels=value_labels, variable_format=formats,
                             variable_measure=measures)  # fmt: skip
        return [path]

    def _column(
        self, table: Table, c: Column, column: pa.ChunkedArray, run: _Run, file: str, name: str
    ) -> tuple[pa.ChunkedArray | np.ndarray, dict[Any, str] | None, str | None]:
        """One column as SPSS holds it, with its value labels (choices keep their codes) and display format."""
        if c.kind == "datetime":
            return utc_moments(column), None, None
        if c.kind == "date":
            numbers, display = date_numbers(column, self.extension)
            return numbers, None, display
        if c.kind == "yesno":
            return column.cast(pa.float64()).to_numpy(), {0.0: "No", 1.0: "Yes"}, None
        if c.kind == "number":
            return column.to_numpy(), None, None
        labelled = {k: self._label(v) for k, v in c.choices} if c.choices else None
        text, cut = cut_text(column, self.text_limit)
        note = f"{table.name}.{c.name}: text longer than {self.text_limit} bytes was cut to fit the format."
        if cut and note not in run.notes:
            run.notes.append(note)
        return text, labelled, None

