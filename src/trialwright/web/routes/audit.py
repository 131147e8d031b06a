"""The audit trail page (administrators, data managers, and monitors for their own sites); values the masking
policy hides from the reader show as ``masked`` (``trialwright.services.audit_trail``). Each entry's old and new
values are shown as a diff, one row per changed key said in words (``trialwright.domain.audit_changes``), read
from the entry as masked for the reader.

A load verifies only the entries written since the last verification checkpoint (at most
``audit_checkpoints.PAGE_CAP``) and shows the outcome of the last full ``trialwright audit verify``; it never reads
the whole trail nor runs the replay (``trialwright.services.audit_checkpoints``)."""

from __future__ import annotations

import datetime as dt
import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from trialwright.domain.audit_changes import audit_changes, canonical_units
from trialwright.domain.numerals import latin_digits
from trialwright.services import audit_checkpoints, audit_trail
from trialwright.web.audit_actions import action_words
from trialwright.web.audit_words import only_written_otherwise, value_words
from trialwright.web.deps import EngineDep, ProtocolDep, require_roles
from trialwright.web.paging import first_page_if_bad, pager
from trialwright.web.templating import Page, render_page
from trialwright.web.wording import change_words

router = APIRouter()
#: An audited value that is a moment with its offset (ISO), shown on the site's clock.
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)")


def _moment(value: object) -> dt.datetime | None:
    """``value`` as an aware moment when it is one written in ISO with its offset, else None."""
    if not isinstance(value, str) or not _MOMENT.fullmatch(value):
        return None
    return dt.datetime.fromisoformat(value)


def _typed_moment(value: object) -> tuple[dt.datetime, str] | None:
    """A moment stored with what was typed beside it (``2026-12-01T05:30+00:00 (entered 2026-12-01T09:00+03:30)``,
    ``domain.audit_changes``): the moment and the typed text; else None."""
    if not isinstance(value, str):
        return None
    stored, sep, typed = value.partition(" (entered ")
    moment = _moment(stored)
    return (moment, typed[:-1]) if sep and moment is not None and typed.endswith(")") else None


_PAGE_SIZE = 50


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    engine: EngineDep,
    protocol: ProtocolDep,
    page: Page = Depends(require_roles(*audit_trail.READERS)),  # noqa: B008
    actor: str | None = None,
    action: str | None = None,
    participant: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    assert page.user is not None
    user = page.user
    participant = latin_digits(participant) if participant else participant  # an id typed in Persian digits
    found = first_page_if_bad(
        lambda c: audit_trail.page_trail(
            engine,
            user,
            by=actor or None,
            action_prefix=action or None,
            participant=participant or None,
            cursor=c,
            limit=_PAGE_SIZE,
        ),
        cursor,
    )
    units = canonical_units(protocol)
    words = value_words(protocol, page.lang)
    context = {
        "rows": found.items,
        # Each entry's old and new values as a diff, read from the entry as masked for this reader.
        "changes": {e.seq: audit_changes(e, units) for e in found.items},
        "key_words": change_words(protocol, page.lang),
        # each action in the reader's words, its code beside it (``web.audit_actions``)
        "action_words": action_words(page.lang),
        # each value in the reader's words, the stored text beside it where that reads differently
        "value_words": lambda change, text: words(change, text),
        # the same value only written in the reader's digits or calendar: the stored text in a title attribute
        "only_written_otherwise": only_written_otherwise,
        # a moment stored in UTC (e.g. a consent's obtained_at) on its site's clock, the zone named
        "site_zone_of": lambda site: protocol.site(site).timezone if site in protocol.site_codes else None,
        "moment": _moment,
        "typed_moment": _typed_moment,
        "total": found.total,
        "filters": {"actor": actor or "", "action": action or "", "participant": participant or ""},
        "pager": pager(request, found),
        "chain": audit_checkpoints.check_new_entries(engine, by=f"web:{user.username}"),
        # Counts only: the disagreements name participants of every site (the CLI prints them).
        "full": audit_checkpoints.last_full_verify(engine),
    }
    return render_page(request, page, "audit/index.html", context)
