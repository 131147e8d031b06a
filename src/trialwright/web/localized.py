"""Protocol texts and values in the page's language.

``said``: a protocol text (a label, choice, visit, form, criterion, check message, site, causality category,
analysis set, expected event) in the page's language, from its ``translations``; a protocol that declares the
language carries every one (``protocol check`` refuses it otherwise), so the English fallback only serves
protocols that do not declare it. ``shown``: a stored value as a person reads it: yes/no in words (never
``True``/``False``), numbers in the language's digits (Persian digits on Persian pages). ``unit``: a unit
isolated left to right (``<bdi dir="ltr">``) so ``10^9/L`` and ``mmHg`` read correctly inside right-to-left
text; ``isolated`` the same by Unicode marks (LRI ... PDI) where no element can hold it (an ``<option>``'s text,
an attribute a script writes out). ``unit_of`` and ``unit_option``: a protocol field's unit in the page's
language when the protocol translates it (``unit_translations``), else as written. ``arm_said`` an arm a service
returned (code or English name) by its name in the page's language; ``trial_title`` the header's trial name;
``names`` a visit's, form's and field's words. Input values the server reads are never passed through these: they
stay as stored. An automatic query's stored text is said by ``trialwright.web.query_words``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from markupsafe import Markup, escape

from trialwright.domain.numerals import in_digits
from trialwright.domain.wording import field_words
from trialwright.protocol import Protocol
from trialwright.web.i18n import text_direction

__all__ = [
    "arm_said",
    "choice_said",
    "digits",
    "isolated",
    "names",
    "said",
    "shown",
    "trial_title",
    "unit",
    "unit_of",
    "unit_option",
    "unit_translated",
]

#: The field a protocol model's ``translations`` translate.
_TEXTS = ("label", "text", "message", "name", "term")


def said(item: object, lang: str) -> str:
    """A protocol text in ``lang`` when the protocol translates it, else its own (English) text."""
    translations: Mapping[str, str] = getattr(item, "translations", None) or {}
    own = next((getattr(item, k) for k in _TEXTS if isinstance(getattr(item, k, None), str)), "")
    return translations.get(lang) or own


def digits(text: object, lang: str) -> str:
    """``text`` with its Latin digits in the language's own digits (Persian: ۰-۹); other languages as written."""
    return in_digits(text, lang)


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


def choice_said(item: object, value: object, lang: str, gettext: Callable[[str], str]) -> str:
    """A stored value of a field that has choices (a screening or form field) as a person reads it: each code by
    its choice's label in ``lang`` (a code the protocol does not declare, e.g. from an older version, as stored);
    a field without choices, or a value that is no code, as ``shown``."""
    choices = {c.code: c for c in getattr(item, "choices", None) or []}
    if not choices:
        return shown(value, lang, gettext)
    if isinstance(value, list):
        return ", ".join(choice_said(item, v, lang, gettext) for v in value) or "—"
    if isinstance(value, str) and value in choices:
        return said(choices[value], lang)
    return shown(value, lang, gettext)


def unit(text: str | None) -> Markup:
    """A unit isolated left to right, so it reads correctly in right-to-left text; empty when there is none."""
    return Markup("") if not text else Markup('<bdi dir="ltr">{}</bdi>').format(escape(text))


def unit_translated(item: object, lang: str) -> str | None:
    """A field's unit in ``lang`` when the protocol gives it (``unit_translations``); None otherwise."""
    given = getattr(item, "unit_translations", None) or {}
    return given.get(lang) if getattr(item, "unit", None) else None


def unit_of(item: object, lang: str) -> Markup:
    """A protocol field's unit as a reader of ``lang`` sees it: the protocol's translation isolated in its own
    direction (``<bdi>``), else the unit as written, isolated left to right (``unit``)."""
    translated = unit_translated(item, lang)
    return Markup("<bdi>{}</bdi>").format(translated) if translated else unit(getattr(item, "unit", None))


def unit_option(item: object, lang: str) -> str:
    """A field's unit where no element can hold it (an ``<option>``'s text): the translation isolated by its first
    strong character (FSI ... PDI), else the unit as written (``isolated``)."""
    translated = unit_translated(item, lang)
    return f"\u2068{translated}\u2069" if translated else isolated(getattr(item, "unit", None), lang)


def isolated(text: str | None, lang: str) -> str:
    """A unit (or a range with its unit) isolated left to right by Unicode marks (LRI U+2066 ... PDI U+2069)
    on a right-to-left page, where no element can hold it: an ``<option>``'s text, an attribute a script
    writes out. Left-to-right pages need none; empty when there is nothing."""
    if not text:
        return ""
    return f"\u2066{text}\u2069" if text_direction(lang) == "rtl" else text


def arm_said(protocol: Protocol, arm: str, lang: str) -> str:
    """An arm, given by its code or its (English) name as a service returned it, by its name in ``lang``.

    Anything that is not one of the protocol's arms (``masked``, empty) is returned as given: this only ever
    words an arm the service already showed, never finds one."""
    for a in protocol.arms:
        if arm in (a.code, a.name):
            return said(a, lang)
    return arm


def trial_title(protocol: Protocol, lang: str) -> str:
    """The trial's short name for page headers in ``lang`` (``trial.titles.translations``), else its own."""
    return protocol.trial.titles.translations.get(lang, {}).get("short") or protocol.short_name


def names(protocol: Protocol, lang: str) -> dict[str, Callable[..., str]]:
    """A visit's, a form's, a log's and a site's name, and a form's or log's field's label, in the viewer's language
    (the protocol's text; the id or code if it names none, or no longer declares it): ``visit_name``, ``form_name``,
    ``field_name``, ``log_name``, ``log_field_name``, ``site_name`` (``sites_named``: several, joined) on every page."""

    def visit(visit_id: str) -> str:
        try:
            v = protocol.visit(visit_id)
        except KeyError:
            return visit_id
        return v.translations.get(lang) or v.name

    def form(form_id: str) -> str:
        try:
            f = protocol.form(form_id)
        except KeyError:
            return form_id
        return f.translations.get(lang) or f.name

    def field(form_id: str | None, field_id: str) -> str:
        return (field_words(protocol, f"{form_id}.{field_id}", lang, form_id=form_id) if form_id else None) or field_id

    def log(log_id: str) -> str:  # a log a later protocol version dropped is named by its id
        try:
            g = protocol.log(log_id)
        except KeyError:
            return log_id
        return g.translations.get(lang) or g.name

    def log_field(log_id: str, field_id: str) -> str:
        try:
            f = protocol.log(log_id).field(field_id)
        except KeyError:
            return field_id
        return f.translations.get(lang) or f.label

    def site(code: str) -> str:  # a site the protocol no longer declares is named by its code
        try:
            return said(protocol.site(code), lang)
        except KeyError:
            return code

    def sites(codes: Iterable[str]) -> str:  # a person's sites, each by its name
        return ("، " if text_direction(lang) == "rtl" else ", ").join(site(str(c)) for c in codes or ())

    return {"visit_name": visit, "form_name": form, "field_name": field, "log_name": log, "log_field_name": log_field,
            "site_name": site, "sites_named": sites}  # fmt: skip
