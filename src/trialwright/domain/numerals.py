"""Numbers in a language's own digits: the one table the pages and the e-mails write Persian digits with.

Only what a person reads is written this way (a count, a time, a version); what is stored, exported, typed
into an input or named as an identifier keeps Latin digits. Reading digits back is ``domain.forms`` and
``domain.calendars``' work (they accept Persian, Arabic-Indic and Latin digits alike).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["in_digits"]

#: The languages whose texts write numbers in their own digits, and those digits.
_DIGITS: Mapping[str, dict[int, int]] = {"fa": str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")}


def in_digits(text: object, lang: str) -> str:
    """``text`` with its Latin digits in the language's own digits (Persian: ۰-۹); other languages as written."""
    table = _DIGITS.get(lang)
    return str(text) if table is None else str(text).translate(table)
