"""Free text as people type it, and text as spreadsheets read it. Pure code.

Every text that reaches the database passes ``text_problem`` (through ``checked_text`` in the services, or
the form and preparation validators): it has a length limit, and it may not hold characters that hide or
disguise what it says:

- control characters: C0 (U+0000-U+001F, NUL included), DEL (U+007F) and C1 (U+0080-U+009F); TAB, LF and
  CR only in multi-line text (free text, reasons, narratives), never in one-line text (codes, names);
- the bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), which can make
  text display in another order than it is stored (the "Trojan Source" trick);
- the line and paragraph separators (U+2028, U+2029) in one-line text; lone surrogates anywhere.

Accepted: every letter and mark of Persian and other scripts, the zero-width non-joiner (U+200C) and
joiner (U+200D) that Persian spelling needs, and the left-to-right and right-to-left marks (U+200E, U+200F)
and Arabic letter mark (U+061C): a mark is one invisible strong character that settles where a neutral
character (a digit, a bracket) sits between Latin and Persian words; it cannot reorder a span of text.

Limits: ``SHORT_TEXT`` (200) for one-line text, ``FREE_TEXT`` (2,000) for free text; a protocol may
declare its own for a form field or a preparation attribute, up to ``LONGEST_TEXT`` (10,000). Longer text
is refused, never cut.

``spreadsheet_cell`` is the other direction: a text cell written to a CSV file that Excel or LibreOffice
may open is neutralised when it starts with ``=``, ``+``, ``-``, ``@``, TAB or CR (OWASP, "CSV
injection"), by a leading apostrophe, so that it shows as text and is never run as a formula. Numbers stay
numbers: a number cell is never touched, and neither is a text cell that is wholly a plain decimal number
(``-3``, ``-0.25``, ``+1e-3``), which no spreadsheet runs as a formula; ``-3+A1`` or ``-inf`` is neutralised.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import overload

from trialwright.protocol.base import FREE_TEXT, LONGEST_TEXT, SHORT_TEXT

__all__ = [
    "FREE_TEXT",
    "LONGEST_TEXT",
    "SHORT_TEXT",
    "TextError",
    "checked_text",
    "spreadsheet_cell",
    "spreadsheet_row",
    "spreadsheet_values",
    "text_problem",
]

_BIDI_CONTROLS = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))
_LINE_BREAKS = frozenset({0x09, 0x0A, 0x0D})
_SEPARATORS = frozenset({0x2028, 0x2029})
#: What makes a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class TextError(ValueError):
    """Text refused; the message names the field and the rule."""


def _name(code: int) -> str:
    names = {0: "NUL", 0x09: "TAB", 0x0A: "line feed", 0x0D: "carriage return", 0x7F: "DEL"}
    if code in names:
        return names[code]
    return str(unicodedata.name(chr(code), "control"))


def text_problem(value: str, *, limit: int, multiline: bool) -> str | None:
    """The rule ``value`` breaks (without the field's name), or None when it is acceptable text."""
    if len(value) > limit:
        return f"must be at most {limit:,} characters, not {len(value):,} (text limit; longer text is never cut)"
    for position, char in enumerate(value, start=1):
        code = ord(char)
        if code in _LINE_BREAKS:
            if multiline:
                continue
            return (
                f"must be one line: it holds a {_name(code)} (U+{code:04X}) at character {position} "
                "(control characters are refused)"
            )
        if code < 0x20 or 0x7F <= code <= 0x9F:
            return (
                f"holds the control character U+{code:04X} ({_name(code)}) at character {position} "
                "(control characters are refused)"
            )
        if code in _BIDI_CONTROLS:
            return (
                f"holds the bidirectional control U+{code:04X} ({_name(code)}) at character {position}, which can "
                "make text show in another order than it is stored (bidi overrides and isolates are refused; "
                "the marks U+200E and U+200F and the non-joiner U+200C are accepted)"
            )
        if code in _SEPARATORS and not multiline:
            return f"must be one line: it holds U+{code:04X} ({_name(code)}) at character {position}"
        if 0xD800 <= code <= 0xDFFF:
            return f"holds a lone surrogate U+{code:04X} at character {position}, which is not text (invalid Unicode)"
    return None


@overload
def checked_text(
    value: str, field: str, limit: int = ..., *, multiline: bool = ..., error: type[ValueError] = ...
) -> str: ...


@overload
def checked_text(
    value: str | None, field: str, limit: int = ..., *, multiline: bool = ..., error: type[ValueError] = ...
) -> str | None: ...


def checked_text(
    value: str | None,
    field: str,
    limit: int = FREE_TEXT,
    *,
    multiline: bool = True,
    error: type[ValueError] = TextError,
) -> str | None:
    """``value`` unchanged when it is acceptable text for ``field`` (or None), else ``error("field: rule")``.

    The one check every service applies to the free text it accepts (reasons, query texts and answers,
    notes, names); ``error`` is the service's own error class, so that every way in reports it as it
    reports the service's other refusals.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise error(f"{field}: must be text, not {type(value).__name__}")
    problem = text_problem(value, limit=limit, multiline=multiline)
    if problem is not None:
        raise error(f"{field}: {problem}")
    return value


def spreadsheet_cell(text: str) -> str:
    """A text cell as a spreadsheet must see it: with a leading apostrophe when it would start a formula
    (a plain decimal number such as ``-3.5`` is left as it is)."""
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def spreadsheet_row(cells: Iterable[object]) -> list[object]:
    """A CSV row with its text cells neutralised (``spreadsheet_cell``); numbers and empty cells untouched."""
    return [spreadsheet_cell(c) if isinstance(c, str) else c for c in cells]


def spreadsheet_values(row: Mapping[str, object]) -> dict[str, object]:
    """A CSV row given by column (for ``csv.DictWriter``) with its text cells neutralised."""
    return {k: spreadsheet_cell(v) if isinstance(v, str) else v for k, v in row.items()}
