"""SAS transport (XPT version 5) files of the tabular tables, written a record batch at a time, and formats.sas.

Each table is spooled to Parquet as its rows stream (``trialwright.exports.statistical``); then it is read back
twice, a batch at a time: a first pass decides what only the whole column can decide (each text variable's
width after its ASCII spelling and the 200-byte cut, whether a date column holds any date, which cells cannot be
spelt in ASCII, whether any text was cut), a second converts each batch again and hands it to the project's
transport writer (``trialwright.exports.xport``). So the heap holds one batch, never the table: the peak is flat
as the trial grows. The conversions are those of the whole-table formats: yes/no 1/0, choices keep their codes,
dates as SAS day numbers (DATE format), UTC date-times as SAS seconds (DATETIME format), text spelt in ASCII by
``ASCII_SPELLINGS`` and cut to 200 bytes; a date column without any date is a text column of missing values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trialwright.exports.base import ExportSource, Progress
from trialwright.exports.columnar import BATCH_ROWS
from trialwright.exports.readstat import ASCII_SPELLINGS, ascii_cells, ascii_spelling, cut_text
from trialwright.exports.statistical import StatisticalExporter, chunked, write_csv
from trialwright.exports.tabular import Column, Table, _Run
from trialwright.exports.xport import XportVariable, XportWriter, short_reading_note

__all__ = ["SasExporter", "write_formats_sas"]

#: Days from SAS's day zero (1960-01-01) to 1970-01-01, and the same in microseconds.
_SAS_DAYS = 3653
_SAS_MICROSECONDS = _SAS_DAYS * 86_400_000_000
_TEXT_KINDS = frozenset({"text", "code"})


@dataclass
class _Survey:
    """What the first pass over a table learns, by column name."""

    widths: dict[str, int] = field(default_factory=dict)
    dated: dict[str, bool] = field(default_factory=dict)
    refused: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    cut: dict[str, bool] = field(default_factory=dict)


class SasExporter(StatisticalExporter):
    """SAS transport files, version 5 (the FDA's): 8-character upper-case names, 40-character labels, ASCII."""

    name = "sas"
    description = "SAS transport (XPT v5) files in ASCII, with formats.sas; variable names in names.csv."
    extension = "xpt"
    name_limit, label_limit, text_limit = 8, 40, 200
    upper_names = True
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

    def _convert(self, folder: Path, table: Table, spool: Path, run: _Run) -> list[Path]:
        """The spooled table written a batch at a time (after a first pass, ``_survey``)."""
        names, dataset = self._variable_names(table)
        file = f"{table.name}.{self.extension}"
        parquet = pq.ParquetFile(spool)
        survey = self._survey(table, parquet)
        variables: list[XportVariable] = []
        for c in table.columns:
            name = names[c.name]
            self._refused += [(file, name, row + 1, text) for row, text in survey.refused.get(c.name, [])]
            note = f"{table.name}.{c.name}: text longer than {self.text_limit} bytes was cut to fit the format."
            if survey.cut.get(c.name) and note not in run.notes:
                run.notes.append(note)
            label = self._label(c.label, file, name)
            self._names.append((file, dataset, c.name, name, label))
            if c.kind == "yesno":
                self._choices.append((file, dataset, c.name, name, "yesno", (("0", "No"), ("1", "Yes"))))
            elif c.kind == "code" and c.choices:
                self._choices.append((file, dataset, c.name, name, "text", c.choices))
            if c.name in survey.widths:
                variables.append(XportVariable(name, label, "char", survey.widths[c.name]))
            else:
                display = {"date": "DATE", "datetime": "DATETIME"}.get(c.kind, "")
                variables.append(XportVariable(name, label, "num", format=display))
        path = folder / file
        path.parent.mkdir(parents=True, exist_ok=True)
        with XportWriter(path, dataset, self._label(table.label, file, ""), variables) as writer:
            for batch in parquet.iter_batches(batch_size=self.batch_rows):
                writer.write([self._values(c, batch.column(c.name), survey) for c in table.columns])
        if writer.read_short is not None:
            run.notes.append(short_reading_note(file, writer.read_short, writer.rows))
        return [path]

    def _survey(self, table: Table, parquet: pq.ParquetFile) -> _Survey:
        """The first pass: each text column's width as written (at least 1), whether each date column holds a
        date, the cells that cannot be spelt in ASCII (row, text) and whether any text was cut."""
        survey = _Survey()
        read = [c for c in table.columns if c.kind in _TEXT_KINDS or c.kind == "date"]
        for c in read:
            if c.kind == "date":
                survey.dated[c.name] = False
            else:
                survey.widths[c.name], survey.refused[c.name], survey.cut[c.name] = 1, [], False
        start = 0
        for batch in parquet.iter_batches(batch_size=self.batch_rows, columns=[c.name for c in read] or None):
            for c in read:
                column = batch.column(c.name)
                if c.kind == "date":
                    survey.dated[c.name] = survey.dated[c.name] or column.null_count < len(column)
                    continue
                spelt, refused = ascii_cells(chunked(column))
                survey.refused[c.name] += [(start + row, text) for row, text in refused]
                text, cut = cut_text(spelt, self.text_limit)
                survey.cut[c.name] = survey.cut[c.name] or cut
                survey.widths[c.name] = max(survey.widths[c.name], pc.max(pc.binary_length(text)).as_py() or 0)
            start += batch.num_rows
        for name, dated in survey.dated.items():
            if not dated:  # no date at all: a text column of missing values, as pyreadstat made of one of None
                survey.widths[name] = 1
        return survey

    def _values(self, c: Column, column: pa.Array, survey: _Survey) -> pa.Array | pa.ChunkedArray | np.ndarray:
        """One batch of a column as the transport file holds it."""
        if c.name in survey.widths and c.kind == "date":
            return pa.nulls(len(column), pa.string())
        if c.kind == "datetime":
            moments = pc.add(column.cast(pa.timestamp("us", "UTC")).cast(pa.int64()), _SAS_MICROSECONDS)
            return np.asarray(moments.to_numpy(zero_copy_only=False), np.float64) / 1e6
        if c.kind == "date":
            return pc.add(column.cast(pa.int32()), _SAS_DAYS).cast(pa.float64())
        if c.kind in {"yesno", "number"}:
            return column.cast(pa.float64())
        spelt, _ = ascii_cells(chunked(column))
        return cut_text(spelt, self.text_limit)[0]

    def _label(self, text: str, file: str = "", name: str = "") -> str:
        spelt = ascii_spelling(text)
        if spelt is None:
            self._refused.append((file, name, None, text))
            spelt = name
        return self._fit_label(spelt, file, name, text)

    def finish(self, folder: Path, run: _Run) -> list[Path]:
        written = super().finish(folder, run)
        written.append(write_formats_sas(folder / "formats.sas", self._choices, self._refused))
        run.tables.append(("formats.sas", "SAS program: PROC FORMAT for every choice and yes/no variable, applied "
                           "to each dataset", len(self._choices)))  # fmt: skip
        if self._refused:
            written.append(write_csv(folder / "not_ascii.csv", ["file", "variable", "row", "text"], self._refused))
            run.tables.append(("not_ascii.csv", "values and labels not written: characters XPT v5 cannot hold",
                               len(self._refused)))  # fmt: skip
            run.notes.append(f"{len(self._refused)} values or labels hold characters SAS transport cannot hold; "
                             "they are left empty and listed in not_ascii.csv.")  # fmt: skip
        return written


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
