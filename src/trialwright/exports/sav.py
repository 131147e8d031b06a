"""SPSS system files (.sav), uncompressed, written a record batch at a time: the project's own writer.

A system file is a dictionary, then the cases. The dictionary: the file header (record type 1: product, layout,
the number of 8-byte elements in a case, no compression, the case count, the bias 100, creation date and time, the
file label in 64 bytes); one variable record (type 2) per variable and per 8 bytes of a text variable after its
first 8 (continuation records, type -1), each with an upper-case short name of at most 8 bytes, its label, its
print and write formats; a text variable wider than 255 bytes (a very long string) is written as segments, one per
252 bytes of its width, each but the last 255 bytes wide; value labels of numbers and of text up to 8 bytes wide
(types 3 and 4); then the extension records (type 7) in the order of their subtypes: 3 (machine integers: IEEE
doubles, little-endian, character code 65001, UTF-8), 4 (system-missing, highest and lowest), 11 (each segment's
measure level, display width and alignment), 13 (short name = long name), 14 (each very long string's width),
20 (the encoding, "UTF-8") and 21 (value labels of text wider than 8 bytes); the terminator (type 999). The cases
follow back to back, each variable in its fixed width: a number an IEEE double (missing: system-missing, the most
negative double), text its UTF-8 bytes padded with spaces, a very long string's bytes 255 to a segment, each
segment padded to a multiple of 8. The case count in the header is known only at the end: it is written as -1
(unknown, which readers accept) and filled in by seeking back when the file is closed, so the rows are written as
their batches come and the heap holds one batch.

Refused, never guessed (the message names the variable and the rule): a name that is not an SPSS name (a letter
or @ first, then letters, digits, ., _, $, #, @; at most 64 bytes; not ending in .; not a reserved word; unique
ignoring case), a variable label over 255 bytes, a file label over 64, a value label over 120 bytes (SPSS's
largest; ReadStat writes no more), text wider than 32,767 bytes or a value longer than its variable, a text
value label on a code wider than its variable, a format SPSS does not know for the variable's kind, a number a
reader would not read back (infinite, or the most negative double, SPSS's system-missing value), text with a NUL
byte (refused naming the row), more than 2,147,483,647 cases. Trailing spaces of text are padding in SPSS, as in
every reader: "a " reads back as "a".
Reference: the GNU PSPP manual, appendix "System File Format".
"""

from __future__ import annotations

import datetime as dt
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["RESERVED_WORDS", "SavError", "SavVariable", "SavWriter", "spss_doubles"]

#: SPSS's system-missing value, its highest value and its (old) lowest value, as their bits.
_SYSMIS = np.uint64(0xFFEFFFFFFFFFFFFF)
_HIGHEST = 0x7FEFFFFFFFFFFFFF
_LOWEST = 0xFFEFFFFFFFFFFFFE
_RESERVED_BITS = np.array([_SYSMIS, _HIGHEST, _LOWEST], dtype=np.uint64)
_NAME = re.compile(r"[A-Za-z@][A-Za-z0-9_.$#@]*")
RESERVED_WORDS = frozenset({"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH"})
#: Format types by name (the PSPP manual's table) and each one's smallest and largest width.
_FORMATS = {"A": (1, 1, 32767), "F": (5, 1, 40), "DATE": (20, 9, 40), "DATETIME": (22, 17, 40)}
_FORMAT = re.compile(r"(A|F|DATE|DATETIME)(\d+)(?:\.(\d+))?")
_MEASURES = {"nominal": 1, "ordinal": 2, "scale": 3}
_TEXT_LIMIT, _SEGMENT, _VALUE_LABEL_LIMIT, _MAX_CASES = 32767, 255, 120, 2**31 - 1
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CASES_AT = 80  # the case count's offset in the file header
_LARGEST = math.nextafter(float(np.finfo(np.float64).max), 0)  # from it on (either sign): SPSS's own values


class SavError(ValueError):
    """What an SPSS system file cannot hold; the message names the variable and the rule."""


