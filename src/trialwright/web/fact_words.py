"""Codes and stored system texts said in the viewer's language, when a page is read.

The services store what happened in English or as a code, once, for every reader, export and the audit trail: a
reporting deadline's kind (``sae_to_sponsor``), a role (``unblinded_statistician``), the note the system writes
when it closes an automatic query because the value was corrected, the notices the two-person rule sends to a
role. A page says each in the viewer's language here, at read time, without changing what was stored:

- ``deadline_said``: a deadline kind (``domain.safety.DeadlineKind``) in words;
- ``role_said``: a role code by the role's name (``Role.label``); an unknown code as stored;
- ``close_note_said``: the system's own closing note (``services.forms.queries.CORRECTED_NOTE``, closed by the
  system actor) in words; a person's note as typed;
- ``notice_said``: a two-person rule notice (``services.approvals``: a request made, a request approved) read back
  from the fixed shape the service writes it in, its role by name and its kind in words; any other notice as
  stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from trialwright.domain.roles import SYSTEM_ACTORS, Role
from trialwright.services.forms import CORRECTED_NOTE
from trialwright.web.i18n import N_

__all__ = [
    "DEADLINE_WORDS",
    "REQUEST_DONE",
    "REQUEST_WORDS",
    "close_note_said",
    "deadline_said",
    "notice_said",
    "role_said",
]

#: Each reporting deadline's kind in words (``domain.safety.DeadlineKind``).
DEADLINE_WORDS = {
    "sae_to_sponsor": N_("SAE report to the sponsor"),
    "susar_initial": N_("SUSAR initial report"),
    "susar_complete": N_("SUSAR complete report"),
}
#: A two-person rule request's kind in words (``domain.approvals.RequestKind``): what is asked, what was done.
REQUEST_WORDS = {"create": N_("create"), "reset": N_("reset the password of"), "enable": N_("re-enable")}
REQUEST_DONE = {"create": N_("creation of"), "reset": N_("password reset of"), "enable": N_("re-enabling of")}

MADE = N_("Request %(request)s by %(by)s to %(kind)s the account %(username)s (%(role)s) awaits a second person")
APPROVED = N_(
    "Two-person rule: %(kind)s the account %(username)s (%(role)s), requested by %(by)s, approved by %(approver)s"
)
#: The sponsor contact's copy of a notice (``services.approvals``: ``To {contact}: {notice}``).
TO_SPONSOR = N_("To %(contact)s: %(notice)s")

_ROLE = "|".join(r.value for r in Role)
_KIND = "|".join(REQUEST_WORDS)
_MADE = re.compile(
    rf"Request (?P<request>\d+) by (?P<by>\S+) to (?P<kind>{_KIND}) the (?P<role>{_ROLE}) account (?P<username>\S+) "
    r"awaits a second person"
)
_APPROVED = re.compile(
    rf"Two-person rule: (?P<kind>{_KIND}) of the (?P<role>{_ROLE}) account (?P<username>\S+), requested by "
    r"(?P<by>\S+), approved by (?P<approver>\S+)"
)
_TO = re.compile(r"To (?P<contact>.+?): (?P<notice>(?:Request|Two-person rule: ).+)", re.S)
_LRI, _PDI = "\u2066", "\u2069"

Gettext = Callable[[str], str]


def deadline_said(kind: object, gettext: Gettext) -> str:
    """A deadline kind (its enum or its code) in words; an unknown code as stored."""
    code = str(getattr(kind, "value", kind))
    return gettext(DEADLINE_WORDS[code]) if code in DEADLINE_WORDS else code


def role_said(code: object, gettext: Gettext) -> str:
    """A role (its enum or its code) by its name; an unknown code as stored."""
    value = str(getattr(code, "value", code))
    try:
        return gettext(Role(value).label)
    except ValueError:
        return value


def close_note_said(note: str | None, closed_by: str | None, gettext: Gettext) -> str:
    """A query's closing note: the system's own note in words, a person's as typed."""
    if note == CORRECTED_NOTE and closed_by in SYSTEM_ACTORS:
        return gettext(CORRECTED_NOTE)
    return note or ""


def notice_said(subject: str, gettext: Gettext, rtl: bool = False) -> str:
    """A notice to a role in the viewer's language when it is one of the two-person rule's fixed shapes (its
    usernames, ids and the sponsor contact isolated on a right-to-left page); any other notice as stored."""

    def iso(text: str) -> str:
        return f"{_LRI}{text}{_PDI}" if rtl else text

    sponsor = _TO.fullmatch(subject)
    inner = sponsor.group("notice") if sponsor else subject
    said = ""
    for pattern, msgid, kinds in ((_MADE, MADE, REQUEST_WORDS), (_APPROVED, APPROVED, REQUEST_DONE)):
        match = pattern.fullmatch(inner)
        if match is None:
            continue
        values = {k: iso(v) for k, v in match.groupdict().items()}
        values["kind"] = gettext(kinds[match.group("kind")])
        values["role"] = role_said(match.group("role"), gettext)
        said = gettext(msgid) % values
        break
    if not said:
        return subject
    return gettext(TO_SPONSOR) % {"contact": iso(sponsor.group("contact")), "notice": said} if sponsor else said
