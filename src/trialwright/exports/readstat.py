"""Whole tables for pyreadstat (Stata, SPSS, SAS transport), built from Arrow columns; short names and text limits.

pyreadstat writes a table from one pandas DataFrame, whole. The frame is made from the table's Arrow columns,
never from rows: text stays in Arrow buffers (a pandas ``ArrowDtype`` string column), numbers are float64
arrays, UTC date-times datetime64[us] arrays, and dates the format's own day numbers (float64 with the
format's date display format), because pyreadstat cannot take an Arrow date column. So the heap holds the
table's columns, not one Python object per cell; pyreadstat still visits each row as it writes (one row's
values at a time).

Each conversion gives the bytes the old frame of Python objects gave: a date column with no dates at all is a
(text) column of missing values, as pyreadstat wrote a column of ``None``; day numbers count from the
format's day zero (Stata and SAS 1960-01-01, SPSS 1582-10-14 in seconds).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ASCII_SPELLINGS",
    "ascii_cells",
    "ascii_spelling",
    "ascii_text",
    "cut_text",
    "date_numbers",
    "fit_bytes",
    "frame",
    "is_whole_number_code",
    "short_names",
    "string_column",
    "utc_moments",
    "whole_numbers",
]

#: By file extension: days from the format's day zero to 1970-01-01, the units in a day, the display format.
_DATES: dict[str, tuple[float, float, str]] = {
    "dta": (3653.0, 1.0, "%td"),
    "sav": (141428.0, 86400.0, "DATE"),
    "xpt": (3653.0, 1.0, "DATE"),
}
_WHOLE_NUMBER = re.compile(r"-?\d+")


def frame(columns: Mapping[str, pa.ChunkedArray | np.ndarray], slice_rows: int) -> pd.DataFrame:
    """A DataFrame over the columns as given: Arrow columns stay Arrow (``ArrowDtype``), made Python values
    ``slice_rows`` cells at a time when walked; arrays are not copied."""
    import pandas as pd

    cells = _arrow_cells(slice_rows)
    data = {name: cells(c) if isinstance(c, pa.ChunkedArray) else c for name, c in columns.items()}
    return pd.DataFrame(data, copy=False)


@functools.cache
def _arrow_cells(slice_rows: int) -> type[pd.api.extensions.ExtensionArray]:
    """pandas' Arrow-backed array, walked ``slice_rows`` cells at a time: pandas would make each cell a pyarrow
    scalar first (some microseconds a cell, eight times slower), and pyreadstat walks every text column twice
    (its widest value, then row by row as it writes)."""
    import pandas as pd

    class ArrowCells(pd.arrays.ArrowExtensionArray):  # type: ignore[misc]
        def __iter__(self) -> Iterator[Any]:
            missing = self.dtype.na_value
            for chunk in self.__arrow_array__().iterchunks():
                for start in range(0, len(chunk), slice_rows):
                    part = chunk.slice(start, slice_rows)
                    values = part.to_pylist()
                    yield from ((missing if v is None else v) for v in values) if part.null_count else values

    return ArrowCells


def date_numbers(column: pa.ChunkedArray, extension: str) -> tuple[pa.ChunkedArray | np.ndarray, str | None]:
    """A date32 column as the format's day numbers (missing: NaN) and its date format; a column without any
    date is text, all missing, as the writer made of a column of ``None`` (no format)."""
    if column.null_count == len(column):
        return pa.chunked_array([pa.nulls(len(column), pa.string())]), None
    zero, unit, display = _DATES[extension]
    days = column.cast(pa.int32()).cast(pa.float64()).to_numpy()
    return (days + zero) * unit, display


def utc_moments(column: pa.ChunkedArray) -> np.ndarray:
    """A timestamp[us, UTC] column as naive UTC datetime64[us] (missing: NaT)."""
    return np.asarray(column.cast(pa.timestamp("us")).to_numpy(), dtype="datetime64[us]")


def is_whole_number_code(choices: Iterable[str], column: pa.ChunkedArray) -> bool:
    """Whether every declared code and every stored code is a whole number (``-?\\d+``, as Python reads it)."""
    stored = pc.unique(column).drop_null().to_pylist()
    return all(_WHOLE_NUMBER.fullmatch(str(k)) for k in [*choices, *stored])


def whole_numbers(column: pa.ChunkedArray) -> np.ndarray:
    """Whole-number codes (text) as float64, each distinct code converted once as pandas reads it."""
    import pandas as pd

    distinct = pc.unique(column).drop_null()
    numbers = pd.to_numeric(pd.Series(distinct.to_pylist(), dtype=object)).astype("float64").to_numpy()
    taken = pc.take(pa.array(numbers, pa.float64()), pc.index_in(column, value_set=distinct))
    return np.asarray(taken.to_numpy(zero_copy_only=False), dtype="float64")


def cut_text(column: pa.ChunkedArray, limit: int) -> tuple[pa.ChunkedArray, bool]:
    """Text cut to at most ``limit`` UTF-8 bytes (``fit_bytes``) and whether any was cut; only the cells over
    the limit become Python strings."""
    over = pc.greater(pc.binary_length(column), limit)
    if not pc.any(over).as_py():
        return column, False
    whole, mask = column.combine_chunks(), pc.fill_null(over, False).combine_chunks()
    cut = pa.array([fit_bytes(t, limit) for t in pc.filter(whole, mask).to_pylist()], pa.string())
    return pa.chunked_array([pc.replace_with_mask(whole, mask, cut)]), True


def string_column(value: str, rows: int) -> pa.ChunkedArray:
    """One text value repeated ``rows`` times."""
    return pa.chunked_array([pa.repeat(pa.scalar(value, pa.string()), rows)])


# --- names and text limits ------------------------------------------------------------------------------

_SUFFIXES = {"FLAG": "FL", "STATUS": "ST", "REASON": "RS", "NUM": "N"}


def _candidates(name: str, limit: int, upper: bool) -> list[str]:
    words = re.findall(r"[A-Za-z0-9]+", name) or ["V"]
    words = [w.upper() for w in words] if upper else words
    if words[0][0].isdigit():
        words[0] = ("V" if upper else "v") + words[0]
    suffix = ""
    if len(words) > 1 and words[-1].upper() in _SUFFIXES:
        suffix = _SUFFIXES[words[-1].upper()]
        suffix = suffix if upper else suffix.lower()
    stem = words[:-1] if suffix else words
    vowels = "AEIOU" if upper else "aeiou"
    squeezed = [w[0] + re.sub(f"[{vowels}]", "", w[1:]) for w in stem]
    compact, short = "".join(stem), "".join(squeezed)
    found = ["_".join(words), compact + suffix, compact[: limit - len(suffix)] + suffix, short + suffix]
    found.append(short[: limit - len(suffix)] + suffix)
    return [c for c in found if 0 < len(c.encode()) <= limit]


def short_names(
    names: Iterable[str], limit: int, *, upper: bool, reserved: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Deterministic, collision-free names of at most ``limit`` bytes (letters, digits, _), in the order given;
    ``reserved`` (upper case) are never used."""
    taken: set[str] = set(reserved)
    result: dict[str, str] = {}
    for name in names:
        options = _candidates(name, limit, upper)
        chosen = next((c for c in options if c.upper() not in taken), None)
        if chosen is None:
            stem = options[-1] if options else ("V" if upper else "v")
            n = 2
            while True:
                tail = str(n)
                chosen = stem[: limit - len(tail)] + tail
                if chosen.upper() not in taken:
                    break
                n += 1
        taken.add(chosen.upper())
        result[name] = chosen
    return result