@dataclass(frozen=True)
class SavVariable:
    """One variable: ``kind`` "number" (an IEEE double) or "text" (``width`` bytes of UTF-8, 1..32767);
    ``format`` its print and write format (F8.2 or A<width> when empty; DATE11, DATETIME20 for SPSS dates and
    date-times, in seconds from 1582-10-14); ``measure`` nominal, ordinal or scale; ``value_labels`` (value, label)
    pairs, numbers for a number, codes for text; ``display_width`` the width of its column in SPSS's data view."""

    name: str
    label: str
    kind: Literal["number", "text"]
    width: int = 8
    format: str = ""
    measure: Literal["nominal", "ordinal", "scale"] = "nominal"
    value_labels: tuple[tuple[float | str, str], ...] = ()
    display_width: int = 8

    def check(self) -> None:
        if not _NAME.fullmatch(self.name) or len(self.name) > 64 or self.name.endswith("."):
            raise SavError(f"{self.name}: an SPSS name is 1 to 64 ASCII letters, digits, ., _, $, #, @, beginning "
                           "with a letter or @ and not ending in .")  # fmt: skip
        if self.name.upper() in RESERVED_WORDS:
            raise SavError(f"{self.name}: a reserved word cannot be an SPSS name")
        if len(self.label.encode()) > 255:
            raise SavError(f"{self.name}: an SPSS variable label is at most 255 bytes ({self.label[:40]!r}...)")
        if self.kind == "text" and not 0 < self.width <= _TEXT_LIMIT:
            raise SavError(f"{self.name}: an SPSS text variable is 1 to {_TEXT_LIMIT:,} bytes wide, not {self.width}")
        if self.measure not in _MEASURES:
            raise SavError(f"{self.name}: a measure level is nominal, ordinal or scale, not {self.measure!r}")
        if not 0 < self.display_width <= 32767:
            raise SavError(f"{self.name}: a display width is 1 to 32767, not {self.display_width}")
        self._format_code()
        for value, text in self.value_labels:
            if len(text.encode()) > _VALUE_LABEL_LIMIT:
                raise SavError(f"{self.name}: an SPSS value label is at most {_VALUE_LABEL_LIMIT} bytes "
                               f"({text[:40]!r}...)")  # fmt: skip
            if self.kind == "number":
                if not isinstance(value, float | int) or not math.isfinite(value) or abs(value) >= _LARGEST:
                    raise SavError(f"{self.name}: a number's value label is on a finite number, not {value!r}")
            elif not isinstance(value, str) or len(value.encode()) > self.width:
                raise SavError(f"{self.name}: a value label's code {value!r} is not text that fits the variable's "
                               f"{self.width} bytes")  # fmt: skip

    def _format_code(self) -> int:
        """The print and write format as SPSS codes it: type, width and decimals in the three low bytes."""
        text = self.format or ("F8.2" if self.kind == "number" else f"A{self.width}")
        match = _FORMAT.fullmatch(text)
        kind = match.group(1) if match else ""
        if not match or (kind == "A") != (self.kind == "text"):
            raise SavError(f"{self.name}: {text!r} is not an SPSS format for {self.kind} (F, DATE, DATETIME; A)")
        code, least, most = _FORMATS[kind]
        width, decimals = int(match.group(2)), int(match.group(3) or 0)
        if kind == "A" and width != self.width:
            raise SavError(f"{self.name}: a text variable's format is A{self.width}, not {text}")
        if not least <= width <= most or decimals > (16 if kind == "F" else 0) or (decimals and decimals >= width):
            raise SavError(f"{self.name}: {text} is not a valid SPSS {kind} format")
        return code << 16 | min(width, 255) << 8 | decimals

    @property
    def segments(self) -> tuple[int, ...]:
        """The widths of the variable's segments: 0 for a number, one per 252 bytes of a very long string."""
        if self.kind == "number":
            return (0,)
        if self.width <= _SEGMENT:
            return (self.width,)
        n = (self.width + 251) // 252
        return (_SEGMENT,) * (n - 1) + (self.width - (n - 1) * 252,)


def _slot(width: int) -> int:
    """The bytes a segment takes in a case: 8 for a number, its width rounded up to 8 for text."""
    return 8 if width == 0 else (width + 7) // 8 * 8


def spss_doubles(values: np.ndarray, name: str = "") -> np.ndarray:
    """Doubles as little-endian uint64 (``<u8``), NaN as system-missing; infinite values and the three doubles
    SPSS keeps for itself (system-missing -DBL_MAX, HIGHEST DBL_MAX, LOWEST the next double above -DBL_MAX: ReadStat
    reads each as missing) are refused."""
    x = np.ascontiguousarray(values, dtype=np.float64)
    missing = np.isnan(x)
    out = x.view(np.uint64).copy()
    bad = ~missing & (np.isinf(x) | np.isin(out, _RESERVED_BITS))
    if bad.any():
        raise SavError(f"{name}: {x[bad][0]!r} cannot be held by an SPSS number (finite, and not SPSS's "
                       "system-missing, highest or lowest value, which readers take for missing)")  # fmt: skip
    out[missing] = _SYSMIS
    return np.asarray(out, dtype="<u8")


