"""Codes and stored system texts said in the viewer's language, when a page is read.

The services store what happened in English or as a code, once, for every reader, export and the audit trail: a
reporting deadline's kind (``sae_to_sponsor``), a role (``unblinded_statistician``), the note the system writes
when it closes an automatic query because the value was corrected, the notices the two-person rule sends to a
role. A page says each in the viewer's language here, at read time, without changing what was stored:

- ``deadline_said``: a deadline kind (``domain.safety.DeadlineKind``) in words;
- ``role_said``: a role code by the role's name (``Role.label``); an unknown code as stored;
- ``close_note_said``: the system's own closing note (``services.forms.queries.CORRECTED_NOTE``, closed by the
  system actor) in words; a person's note as typed;
- ``notice_said``: a notice to a role read back from the fixed shape its service writes it in: the two-person rule's
  (``services.approvals``: a request made, a request approved; its role by name and its kind in words), a serious
  adverse event's (``services.safety.reports``: the site by its name, the term as reported), an emergency
  unblinding's (``services.randomization.unblinding``) and a DSMB decision's (``services.safety.dsmb_pause``: the
  decision in words); any other notice as stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from trialwright.domain.roles import SYSTEM_ACTORS, Role
from trialwright.services.forms import CORRECTED_NOTE
from trialwright.web.i18n import N_

__all__ = [
    "BAND_WORDS",
    "DEADLINE_WORDS",
    "DECISION",
    "DECISION_WORDS",
    "REQUEST_DONE",
    "REQUEST_WORDS",
    "SAE",
    "UNBLINDING",
    "band_said",
    "close_note_said",
    "deadline_said",
    "method_said",
    "notice_said",
    "role_said",
]

#: Each reporting deadline's kind in words (``domain.safety.DeadlineKind``).
DEADLINE_WORDS = {
    "sae_to_sponsor": N_("SAE report to the sponsor"),
    "susar_initial": N_("SUSAR initial report"),
    "susar_complete": N_("SUSAR complete report"),
}
#: A list's method as ``domain.randomization`` describes it (``ListMethod.describe``), stored with the list.
BLOCKS = N_("stratified permuted blocks of sizes %(sizes)s, ratio %(ratio)s")
SIMPLE = N_("simple randomization, ratio %(ratio)s")
MINIMIZATION = N_("minimization (%(detail)s)")
_BLOCKS = re.compile(r"stratified permuted blocks of sizes (?P<sizes>\d+(?:, \d+)*), ratio (?P<ratio>\d+(?::\d+)+)")
_SIMPLE = re.compile(r"simple randomization, ratio (?P<ratio>\d+(?::\d+)+)")
_MINIMIZATION = re.compile(r"minimization \((?P<detail>.+)\)", re.S)

#: The words the built-in risk bands derive (``domain.derivations``: ``news2_band``, ``priest_band``), by the
#: derivation's name and its value; a derived text of any other derivation is shown as derived.
BAND_WORDS = {
    "news2_band": {"high": N_("high"), "medium": N_("medium"), "low-medium": N_("low-medium"), "low": N_("low")},
    "priest_band": {"not low risk": N_("not low risk"), "low risk": N_("low risk")},
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
#: The notices the safety and unblinding services write (``services.safety.reports``, ``services.safety.dsmb_pause``,
#: ``services.randomization.unblinding``), each read back whole or left as stored.
SAE = N_("Serious adverse event %(ae_number)s (%(term)s) at %(site)s")
UNBLINDING = N_("Emergency unblinding of %(participant)s by %(by)s")
DECISION = N_("DSMB decision on the safety pause: %(decision)s")
DECISION_WORDS = {"resume": N_("resume"), "pause": N_("pause"), "stop": N_("stop")}
_SAE = re.compile(r"Serious adverse event (?P<ae_number>AE-\d+) \((?P<term>.*)\) at (?P<site>\S+)", re.S)
_UNBLINDING = re.compile(r"Emergency unblinding of (?P<participant>\S+) by (?P<by>\S+)")
_DECISION = re.compile(rf"DSMB decision on the safety pause: (?P<decision>{'|'.join(DECISION_WORDS)})")
_TO = re.compile(r"To (?P<contact>.+?): (?P<notice>(?:Request|Two-person rule: ).+)", re.S)
_LRI, _PDI = "\u2066", "\u2069"

Gettext = Callable[[str], str]


def band_said(item: object, value: str, gettext: Gettext) -> str:
    """A built-in risk band's derived word (``BAND_WORDS``) in the viewer's language; any other text as stored."""
    derived = getattr(item, "derived", None)
    words = BAND_WORDS.get(str(getattr(derived, "name", "")), {})
    return gettext(words[value]) if value in words else value


def method_said(method: str, gettext: Gettext, digits: Callable[[str], str], rtl: bool = False) -> str:
    """A randomization list's stored method (``ListMethod.describe``) in the viewer's language and digits, its
    ratio and a minimization's parameters isolated left to right; any other text as stored."""

    def iso(text: str) -> str:
        return f"{_LRI}{text}{_PDI}" if rtl else text

    if (blocks := _BLOCKS.fullmatch(method)) is not None:
        sizes = gettext(", ").join(digits(size) for size in blocks.group("sizes").split(", "))
        return gettext(BLOCKS) % {"sizes": sizes, "ratio": iso(digits(blocks.group("ratio")))}
    if (simple := _SIMPLE.fullmatch(method)) is not None:
        return gettext(SIMPLE) % {"ratio": iso(digits(simple.group("ratio")))}
    if (minimization := _MINIMIZATION.fullmatch(method)) is not None:
        return gettext(MINIMIZATION) % {"detail": iso(minimization.group("detail"))}
    return method


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


def notice_said(
    subject: str, gettext: Gettext, rtl: bool = False, site_name: Callable[[str], str] | None = None
) -> str:
    """A notice to a role in the viewer's language when it is one of the fixed shapes the services write (its
    usernames, ids, a reported term and the sponsor contact isolated on a right-to-left page; a site by
    ``site_name``); any other notice as stored."""

    def iso(text: str) -> str:
        return f"{_LRI}{text}{_PDI}" if rtl else text

    if (sae := _SAE.fullmatch(subject)) is not None:
        site = sae.group("site")
        return gettext(SAE) % {"ae_number": iso(sae.group("ae_number")), "term": iso(sae.group("term")),
                               "site": site_name(site) if site_name else iso(site)}  # fmt: skip
    if (unblinding := _UNBLINDING.fullmatch(subject)) is not None:
        return gettext(UNBLINDING) % {k: iso(v) for k, v in unblinding.groupdict().items()}
    if (decision := _DECISION.fullmatch(subject)) is not None:
        return gettext(DECISION) % {"decision": gettext(DECISION_WORDS[decision.group("decision")])}

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
