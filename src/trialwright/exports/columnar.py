"""Tables written through Arrow record batches: rows gathered a batch at a time, then CSV and Parquet written a
batch at a time, so memory holds one batch whatever the size of the trial.

A ``Table`` (``trialwright.exports.tabular``) declares its columns once; its Arrow schema types them (dates
date32, date-times timestamp[us, UTC], numbers float64, codes and text strings, yes/no booleans). A sink
holds at most ``batch`` rows and turns them into one ``pyarrow.RecordBatch`` (one Arrow array per column):

- ``ParquetSink`` writes each batch as a row group (``pyarrow.parquet.ParquetWriter``);
- ``CsvSink`` formats each batch column by column with Arrow compute functions and writes it as text, with
  exactly the cells the row-by-row writer wrote before (``csv_cells``): numbers in full precision (Python's
  shortest round-trip ``repr``, ``.0`` dropped), dates ``YYYY-MM-DD``, UTC date-times in ISO 8601 with
  ``+00:00``, yes/no ``1``/``0``, empty for missing; a text cell a spreadsheet would run as a formula gets
  a leading apostrophe (``trialwright.domain.text.spreadsheet_cell``); quoting as Python's ``csv`` module
  (minimal: a cell with a comma, a quote, CR or LF is quoted, its quotes doubled); lines end in CRLF. The lines are
  joined by Arrow and written as the bytes of the joined string array (``csv_bytes``), no Python string per line.

``pyarrow.csv`` is not used for the text: it quotes every string cell (``quoting_style="needed"``; ``"none"`` refuses
a cell holding a comma or quote), which would change every file.
"""

from __future__ import annotations

import csv
import gc
import io
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from trialwright.domain.text import spreadsheet_cell

if TYPE_CHECKING:
    from trialwright.exports.tabular import Table

__all__ = [
    "BATCH_ROWS",
    "CSV_BATCH_ROWS",
    "CsvSink",
    "ParquetSink",
    "arrow_schema",
    "csv_bytes",
    "csv_cells",
    "csv_lines",
    "csv_text",
    "floats_text",
    "no_cycle_scans",
]

#: Rows per record batch (and per Parquet row group).
BATCH_ROWS = 4096
#: Rows per CSV batch: smaller, since text has no row groups to keep (a quarter of the rows held at a time).
CSV_BATCH_ROWS = 4096

