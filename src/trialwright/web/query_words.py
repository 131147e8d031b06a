"""An automatic query's text in the viewer's language.

An automatic query's text is stored once, in English, as it was raised (the queries table and the audit trail's
``query.raised`` keep exactly what the system said, for every reader and every export). A page says it in the
viewer's language by reading that stored text back into what it was made of, with the same fixed shapes the
services write it in:

- a soft limit (``services.forms.save``): ``{label} {value} is outside the expected range {range}; please confirm
  or correct``;
- a data check (``services.forms.checks``): ``{message} (expected: {rule})``, or for a visit window ``{message}
  ({label} {date} is outside the visit window {start} to {end})``;
- a death that could not be written into its form (``services.safety.reports``): ``Death on {date} reported in
  {ae}; the {form} form could not be updated ({why}). Please record it.``

Each part is then said from the protocol in the viewer's language (the field's label, the check's message, the
form's name) with the numbers and dates in the viewer's calendar and digits, isolated left to right. A part is
translated only when the protocol's English words for it are exactly those stored (a check's rule is re-worded
only if the current protocol words it as stored), so a page never shows a translation of something other than what
was raised; a text of any other shape, or whose parts the protocol no longer words the same way, is shown as stored
(its dates in the viewer's calendar). ``why`` (a service's refusal) stays as stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from trialwright.domain.wording import check_words, field_words
from trialwright.protocol import Protocol
from trialwright.web.i18n import N_
from trialwright.web.localized import digits, isolated, said

__all__ = ["OPERATOR_WORDS", "query_words"]

_DATE = r"\d{4}-\d{2}-\d{2}"
_ISO_DATE = re.compile(r"(?<![\d-])\d{4}-\d{2}-\d{2}(?![\d])")
_SOFT = re.compile(r"^(?P<rest>.+) is outside the expected range (?P<range>.+); please confirm or correct$", re.S)
_EXPECTED = re.compile(r"^ \(expected: (?P<rule>.*)\)$", re.S)
_WINDOW = re.compile(
    rf"^ \((?P<label>.+) (?P<day>{_DATE}) is outside the visit window (?P<start>{_DATE}) to (?P<end>{_DATE})\)$", re.S
)
_DEATH = re.compile(
    rf"^Death on (?P<date>{_DATE}) reported in (?P<ae>\S+); the (?P<form>.+) form could not be updated "
    r"\((?P<why>.*)\)\. Please record it\.$",
    re.S,
)
_DEATH_TERM = re.compile(
    r"^(?P<ae>\S+): the reported term (?P<term>'.*'|\".*\") names death, which is the outcome; please report the event "
    r"that caused it as the term in a follow-up\.$",
    re.S,
)
_NUMBER = re.compile(r"^-?\d")

SOFT = N_("%(field)s %(value)s is outside the expected range %(range)s; please confirm or correct")
EXPECTED = N_("%(message)s (expected: %(rule)s)")
WINDOW = N_("%(message)s (%(field)s %(date)s is outside the visit window %(start)s to %(end)s)")
DEATH = N_("Death on %(date)s reported in %(ae)s; the %(form)s form could not be updated (%(why)s). Please record it.")
DEATH_TERM = N_(
    "%(ae)s: the reported term %(term)s names death, which is the outcome; please report the event that caused it as "
    "the term in a follow-up."
)
#: A data check's comparison in words (every one of ``domain.wording.OPERATORS``), for the catalog.
OPERATOR_WORDS = {
    "lt": N_("is less than"),
    "le": N_("is at most"),
    "gt": N_("is more than"),
    "ge": N_("is at least"),
    "eq": N_("equals"),
    "ne": N_("differs from"),
    "in_window": N_("within the visit window"),
}


def query_words(
    protocol: Protocol, lang: str, gettext: Callable[[str], str], fdate: Callable[[str], str]
) -> Callable[[str | None], str]:
    """What says a stored query text on a page in ``lang`` (``fdate``: an ISO date in the viewer's calendar)."""

    def dates_in(text: str) -> str:
        return _ISO_DATE.sub(lambda m: fdate(m.group(0)), text)

    if lang == "en":  # stored in English: only its dates in the viewer's calendar
        return lambda text: "" if text is None else dates_in(text)

    def date(iso: str) -> str:
        return isolated(digits(fdate(iso), lang), lang)

    def number(text: str) -> str:
        return isolated(digits(text, lang), lang)

    # every form field's English label (as a soft-limit query names it) -> its label in ``lang``
    labels = {
        field_words(protocol, f.id, form_id=form.id) or f.id: field_words(protocol, f.id, lang, form_id=form.id) or f.id
        for form in protocol.forms
        for f in form.fields
    }
    by_length = sorted(labels, key=len, reverse=True)
    forms = {f.name: said(f, lang) for f in protocol.forms}
    operators = {k: gettext(v) for k, v in OPERATOR_WORDS.items()}

    def soft(text: str) -> str | None:
        m = _SOFT.match(text)
        if m is None:
            return None
        rest = m["rest"]
        for label in by_length:
            value = rest[len(label) + 1 :]
            if rest.startswith(label + " ") and _NUMBER.match(value):
                return gettext(SOFT) % {"field": labels[label], "value": number(value), "range": number(m["range"])}
        return None

    def data_check(text: str) -> str | None:
        for c in protocol.data_checks:
            if not text.startswith(c.message):
                continue
            rest = text[len(c.message) :]
            expected = _EXPECTED.match(rest)
            if expected is not None and expected["rule"] == check_words(protocol, c):
                rule = check_words(protocol, c, lang, operators, lambda n: digits(n, lang))
                return gettext(EXPECTED) % {"message": said(c, lang), "rule": rule}
            window = _WINDOW.match(rest)
            if window is not None and c.field is not None:
                home = c.field.partition(".")[0]
                if window["label"] == field_words(protocol, c.field, form_id=home):
                    return gettext(WINDOW) % {
                        "message": said(c, lang),
                        "field": field_words(protocol, c.field, lang, form_id=home),
                        "date": date(window["day"]),
                        "start": date(window["start"]),
                        "end": date(window["end"]),
                    }
            # the check's message in ``lang``; the rest, worded otherwise than the protocol now does, as stored
            return said(c, lang) + dates_in(rest)
        return None

    def death(text: str) -> str | None:
        m = _DEATH.match(text)
        if m is None or m["form"] not in forms:
            return None
        return gettext(DEATH) % {"date": date(m["date"]), "ae": m["ae"], "form": forms[m["form"]], "why": m["why"]}

    def death_term(text: str) -> str | None:
        m = _DEATH_TERM.match(text)
        if m is None:
            return None
        return gettext(DEATH_TERM) % {"ae": m["ae"], "term": m["term"]}

    def words(text: str | None) -> str:
        if text is None:
            return ""
        for reading in (soft, data_check, death, death_term):
            said_so = reading(text)
            if said_so is not None:
                return said_so
        return dates_in(text)

    return words
