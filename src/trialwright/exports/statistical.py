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
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trialwright.domain.text import spreadsheet_row
from trialwright.exports.base import ExportSource, Progress
from trialwright.exports.columnar import BATCH_ROWS, ParquetSink
from trialwright.exports.readstat import (
    ASCII_SPELLINGS,
    ascii_cells,
    ascii_spelling,
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

    @abc.abstractmethod
    def save(self, frame: Any, path: Path, *, dataset: str, label: str, labels: dict[str, str | None],
             value_labels: dict[str, dict[Any, str]], formats: dict[str, str],
             measures: dict[str, str]) -> None:  # fmt: skip
        """Write one table (``formats``: display formats by variable, for dates; ``measures``: SPSS measure
        levels by variable)."""

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
        column = self._text(column, file, name)
        text, cut = cut_text(column, self.text_limit)
        note = f"{table.name}.{c.name}: text longer than {self.text_limit} bytes was cut to fit the format."
        if cut and note not in run.notes:
            run.notes.append(note)
        return text, labelled, None

    def _text(self, column: pa.ChunkedArray, file: str, name: str) -> pa.ChunkedArray:
        """A text column as the format holds it (every format but SAS transport: as stored)."""
        return column

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
            written.append(_csv(folder / "value_codes.csv", ["file", "variable", "number", "code", "label"],
                                self._numbered))  # fmt: skip
            run.tables.append(("value_codes.csv", "each choice written as a number: its number, code and label",
                               len(self._numbered)))  # fmt: skip
        return written


def _csv(path: Path, header: list[str], rows: list[tuple[Any, ...]]) -> Path:
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


class SasExporter(StatisticalExporter):
    """SAS transport files, version 5 (the FDA's): 8-character upper-case names, 40-character labels, ASCII."""

    name = "sas"
    description = "SAS transport (XPT v5) files in ASCII, with formats.sas; variable names in names.csv."
    extension = "xpt"
    name_limit, label_limit, text_limit = 8, 40, 200
    upper_names = True
    value_labels = False
    format_notes = (
        "SAS transport files carry no value labels: choices keep their codes and yes/no are 1/0. formats.sas "
        "(a SAS program) defines a format for every choice and yes/no variable and applies it to each dataset.",
        "Names are at most 8 upper-case characters and labels at most 40 ASCII characters; names.csv maps each "
        "variable back to its column.",
        "Each file's dataset (member) name is its table's short name, listed in names.csv.",
        "XPT version 5 holds ASCII only: values and labels are spelt in ASCII by the declared mapping ("
        + ", ".join(f"{k if k.isprintable() and not k.isspace() else 'no-break space'} as {v}"
                    for k, v in ASCII_SPELLINGS.items())
        + "; also in the codebook export's xpt_ascii.csv). Text with any other non-ASCII character is never "
        "guessed: the cell is left empty (a label falls back to the column name) and not_ascii.csv lists it with "
        "its original text.",
    )

    def __init__(self, batch_rows: int = BATCH_ROWS) -> None:
        super().__init__(batch_rows)
        #: What could not be spelt in ASCII: (file, variable, row (1-based; empty for a label), original text).
        self._refused: list[tuple[str, str, int | None, str]] = []

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        self._refused = []
        return super().write(source, folder, progress)

    def _text(self, column: pa.ChunkedArray, file: str, name: str) -> pa.ChunkedArray:
        spelt, refused = ascii_cells(column)
        self._refused += [(file, name, row + 1, text) for row, text in refused]
        return spelt

    def _label(self, text: str, file: str = "", name: str = "") -> str:
        spelt = ascii_spelling(text)
        if spelt is None:
            self._refused.append((file, name, None, text))
            spelt = name
        return fit_bytes(spelt, self.label_limit)

    def finish(self, folder: Path, run: _Run) -> list[Path]:
        written = super().finish(folder, run)
        written.append(write_formats_sas(folder / "formats.sas", self._choices, self._refused))
        run.tables.append(("formats.sas", "SAS program: PROC FORMAT for every choice and yes/no variable, applied "
                           "to each dataset", len(self._choices)))  # fmt: skip
        if self._refused:
            written.append(_csv(folder / "not_ascii.csv", ["file", "variable", "row", "text"], self._refused))
            run.tables.append(("not_ascii.csv", "values and labels not written: characters XPT v5 cannot hold",
                               len(self._refused)))  # fmt: skip
            run.notes.append(f"{len(self._refused)} values or labels hold characters SAS transport cannot hold; "
                             "they are left empty and listed in not_ascii.csv.")  # fmt: skip
        return written

    def save(self, frame: Any, path: Path, *, dataset: str, label: str, labels: dict[str, str | None],
             value_labels: dict[str, dict[Any, str]], formats: dict[str, str],
             measures: dict[str, str]) -> None:  # fmt: skip
        import pyreadstat

        pyreadstat.write_xport(frame, path, file_label=label, column_labels=labels, table_name=dataset,
                               file_format_version=5, variable_format=formats)  # fmt: skip


def _sas_text(text: str) -> str:
    """A SAS quoted string."""
    return "'" + text.replace("'", "''") + "'"


def write_formats_sas(
    path: Path,
    choices: list[tuple[str, str, str, str, str, tuple[tuple[str, str], ...]]],
    refused: list[tuple[str, str, int | None, str]],
) -> Path:
    """formats.sas: one value format per distinct code list (``$CnF`` for text codes, ``NnF`` for numbers) and a
    DATA step per dataset reading its XPT file and applying the formats. Codes and labels are spelt in ASCII
    (``ascii_spelling``); one that cannot be is never guessed: a label falls back to its code, a code's value is
    left out, and either is added to ``refused``."""
    names: dict[tuple[bool, tuple[tuple[str, str], ...]], str] = {}
    lines = [
        "/* trialwright: value formats for the choice and yes/no variables of this SAS transport export.",
        "   Run from this folder (or set FOLDER): the datasets are read from their .xpt files into WORK. */",
        "%let folder = .;",
        "",
        "proc format;",
    ]
    for _, _, _, _, kind, codes in choices:
        text = kind == "text"
        key = (text, codes)
        if key in names:
            continue
        names[key] = f"{'$C' if text else 'N'}{len(names) + 1}F"
        lines.append(f"  value {names[key]}")
        for code, label in codes:
            spelt_code, spelt_label = ascii_spelling(code), ascii_spelling(label)
            if spelt_code is None:
                refused.append(("formats.sas", names[key], None, code))
                continue
            if spelt_label is None:
                refused.append(("formats.sas", names[key], None, label))
            lines.append(f"    {_sas_text(spelt_code) if text else code} = {_sas_text(spelt_label or spelt_code)}")
        lines.append("  ;")
    lines += ["run;", ""]
    by_file: dict[tuple[str, str], list[str]] = {}
    for file, dataset, _, variable, kind, codes in choices:
        by_file.setdefault((file, dataset), []).append(f"{variable} {names[(kind == 'text', codes)]}.")
    for i, ((file, dataset), applied) in enumerate(by_file.items(), 1):
        lines += [
            f'libname x{i} xport "&folder/{file}";',
            f"data work.{dataset};",
            f"  set x{i}.{dataset};",
            f"  format {' '.join(applied)};",
            "run;",
            f"libname x{i} clear;",
            "",
        ]
    path.write_text("\n".join(lines), encoding="ascii")
    return path