_ARROW: dict[str, pa.DataType] = {
    "text": pa.string(),
    "code": pa.string(),
    "number": pa.float64(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "yesno": pa.bool_(),
}
#: What may start a formula (``spreadsheet_cell`` decides; this only finds the cells to ask it about).
_FORMULA_START = r"^[=+\-@\t\r]"


def arrow_schema(table: Table) -> pa.Schema:
    """The table's Arrow schema: dates as date32, numbers as float64, codes as strings, labels as metadata."""
    return pa.schema(
        [pa.field(c.name, _ARROW[c.kind], metadata={"label": c.label, "kind": c.kind}) for c in table.columns],
        metadata={"table": table.name, "label": table.label},
    )


class _BatchSink:
    """Rows gathered into record batches of ``batch`` rows (one list per column), each handed to ``_write``.

    Rows come one at a time (``add``, a mapping per row) or many at a time as columns (``extend``, a list per
    column, no object per row); either way the batches are cut at the same rows, so a file does not depend on how
    its rows were handed over."""

    def __init__(self, table: Table, batch: int) -> None:
        if batch < 1:
            raise ValueError(f"batch: {batch} rows; a batch holds at least one row")
        self.table, self.schema, self.rows, self._batch = table, arrow_schema(table), 0, batch
        self._names = [f.name for f in self.schema]
        self._pending: list[Mapping[str, Any]] = []  # rows added one at a time, not yet in ``_columns``
        self._columns: list[list[Any]] = [[] for _ in self._names]
        self._held = 0  # rows in ``_columns``
        #: Rows given as Arrow arrays (``extend``), held before ``_columns`` (one list of arrays per piece).
        self._pieces: list[list[pa.Array]] = []
        self._piece_rows = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self._pending.append(row)
        self.rows += 1
        if len(self._pending) + self._held + self._piece_rows >= self._batch:
            self._flush()

    def extend(self, columns: Mapping[str, Sequence[Any] | pa.Array], count: int) -> None:
        """Add ``count`` rows given as columns (each ``count`` long; a column not named is empty in every row): Python
        lists, or Arrow arrays of the column's type, which are held as they are (no Python object per cell)."""
        if count < 1:
            return
        self._gather()
        if any(isinstance(c, pa.Array) for c in columns.values()):
            self._seal()
            piece = []
            for f in self.schema:
                given = columns.get(f.name)
                if given is None:
                    piece.append(pa.nulls(count, f.type))
                elif isinstance(given, pa.Array):
                    if given.type != f.type or len(given) != count:
                        raise TypeError(f"{self.table.name}.{f.name}: {len(given)} {given.type}, not {count} {f.type}")
                    piece.append(given)
                else:
                    piece.append(pa.array(given, type=f.type))
            self._pieces.append(piece)
            self._piece_rows += count
            self.rows += count
            while self._piece_rows >= self._batch:
                self._flush()
            return
        for name, column in zip(self._names, self._columns, strict=True):
            given = columns.get(name)
            column.extend(repeat(None, count) if given is None else given)
        self._held += count
        self.rows += count
        while self._held + self._piece_rows >= self._batch:
            self._flush()

    def _gather(self) -> None:
        """The rows added one at a time, appended to the columns (``dict.get`` mapped over them in C)."""
        rows, self._pending = self._pending, []
        if not rows:
            return
        if all(type(r) is dict for r in rows):
            get: Any = dict.get
            for name, column in zip(self._names, self._columns, strict=True):
                column.extend(map(get, rows, repeat(name)))
        else:
            for name, column in zip(self._names, self._columns, strict=True):
                column.extend(r.get(name) for r in rows)
        self._held += len(rows)

    def _seal(self) -> None:
        """The rows held as lists, made Arrow arrays after the pieces held (their order kept)."""
        if self._held:
            self._pieces.append([pa.array(c, type=f.type) for c, f in zip(self._columns, self.schema, strict=True)])
            self._piece_rows += self._held
            self._columns, self._held = [[] for _ in self._names], 0

    def _flush(self) -> None:
        """Write one batch: the first ``batch`` rows held (all of them when fewer)."""
        self._gather()
        if self._pieces:
            self._seal()
            whole = [pa.concat_arrays(list(c)) for c in zip(*self._pieces, strict=True)]
            self._pieces, self._piece_rows = [], 0
            if len(whole[0]) > self._batch:
                self._pieces, self._piece_rows = [[c.slice(self._batch) for c in whole]], len(whole[0]) - self._batch
                whole = [c.slice(0, self._batch) for c in whole]
            self._write(pa.record_batch(whole, schema=self.schema))
            return
        if self._held <= self._batch:
            taken, self._columns, self._held = self._columns, [[] for _ in self._names], 0
        else:
            taken = [c[: self._batch] for c in self._columns]
            for c in self._columns:
                del c[: self._batch]
            self._held -= self._batch
        arrays = [pa.array(c, type=f.type) for c, f in zip(taken, self.schema, strict=True)]
        self._write(pa.record_batch(arrays, schema=self.schema))

    def _write(self, batch: pa.RecordBatch) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Flush what is left (an empty table still gets one empty batch, so that its file has a schema)."""
        while self._pending or self._held or self._pieces or not self.rows:
            self._flush()
            if not self.rows:
                break


class ParquetSink(_BatchSink):
    """A table as Parquet, one row group per record batch."""

    def __init__(self, path: Path, table: Table, batch: int = BATCH_ROWS) -> None:
        super().__init__(table, batch)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._writer = pq.ParquetWriter(path, self.schema)

    def _write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> list[Path]:
        self._finish()
        self._writer.close()
        return [self.path]


class CsvSink(_BatchSink):
    """A table as UTF-8 CSV, one record batch at a time."""

    def __init__(self, path: Path, table: Table, batch: int = BATCH_ROWS) -> None:
        super().__init__(table, batch)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("wb")
        header = io.StringIO(newline="")
        csv.writer(header).writerow(self._names)  # the header: column names, as the csv module writes them
        self._file.write(header.getvalue().encode("utf-8"))

    def _write(self, batch: pa.RecordBatch) -> None:
        self._file.write(csv_bytes([csv_cells(c) for c in batch.columns]))

    def close(self) -> list[Path]:
        while self._pending or self._held or self._pieces:
            self._flush()
        self._file.close()
        return [self.path]


def _float_text(value: float) -> str:
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def _as_text(column: pa.Array) -> pa.Array:
    """One column as the text of its cells (nulls stay null)."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column
    if pa.types.is_boolean(kind):
        return pc.if_else(column, "1", "0")
    if pa.types.is_date32(kind):  # Arrow's cast writes YYYY-MM-DD, the year in four digits, as date.isoformat
        return pc.cast(column, pa.string())
    if pa.types.is_floating(kind):
        return floats_text(column)
    if pa.types.is_timestamp(kind):  # the instant in UTC as datetime.isoformat writes it
        return _instants_text(column)
    raise TypeError(f"column type {kind}: not a type of a trialwright table")


def floats_text(column: pa.Array) -> pa.Array:
    """Numbers as ``_float_text`` writes them. Arrow's cast gives the same shortest round-trip digits as Python's
    ``repr`` (without ``.0``) for zero and every magnitude from 1e-4 up to 1e10 (Python writes fixed notation
    from 1e-4 to 1e16, Arrow switches to an exponent earlier); the rest (and NaN, infinities) are written by
    Python, cell by cell, which is rare in trial data. Which cells are the rest is found by NumPy over the values
    (a few microseconds a batch; the Arrow compute calls it replaces took about a quarter of a millisecond)."""
    text = pc.cast(column, pa.string())
    values = column.to_numpy(zero_copy_only=False)  # a null reads as NaN; its flag is dropped below
    with np.errstate(invalid="ignore"):
        magnitude = np.abs(values)
        odd = ~((values == 0.0) | ((magnitude >= 1e-4) & (magnitude < 1e10)))
    if column.null_count:
        odd &= np.asarray(column.is_valid())
    if not odd.any():
        return text
    flags = odd.tolist()
    return pa.array(
        [_float_text(v) if flag else t for v, t, flag in zip(column.to_pylist(), text.to_pylist(), flags, strict=True)],
        type=pa.string(),
    )


def _utf8_parts(text: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """A string array's value offsets (``len + 1``, into the data) and its data bytes as NumPy arrays, without a
    copy; None when it has no data buffer."""
    buffers = text.buffers()
    if len(buffers) < 3 or buffers[1] is None or buffers[2] is None or not pa.types.is_string(text.type):
        return None
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[text.offset : text.offset + len(text) + 1]
    return offsets, np.frombuffer(buffers[2], dtype=np.uint8)


#: Which bytes may start a formula, by byte: a table of 256 looked up by index (``np.isin`` sorted the first bytes
#: on every call, ~0.3 ms a column of 4,096 cells, a third of the CSV text's time on plain columns).
_FORMULA_FIRST = np.zeros(256, dtype=bool)
_FORMULA_FIRST[list(b"=+-@\t\r")] = True


def _may_start_formula(text: pa.Array) -> bool:
    """Whether a cell may start with a formula character (``_FORMULA_START``): the first byte of each non-empty
    value looked up in ``_FORMULA_FIRST`` (every such character is one ASCII byte, so a cell's first byte is its first
    character). It never says False when a cell does start so (a null's bytes, if any, are looked at too: at worst a
    True that the exact test then answers)."""
    parts = _utf8_parts(text)
    if parts is None:
        return True
    offsets, data = parts
    starts = offsets[:-1][offsets[1:] > offsets[:-1]]
    return bool(_FORMULA_FIRST[data[starts]].any())


def _may_need_quotes(text: pa.Array, line_end: str) -> bool:
    """Whether a cell may hold a comma, a quote or a character of ``line_end``: the bytes of all the values searched
    at once (C's ``memchr``). Never False when a cell holds one (the bytes searched are every value's, and perhaps a
    null's: at worst a True that the exact test then answers)."""
    parts = _utf8_parts(text)
    if parts is None:
        return True
    offsets, data = parts
    held = data[offsets[0] : offsets[-1]].tobytes()
    return any(c.encode() in held for c in {",", '"', *line_end})


def _instants_text(column: pa.Array) -> pa.Array:
    """UTC date-times as ``datetime.isoformat`` writes them: seconds, microseconds only when not zero, ``+00:00``.

    Arrow's cast of a timestamp without a zone writes ``YYYY-MM-DD HH:MM:SS.ffffff`` (the UTC wall clock; the year in
    four digits, always six digits of fraction); the space becomes ``T`` and a zero fraction is cut, as
    ``isoformat`` leaves it out. With ``strftime`` (the way before) 4,096 cells took 5.2 ms of CPU, now 1.5 ms (dates:
    3.1 ms, now 0.2 ms)."""
    wall = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))  # the same instants, UTC's clock
    text = pc.cast(wall, pa.string())
    text = pc.if_else(pc.ends_with(text, ".000000"), pc.utf8_slice_codeunits(text, 0, 19), text)
    text = pc.binary_replace_slice(text, 10, 11, "T")
    return pc.binary_join_element_wise(text, "+00:00", "")