def ascii_text(text: str) -> str:
    """Text with its symbols spelt in ASCII (°C -> C, µ -> u), for formats without an encoding (XPT v5)."""
    text = text.replace("°", "").replace("µ", "u").replace("μ", "u").replace("–", "-").replace("×", "x")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


#: How SAS transport (XPT version 5, ASCII only) spells the non-ASCII characters it accepts: declared here, listed
#: in the codebook (``xpt_ascii.csv``) and the SAS export's README. Any other non-ASCII character is never guessed
#: (no accent stripping, no transliteration): its cell is left empty and listed in ``not_ascii.csv``.
ASCII_SPELLINGS: dict[str, str] = {
    "°": "deg",
    "µ": "u",
    "μ": "u",
    "²": "^2",
    "³": "^3",
    "±": "+/-",
    "×": "x",
    "÷": "/",
    "≤": "<=",
    "≥": ">=",
    "–": "-",
    "—": "-",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "…": "...",
    "\u00a0": " ",
}
_SPELL = str.maketrans(ASCII_SPELLINGS)


def ascii_spelling(text: str) -> str | None:
    """``text`` with the characters of ``ASCII_SPELLINGS`` spelt in ASCII; None when any other non-ASCII
    character remains (refused, never guessed)."""
    spelt = text.translate(_SPELL)
    return spelt if spelt.isascii() else None


def ascii_cells(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, list[tuple[int, str]]]:
    """A text column spelt in ASCII (``ascii_spelling``) and the cells refused (row index, original text), which
    are left empty; only the non-ASCII cells become Python strings."""
    foreign = pc.invert(pc.string_is_ascii(column))
    if not pc.any(foreign).as_py():
        return column, []
    whole, mask = column.combine_chunks(), pc.fill_null(foreign, False).combine_chunks()
    rows = pc.indices_nonzero(mask).to_pylist()
    originals = pc.filter(whole, mask).to_pylist()
    spelt = [ascii_spelling(t) for t in originals]
    refused = [(r, t) for r, t, s in zip(rows, originals, spelt, strict=True) if s is None]
    return pa.chunked_array([pc.replace_with_mask(whole, mask, pa.array(spelt, pa.string()))]), refused


def fit_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore")
