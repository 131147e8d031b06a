"""Stata .dta, format 118 (Stata 14 and later), written a record batch at a time: the project's own writer.

A format 118 file is tagged sections (``<stata_dta><header>...``): the header holds the number of variables K and
of observations N, then a map of each section's byte offset, the variables' types, names, formats, value label
names and labels, the observations back to back (each variable in its fixed width: a double in 8 bytes, text in
``str1``..``str2045`` of UTF-8 padded with zero bytes), and the value label tables. N and the map are known only
at the end, so they are written as placeholders and filled in by seeking back when the file is closed: the rows
are written as their batches come and the heap holds one batch. A missing double is Stata's ``.``
(0x7FE0000000000000, little-endian).

Refused, never guessed: a name (of a variable or a value label table) over 32 characters, a label over 80, text
wider than 2045 bytes or longer than its variable, text with a NUL byte (readers end the text there), a number
Stata cannot hold (infinite, or 2**1023 and above, where Stata's missing values live), a value label's value that
is not a whole number from -2,147,483,647 (Stata's smallest long) to 2,147,483,620 (its largest labelled value).
Reference: Stata's "dta" file format manual (help dta), 118.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["DtaError", "DtaVariable", "DtaWriter", "stata_doubles", "whole_label_values"]

_MISSING = np.uint64(0x7FE0000000000000)
_DOUBLE = 65526
_TOO_LARGE = 2.0**1023
#: The values a Stata value label can label: a long, -2,147,483,647 (the smallest) to 2,147,483,620 (the largest).
_LABELLED = (-(2**31) + 1, 2**31 - 28)


class DtaError(ValueError):
    """What a Stata 118 file cannot hold; the message names the variable and the rule."""


@dataclass(frozen=True)
class DtaVariable:
    """One variable: ``kind`` "double" or "str" (``width`` bytes, 1..2045); ``format`` its display format (%td,
    %tc; a default when empty); ``value_labels`` the name of its value label table, if any."""

    name: str
    label: str
    kind: Literal["double", "str"]
    width: int = 8
    format: str = ""
    value_labels: str = ""

    def check(self) -> None:
        if not 0 < len(self.name) <= 32 or len(self.name.encode()) > 128:
            raise DtaError(f"{self.name}: a Stata name is 1 to 32 characters")
        if len(self.label) > 80 or len(self.label.encode()) > 320:
            raise DtaError(f"{self.name}: a Stata variable label is at most 80 characters")
        if len(self.value_labels) > 32 or len(self.value_labels.encode()) > 128:
            raise DtaError(f"{self.name}: a Stata value label table's name is at most 32 characters "
                           f"({self.value_labels[:40]!r}...)")  # fmt: skip
        if self.kind == "str" and not 0 < self.width <= 2045:
            raise DtaError(f"{self.name}: a Stata str variable is 1 to 2045 bytes wide, not {self.width}")

    @property
    def code(self) -> int:
        return _DOUBLE if self.kind == "double" else self.width

    @property
    def size(self) -> int:
        return 8 if self.kind == "double" else self.width

    @property
    def display(self) -> str:
        return self.format or ("%10.0g" if self.kind == "double" else f"%-{self.width}s")


def stata_doubles(values: np.ndarray, name: str = "") -> np.ndarray:
    """Doubles as little-endian uint64 (``<u8``), NaN as Stata's ``.``; infinite values and those of 2**1023 and
    above (Stata's missing values) are refused."""
    x = np.ascontiguousarray(values, dtype=np.float64)
    missing = np.isnan(x)
    bad = ~missing & ((x >= _TOO_LARGE) | np.isinf(x))
    if bad.any():
        raise DtaError(f"{name}: {x[bad][0]!r} cannot be held by a Stata double (finite, below 2**1023)")
    out = x.view(np.uint64).copy()
    out[missing] = _MISSING
    return np.asarray(out, dtype="<u8")


def _text_bytes(column: pa.Array, width: int, name: str, first_row: int = 1) -> np.ndarray:
    """A text column as a (rows, width) byte matrix: UTF-8 padded with zero bytes, missing as empty; text with a
    NUL byte is refused, naming the row (``first_row``: the number of the batch's first row in the file)."""
    text = pc.fill_null(column.cast(pa.string()), "")
    nul = pc.match_substring(text, "\0")
    if len(text) and pc.any(nul).as_py():
        row = first_row + pc.index(nul, True).as_py()
        raise DtaError(f"{name}: row {row}: text with a NUL byte (a Stata reader would end the text there)")
    values = text.cast(pa.binary())
    lengths = pc.binary_length(values)
    if len(values) and (longest := pc.max(lengths).as_py()) > width:
        raise DtaError(f"{name}: a value of {longest} bytes does not fit the variable's {width}")
    padded = pc.binary_join_element_wise(values, pc.binary_repeat(pa.scalar(b"\0"), pc.subtract(width, lengths)),
                                         pa.scalar(b""))  # fmt: skip
    offsets, data = padded.buffers()[1:3]
    start = int(np.frombuffer(offsets, dtype=np.int32, count=1, offset=4 * padded.offset)[0])
    return np.frombuffer(data, dtype=np.uint8, count=len(padded) * width, offset=start).reshape(len(padded), width)


def _field(text: str, size: int) -> bytes:
    return text.encode().ljust(size, b"\0")


def _value_label_table(name: str, labels: Mapping[int, str]) -> bytes:
    values = sorted(labels)
    if any(not _LABELLED[0] <= v <= _LABELLED[1] for v in values):
        raise DtaError(f"{name}: a Stata value label's value is a whole number from {_LABELLED[0]:,} to "
                       f"{_LABELLED[1]:,} ({values})")  # fmt: skip
    if any("\0" in labels[v] for v in values):
        raise DtaError(f"{name}: a Stata value label's text has no NUL byte (a reader would end the text there)")
    texts = [labels[v].encode() + b"\0" for v in values]
    offsets = np.cumsum([0] + [len(t) for t in texts[:-1]]).tolist() if texts else []
    table = struct.pack("<ii", len(values), sum(len(t) for t in texts))
    table += struct.pack(f"<{len(values)}i", *offsets) + struct.pack(f"<{len(values)}i", *values) + b"".join(texts)
    return b"<lbl>" + struct.pack("<i", len(table)) + _field(name, 129) + b"\0" * 3 + table + b"</lbl>"


class DtaWriter:
    """One Stata 118 file, written as its batches come: ``write`` takes one array per variable, in the variables'
    order (float64 numbers, NaN or null missing, for "double"; text for "str"); ``value_labels`` by table name."""

    def __init__(
        self,
        path: Path,
        label: str,
        variables: Sequence[DtaVariable],
        value_labels: Mapping[str, Mapping[int, str]],
        *,
        created: dt.datetime | None = None,
    ) -> None:
        for v in variables:
            v.check()
            if v.value_labels and v.value_labels not in value_labels:
                raise DtaError(f"{v.name}: value labels {v.value_labels!r} are not given")
        for table in value_labels:
            if not 0 < len(table) <= 32 or len(table.encode()) > 128:
                raise DtaError(f"value labels {table[:40]!r}: a Stata value label table's name is 1 to 32 characters")
        if len(label) > 80:
            raise DtaError(f"a Stata data label is at most 80 characters ({label!r})")
        self.variables, self.rows = tuple(variables), 0
        self._labels = {name: dict(table) for name, table in value_labels.items()}
        self._width = sum(v.size for v in variables)
        self._file: BinaryIO = path.open("wb")
        k = len(variables)
        stamp = (created or dt.datetime.now(dt.UTC)).strftime("%d %b %Y %H:%M").encode()
        encoded = label.encode()
        self._put(b"<stata_dta><header><release>118</release><byteorder>LSF</byteorder>")
        self._put(b"<K>" + struct.pack("<H", k) + b"</K><N>")
        self._count_at = self._file.tell()
        self._put(struct.pack("<Q", 0) + b"</N><label>" + struct.pack("<H", len(encoded)) + encoded + b"</label>")
        self._put(b"<timestamp>" + bytes([len(stamp)]) + stamp + b"</timestamp></header>")
        self._map = [0] * 14
        self._map[1] = self._file.tell()
        self._put(b"<map>" + b"\0" * 8 * 14 + b"</map>")
        self._section(2, "variable_types", b"".join(struct.pack("<H", v.code) for v in variables))
        self._section(3, "varnames", b"".join(_field(v.name, 129) for v in variables))
        self._section(4, "sortlist", b"\0\0" * (k + 1))
        self._section(5, "formats", b"".join(_field(v.display, 57) for v in variables))
        self._section(6, "value_label_names", b"".join(_field(v.value_labels, 129) for v in variables))
        self._section(7, "variable_labels", b"".join(_field(v.label, 321) for v in variables))
        self._section(8, "characteristics", b"")
        self._map[9] = self._file.tell()
        self._put(b"<data>")

    def _put(self, data: bytes) -> None:
        self._file.write(data)

    def _section(self, index: int, tag: str, body: bytes) -> None:
        self._map[index] = self._file.tell()
        self._put(f"<{tag}>".encode() + body + f"</{tag}>".encode())

    def write(self, columns: Sequence[pa.Array | pa.ChunkedArray | np.ndarray]) -> None:
        """Append one batch of rows."""
        if len(columns) != len(self.variables):
            raise DtaError(f"{len(columns)} columns given for {len(self.variables)} variables")
        rows = len(columns[0])
        out = np.empty((rows, self._width), dtype=np.uint8)
        start = 0
        for v, column in zip(self.variables, columns, strict=True):
            if len(column) != rows:
                raise DtaError(f"{v.name}: {len(column)} values in a batch of {rows} rows")
            if isinstance(column, pa.ChunkedArray):
                column = pa.concat_arrays(column.chunks) if column.num_chunks else pa.array([], column.type)
            if v.kind == "double":
                numbers = column if isinstance(column, np.ndarray) else column.to_numpy(zero_copy_only=False)
                out[:, start : start + 8] = stata_doubles(np.asarray(numbers, np.float64), v.name).view(np.uint8)\
                    .reshape(rows, 8)  # fmt: skip
            else:
                text = pa.array(column) if isinstance(column, np.ndarray) else column
                out[:, start : start + v.width] = _text_bytes(text, v.width, v.name, self.rows + 1)
            start += v.size
        self._put(out.tobytes())
        self.rows += rows

    def close(self) -> None:
        """The value labels and the closing tags; then N and the map, written where their placeholders are."""
        self._put(b"</data>")
        self._section(10, "strls", b"")
        self._section(11, "value_labels", b"".join(_value_label_table(n, t) for n, t in self._labels.items()))
        self._map[12] = self._file.tell()
        self._put(b"</stata_dta>")
        self._map[13] = self._file.tell()
        self._file.seek(self._count_at)
        self._file.write(struct.pack("<Q", self.rows))
        self._file.seek(self._map[1] + len(b"<map>"))
        self._file.write(struct.pack("<14Q", *self._map))
        self._file.close()

    def __enter__(self) -> DtaWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self._file.close()


def whole_label_values(labels: Mapping[float, str], name: str) -> dict[int, str]:
    """Value labels keyed by float (as the columns are doubles) as Stata's whole numbers; a fractional key is
    refused."""
    out: dict[int, str] = {}
    for value, text in labels.items():
        if not math.isfinite(value) or value != int(value):
            raise DtaError(f"{name}: a Stata value label's value is a whole number, not {value!r}")
        out[int(value)] = text
    return out
