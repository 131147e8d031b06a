"""The WHO ATC index (Anatomical Therapeutic Chemical classification), read and checked.

The ATC/DDD index is the WHO Collaborating Centre's: the sponsor loads the edition it holds; trialwright ships none
of it. It is read from one CSV file (UTF-8, comma-separated, a header line), as the index is exported to a
spreadsheet, with these columns (others are refused, so that a wrong file is not half read):

===========  ==========================================================================================
column       what it holds
===========  ==========================================================================================
atc_code     the code: level 1 a letter (``N``), 2 two digits more (``N02``), 3 a letter more (``N02B``),
             4 a letter more (``N02BE``), 5 two digits more (``N02BE01``)
level        1 to 5: the level the code's length says
name         the name (level 5: the chemical substance), at most 200 characters
===========  ==========================================================================================

``read_atc`` refuses a file that breaks any rule, naming the line: a code of no level's shape, a level other
than the code's, a code listed twice, a code whose parent (the code one level up) is not in the file, an empty name.
Nothing here reads files: the caller passes the text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass

from trialwright.domain.coding import DictionaryError

__all__ = ["ATC_COLUMNS", "AtcCode", "AtcIndex", "atc_level", "check_atc_version", "path_of", "read_atc"]

ATC_COLUMNS = ("atc_code", "level", "name")
_SHAPES = {
    1: re.compile(r"[A-Z]"),
    2: re.compile(r"[A-Z][0-9]{2}"),
    3: re.compile(r"[A-Z][0-9]{2}[A-Z]"),
    4: re.compile(r"[A-Z][0-9]{2}[A-Z]{2}"),
    5: re.compile(r"[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}"),
}
_PARENT_LENGTH = {2: 1, 3: 3, 4: 4, 5: 5}
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,15}")


@dataclass(frozen=True, slots=True)
class AtcCode:
    """One code of the index."""

    code: str
    level: int
    name: str


@dataclass(frozen=True)
class AtcIndex:
    """A whole index, checked: every code by code."""

    codes: Mapping[str, AtcCode]

    def counts(self) -> dict[str, int]:
        """How many codes each level has (``level1`` .. ``level5``)."""
        out = {f"level{n}": 0 for n in range(1, 6)}
        for c in self.codes.values():
            out[f"level{c.level}"] += 1
        return out


def atc_level(code: str) -> int | None:
    """The level a code's shape says, or None for no ATC code."""
    return next((level for level, shape in _SHAPES.items() if shape.fullmatch(code)), None)


def check_atc_version(version: str) -> str:
    """The index's version as the sponsor names it (e.g. ``2026``), or ``DictionaryError``."""
    if not _VERSION.fullmatch(version):
        raise DictionaryError(f"--version: {version!r} is not a version such as 2026 (letters, digits, . _ -)")
    return version


def read_atc(text: str, name: str = "atc.csv") -> AtcIndex:
    """The index in ``text`` (the CSV layout above), every rule checked; ``DictionaryError`` names the line."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = next(reader, None)
    if header is None or tuple(h.strip().lower() for h in header) != ATC_COLUMNS:
        raise DictionaryError(f"{name} line 1: the header must be {','.join(ATC_COLUMNS)}, not {header!r}")
    codes: dict[str, AtcCode] = {}
    lines: dict[str, int] = {}
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(ATC_COLUMNS):
            raise DictionaryError(f"{name} line {number}: {len(row)} columns, not {len(ATC_COLUMNS)}")
        code, level_text, term = (cell.strip() for cell in row)
        level = atc_level(code)
        if level is None:
            raise DictionaryError(f"{name} line {number}: {code!r} is not an ATC code (e.g. N, N02, N02B, N02BE01)")
        if level_text != str(level):
            raise DictionaryError(f"{name} line {number}: {code} is a level {level} code, not level {level_text!r}")
        if not term or len(term) > 200:
            raise DictionaryError(f"{name} line {number}: {code}'s name must be 1 to 200 characters")
        if code in codes:
            raise DictionaryError(f"{name} line {number}: {code} is listed already (line {lines[code]})")
        codes[code], lines[code] = AtcCode(code, level, term), number
    if not codes:
        raise DictionaryError(f"{name}: no codes")
    for code, entry in codes.items():
        if entry.level > 1 and code[: _PARENT_LENGTH[entry.level]] not in codes:
            parent = code[: _PARENT_LENGTH[entry.level]]
            raise DictionaryError(f"{name} line {lines[code]}: {code}'s parent {parent} (level {entry.level - 1}) "
                                  "is not in the file")  # fmt: skip
    return AtcIndex(codes)


def path_of(codes: Mapping[str, AtcCode], code: str) -> tuple[AtcCode, ...]:
    """A code's path from level 1 down to it (every ancestor in ``codes``; KeyError if one is missing)."""
    level = atc_level(code)
    if level is None:
        raise KeyError(code)
    prefixes = [code[:n] for n in (1, 3, 4, 5, 7)][:level]
    return tuple(codes[p] for p in prefixes)
