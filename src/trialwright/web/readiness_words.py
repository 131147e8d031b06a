"""The lock readiness report in the page's language: where each blocker is, and what blocks it.

``services.readiness`` gives each blocker as English text (``where``, ``detail``: what the command line and the API
print) and as ids and values (``Blocker.visit``, ``form``, ``fields``, ``query``, ``rule`` and ``values``). A page
says the latter: the visit and the form by their names in the viewer's language, a field by its label, a state,
a policy level and an outcome in words, a date in the viewer's calendar, a number in their digits. A coherence
breach's message names its fields by their labels and says its rule in the page's words (``wording.RULES``), its
moments in the viewer's calendar and digits. A blocker without a known ``rule`` is shown as
the service wrote it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from trialwright.domain.roles import Role
from trialwright.domain.wording import field_words
from trialwright.protocol import Protocol
from trialwright.services.lock import LockState
from trialwright.services.readiness import Blocker, BlockerKind, Readiness
from trialwright.web.i18n import N_, text_direction, translations
from trialwright.web.localized import digits, names
from trialwright.web.wording import CRF_INPUTS, page_words, say

__all__ = [
    "REVIEWED",
    "RULE_WORDS",
    "WITHHELD",
    "WITHHELD_REVIEWED",
    "banner_said",
    "blocker_said",
    "blocker_where",
    "moments_said",
    "refusal_said",
    "review_said",
    "withheld_said",
]

#: ``services.readiness.RULES`` as message ids (a visit's own by its state).
RULE_WORDS = {
    "form_not_started": N_("not started; the lock policy needs %(policy)s"),
    "form_state": N_("%(state)s; the lock policy needs %(policy)s"),
    "query": N_("%(status)s: %(text)s"),
    "query_on": N_("%(status)s on %(field)s: %(text)s"),
    "sae_outcome": N_("last report (%(which)s) records the outcome %(outcome)s; a final follow-up records one of "
                      "%(finals)s"),
    "overdue": N_("overdue: neither held nor recorded as missed (its window closed on %(until)s)"),
    "due": N_("due: neither held nor recorded as missed (its window is open until %(until)s)"),
    "log_state": N_("not %(state)s; the lock policy needs %(policy)s"),
}  # fmt: skip
_QUERY, _FOLLOW_UP = N_("query %(n)s"), N_("follow-up %(n)s")
#: ``services.readiness.WITHHELD`` as the pages say it: the forms kept from a masked reader, never what is on them.
WITHHELD = N_(
    "Forms kept from you because they reveal the arm (reveals_arm): %(forms)s. Nothing of them is shown here, not "
    "even whether anything on them blocks the lock: the lock needs an unmasked reviewer for them (%(reviewers)s)."
)
#: ``services.readiness.WITHHELD_REVIEWED`` as the pages say it (then ``REVIEWED``): while the review stands.
WITHHELD_REVIEWED = N_(
    "Forms kept from you because they reveal the arm (reveals_arm): %(forms)s. Nothing of them is shown here; an "
    "unmasked reviewer found them ready."
)
#: ``services.readiness.REVIEWED`` as the pages say it: the unmasked reviewer's review, while it stands.
REVIEWED = N_("Reviewed by %(user)s on %(at)s UTC.")
#: ``services.lock.lock_trial``'s refusals as the pages say them: what blocks the lock (counted; the page lists the
#: first), nothing the reader may see, and what a masked reader does once the forms kept from them are reviewed.
LOCK_BLOCKED = N_("%(counted)s blocks the lock; resolve it, or override with a reason and your password.")
LOCK_BLOCKED_MANY = N_("%(counted)s block the lock; resolve them, or override with a reason and your password.")
#: How many blockers, of each kind (``services.readiness.Readiness.counted``), one and more.
COUNTED = (N_("%(n)s blocker (%(kinds)s)"), N_("%(n)s blockers (%(kinds)s)"))
KIND_COUNTS = {
    BlockerKind.FORM: (N_("%(n)s form not ready"), N_("%(n)s forms not ready")),
    BlockerKind.LOG: (N_("%(n)s log entry not ready"), N_("%(n)s log entries not ready")),
    BlockerKind.QUERY: (N_("%(n)s open query"), N_("%(n)s open queries")),
    BlockerKind.SAE: (N_("%(n)s SAE without a final follow-up"), N_("%(n)s SAEs without a final follow-up")),
    BlockerKind.VISIT: (N_("%(n)s visit neither done nor missed"), N_("%(n)s visits neither done nor missed")),
    BlockerKind.COHERENCE: (N_("%(n)s coherence breach"), N_("%(n)s coherence breaches")),
}
NOTHING_SEEN = N_("Nothing you may see blocks the lock.")
ONCE_REVIEWED = N_("Once an unmasked reviewer has found them ready, override with a reason and your password.")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _field(protocol: Protocol, lang: str, form: str | None, ref: str) -> str:
    """A field (``form.field``, or a field of ``form``) by its label in ``lang``; as given when none is found."""
    full = ref if "." in ref or form is None else f"{form}.{ref}"
    return field_words(protocol, full, lang, form_id=form) or ref


def blocker_where(b: Blocker, protocol: Protocol, lang: str) -> str:
    """Where a blocker is: its visit, form and fields by their names, a query by its number, an SAE by its number."""
    gettext = translations(lang).gettext
    said = names(protocol, lang)
    parts: list[str] = []
    if b.query is not None:
        parts.append(gettext(_QUERY) % {"n": digits(b.query, lang)})
    if "log" in b.values:  # a log entry (or a query on one), and the field the query names
        log = str(b.values["log"])
        parts.append(f"{said['log_name'](log)} #{digits(b.values['sequence'], lang)}")
        if b.rule == "query" and b.values.get("field"):
            parts.append(said["log_field_name"](log, str(b.values["field"])))
        return " · ".join(parts)
    if b.visit is not None:
        parts.append(said["visit_name"](b.visit))
    if b.form is not None:
        parts.append(said["form_name"](b.form))
    if b.fields:
        comma = "، " if text_direction(lang) == "rtl" else ", "
        parts.append(comma.join(_field(protocol, lang, b.form, f) for f in b.fields))
    return " · ".join(parts) if parts else b.where


def blocker_said(
    b: Blocker, protocol: Protocol, lang: str, fdate: Callable[[object], str], text_said: Callable[[str], str]
) -> str:
    """What blocks the lock, in ``lang`` (``fdate``: a date in the viewer's calendar; ``text_said``: a query's stored
    text as the page says it)."""
    gettext = translations(lang).gettext
    v = b.values
    comma = "، " if text_direction(lang) == "rtl" else ", "
    if b.rule in ("form_not_started", "form_state"):
        return gettext(RULE_WORDS[b.rule]) % {"state": gettext(str(v.get("state", ""))),
                                               "policy": gettext(str(v["policy"]))}  # fmt: skip
    if b.rule == "log_state":
        return gettext(RULE_WORDS["log_state"]) % {"state": gettext(str(v["policy"])),
                                                    "policy": gettext(str(v["policy"]))}  # fmt: skip
    if b.rule == "query":
        values = {"status": gettext(str(v["status"])), "text": text_said(str(v["text"]))}
        if v.get("field") and "log" in v:
            field = names(protocol, lang)["log_field_name"](str(v["log"]), str(v["field"]))
            return gettext(RULE_WORDS["query_on"]) % {**values, "field": field}
        if v.get("field"):
            return gettext(RULE_WORDS["query_on"]) % {**values, "field": _field(protocol, lang, b.form, v["field"])}
        return gettext(RULE_WORDS["query"]) % values
    if b.rule == "sae_outcome":
        sequence = int(v["sequence"])
        which = gettext("initial") if sequence == 0 else gettext(_FOLLOW_UP) % {"n": digits(sequence, lang)}
        return gettext(RULE_WORDS["sae_outcome"]) % {
            "which": which,
            "outcome": gettext(str(v["outcome"]).replace("_", " ")),
            "finals": comma.join(gettext(o.replace("_", " ")) for o in v["finals"]),
        }
    if b.rule == "visit" and v.get("status") in ("due", "overdue"):
        return gettext(RULE_WORDS[str(v["status"])]) % {"until": fdate(v["until"])}
    if b.rule == "coherence":
        return say([str(v["message"])], page_words(protocol, lang, CRF_INPUTS), lang,
                   values_said=moments_said(fdate, lang))[0]  # fmt: skip
    return b.detail


def moments_said(fdate: Callable[[object], str], lang: str) -> dict[str, Callable[[str], str]]:
    """How a coherence rule's values are said: its moments (``2024-05-01`` or ``2024-05-01 09:30``, site time) with
    the date in the viewer's calendar and the time in their digits, a number and a range in their digits."""

    def moment(text: str) -> str:
        if not _DAY.match(text):
            return digits(text, lang)
        rest = text[10:].removeprefix("T").removeprefix(" ")
        return f"{fdate(text[:10])} {digits(rest, lang)}" if rest else fdate(text[:10])

    return {"moment": moment, "earlier": moment, "value": lambda t: digits(t, lang), "range": lambda t: digits(t, lang)}


