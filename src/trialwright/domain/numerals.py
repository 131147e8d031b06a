"""Numbers in a language's own digits: the one table the pages and the e-mails write Persian digits with, and the
one that reads Persian and Arabic-Indic digits back as Latin ones (a participant id typed in a search box).

Only what a person reads is written this way (a count, a time, a version, a decimal with the language's decimal
separator: Persian ``۱۲٫۵``); what is stored, exported, typed into an input or named as an identifier keeps Latin
digits. ``typed_number`` reads a typed number (Persian, Arabic-Indic or Latin digits, ``٫`` or ``.``) for every input
that takes one; dates typed are ``domain.calendars``' work; ``latin_digits`` is for text that is not a number, such as
an id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["in_digits", "latin_digits", "typed_number"]

#: The languages whose texts write numbers in their own digits, and those digits.
_DIGITS: Mapping[str, dict[int, int]] = {"fa": str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")}
#: Their decimal separators (Persian: U+066B ARABIC DECIMAL SEPARATOR), written for a "." between two digits.
_DECIMAL: Mapping[str, str] = {"fa": "\u066b"}
_POINT = re.compile(r"(?<=\d)\.(?=\d)")
#: Persian (U+06F0-U+06F9) and Arabic-Indic (U+0660-U+0669) digits, read as Latin ones.
_LATIN = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
#: The same digits and the Arabic decimal separator (U+066B), read as Latin digits and a point.
_NUMBER = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩\u066b", "01234567890123456789.")


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


def typed_number(raw: str) -> str:
    """Typed number text with its digits and decimal separator made Latin (``۸٫۴`` -> ``8.4``): the one reading of
    a typed number for every input that takes one (form fields, screening values, preparation attributes). A comma
    (or the Arabic thousands separator) is refused, never guessed: ``1,000`` is one thousand to one typist and one
    to another."""
    text = raw.strip().translate(_NUMBER)
    if "," in text or "\u066c" in text:
        raise ValueError(
            f"must be a number written with a decimal point and no thousands separator (e.g. 1000 or 12.5), not "
            f"{raw.strip()!r}: a comma could mean either"
        )
    return text
