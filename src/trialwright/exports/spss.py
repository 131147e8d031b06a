"""SPSS system files (.sav) of the tabular tables, written a record batch at a time.

Each table is spooled to Parquet as its rows stream (``trialwright.exports.statistical``); then it is read back
twice, a batch at a time: a first pass decides what only the whole column can decide (each text variable's width
after the 32,767-byte cut, widened to its longest declared code so that every value label has a value, whether a
date column holds any date, whether any text was cut), a second converts each batch again and hands it to the
project's SPSS writer (``trialwright.exports.sav``), which fills in the case count at the end. So the heap holds one
batch, never the table. The conversions are those pyreadstat was given: numbers and yes/no (0/1, value labels
No/Yes) as doubles in F8.2, choices keep their codes (text) with value labels, dates as SPSS dates (seconds from
1582-10-14, DATE11), UTC date-times as SPSS date-times (DATETIME20), text cut to 32,767 bytes; a date column without
any date is a text column of missing values; measure levels from the field types.

An SPSS date-time is a double of seconds, whose step near today's dates (about 1.4e10 seconds from 1582) is 2**-19
seconds, about 1.9 microseconds: about half of all microseconds have no double that reads back as them. Such a time
is never changed silently: every date-time whose nearest microsecond in the file is not the stored one is listed in
datetimes_rounded.csv (file, variable, row, the stored time, the time read back), as labels cut to fit are listed
in labels_cut.csv; the list is written as the batches come, so the heap still holds one batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trialwright.exports.readstat import cut_text
from trialwright.exports.rounded_times import ROUNDED, RoundedWords
from trialwright.exports.sav import RESERVED_WORDS, SavVariable, SavWriter
from trialwright.exports.statistical import StatisticalExporter, chunked
from trialwright.exports.tabular import Column, Table, _Run

__all__ = ["SpssExporter", "read_back_microseconds", "spss_seconds"]

#: Seconds from SPSS's day zero (1582-10-14) to 1970-01-01, and the same in microseconds.
_SPSS_SECONDS = 141_428 * 86_400
_SPSS_MICROSECONDS = _SPSS_SECONDS * 1_000_000
_FORMATS = {"date": "DATE11", "datetime": "DATETIME20"}


def spss_seconds(column: pa.Array) -> np.ndarray:
    """UTC date-times as SPSS seconds, each the double nearest its instant (missing: NaN). Whole seconds and the
    microseconds apart, then added: the sum is rounded once, so it is the nearest double (an instant is never
    halfway between two doubles of 2**-19 seconds or finer). A double of the microseconds counted from 1582 would
    round twice (above 2**53 microseconds an odd count is not a double) and change more times than it must."""
    moments = pc.add(column.cast(pa.timestamp("us", "UTC")).cast(pa.int64()), _SPSS_MICROSECONDS)
    counted = np.asarray(pc.fill_null(moments, 0).to_numpy(zero_copy_only=False), np.int64)
    whole, micro = np.divmod(counted, 1_000_000)
    seconds = whole.astype(np.float64) + micro.astype(np.float64) / 1e6
    seconds[np.asarray(pc.is_null(moments).to_numpy(zero_copy_only=False), bool)] = np.nan
    return seconds


def read_back_microseconds(seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SPSS date-times (seconds from 1582-10-14, doubles) as the microsecond nearest each, and whether a double lies
    exactly halfway between two microseconds (then it holds neither). Exact, not a float product's rounding: the
    fraction of a second of a double at or above 2**20 seconds is a multiple of its step (2**-32 seconds or coarser),
    so the fraction times 10**6 needs at most 53 bits and is computed exactly. NaN (missing) reads as 0."""
    x = np.nan_to_num(np.asarray(seconds, np.float64))
    whole = np.floor(x)
    micro = (x - whole) * 1e6  # x - floor(x) is exact (a multiple of x's step)
    nearest = np.rint(micro)
    return whole.astype(np.int64) * 1_000_000 + nearest.astype(np.int64), np.abs(micro - nearest) == 0.5


@dataclass
class _Survey:
    """What the first pass over a table learns, by column name."""

    widths: dict[str, int] = field(default_factory=dict)
    cut: dict[str, bool] = field(default_factory=dict)
    dated: dict[str, bool] = field(default_factory=dict)


