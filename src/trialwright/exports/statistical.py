"""Stata (.dta), SPSS (.sav) and SAS transport (.xpt): the tabular tables, one table at a time.

The tables are those of every tabular format (``trialwright.exports.tabular``). Rows are gathered into Arrow
record batches and spooled to Parquet as they stream; when a table is complete its spool goes to the format's
writer, and names.csv (and Stata's value_codes.csv) list what each format made of the columns. Each format is
written a batch at a time by the project's own writer (``trialwright.exports.stata``, ``trialwright.exports.spss``
and ``trialwright.exports.sas``), so the peak is one batch, not the table. A format that cannot hold a date-time as
stored (SPSS, Stata) lists each it changes in datetimes_rounded.csv (``trialwright.exports.rounded_times``).
"""

from __future__ import annotations

import abc
import csv
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from trialwright.domain.text import spreadsheet_row
from trialwright.exports.base import ExportSource, Progress
from trialwright.exports.columnar import BATCH_ROWS, ParquetSink
from trialwright.exports.readstat import fit_bytes, short_names
from trialwright.exports.rounded_times import RoundedTimes, RoundedWords
from trialwright.exports.tabular import Sink, Table, TabularExporter, _Run

__all__ = ["StatisticalExporter", "chunked", "write_csv"]


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
    #: The label limits as the README and labels_cut.csv's description say them (``label_limit`` bytes unless set).
    label_limits: ClassVar[str] = ""
    text_limit: ClassVar[int]
    reserved: ClassVar[frozenset[str]] = frozenset()
    #: How the format says the date-times it cannot hold as stored (None: it holds every one).
    rounded_words: ClassVar[RoundedWords | None] = None

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
        #: datetimes_rounded.csv as it is written (opened at the first date-time that reads back changed).
        self._rounded = RoundedTimes()

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        self._names, self._datasets, self._choices, self._numbered, self._labels_cut = [], {}, [], [], []
        self._rounded.reset()
        try:
            return super().write(source, folder, progress)
        finally:
            self._rounded.close()

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

    def _fit_label(self, text: str, file: str, name: str, whole: str, limit: int | None = None) -> str:
        """``text`` cut to the format's label limit (or ``limit`` bytes), never silently: every cut label is listed
        with the whole label in labels_cut.csv (``whole``: the label as the protocol words it, before any spelling
        for the format)."""
        fitted = fit_bytes(text, self.label_limit if limit is None else limit)
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
            limits = self.label_limits or f"{self.label_limit} bytes"
            written.append(write_csv(folder / "labels_cut.csv", ["file", "variable", "label", "whole_label"],
                                     self._labels_cut))  # fmt: skip
            run.tables.append(("labels_cut.csv", f"each label longer than {limits}, cut to fit the format: the label "
                               "written and the whole label", len(self._labels_cut)))  # fmt: skip
            run.notes.append(f"{len(self._labels_cut)} labels longer than {limits} were cut to fit the format; "
                             "labels_cut.csv gives each whole.")  # fmt: skip
        if self.rounded_words is not None and (rounded := self._rounded.finish(folder, self.rounded_words)):
            written.append(rounded[0])
            run.tables.append(rounded[1])
            run.notes.append(rounded[2])
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
