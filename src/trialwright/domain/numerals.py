"""Numbers in a language's own digits: the one table the pages and the e-mails write Persian digits with, and the
one that reads Persian and Arabic-Indic digits back as Latin ones (a participant id typed in a search box).

Only what a person reads is written this way (a count, a time, a version, a decimal with the language's decimal
separator: Persian ``۱۲٫۵``); what is stored, exported, typed into an input or named as an identifier keeps Latin
digits. Reading numbers and dates typed into a form is ``domain.forms`` and ``domain.calendars``' work (they accept
Persian, Arabic-Indic and Latin digits alike); ``latin_digits`` is for text that is not a number, such as an id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["in_digits", "latin_digits"]

#: The languages whose texts write numbers in their own digits, and those digits.
_DIGITS: Mapping[str, dict[int, int]] = {"fa": str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")}
#: Their decimal separators (Persian: U+066B ARABIC DECIMAL SEPARATOR), written for a "." between two digits.
_DECIMAL: Mapping[str, str] = {"fa": "\u066b"}
_POINT = re.compile(r"(?<=\d)\.(?=\d)")
#: Persian (U+06F0-U+06F9) and Arabic-Indic (U+0660-U+0669) digits, read as Latin ones.
_LATIN = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")


def in_digits(text: object, lang: str) -> str:
    """``text`` with its Latin digits in the language's own digits (Persian: ۰-۹) and a decimal point between two
    digits as the language's decimal separator (Persian: ``٫``); other languages as written."""
    table = _DIGITS.get(lang)
    if table is None:
        return str(text)
    return _POINT.sub(_DECIMAL[lang], str(text)).translate(table)


def latin_digits(text: str) -> str:
    """``text`` with its Persian and Arabic-Indic digits as Latin ones (``SHZ-۰۰۱`` -> ``SHZ-001``), the rest as
    typed: what a search box reads before it compares with stored identifiers."""
    return text.translate(_LATIN)
