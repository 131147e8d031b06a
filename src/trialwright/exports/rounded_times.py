"""The date-times a statistical format cannot hold as stored, listed in ``datetimes_rounded.csv``: never silently.

A stored date-time has microseconds. SPSS holds one as a double of seconds from 1582 (a step of about 1.9
microseconds near today's dates), Stata's ``%tc`` as whole milliseconds from 1960; each exporter writes its
value once (the nearest the format holds) and hands this listing, batch by batch, the stored column and the
time each value reads back as. Every present value whose read-back differs from the stored instant (or lies
exactly halfway between two microseconds, so it reads back as neither) is listed with the file, the variable,
the row (counted from the file's first), the stored time and the time read back; the README gets the count.
The file is opened at the first such value and written as the batches come, so the heap holds one batch.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trialwright.domain.text import spreadsheet_row

__all__ = ["ROUNDED", "ROUNDED_HEADER", "RoundedTimes", "RoundedWords", "stored_microseconds"]

ROUNDED = "datetimes_rounded.csv"
ROUNDED_HEADER = ("file", "variable", "row", "stored", "read_back")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class RoundedWords:
    """How a format says what it cannot hold: the README's description of the list (``table``) and its note,
    ``note`` with ``{count}`` for the number listed."""

    table: str
    note: str


def stored_microseconds(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A batch of UTC date-times as microseconds from 1970 (int64; missing as 0) and where each is missing."""
    counted = column.cast(pa.timestamp("us", "UTC")).cast(pa.int64())
    missing = np.asarray(pc.is_null(counted).to_numpy(zero_copy_only=False), bool)
    return np.asarray(pc.fill_null(counted, 0).to_numpy(zero_copy_only=False), np.int64), missing


class RoundedTimes:
    """One export's ``datetimes_rounded.csv``: ``add`` a batch as it is written, ``finish`` when the tables are
    done (the file closed, its line and note in the README); ``close`` on any exit."""

    def __init__(self) -> None:
        self._file: tuple[TextIO, Any] | None = None
        self.rows = 0

    def reset(self) -> None:
        self.close()
        self.rows = 0

    def close(self) -> None:
        if self._file is not None:
            self._file[0].close()
            self._file = None

    def add(self, folder: Path, file: str, variable: str, column: pa.Array, read_back: np.ndarray,
            halfway: np.ndarray | None, start: int) -> None:  # fmt: skip
        """List each present date-time of a batch (``column``, as stored) whose value read back (``read_back``:
        microseconds from 1970, as the file holds it) is not the stored instant, or lies ``halfway`` between two
        microseconds; ``start`` is the number of the batch's first row in the file."""
        stored, missing = stored_microseconds(column)
        differs = np.asarray(read_back, np.int64) != stored
        if halfway is not None:
            differs |= np.asarray(halfway, bool)
        changed = np.flatnonzero(~missing & differs)
        if not len(changed):
            return
        if self._file is None:
            handle = (folder / ROUNDED).open("w", newline="", encoding="utf-8")
            self._file = (handle, csv.writer(handle))
            self._file[1].writerow(ROUNDED_HEADER)
        for i in changed.tolist():
            was = _EPOCH + dt.timedelta(microseconds=int(stored[i]))
            held = (_EPOCH + dt.timedelta(microseconds=int(read_back[i]))).isoformat()
            back = f"{held} (halfway to the next microsecond)" if halfway is not None and halfway[i] else held
            self._file[1].writerow(spreadsheet_row((file, variable, start + i, was.isoformat(), back)))
        self.rows += len(changed)

    def finish(self, folder: Path, words: RoundedWords) -> tuple[Path, tuple[str, str, int], str] | None:
        """The list's path, its README line (file, what it holds, rows) and note, or None when nothing is listed."""
        if self._file is None:
            return None
        self.close()
        return folder / ROUNDED, (ROUNDED, words.table, self.rows), words.note.format(count=self.rows)
