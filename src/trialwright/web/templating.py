"""Rendering pages: the Jinja2 environment, and ``render_page`` which adds what every page needs.

Each render gets the request's language (``_``, ``gettext``, ``ngettext`` bound to it, per render, so
concurrent requests in other languages never mix), text direction, calendar preference (``fdate`` and
``fdatetime`` honour it), the signed-in user, the navigation for their role and the CSRF token. A page about
one site's participant passes ``site_zone`` (the site's IANA zone): ``fdatetime`` then shows its times on
the site's clock; other pages show them on the viewer's sites' clock (``Page.zone``: the zone the viewer's
sites, or else all the trial's sites, share; UTC only when they keep different clocks). Every time shown
names its zone. Every date and time shown (``fdate``, ``fdatetime``, ``flocal``, ``fdates_in``) and every number
(``|digits``) is written in the page's digits (Persian on Persian pages); identifiers and codes are not (docs/i18n.md,
"Digits"). Date inputs are written in the viewer's calendar (``entry_text``, ``entry_examples``; the
``date_input`` macro of ``_dates.html``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context

from trialwright import __version__
from trialwright.domain.calendars import entry_examples, entry_text, format_date, format_datetime
from trialwright.domain.forms import StoredValue, number_text
from trialwright.services import audit_trail, sharing
from trialwright.services.users import UserView
from trialwright.web.fact_words import band_said, close_note_said, deadline_said, method_said, notice_said, role_said
from trialwright.web.i18n import LANGUAGES, text_direction, translations
from trialwright.web.localized import (
    arm_said,
    choice_said,
    digits,
    isolated,
    names,
    said,
    shown,
    unit,
    unit_of,
    unit_option,
)
from trialwright.web.navigation import PARTICIPANT_READERS, by_task
from trialwright.web.query_words import query_words

__all__ = ["NavItem", "Page", "environment", "render_page"]

#: An ISO date within text (not part of a longer number or a date and time's own digits).
_ISO_DATE = re.compile(r"\u2066[^\u2069]*\u2069|(?<![\d-])\d{4}-\d{2}-\d{2}(?![\d])")

environment = Environment(
    loader=PackageLoader("trialwright.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@pass_context
def _digits_filter(context: Context, value: object) -> str:
    """``{{ n|digits }}``: a number (a count, a version, a page range) in the page's digits (Persian on
    Persian pages). The one way templates show a number a person reads; never used on an input's value."""
    return digits(value, context.get("lang", "en"))


environment.filters["digits"] = _digits_filter


@dataclass(frozen=True)
class NavItem:
    """A navigation link; ``label`` is an English message id, translated when shown."""

    href: str
    label: str


@dataclass(frozen=True)
class Page:
    """What the request knows about its viewer, for every page."""

    user: UserView | None
    lang: str
    calendar: str
    csrf_token: str
    nav: tuple[NavItem, ...] = field(default_factory=tuple)
    trial_name: str | None = None
    #: The IANA zone times are shown in when a page is about no one site (None: UTC).
    zone: str | None = None
    #: The languages the page offers (the protocol's declared ones this app has pages in), the default first.
    languages: tuple[str, ...] = ("en", "fa")
    #: The calendar preferences the page offers (the protocol's ``calendars``), the default first.
    calendars: tuple[str, ...] = ("both", "gregorian", "jalali")


