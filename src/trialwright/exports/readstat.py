"""Column helpers shared by the statistical formats (Stata, SPSS, SAS transport, SDTM's XPT): short names,
text limits and ASCII spellings, whole-number codes, built from Arrow columns.

Each helper works on a column (or a batch's column) with Arrow compute, so no Python object is made per cell: only
the cells a rule touches (text over a limit, non-ASCII text, distinct codes) become Python strings.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "ASCII_SPELLINGS",
    "ascii_cells",
    "ascii_spelling",
    "ascii_text",
    "cut_text",
    "fit_bytes",
    "is_whole_number_code",
    "short_names",
    "string_column",
    "whole_numbers",
]

_WHOLE_NUMBER = re.compile(r"-?\d+")


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
    # Greek letters of biomarker names (TNF-α, IFN-γ, β-hCG) spelt as the names SI and LOINC write.
    "α": "alpha",
    "β": "beta",
    "γ": "gamma",
    "δ": "delta",
    "κ": "kappa",
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