def withheld_said(report: Readiness, protocol: Protocol, lang: str) -> str | None:
    """What a masked reader is told of the forms kept from them (``Readiness.withheld``), in ``lang``: the forms by
    their names, the unmasked reviewers by their roles' names; None when nothing is withheld."""
    if not report.withheld:
        return None
    gettext = translations(lang).gettext
    comma = "، " if text_direction(lang) == "rtl" else ", "
    form_name = names(protocol, lang)["form_name"]
    forms = comma.join(form_name(f) for f in report.withheld)
    reviewed = review_said(report, lang)
    if reviewed is not None:
        return f"{gettext(WITHHELD_REVIEWED) % {'forms': forms}} {reviewed}"
    reviewers = comma.join(gettext(Role(r).label) for r in report.reviewers) or gettext("none")
    return gettext(WITHHELD) % {"forms": forms, "reviewers": reviewers}


def review_said(report: Readiness, lang: str) -> str | None:
    """The unmasked reviewer's review of the forms withheld from masked readers, while it stands (``REVIEWED``), in
    ``lang``: who and when (UTC, in its digits); None when none stands."""
    if report.review is None:
        return None
    at = f"{report.review.at.astimezone(dt.UTC):%Y-%m-%d %H:%M}"
    return translations(lang).gettext(REVIEWED) % {"user": report.review.by, "at": digits(at, lang)}