def _text_bytes(column: pa.Array, width: int, name: str, first_row: int) -> np.ndarray:
    """A text column as a (rows, width) byte matrix: UTF-8 padded with spaces, missing as spaces; a value longer
    than ``width`` or with a NUL byte is refused, naming the row (``first_row``: the batch's first row's number)."""
    if not len(column):
        return np.empty((0, width), dtype=np.uint8)
    text = pc.fill_null(column.cast(pa.string()), "")
    nul = pc.match_substring(text, "\0")
    if pc.any(nul).as_py():
        row = first_row + pc.index(nul, True).as_py()
        raise SavError(f"{name}: row {row}: text with a NUL byte (SPSS readers end or drop the text there)")
    values = text.cast(pa.binary())
    lengths = pc.binary_length(values)
    if (longest := pc.max(lengths).as_py()) > width:
        raise SavError(f"{name}: a value of {longest} bytes does not fit the variable's {width}")
    padded = pc.binary_join_element_wise(values, pc.binary_repeat(pa.scalar(b" "), pc.subtract(width, lengths)),
                                         pa.scalar(b""))  # fmt: skip
    offsets, data = padded.buffers()[1:3]
    start = int(np.frombuffer(offsets, dtype=np.int32, count=1, offset=4 * padded.offset)[0])
    return np.frombuffer(data, dtype=np.uint8, count=len(padded) * width, offset=start).reshape(len(padded), width)


def _short_names(variables: Sequence[SavVariable]) -> list[list[str]]:
    """Each variable's segments' short names (upper case, at most 8 bytes, unique): the first its long name cut to
    8, the others that name's stem with the segment's number."""
    taken: set[str] = set()

    def unique(stem: str, start: int) -> str:
        n = start
        chosen = stem[:8]
        while chosen in taken:
            tail = str(n)
            chosen, n = stem[: 8 - len(tail)] + tail, n + 1
        taken.add(chosen)
        return chosen

    firsts = [unique(v.name.upper(), 2) for v in variables]
    return [[first] + [unique(first, 1) for _ in v.segments[1:]] for v, first in zip(variables, firsts, strict=True)]


