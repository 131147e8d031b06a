"""Languages of the web app: English and Persian (right-to-left), from gettext catalogs.

Catalogs are the ``.po`` files under ``trialwright/locale/<lang>/LC_MESSAGES/messages.po``, compiled in
memory with Babel when first needed, so no compiled ``.mo`` file is committed or built. English is the
source language (message ids are English text).
"""

from __future__ import annotations

import gettext
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "LOCALE_DIR", "N_", "catalog_path", "text_direction", "translations"]

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DEFAULT_LANGUAGE = "en"
#: Language code -> (its own name, text direction).
LANGUAGES: dict[str, tuple[str, str]] = {"en": ("English", "ltr"), "fa": ("فارسی", "rtl")}


def text_direction(lang: str) -> str:
    """``rtl`` for Persian, ``ltr`` otherwise."""
    return LANGUAGES.get(lang, LANGUAGES[DEFAULT_LANGUAGE])[1]


def catalog_path(lang: str) -> Path:
    """Where a language's catalog lives."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The translations for a language (English, or an unknown language, gets the message ids back)."""
    path = catalog_path(lang)
    if lang == DEFAULT_LANGUAGE or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def N_(message: str) -> str:
    """Mark a message for the catalog without translating it now (it is translated where it is shown)."""
    return message
