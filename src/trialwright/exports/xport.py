"""SAS transport version 5 (XPORT) written a record batch at a time: the project's own writer.

A version 5 file is 80-byte records: a library header, one member (dataset) header with its name and label, one
140-byte NAMESTR per variable (type, length, name of up to 8 bytes, label of up to 40, display format, position
in the observation), then the observations back to back, each variable in its fixed width, the last record
padded with blanks. Numbers are 8-byte IBM System/370 floating point (hexadecimal exponent, 56-bit fraction),
which holds every finite double from about 5.4e-79 to 7.2e75 exactly (a double's 53 bits fit in 56 with up to
three bits of hexadecimal normalisation); a missing number is ``.`` (0x2E followed by seven zero bytes). Text is
the given UTF-8 bytes padded with blanks; a missing text is blanks. Nothing in the headers depends on how many
observations follow, so the rows are written as their batches come and the heap holds one batch.

Refused, never guessed: a name longer than 8 bytes, a label longer than 40, a text variable wider than 200 bytes,
a value longer than its variable, a number a transport file cannot hold (infinite, or beyond IBM range), and, in a
dataset with no numeric variable and observations shorter than a record (80 bytes), a last observation entirely
blank (all its text missing or blanks): it can be the very bytes of the last record's padding, and readers take
trailing blank observations for padding, so it would be lost on read (a known ambiguity of version 5; an
observation of 80 bytes or more cannot be padding, which is always shorter than a record).
Reference: SAS Institute, TS-140, "The record layout of a data set in SAS transport (XPORT) format".
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["XportError", "XportVariable", "XportWriter", "ibm_floats", "short_reading_note"]

RECORD = 80
_MISSING = np.uint64(0x2E << 56)
_NAMESTR = struct.Struct(">hhhh8s40s8shhh2s8shhi52s")


class XportError(ValueError):
    """What a SAS transport v5 file cannot hold; the message names the variable and the rule."""


@dataclass(frozen=True)
class XportVariable:
    """One variable: ``kind`` "num" (8-byte IBM float) or "char" (``length`` bytes, 1..200); ``format`` the SAS
    display format name (DATE, DATETIME) or empty."""

    name: str
    label: str
    kind: Literal["num", "char"]
    length: int = 8
    format: str = ""

    def check(self) -> None:
        if not 0 < len(self.name.encode()) <= 8 or not self.name.isascii():
            raise XportError(f"{self.name}: a SAS transport v5 name is 1 to 8 ASCII bytes")
        if len(self.label.encode()) > 40:
            raise XportError(f"{self.name}: a SAS transport v5 label is at most 40 bytes ({self.label!r})")
        if self.kind == "char" and not 0 < self.length <= 200:
            raise XportError(f"{self.name}: a SAS transport v5 text variable is 1 to 200 bytes wide, not {self.length}")
        if self.kind == "num" and self.length != 8:
            raise XportError(f"{self.name}: numbers are written as 8 bytes")


def ibm_floats(values: np.ndarray, name: str = "") -> np.ndarray:
    """Doubles as big-endian 8-byte IBM System/370 floats (uint64 ``>u8``), exactly; NaN as missing (``.``);
    zero (either sign) as zero. An infinite value or one outside IBM range is refused (``XportError``)."""
    x = np.ascontiguousarray(values, dtype=np.float64)
    bits = x.view(np.uint64)
    missing, zero = np.isnan(x), x == 0
    biased = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64)
    exponent = biased - 1075  # the value is (fraction with its leading 1) * 2**exponent
    shift = exponent % 4  # left shift that makes the binary exponent a multiple of 4 (a hexadecimal one)
    hexadecimal = (exponent - shift) // 4 + 78  # IBM: 56-bit fraction * 16**(E - 64 - 14)
    usable = ~(missing | zero)
    bad = usable & ((biased == 0) | (biased == 0x7FF) | (hexadecimal < 0) | (hexadecimal > 127))
    if bad.any():
        raise XportError(f"{name}: {x[bad][0]!r} cannot be held by a SAS transport number (IBM float: finite, "
                         "magnitude 5.4e-79 to 7.2e75, or zero)")  # fmt: skip
    fraction = (bits & np.uint64((1 << 52) - 1)) | np.uint64(1 << 52)
    out = (
        (bits & np.uint64(1 << 63))
        | (np.clip(hexadecimal, 0, 127).astype(np.uint64) << np.uint64(56))
        | (fraction << np.clip(shift, 0, 3).astype(np.uint64))
    )
    out[zero] = 0
    out[missing] = _MISSING
    return np.asarray(out, dtype=">u8")


def _text_bytes(column: pa.Array, width: int, name: str) -> np.ndarray:
    """A text column as a (rows, width) byte matrix: UTF-8 padded with blanks, missing as blanks."""
    values = pc.fill_null(column.cast(pa.string()), "").cast(pa.binary())
    lengths = pc.binary_length(values)
    if len(values) and pc.max(lengths).as_py() > width:
        longest = pc.max(lengths).as_py()
        raise XportError(f"{name}: a value of {longest} bytes does not fit the variable's {width}")
    padded = pc.binary_join_element_wise(values, pc.binary_repeat(pa.scalar(b" "), pc.subtract(width, lengths)),
                                         pa.scalar(b""))  # fmt: skip
    offsets, data = padded.buffers()[1:3]
    start = int(np.frombuffer(offsets, dtype=np.int32, count=1, offset=4 * padded.offset)[0])
    return np.frombuffer(data, dtype=np.uint8, count=len(padded) * width, offset=start).reshape(len(padded), width)


def _text(text: str, width: int) -> bytes:
    data = text.encode()
    if len(data) > width:
        raise XportError(f"{text!r}: longer than the {width} bytes of its header field")
    return data.ljust(width)


def _header(kind: str, numbers: str = "0" * 30) -> bytes:
    return f"HEADER RECORD*******{kind:<8}HEADER RECORD!!!!!!!{numbers}  ".encode()


def short_reading_note(file: str, counted: int, rows: int) -> str:
    """The README's note on a file a known reader misreads (``XportWriter.read_short``); the file itself is whole."""
    return (f"{file}: pandas.read_sas reads {counted} of its {rows} rows (it takes every blank 8-byte block of a "
            "file's last 80 bytes for padding, also inside the last row's text); the file holds every row, as "
            "pyreadstat and SAS read it.")  # fmt: skip


