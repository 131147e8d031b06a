"""Stata (.dta), SPSS (.sav) and SAS transport (.xpt): the tabular tables through pyreadstat, one table at a time.

The tables are those of every tabular format (``trialwright.exports.tabular``). Rows are gathered into Arrow
record batches and spooled to Parquet as they stream; when a table is complete its Parquet file is read back
as Arrow columns and each column is converted as a column (``trialwright.exports.readstat``): yes/no to 0/1,
whole-number codes to numbers where the format labels numbers, text cut to the format's limit, dates to the
format's day numbers. pyreadstat takes a whole table, so a format's peak memory is its largest table's
columns (the long table, one row per stored value); no Python object is made per cell, except the row
pyreadstat holds while it writes it.
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
    ascii_text,
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

__all__ = ["SasExporter", "SpssExporter", "StataExporter", "StatisticalExporter"]


class _SpoolSink:
    """Rows spooled to Parquet, then handed as Arrow columns to a writer that takes a whole table."""

    def __init__(self, spool: Path, table: Table, save: Callable[[pa.Table], list[Path]], batch: int) -> None:
        self._parquet, self._save = ParquetSink(spool, table, batch), save
        self.rows = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self._parquet.add(row)
        self.rows += 1

    def close(self) -> list[Path]:
        (path,) = self._parquet.close()
        try:
            return self._save(pq.read_table(path))
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
    reserved: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, batch_rows: int = BATCH_ROWS) -> None:
        super().__init__(batch_rows)
        self._names: list[tuple[str, str, str, str, str]] = []
        self._datasets: dict[str, str] = {}

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        self._names, self._datasets = [], {}
        return super().write(source, folder, progress)

    @abc.abstractmethod
    def save(self, frame: Any, path: Path, *, dataset: str, label: str, labels: dict[str, str | None],
             value_labels: dict[str, dict[Any, str]], formats: dict[str, str]) -> None:  # fmt: skip
        """Write one table (``formats``: display formats by variable, for dates)."""

    def open(self, folder: Path, table: Table, run: _Run) -> Sink:
        spool = folder / ".spool" / f"{table.name.replace('/', '-')}.parquet"
        return _SpoolSink(spool, table, lambda data: self._convert(folder, table, data, run), self.batch_rows)

    def _convert(self, folder: Path, table: Table, data: pa.Table, run: _Run) -> list[Path]:
        names = short_names([c.name for c in table.columns], self.name_limit, upper=self.upper_names,
                            reserved=self.reserved)  # fmt: skip
        stems = [*self._datasets, table.name]
        dataset = short_names([n.rsplit("/", 1)[-1] for n in stems], 8, upper=True)[table.name.rsplit("/", 1)[-1]]
        self._datasets[table.name] = dataset
        columns: dict[str, pa.ChunkedArray | np.ndarray] = {}
        labels: dict[str, str | None] = {}
        value_labels: dict[str, dict[Any, str]] = {}
        formats: dict[str, str] = {}
        for c in table.columns:
            name = names[c.name]
            columns[name], labelled, display = self._column(table, c, data.column(c.name), run)
            if labelled is not None:
                value_labels[name] = labelled
            if display is not None:
                formats[name] = display
            label = labels[name] = self._label(c.label)
            self._names.append((f"{table.name}.{self.extension}", dataset, c.name, name, label))
        path = folder / f"{table.name}.{self.extension}"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.save(frame(columns, self.batch_rows), path, dataset=dataset, label=self._label(table.label), labels=labels,
                  value_labels=value_labels if self.value_labels else {}, formats=formats)  # fmt: skip
        return [path]

    def _column(
        self, table: Table, c: Column, column: pa.ChunkedArray, run: _Run
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
        text, cut = cut_text(column, self.text_limit)
        note = f"{table.name}.{c.name}: text longer than {self.text_limit} bytes was cut to fit the format."
        if cut and note not in run.notes:
            run.notes.append(note)
        return text, labelled, None

    def _label(self, text: str) -> str:
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
        return [path]


class StataExporter(StatisticalExporter):
    """Stata 15 .dta files."""

    name = "stata"
    description = "Stata .dta files with variable labels and value labels."
    extension = "dta"
    name_limit, label_limit, text_limit = 32, 80, 2045
    reserved = frozenset({"_ALL", "_B", "BYTE", "_COEF", "_CONS", "DOUBLE", "FLOAT", "IF", "IN", "INT", "LONG",
                          "_N", "_PI", "_PRED", "_RC", "_SKIP", "STRL", "USING", "WITH"})  # fmt: skip
    format_notes = (
        "Stata labels only numbers: yes/no (0/1) and choices with whole-number codes carry value labels; other "
        "choices keep their codes as text (their labels are in the codebook export).",
    )

    def save(self, frame: Any, path: Path, *, dataset: str, label: str, labels: dict[str, str | None],
             value_labels: dict[str, dict[Any, str]], formats: dict[str, str]) -> None:  # fmt: skip
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
    format_notes = ("Choices keep their codes (text) with value labels; yes/no are 0/1 with value labels.",)

    def save(self, frame: Any, path: Path, *, dataset: str, label: str, labels: dict[str, str | None],
             value_labels: dict[str, dict[Any, str]], formats: dict[str, str]) -> None:  # fmt: skip
        import pyreadstat

        pyreadstat.write_sav(frame, path, file_label=label, column_labels=labels, variable_value_labels=value_labels,
                             variable_format=formats)  # fmt: skip


class SasExporter(StatisticalExporter):
    """SAS transport files, version 5 (the FDA's): 8-character upper-case names, 40-character labels."""

    name = "sas"
    description = "SAS transport (XPT v5) files; variable names in names.csv."
    extension = "xpt"
    name_limit, label_limit, text_limit = 8, 40, 200
    upper_names = True
    value_labels = False
    format_notes = (
        "SAS transport files carry no value labels: choices keep their codes and yes/no are 1/0 (labels are in "
        "names.csv for variables and in the codebook export for codes).",
        "Names are at most 8 upper-case characters and labels at most 40 ASCII characters; names.csv maps each "
        "variable back to its column.",
        "Each file's dataset (member) name is its table's short name, listed in names.csv.",
    )

    def _label(self, text: str) -> str:
        return fit_bytes(ascii_text(text), self.label_limit)

    def save(self, frame: Any, path: Path, *, dataset: str, label: str, labels: dict[str, str | None],
             value_labels: dict[str, dict[Any, str]], formats: dict[str, str]) -> None:  # fmt: skip
        import pyreadstat

        pyreadstat.write_xport(frame, path, file_label=label, column_labels=labels, table_name=dataset,
                               file_format_version=5, variable_format=formats)  # fmt: skip