def csv_cells(column: pa.Array, *, line_end: str = "\r\n", neutralise: bool = True) -> pa.Array:
    """One column's CSV cells: text, formulas neutralised (unless ``neutralise`` is false), empty for missing,
    quoted where the csv module quotes with lines ending in ``line_end`` (a comma, a quote or a character of
    the line end)."""
    kind = column.type
    text = _as_text(column)
    if pa.types.is_date32(kind) or pa.types.is_timestamp(kind) or pa.types.is_boolean(kind):
        # digits, dashes, colons, a dot and a plus after the first character: never a formula, never quoted
        return _filled(text)
    if neutralise and _may_start_formula(text):
        risky = pc.fill_null(pc.match_substring_regex(text, _FORMULA_START), False)
        if pc.any(risky).as_py():
            flags = risky.to_pylist()
            text = pa.array(
                [spreadsheet_cell(v) if flag else v for v, flag in zip(text.to_pylist(), flags, strict=True)],
                type=pa.string(),
            )
    text = _filled(text)
    if not _may_need_quotes(text, line_end):
        return text
    quote = pc.match_substring_regex(text, f'[,"{line_end}]')
    if pc.any(quote).as_py():
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        text = pc.if_else(quote, quoted, text)
    return text


def _filled(text: pa.Array) -> pa.Array:
    """Missing cells as empty text (no copy when none is missing)."""
    return pc.fill_null(text, "") if text.null_count else text


