"""Protocol texts and values in the page's language.

``said``: a protocol text (a label, choice, visit, form, criterion, check message, site, causality category,
analysis set, expected event) in the page's language, from its ``translations``; a protocol that declares the
language carries every one (``protocol check`` refuses it otherwise), so the English fallback only serves
protocols that do not declare it. ``shown``: a stored value as a person reads it: yes/no in words (never
``True``/``False``), numbers in the language's digits (Persian digits on Persian pages). ``unit``: a unit
isolated left to right (``<bdi dir="ltr">``) so ``10^9/L`` and ``mmHg`` read correctly inside right-to-left
text. Input values the server reads are never passed through these: they stay as stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from markupsafe import Markup, escape

from trialwright.protocol import Protocol

__all__ = ["digits", "query_text", "said", "shown", "unit"]

#: The languages whose pages show numbers in their own digits, and those digits.
_DIGITS: Mapping[str, dict[int, int]] = {"fa": str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")}
#: The field a protocol model's ``translations`` translate.
_TEXTS = ("label", "text", "message", "name", "term")


def said(item: object, lang: str) -> str:
    """A protocol text in ``lang`` when the protocol translates it, else its own (English) text."""
    translations: Mapping[str, str] = getattr(item, "translations", None) or {}
    own = next((getattr(item, k) for k in _TEXTS if isinstance(getattr(item, k, None), str)), "")
    return translations.get(lang) or own


def digits(text: object, lang: str) -> str:
    """``text`` with its Latin digits in the language's own digits (Persian: ۰-۹); other languages as written."""
    table = _DIGITS.get(lang)
    return str(text) if table is None else str(text).translate(table)


def shown(value: object, lang: str, gettext: Callable[[str], str]) -> str:
    """A stored value in words: yes/no in the language, numbers in its digits, empty as a dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool) or value in ("True", "False"):
        return gettext("yes") if value in (True, "True") else gettext("no")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, list):
        return ", ".join(shown(v, lang, gettext) for v in value)
    return digits(value, lang)


def unit(text: str | None) -> Markup:
    """A unit isolated left to right, so it reads correctly in right-to-left text; empty when there is none."""
    return Markup("") if not text else Markup('<bdi dir="ltr">{}</bdi>').format(escape(text))


def query_text(protocol: Protocol, lang: str) -> Callable[[str], str]:
    """What says a query's stored text on a page: an automatic query's text begins with its data check's message
    (stored in English, for every reader); the page says that message in ``lang``; the rest is shown as stored."""
    messages = [(c.message, said(c, lang)) for c in protocol.data_checks if said(c, lang) != c.message]

    def words(text: str) -> str:
        for own, translated in messages:
            if text.startswith(own):
                return translated + text[len(own) :]
        return text

    return words
