"""Every text a person reads carries a translation for each language the protocol declares.

A protocol declares its languages (``languages: [en, fa]``, English first: the texts themselves). For each
other language, every model with ``translations`` (a label, choice, visit, form, criterion, check message,
site, arm, causality category, analysis set, expected event) must carry a non-empty text in it, and so must
every text given with its own ``<text>_translations`` beside it (a field's help, a form's description, the
signature's meaning) and the public and short titles. A unit's ``unit_translations`` are optional (a unit is
shown as written without them); given, they need every declared language, and a field without a unit has none.
A missing one is a problem of ``protocol check``: a page never falls back to English for a declared language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pydantic import BaseModel

from trialwright.protocol.model import Protocol
from trialwright.protocol.references import Found

__all__ = ["CALENDARS_UNDECLARED", "calendar_notes", "translations"]

_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
#: ``protocol check``'s note on a protocol without ``calendars``: what its pages and the CLI then show.
CALENDARS_UNDECLARED = (
    "Calendars: none declared (calendars): every date is shown in both the Gregorian and the Solar Hijri calendar "
    "(each person may choose one); declare calendars: [gregorian] or [solar_hijri] to show only one (docs/i18n.md)"
)
#: Texts whose ``<text>_translations`` are optional (a unit such as mg reads the same in many languages); given,
#: they need every declared language, as the others.
_OPTIONAL = frozenset({"unit_translations"})
#: The field each model's ``translations`` translate, named in the message.
_TEXT = ("label", "text", "message", "name", "term")


def calendar_notes(p: Protocol) -> tuple[str, ...]:
    """A note for ``protocol check`` when the protocol declares no ``calendars``: the default (both) is said, never
    left to surprise a trial that reads one calendar only."""
    return (CALENDARS_UNDECLARED,) if p.calendars is None else ()


def translations(p: Protocol) -> Iterator[Found]:
    """Bad language declarations, then every missing translation, in file order."""
    declared = p.languages
    for i, code in enumerate(declared):
        if not _LANGUAGE.match(code):
            yield f"languages[{i}]", f"{code!r} is not a language code (two or three lower-case letters, e.g. fa)"
    if not declared or declared[0] != "en":
        yield "languages", "English comes first: the protocol's texts are English, the others are translations"
    if len(set(declared)) != len(declared):
        yield "languages", "a language is named twice"
    if p.calendars is not None and len(set(p.calendars)) != len(p.calendars):
        yield "calendars", "a calendar is named twice"
    others = [c for c in dict.fromkeys(declared[1:]) if c != "en" and _LANGUAGE.match(c)]
    if not others:
        return
    titles = p.trial.titles
    for key in ("public", "short"):
        if getattr(titles, key, None):
            for code in others:
                if not titles.translations.get(code, {}).get(key, "").strip():
                    write = (
                        f"{key}: ... to trial.titles.translations.{code}"
                        if code in titles.translations
                        else f"{code}: {{{key}: ...}} to trial.titles.translations"
                    )
                    yield f"trial.titles.translations.{code}.{key}", _missing(code, f"the {key} title", write)
    yield from _walk(p, "", others)


def _walk(node: object, path: str, others: list[str]) -> Iterator[Found]:
    if isinstance(node, BaseModel):
        fields = type(node).model_fields
        values = dict(node)
        given = values.get("translations")
        if isinstance(given, dict) and path != "trial.titles":
            text = next((k for k in _TEXT if isinstance(values.get(k), str)), None)
            for code in others:
                value = given.get(code)
                if not (isinstance(value, str) and value.strip()):
                    shown = _quoted(values[text]) if text else "its text"
                    write = _beside("translations", code, path, bool(given))
                    yield f"{path}.translations", _missing(code, f"{text or 'text'} {shown}", write)
        # a text beside its own translations: ``help`` / ``help_translations``, ``description`` /
        # ``description_translations``, ``signature_meaning`` / ``signature_meaning_translations``
        for name in fields:
            base = name.removesuffix("_translations")
            given_too = values.get(name)
            if name in _OPTIONAL and given_too and not values.get(base):
                yield f"{path}.{name}" if path else name, f"translates a {base.replace('_', ' ')} it does not declare"
            if name in _OPTIONAL and not given_too:
                continue  # optional: shown as written in every language
            if base == name or base == "" or not isinstance(given_too, dict) or not values.get(base):
                continue
            for code in others:
                if not str(given_too.get(code) or "").strip():
                    yield f"{path}.{base}" if path else base, _missing(
                        code, f"the {base.replace('_', ' ')} text", _beside(name, code, path, bool(given_too))
                    )
        for name in fields:
            if name == "translations" or name.endswith("_translations"):
                continue
            yield from _walk(values[name], f"{path}.{name}" if path else name, others)
    elif isinstance(node, list | tuple):
        for i, item in enumerate(node):
            yield from _walk(item, f"{path}[{i}]", others)


def _quoted(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _beside(name: str, code: str, path: str, written: bool) -> str:
    """The key to write for a text's own translations: to the mapping where it is written, or the whole mapping
    (a text left to its default, such as the signature's meaning, has no line of its own)."""
    where = "at the top level of the file" if not path else f"in {path}"
    if written:
        return f"{code}: ... to {name} {where}"
    return f"{name}: {{{code}: ...}} {where}"


def _missing(code: str, what: str, write: str) -> str:
    return f"no {code!r} translation of {what} (the protocol declares {code!r} in languages): add {write}"