def csv_bytes(cells: Sequence[pa.Array], line_end: str = "\r\n") -> bytes:
    """Rows of CSV cells (one array per column, from ``csv_cells``) as UTF-8 lines, each ending in ``line_end``: the
    cells joined by Arrow and the lines taken as the bytes of its string array (no Python string per line)."""
    if not cells or len(cells[0]) == 0:
        return b""
    if len(cells) == 1:  # the csv module writes a row of one empty cell as ""
        only = _filled(cells[0])
        lines = pc.if_else(pc.equal(only, ""), '""', only)
    else:
        lines = pc.binary_join_element_wise(*cells, ",")
    lines = pc.binary_join_element_wise(lines, line_end, "")
    parts = _utf8_parts(lines)
    if parts is None or lines.null_count:  # not a plain string array: line by line
        return "".join(lines.to_pylist()).encode("utf-8")
    offsets, data = parts
    return data[offsets[0] : offsets[-1]].tobytes()


def csv_lines(cells: Sequence[pa.Array], line_end: str = "\r\n") -> str:
    """Rows of CSV cells (one array per column, from ``csv_cells``) as lines, each ending in ``line_end``."""
    return csv_bytes(cells, line_end).decode("utf-8")


def csv_text(batch: pa.RecordBatch) -> str:
    """A record batch as CSV lines (no header), CRLF after each."""
    return csv_lines([csv_cells(c) for c in batch.columns])


_pause_lock = threading.Lock()
_paused = 0  # chunks being built now, in every thread
_was_enabled = True  # whether the collector was on when the first of them paused it


@contextmanager
def no_cycle_scans() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a chunk of rows is read and turned into columns (the tabular
    tables: a chunk of form records).

    A chunk allocates tens of thousands of containers (the parsed JSON's dicts, the column lists), so the collector,
    which runs every 700 allocations, scanned the young ones again and again: about a fifth of the CSV export's
    CPU at 200 screened (cProfile, ``_long_columns`` 0.34 s -> 0.06 s with it paused). Nothing a chunk makes is
    cyclic (JSON is a tree; lists of values), so reference counting frees it all the same. Exports run in threads
    of one process, so the pauses are counted under a lock: the first pause remembers whether the collector was on
    and the last one to end turns it back on only then (the process's own choice is kept, and two overlapping
    exports never leave it off)."""
    global _paused, _was_enabled
    with _pause_lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _pause_lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()