def render_page(
    request: Request, page: Page, template_name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render a page template with the viewer's language, calendar, navigation and CSRF token."""
    t = translations(page.lang)

    def fdate(value: dt.date | str | None) -> str:
        if isinstance(value, str):  # an ISO date held as text (a screening value, a report's JSON)
            try:
                return digits(format_date(dt.date.fromisoformat(value), page.calendar), page.lang)
            except ValueError:
                return value
        return "" if value is None else digits(format_date(value, page.calendar), page.lang)

    def fdates_in(text: str | None) -> str:
        """Stored text (a query, a rule's message) with its ISO dates written in the viewer's calendar."""
        # an isolated span (LRI ... PDI: what was typed, an example) is quoted as written, never converted
        return "" if text is None else _ISO_DATE.sub(lambda m: m.group(0) if m.group(0)[0] == "\u2066" else
                                                     fdate(m.group(0)), str(text))  # fmt: skip

    zone = (context or {}).get("site_zone") or page.zone
    protocol = getattr(request.app.state, "protocol", None)

    def fdatetime(value: dt.datetime | None) -> str:
        if value is None:
            return ""
        return digits(format_datetime(value, page.calendar, ZoneInfo(zone) if zone else None), page.lang)

    def flocal(value: dt.datetime | None, zone: str) -> str:
        """A moment on a site's clock (e.g. a reporting deadline), in the preferred calendars."""
        return "" if value is None else digits(format_datetime(value, page.calendar, ZoneInfo(zone)), page.lang)

    def value_said(item: object, value: object) -> str:
        """A stored value of a screening or form field (``item``; None when the page has no field for it) as a
        person reads it: a date in the viewer's calendar, a date and time on the page's clock, a choice by its
        label, yes/no in words, a number in the page's digits; free text as typed."""
        kind = str(getattr(item, "type", ""))
        if value is None or value == "":
            return "—"
        if kind == "date" and isinstance(value, str | dt.date):
            return fdate(value)
        if kind == "datetime" and isinstance(value, str):
            try:
                return fdatetime(dt.datetime.fromisoformat(value))
            except ValueError:
                return value
        if kind == "text" and isinstance(value, str):
            return band_said(item, value, t.gettext)  # a built-in risk band in words; other text as typed
        return choice_said(item, value, page.lang, t.gettext)

    def stored_said(item: object, stored: StoredValue | None) -> str:
        """A form field's stored value (``StoredValue``) as a person reads it: its value (``value_said``), a
        censored number (< LLOQ, > ULOQ) in the page's digits, not done or not applicable in words."""
        if stored is None:
            return "—"
        if stored.status in ("below_lloq", "above_uloq"):
            sign = "<" if stored.status == "below_lloq" else ">"
            return f"{sign} {digits(number_text(stored.limit or 0.0), page.lang)}"
        if stored.status in ("not_done", "not_applicable"):
            return t.gettext(stored.status.replace("_", " "))
        if isinstance(stored.value, float):
            return digits(number_text(stored.value), page.lang)
        return value_said(item, stored.value)

    def meaning_said(meaning: str | None) -> str:
        """A signature's stored (English) meaning in the page's language when it is the protocol's own meaning
        (``signature_meaning_translations``); a meaning an earlier version declared, as stored."""
        if protocol is not None and meaning == protocol.signature_meaning:
            return str(protocol.signature_meaning_translations.get(page.lang) or protocol.signature_meaning)
        return meaning or ""

    readers: list[Any] = []  # what says a query's text, made on first use (it reads every field's label)

    def query_said(text: str | None) -> str:
        """A stored query's text in the page's language (``trialwright.web.query_words``)."""
        if protocol is None:
            return fdates_in(text)
        if not readers:
            readers.append(query_words(protocol, page.lang, t.gettext, fdate))
        said_so: str = readers[0](text)
        return said_so

    full = {
        "request": request,
        "page": page,
        "user": page.user,
        "lang": page.lang,
        "dir": text_direction(page.lang),
        "languages": {code: LANGUAGES[code] for code in page.languages},
        "calendars": page.calendars,
        "calendar": page.calendar,
        "csrf_token": page.csrf_token,
        "nav": page.nav,
        "nav_tasks": by_task(page.nav),
        "trial_name": page.trial_name,
        # whether a "history" link to the audit trail would open for this viewer (else it is not offered)
        "reads_audit": page.user is not None and page.user.role in audit_trail.READERS,
        "reads_participants": page.user is not None and page.user.role in PARTICIPANT_READERS,
        "reads_data_access": page.user is not None and page.user.role in sharing.READERS,
        "version": __version__,
        "path": request.url.path,
        "_": t.gettext,
        "gettext": t.gettext,
        "ngettext": t.ngettext,
        "fdate": fdate,
        "fdatetime": fdatetime,
        "fdates_in": fdates_in,
        "flocal": flocal,
        "said": lambda item: said(item, page.lang),
        "shown": lambda value: shown(value, page.lang, t.gettext),
        "digits": lambda text: digits(text, page.lang),
        "unit": unit,
        "unit_of": lambda item: unit_of(item, page.lang),
        "unit_option": lambda item: unit_option(item, page.lang),
        "value_said": value_said,
        "stored_said": stored_said,
        "meaning_said": meaning_said,
        "isolated": lambda text: isolated(text, page.lang),
        "query_said": query_said,
        "deadline_said": lambda kind: deadline_said(kind, t.gettext),
        "method_said": lambda method: method_said(
            method, t.gettext, lambda text: digits(text, page.lang), text_direction(page.lang) == "rtl"
        ),
        "role_said": lambda code: role_said(code, t.gettext),
        "close_note_said": lambda q: close_note_said(q.close_note, q.closed_by, t.gettext),
        "notice_said": lambda subject, site_name=None: notice_said(
            subject, t.gettext, text_direction(page.lang) == "rtl", site_name
        ),
        "site_name": lambda code: code,  # no protocol loaded: a site by its code
        **(names(protocol, page.lang) if protocol is not None else {}),
        "arm_name": lambda arm: arm if protocol is None else arm_said(protocol, arm, page.lang),
        "entry_text": lambda value, time=False: entry_text(value, page.calendar, time),
        "entry_examples": lambda time=False: entry_examples(page.calendar, time),
        **(context or {}),
    }
    html = environment.get_template(template_name).render(full)
    return HTMLResponse(html, status_code=status_code)