class SpssExporter(StatisticalExporter):
    """SPSS .sav files."""

    name = "spss"
    description = "SPSS .sav files with variable labels and value labels."
    extension = "sav"
    name_limit, label_limit, text_limit = 64, 255, 32767
    #: SPSS's largest value label (ReadStat writes no more) and file label (the file header's 64 bytes).
    value_label_limit: ClassVar[int] = 120
    file_label_limit: ClassVar[int] = 64
    label_limits = "255 bytes (a value label 120, a file label 64)"
    reserved = RESERVED_WORDS  # the writer's own list: one rule
    rounded_words = RoundedWords(
        "each date-time an SPSS double cannot hold to the microsecond: the stored time and the time read back",
        "{count} date-times cannot be held to the microsecond by SPSS (a double of seconds steps by about 1.9 "
        f"microseconds); {ROUNDED} lists each with the time read back.",
    )
    format_notes = (
        "Choices keep their codes (text) with value labels; yes/no are 0/1 with value labels.",
        "Measure levels from the field types: numbers, dates and date-times scale; choices, yes/no and text nominal.",
        "SPSS holds a date-time as seconds from 1582-10-14 in a double, whose step near today's dates is 2**-19 "
        "seconds (about 1.9 microseconds): about half of all microseconds cannot be held, and such a time reads back "
        f"1 microsecond off. Each one is listed in {ROUNDED} with the stored time and the time read back; the CSV "
        "and Parquet exports hold every time as stored.",
    )

    def _convert(self, folder: Path, table: Table, spool: Path, run: _Run) -> list[Path]:
        """The spooled table written a batch at a time (after a first pass, ``_survey``)."""
        names, dataset = self._variable_names(table)
        file = f"{table.name}.{self.extension}"
        parquet = pq.ParquetFile(spool)
        survey = self._survey(table, parquet)
        variables: list[SavVariable] = []
        for c in table.columns:
            name = names[c.name]
            label = self._label(c.label, file, name)
            self._names.append((file, dataset, c.name, name, label))
            measure: Literal["nominal", "scale"] = "scale" if c.kind in {"number", "date", "datetime"} else "nominal"
            if c.kind == "yesno":
                self._choices.append((file, dataset, c.name, name, "yesno", (("0", "No"), ("1", "Yes"))))
                variables.append(SavVariable(name, label, "number", measure=measure,
                                             value_labels=((0.0, "No"), (1.0, "Yes"))))  # fmt: skip
            elif c.name not in survey.widths:  # numbers, dates and date-times that hold a date
                variables.append(SavVariable(name, label, "number", format=_FORMATS.get(c.kind, ""), measure=measure))
            else:
                labelled: tuple[tuple[float | str, str], ...] = ()
                if c.kind == "code" and c.choices:
                    self._choices.append((file, dataset, c.name, name, "text", c.choices))
                    labelled = tuple((k, self._fit_label(v, file, f"{name}={k}", v, self.value_label_limit))
                                     for k, v in c.choices)  # fmt: skip
                note = f"{table.name}.{c.name}: text longer than {self.text_limit} bytes was cut to fit the format."
                if survey.cut.get(c.name) and note not in run.notes:
                    run.notes.append(note)
                width = max([survey.widths[c.name], *(len(str(k).encode()) for k, _ in labelled)])
                variables.append(SavVariable(name, label, "text", width, measure=measure, value_labels=labelled))
        path = folder / file
        path.parent.mkdir(parents=True, exist_ok=True)
        file_label = self._fit_label(table.label, file, "", table.label, self.file_label_limit)
        with SavWriter(path, file_label, variables) as writer:
            start = 1
            for batch in parquet.iter_batches(batch_size=self.batch_rows):
                values = [self._values(c, batch.column(c.name), survey) for c in table.columns]
                for c, v in zip(table.columns, values, strict=True):
                    if c.kind == "datetime":
                        self._list_rounded(folder, file, names[c.name], batch.column(c.name), v, start)
                writer.write(values)
                start += batch.num_rows
        return [path]

    def _list_rounded(
        self, folder: Path, file: str, name: str, column: pa.Array, seconds: np.ndarray, start: int
    ) -> None:
        """List each date-time of a batch that reads back from ``seconds`` (as written) other than stored."""
        read, halfway = read_back_microseconds(seconds)
        self._rounded.add(folder, file, name, column, read - _SPSS_MICROSECONDS, halfway, start)

    def _survey(self, table: Table, parquet: pq.ParquetFile) -> _Survey:
        """The first pass: each text column's width as written (at least 1) and whether any was cut, whether each
        date column holds a date (one without is text: its width 1)."""
        survey = _Survey()
        read = [c for c in table.columns if c.kind in {"text", "code", "date"}]
        for c in read:
            if c.kind == "date":
                survey.dated[c.name] = False
            else:
                survey.widths[c.name], survey.cut[c.name] = 1, False
        for batch in parquet.iter_batches(batch_size=self.batch_rows, columns=[c.name for c in read] or None):
            for c in read:
                column = batch.column(c.name)
                if c.kind == "date":
                    survey.dated[c.name] = survey.dated[c.name] or column.null_count < len(column)
                    continue
                text, cut = cut_text(chunked(column), self.text_limit)
                survey.cut[c.name] = survey.cut[c.name] or cut
                survey.widths[c.name] = max(survey.widths[c.name], pc.max(pc.binary_length(text)).as_py() or 0)
        for name, dated in survey.dated.items():
            if not dated:  # no date at all: a text column of missing values, as pyreadstat made of one of None
                survey.widths[name] = 1
        return survey

    def _values(self, c: Column, column: pa.Array, survey: _Survey) -> pa.Array | pa.ChunkedArray | np.ndarray:
        """One batch of a column as the SPSS file holds it."""
        if c.kind == "date" and c.name in survey.widths:
            return pa.nulls(len(column), pa.string())
        if c.kind == "datetime":
            return spss_seconds(column)
        if c.kind == "date":
            days = column.cast(pa.int32()).cast(pa.int64())
            return pc.multiply(pc.add(days, 141_428), 86_400).cast(pa.float64())
        if c.kind in {"yesno", "number"}:
            return column.cast(pa.float64())
        return cut_text(chunked(column), self.text_limit)[0]