def banner_said(lock: LockState, protocol: Protocol, lang: str) -> str | None:
    """The lock's banner (``LockState.banner``) in ``lang``: the catalog's words, the count and the UTC date in its
    digits, the forms by their names and the unmasked reviewers by their roles' names; None when it has none."""
    gettext = translations(lang).gettext
    return lock.banner_said(
        gettext,
        lambda text: digits(text, lang),
        form_name=names(protocol, lang)["form_name"],
        role_name=lambda role: gettext(Role(role).label),
        comma="، " if text_direction(lang) == "rtl" else ", ",
    )


def refusal_said(report: Readiness, protocol: Protocol, lang: str) -> str:
    """Why the lock was refused (``services.lock.LockBlocked``, whose ``readiness`` is ``report``), in ``lang``:
    how many blockers (each is on the page) or that nothing the reader may see blocks it, and the forms kept from a
    masked reader, in the same words whatever those forms hold."""
    gettext = translations(lang).gettext
    n = len(report.blockers)
    kept = withheld_said(report, protocol, lang)
    if n:
        comma = "، " if text_direction(lang) == "rtl" else ", "
        kinds = comma.join(gettext(KIND_COUNTS[k][k_n != 1]) % {"n": digits(str(k_n), lang)}
                           for k, k_n in report.counts().items() if k_n)  # fmt: skip
        counted = gettext(COUNTED[n != 1]) % {"n": digits(str(n), lang), "kinds": kinds}
        said = gettext(LOCK_BLOCKED if n == 1 else LOCK_BLOCKED_MANY) % {"counted": counted}
        return said if kept is None else f"{said} {kept}"
    return " ".join([gettext(NOTHING_SEEN), kept or "", gettext(ONCE_REVIEWED)]).replace("  ", " ")
