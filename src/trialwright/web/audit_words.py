"""An audited value in the reader's words, beside the value exactly as stored.

``domain.audit_changes`` gives each changed key's old and new values as the text the trail holds (``True``, a
choice's code, ``open``). The audit page says each in the reader's language: yes/no in words, a form or screening
field's choice by its label (the field the entry names), a state, decision or status by its words, a number in the
reader's digits (the page writes an ISO date in the reader's calendar); and, where that reads differently, the
stored text beside it (an auditor must see exactly what was stored). A masked value stays masked
(``audit_masking`` masked it before this reads it): nothing here looks up an arm.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from trialwright.domain.audit_changes import AuditChange
from trialwright.domain.masking import MASKED
from trialwright.domain.numerals import latin_digits
from trialwright.protocol import Protocol
from trialwright.web.i18n import N_, translations
from trialwright.web.localized import digits, said

__all__ = ["ORIGINS", "STATE_KEYS", "only_written_otherwise", "value_words"]

#: Keys whose values are a state, a status or a decision the catalog words (``open``, ``answered``, ``eligible``);
#: and a bare previous or new value (``old_value``: e.g. the state a query was in before it was closed) when it is
#: one such word.
STATE_KEYS = frozenset({"status", "state", "decision", "scope", "cause", "given_by", "origin", "kind", "outcome"})
#: A query's origins (``queries.origin``) as the catalog words them (``system`` is worded elsewhere).
ORIGINS = (N_("manual"), N_("soft limit"), N_("data check"))
_BARE = frozenset({"old_value", "new_value"})
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_WORD = re.compile(r"[a-z][a-z_]*")


#: A number in a form value's text (``450 mg/L (entered 45 mg/dL)``, ``< 1.5``), not one inside a unit (``10^9/L``).
_IN_TEXT = re.compile(r"(?<![\w^/.])-?\d+(?:\.\d+)?(?![\w^.])")
#: A form value not given, as ``StoredValue.shown`` writes it (``not done: sample clotted``).
_NOT_GIVEN = ("not done", "not applicable")


def _field(protocol: Protocol, change: AuditChange) -> object:
    """The form or screening field the change names, or None."""
    try:
        if change.form is not None:
            return next((f for f in protocol.form(change.form).fields if f.id == change.key), None)
        if change.within == "values":
            return protocol.screening_field(change.key)
    except KeyError:
        return None
    return None


def value_words(protocol: Protocol, lang: str) -> Callable[[AuditChange, str], str]:
    """What says a change's old or new value in ``lang`` (the page writes an ISO date left in it in the reader's
    calendar)."""
    gettext = translations(lang).gettext

    def one(change: AuditChange, text: str) -> str:
        if text in ("", MASKED):
            return gettext(text) if text else ""
        if text in ("True", "False", "true", "false", "yes", "no"):
            return gettext("yes") if text in ("True", "true", "yes") else gettext("no")
        item = _field(protocol, change)
        choices = {str(c.code): c for c in getattr(item, "choices", None) or []}
        if choices:
            parts = text.split(", ")
            if all(p in choices for p in parts):
                return ", ".join(said(choices[p], lang) for p in parts)
        stated = change.key in STATE_KEYS or (change.key in _BARE and _WORD.fullmatch(text) is not None)
        if stated and change.form is None and change.within is None:
            words = text.replace("_", " ")
            return gettext(words) if gettext(words) != words else text  # a state the catalog does not word: as stored
        if _NUMBER.fullmatch(text):
            return digits(text, lang)
        if change.form is not None and str(getattr(item, "type", "")) in ("integer", "decimal"):
            for not_given in _NOT_GIVEN:
                if text.startswith(not_given):
                    return gettext(not_given) + text.removeprefix(not_given)
            return _IN_TEXT.sub(lambda m: digits(m.group(0), lang), text)
        return text

    return one


def only_written_otherwise(words: str, stored: str) -> bool:
    """Whether ``words`` are ``stored`` written in other digits (Persian digits, the ``٫`` separator): the same
    value, which the page then keeps in a title attribute rather than beside it (no Latin digits in the text a
    Persian reader reads; a date written in the reader's calendar is kept so too)."""
    return latin_digits(words).replace("٫", ".") == stored