def _extension(subtype: int, size: int, data: bytes) -> bytes:
    return struct.pack("<iiii", 7, subtype, size, len(data) // size) + data


def _text_field(text: str, size: int) -> bytes:
    return text.encode().ljust(size, b" ")


class SavWriter:
    """One SPSS system file, written as its batches come: ``write`` takes one array per variable, in the variables'
    order (float64 numbers, NaN or null missing, for "number"; text for "text")."""

    def __init__(self, path: Path, label: str, variables: Sequence[SavVariable], *,
                 created: dt.datetime | None = None) -> None:  # fmt: skip
        seen: set[str] = set()
        for v in variables:
            v.check()
            if v.name.upper() in seen:
                raise SavError(f"{v.name}: SPSS names are unique, ignoring case")
            seen.add(v.name.upper())
        if not variables:
            raise SavError("an SPSS file has at least one variable")
        if len(label.encode()) > 64:
            raise SavError(f"an SPSS file label is at most 64 bytes ({label!r})")
        self.variables, self.rows = tuple(variables), 0
        self._slots = [[_slot(w) for w in v.segments] for v in variables]
        self._width = sum(sum(s) for s in self._slots)
        dictionary = self._dictionary(label, created or dt.datetime.now(dt.UTC))
        self._file: BinaryIO = path.open("wb")
        self._file.write(dictionary)

    def _dictionary(self, label: str, created: dt.datetime) -> bytes:
        names = _short_names(self.variables)
        product = _text_field("@(#) SPSS DATA FILE trialwright", 60)
        header = b"$FL2" + product + struct.pack("<iiiiid", 2, self._width // 8, 0, 0, -1, 100.0)
        month = _MONTHS[created.month - 1]
        header += f"{created.day:02d} {month} {created.year % 100:02d}{created:%H:%M:%S}".encode()
        header += _text_field(label, 64) + b"\0" * 3
        records, labels, long_labels, index = [header], [], [], 1
        for v, segment_names in zip(self.variables, names, strict=True):
            for i, (width, name) in enumerate(zip(v.segments, segment_names, strict=True)):
                code = v._format_code() if i == 0 else (1 << 16 | width << 8)
                labelled = bool(v.label) and i == 0
                record = struct.pack("<iiiiii", 2, width, int(labelled), 0, code, code) + _text_field(name, 8)
                if labelled:
                    encoded = v.label.encode()
                    record += struct.pack("<i", len(encoded)) + encoded.ljust((len(encoded) + 3) // 4 * 4, b" ")
                blank = struct.pack("<iiiiii", 2, -1, 0, 0, 0, 0) + b" " * 8
                records.append(record + blank * (_slot(width) // 8 - 1))
                if i == 0 and v.value_labels and v.width <= 8:
                    labels.append(self._value_labels(v, index))
                elif i == 0 and v.value_labels:
                    long_labels.append(self._long_value_labels(v))
                index += _slot(width) // 8
        records += labels
        records.append(_extension(3, 4, struct.pack("<8i", 1, 0, 0, -1, 1, 1, 2, 65001)))
        records.append(_extension(4, 8, struct.pack("<3Q", int(_SYSMIS), _HIGHEST, _LOWEST)))
        display = b"".join(struct.pack("<iii", _MEASURES[v.measure], v.display_width, int(v.kind == "number"))
                           for v in self.variables for _ in v.segments)  # fmt: skip
        records.append(_extension(11, 4, display))
        records.append(_extension(13, 1, "\t".join(f"{n[0]}={v.name}" for v, n in
                                                   zip(self.variables, names, strict=True)).encode()))  # fmt: skip
        very_long = [f"{n[0]}={v.width:05d}".encode() + b"\0\t" for v, n in zip(self.variables, names, strict=True)
                     if v.kind == "text" and v.width > _SEGMENT]  # fmt: skip
        if very_long:
            records.append(_extension(14, 1, b"".join(very_long)))
        records.append(_extension(20, 1, b"UTF-8"))
        if long_labels:
            records.append(_extension(21, 1, b"".join(long_labels)))
        records.append(struct.pack("<ii", 999, 0))
        return b"".join(records)

    @staticmethod
    def _value_labels(v: SavVariable, index: int) -> bytes:
        """A value labels record (type 3) and its variables record (type 4) for a number or short text."""
        out = struct.pack("<ii", 3, len(v.value_labels))
        for value, text in v.value_labels:
            key = struct.pack("<d", value) if isinstance(value, float | int) else _text_field(value, 8)
            encoded = text.encode()
            out += key + bytes([len(encoded)]) + encoded.ljust((len(encoded) + 1 + 7) // 8 * 8 - 1, b" ")
        return out + struct.pack("<iii", 4, 1, index)

    @staticmethod
    def _long_value_labels(v: SavVariable) -> bytes:
        """One variable's part of the long string value labels record (subtype 21)."""
        name = v.name.encode()
        out = struct.pack("<i", len(name)) + name + struct.pack("<ii", v.width, len(v.value_labels))
        for value, text in v.value_labels:
            encoded = text.encode()
            out += struct.pack("<i", v.width) + _text_field(str(value), v.width)
            out += struct.pack("<i", len(encoded)) + encoded
        return out

    def write(self, columns: Sequence[pa.Array | pa.ChunkedArray | np.ndarray]) -> None:
        """Append one batch of rows."""
        if len(columns) != len(self.variables):
            raise SavError(f"{len(columns)} columns given for {len(self.variables)} variables")
        rows = len(columns[0])
        if self.rows + rows > _MAX_CASES:
            raise SavError(f"an SPSS file holds at most {_MAX_CASES:,} cases")
        out = np.empty((rows, self._width), dtype=np.uint8)
        start = 0
        for v, slots, column in zip(self.variables, self._slots, columns, strict=True):
            if len(column) != rows:
                raise SavError(f"{v.name}: {len(column)} values in a batch of {rows} rows")
            if isinstance(column, pa.ChunkedArray):
                column = pa.concat_arrays(column.chunks) if column.num_chunks else pa.array([], column.type)
            if v.kind == "number":
                numbers = column if isinstance(column, np.ndarray) else column.to_numpy(zero_copy_only=False)
                out[:, start : start + 8] = spss_doubles(np.asarray(numbers, np.float64), v.name).view(np.uint8)\
                    .reshape(rows, 8)  # fmt: skip
                start += 8
                continue
            text = _text_bytes(pa.array(column) if isinstance(column, np.ndarray) else column, v.width, v.name,
                               self.rows + 1)  # fmt: skip
            for i, slot in enumerate(slots):  # a very long string: 255 bytes of the value to a segment
                piece = text[:, i * _SEGMENT : min((i + 1) * _SEGMENT, v.width)]
                out[:, start : start + piece.shape[1]] = piece
                out[:, start + piece.shape[1] : start + slot] = ord(" ")
                start += slot
        self._file.write(out.tobytes())
        self.rows += rows

    def close(self) -> None:
        """The case count, written where its placeholder is."""
        self._file.seek(_CASES_AT)
        self._file.write(struct.pack("<i", self.rows))
        self._file.close()

    def __enter__(self) -> SavWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self._file.close()