class XportWriter:
    """One dataset in one SAS transport v5 file, written as its batches come: ``write`` takes one Arrow array
    (or NumPy array) per variable, in the variables' order: float64 numbers (NaN or null missing) for "num",
    text for "char"."""

    def __init__(self, path: Path, dataset: str, label: str, variables: Sequence[XportVariable],
                 *, created: dt.datetime | None = None) -> None:  # fmt: skip
        for v in variables:
            v.check()
        if not variables:
            raise XportError(f"{dataset}: a dataset needs at least one variable")
        XportVariable(dataset, label, "num").check()
        self.variables, self.rows, self._dataset = tuple(variables), 0, dataset
        self._positions = np.cumsum([0] + [v.length for v in variables]).tolist()
        self._width = self._positions[-1]
        #: Text only, in observations shorter than a record: a blank last one could be padding (refused at close).
        self._ambiguous = all(v.kind == "char" for v in variables) and self._width < RECORD
        self._last_blank = False
        stamp = (created or dt.datetime.now(dt.UTC)).strftime("%d%b%y:%H:%M:%S").upper().encode()
        self._path = path
        self._file: BinaryIO = path.open("wb")
        self._written = 0
        self._put(_header("LIBRARY"))
        self._put(b"SAS     SAS     SASLIB  6.06    bsd4.2  " + b" " * 24 + stamp)
        self._put(stamp + b" " * 64)
        self._put(_header("MEMBER", "0" * 17 + "16" + "0" * 8 + "140"))
        self._put(_header("DSCRPTR"))
        self._put(b"SAS     " + _text(dataset, 8) + b"SASDATA 6.06    bsd4.2  " + b" " * 24 + stamp)
        self._put(stamp + b" " * 16 + _text(label, 40) + b" " * 8)
        self._put(_header("NAMESTR", f"000000{len(variables):04d}" + "0" * 20))
        names = b"".join(
            _NAMESTR.pack(1 if v.kind == "num" else 2, 0, v.length, i, _text(v.name, 8), _text(v.label, 40),
                          _text(v.format, 8), 0, 0, 1 if v.kind == "num" else 0, b"\0\0", b" " * 8, 0, 0,
                          self._positions[i - 1], b"\0" * 52)
            for i, v in enumerate(variables, start=1)
        )  # fmt: skip
        self._put(names)
        self._pad()
        self._put(_header("OBS"))
        self._observations_at = self._written
        #: After ``close``: the rows a reader that takes every blank 8-byte block of the last 80 bytes for padding
        #: (pandas.read_sas) would read, when that is fewer than were written; None when it reads them all.
        self.read_short: int | None = None

    def _put(self, data: bytes) -> None:
        self._file.write(data)
        self._written += len(data)

    def _pad(self) -> None:
        self._put(b" " * (-self._written % RECORD))

    def write(self, columns: Sequence[pa.Array | pa.ChunkedArray | np.ndarray]) -> None:
        """Append one batch of rows."""
        if len(columns) != len(self.variables):
            raise XportError(f"{len(columns)} columns given for {len(self.variables)} variables")
        rows = len(columns[0])
        out = np.empty((rows, self._width), dtype=np.uint8)
        for v, column, start in zip(self.variables, columns, self._positions, strict=False):
            if len(column) != rows:
                raise XportError(f"{v.name}: {len(column)} values in a batch of {rows} rows")
            if isinstance(column, pa.ChunkedArray):
                column = pa.concat_arrays(column.chunks) if column.num_chunks else pa.array([], column.type)
            if v.kind == "num":
                numbers = column if isinstance(column, np.ndarray) else column.to_numpy(zero_copy_only=False)
                out[:, start : start + 8] = ibm_floats(np.asarray(numbers, np.float64), v.name).view(np.uint8)\
                    .reshape(rows, 8)  # fmt: skip
            else:
                text = pa.array(column) if isinstance(column, np.ndarray) else column
                out[:, start : start + v.length] = _text_bytes(text, v.length, v.name)
        self._put(out.tobytes())
        self.rows += rows
        if rows and self._ambiguous:
            self._last_blank = bool((out[-1] == 0x20).all())

    def close(self) -> None:
        """Pad the last record with blanks and close the file; a dataset of text only, in observations shorter than a
        record, whose last observation is entirely blank is refused (a reader would take it for padding)."""
        self._pad()
        self._file.close()
        self.read_short = self._blank_block_reading(self._path)
        if self._last_blank:
            raise XportError(
                f"{self._dataset}: its last observation (row {self.rows}) is entirely blank, it has no numeric "
                f"variable and its observations ({self._width} bytes) are shorter than a record (80): a SAS "
                "transport v5 reader takes trailing blank observations for padding and would drop it"
            )

    def _blank_block_reading(self, path: Path) -> int | None:
        """What pandas.read_sas would count: for observations of at most a record (80 bytes), the bytes after the
        OBS header less 8 for each blank 8-byte block of the last record, wherever it lies (also inside the last
        observation's text), in observations; None when that is every row (SAS and pyreadstat read them all)."""
        if self._width > RECORD or not self.rows:
            return None
        with path.open("rb") as f:
            f.seek(-RECORD, 2)
            last = f.read(RECORD)
        blanks = sum(last[i : i + 8] == b" " * 8 for i in range(0, RECORD, 8))
        counted = (self._written - self._observations_at - 8 * blanks) // self._width
        return counted if counted < self.rows else None

    def __enter__(self) -> XportWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self._file.close()
