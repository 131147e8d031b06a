"""Lock readiness: what blocks the database lock, per site and participant.

A blocker is one of:

- **form**: a started form short of the state the protocol's ``lock_policy.forms`` asks for (complete, verified
  by a monitor, or signed by an investigator; a form the data manager locked meets every level), or a form due
  at a visit that was held but never started;
- **log**: a log entry (concomitant medication, medical history, ...) short of the level ``lock_policy.forms`` asks
  for: verified by a monitor, or signed by an investigator (an entry is complete once added; a removed entry is out
  of the data and never blocks);
- **query**: a query not closed (open, or answered and not yet closed), on a form, a log entry or the participant;
- **sae**: a serious adverse event whose last report's outcome is not one of ``lock_policy.sae_final_outcomes``
  (no final follow-up yet);
- **visit**: a scheduled visit neither held nor recorded as missed whose window is open (due) or has closed
  (overdue); a participant withdrawn from follow-up has no visits left to hold, nor one dead before a visit's day,
  nor one whose window of a visit an amendment added had closed before the amendment took effect
  (``domain.visits.added_after_window``): such a visit is not a blocker but is listed in ``Readiness.not_due``, with
  the amendment, never left out silently;
- **coherence**: a hard coherence rule the stored data break (``trialwright.services.coherence.recheck_trial``).

The report never names an arm. ``database lock`` refuses while it lists anything, unless the data manager
overrides (``trialwright.services.lock.lock_trial``).

A form that reveals the arm (``forms[].reveals_arm``) is kept from a reader the trial masks by the one guard,
``trialwright.domain.masking.kept_forms``: their report lists and counts nothing of it (its forms' states, the
queries on it, the coherence breaches of its fields), and does not say whether anything on it blocks the lock, for
even a count of its open items may differ by arm (a participant's count is read off the report by comparing two
readings). It names the forms withheld (``Readiness.withheld``: from the protocol, the same whatever the data) and
is never ``ready`` while it withholds one: the lock needs an unmasked reviewer for those forms
(``Readiness.reviewers``).

That reviewer records their finding (``review_withheld``: re-authenticated, with a reason, refused unless the forms
are ready as they see them; stored in ``withheld_reviews`` and audited). A review stands while nothing on those
forms changed since (``standing_review``: a salted digest of their records, the queries on them and the visits
that hold them, under the same protocol version); while it stands a masked reader is told who reviewed them and
when (``Readiness.review``), never what they found nor the reviewer's reason (it may speak of the arms).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from trialwright.domain.calendars import local_date
from trialwright.domain.forms import FormState
from trialwright.domain.masking import kept_forms, masked_roles
from trialwright.domain.roles import Role, only_roles_may
from trialwright.domain.text import checked_text
from trialwright.domain.visits import HeldVisit, ScheduledVisit, VisitAddition, VisitStatus, schedule
from trialwright.protocol import Protocol
from trialwright.services import audit, clock
from trialwright.services.coherence import recheck_trial
from trialwright.services.deaths import death_of
from trialwright.services.errors import FormError, denied
from trialwright.services.forms.common import _tz
from trialwright.services.forms.visits import _references
from trialwright.services.log_views import REMOVED
from trialwright.services.reauth import require_password
from trialwright.services.trial import current_protocol, visit_additions_in
from trialwright.services.users import AccessPolicy, UserView
from trialwright.store.data_tables import form_records, queries, visit_records, withheld_reviews
from trialwright.store.engine import read_scope, session_scope
from trialwright.store.log_tables import log_entries
from trialwright.store.safety_tables import adverse_events, ae_reports
from trialwright.store.screening_tables import participants, withdrawals

__all__ = [
    "NOT_DUE",
    "READERS",
    "REVIEWED",
    "RULES",
    "WITHHELD",
    "WITHHELD_REVIEWED",
    "Blocker",
    "BlockerKind",
    "NotDueVisit",
    "Readiness",
    "WithheldReview",
    "lock_readiness",
    "meets_policy",
    "on_forms",
    "review_withheld",
    "standing_review",
    "withheld_forms",
]

#: What ``Blocker.rule`` may be: a form not started or short of the lock policy's level, a query not closed, an SAE
#: without a final follow-up, a visit neither held nor missed, a coherence breach (its message as the rule says it).
RULES = ("form_not_started", "form_state", "query", "sae_outcome", "visit", "coherence")
#: Who reads the readiness report.
READERS = (Role.DATA_MANAGER, Role.MONITOR)
#: What a reader the trial masks is told of the forms kept from them (``Readiness.withheld``): which forms, never
#: what or how much blocks there; ``reviewers``: the readers of this report the trial does not mask.
WITHHELD = (
    "forms kept from you because they reveal the arm (reveals_arm): %(forms)s; nothing of them is shown, not even "
    "whether anything on them blocks the lock: the lock needs an unmasked reviewer for them (%(reviewers)s)"
)
#: What a masked reader is told of those forms instead while an unmasked reviewer's review of them stands (a review is
#: recorded only when the reviewer finds them ready); ``review``: ``REVIEWED``.
WITHHELD_REVIEWED = (
    "forms kept from you because they reveal the arm (reveals_arm): %(forms)s; nothing of them is shown; an unmasked "
    "reviewer found them ready (%(review)s)"
)
#: What every reader is told while an unmasked reviewer's review of those forms stands (``WithheldReview``).
REVIEWED = "reviewed by %(user)s on %(at)s UTC"
#: How many blockers on the forms a refused review lists one by one (the rest are counted).
REVIEW_SHOWN = 20
#: A visit an amendment added after its window had closed, as the report lists it (not a blocker).
NOT_DUE = (
    "not due: added by protocol version %(version)s (effective %(effective)s) after the window closed on %(latest)s"
)
#: The visit statuses that block: the window is open, or has closed without the visit held or missed.
BLOCKING_VISITS = (VisitStatus.DUE, VisitStatus.OVERDUE)


class BlockerKind(StrEnum):
    """What kind of thing blocks the lock (in the order the report lists them)."""

    FORM = "form"
    LOG = "log"
    QUERY = "query"
    SAE = "sae"
    VISIT = "visit"
    COHERENCE = "coherence"


_PLURAL = {
    BlockerKind.FORM: ("form not ready", "forms not ready"),
    BlockerKind.LOG: ("log entry not ready", "log entries not ready"),
    BlockerKind.QUERY: ("open query", "open queries"),
    BlockerKind.SAE: ("SAE without a final follow-up", "SAEs without a final follow-up"),
    BlockerKind.VISIT: ("visit neither done nor missed", "visits neither done nor missed"),
    BlockerKind.COHERENCE: ("coherence breach", "coherence breaches"),
}


@dataclass(frozen=True)
class Blocker:
    """One thing that blocks the lock: where it is and what is wrong (never an arm)."""

    kind: BlockerKind
    site: str
    participant_id: str
    where: str  # e.g. "day7 labs", "conmeds entry 2", "query 12", "AE-0003", "visit day28"
    detail: str
    #: The same, as ids and values a page says in its own words (``where`` and ``detail`` are the English text the
    #: command line and the API keep): the visit, the form, the fields (``form.field``), the query's number, and
    #: ``rule``, one of ``RULES``, with its values in ``values``.
    visit: str | None = None
    form: str | None = None
    fields: tuple[str, ...] = ()
    query: int | None = None
    rule: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """``RAZ-001 day7 labs: draft; the lock policy needs signed``."""
        return f"{self.participant_id} {self.where}: {self.detail}"


@dataclass(frozen=True)
class NotDueVisit:
    """A visit neither held nor missed that is not due: an amendment added it after its window had closed."""

    site: str
    participant_id: str
    visit: str
    version: str  # the protocol version the amendment produced
    effective: dt.date  # the day that version took effect
    latest: dt.date  # the last day of the participant's window

    def detail(self) -> str:
        """``not due: added by protocol version 1.1 (effective 2026-07-01) after the window closed on 2026-03-18``."""
        return NOT_DUE % {"version": self.version, "effective": self.effective.isoformat(),
                          "latest": self.latest.isoformat()}  # fmt: skip

    def text(self) -> str:
        """``TEH-001 visit day14: not due: ...``."""
        return f"{self.participant_id} visit {self.visit}: {self.detail()}"


@dataclass(frozen=True)
class WithheldReview:
    """An unmasked reviewer's standing finding that the forms kept from masked readers are ready: who, when, which
    forms, under which protocol version (never their reason, which may speak of the arms, nor anything of the
    forms)."""

    by: str
    role: str
    at: dt.datetime
    forms: tuple[str, ...]
    protocol_version: str

    def said(self) -> str:
        """``reviewed by mon on 2026-01-02 03:04 UTC``."""
        return REVIEWED % {"user": self.by, "at": f"{self.at.astimezone(dt.UTC):%Y-%m-%d %H:%M}"}


@dataclass(frozen=True)
class Readiness:
    """The readiness report: every blocker, in site, participant and kind order; ready when there is none."""

    taken_at: dt.datetime
    site: str | None  # the site asked for (None: every site the reader sees)
    forms_policy: str
    participants: int  # participants looked at
    blockers: tuple[Blocker, ...]
    #: The forms kept from the reader (``domain.masking.kept_forms``), of which nothing is listed or counted.
    withheld: tuple[str, ...] = ()
    #: The roles that read this report and see those forms (the unmasked reviewers; empty when none withheld).
    reviewers: tuple[str, ...] = ()
    #: Visits an amendment added after their window had closed: not due, so not blockers, but listed.
    not_due: tuple[NotDueVisit, ...] = ()
    #: The unmasked reviewer's review of the forms withheld from masked readers, while it stands (None: none).
    review: WithheldReview | None = None

    @property
    def ready(self) -> bool:
        """Whether nothing blocks the lock; never while forms are withheld from the reader (it is not known to
        them)."""
        return not self.blockers and not self.withheld

    def withheld_text(self) -> str | None:
        """What the reader is told of the forms kept from them (``WITHHELD``); None when none is."""
        if not self.withheld:
            return None
        if self.review is not None:
            return WITHHELD_REVIEWED % {"forms": ", ".join(self.withheld), "review": self.review.said()}
        reviewers = " or ".join(r.replace("_", " ") for r in self.reviewers) or "none reads this report"
        return WITHHELD % {"forms": ", ".join(self.withheld), "reviewers": reviewers}

    def counts(self) -> dict[BlockerKind, int]:
        """How many blockers of each kind (every kind, zero included), in report order."""
        found = Counter(b.kind for b in self.blockers)
        return {k: found[k] for k in BlockerKind}

    def by_site(self) -> dict[str, dict[BlockerKind, int]]:
        """Per site: how many blockers of each kind (sites with a blocker only)."""
        out: dict[str, dict[BlockerKind, int]] = {}
        for b in self.blockers:
            out.setdefault(b.site, dict.fromkeys(BlockerKind, 0))[b.kind] += 1
        return out

    def by_participant(self) -> dict[str, tuple[Blocker, ...]]:
        """Per participant: their blockers."""
        out: dict[str, list[Blocker]] = {}
        for b in self.blockers:
            out.setdefault(b.participant_id, []).append(b)
        return {k: tuple(v) for k, v in out.items()}

    def headline(self) -> str:
        """``12 blockers (5 forms not ready, 7 open queries)``, or ``nothing blocks the lock``."""
        withheld = self.withheld_text()
        return self.counted() if withheld is None else f"{self.counted()}; {withheld}"

    def counted(self) -> str:
        """The headline without the forms withheld: ``12 blockers (...)``, ``nothing blocks the lock``, or (to a
        reader from whom forms are withheld) ``nothing you may see blocks the lock``."""
        if not self.blockers:
            return "nothing you may see blocks the lock" if self.withheld else "nothing blocks the lock"
        parts = [f"{n} {_PLURAL[k][n != 1]}" for k, n in self.counts().items() if n]
        total = len(self.blockers)
        return f"{total} {'blocker' if total == 1 else 'blockers'} ({', '.join(parts)})"

    def first_text(self, limit: int) -> str:
        """The first ``limit`` blockers, and how many more."""
        shown = "; ".join(b.text() for b in self.blockers[:limit])
        more = len(self.blockers) - limit
        return f"First: {shown}" + (f"; and {more} more." if more > 0 else ".")

    def summary(self, limit: int | None = None) -> str:
        """The report as plain text: the headline, counts per site, then each participant's blockers."""
        lines = [f"Lock readiness at {self.taken_at:%Y-%m-%d %H:%M} UTC (forms must be {self.forms_policy}): "
                 f"{self.headline()} over {self.participants} participant(s)."]  # fmt: skip
        if self.review is not None and not self.withheld:  # the reviewer's own report: their review stands
            lines.append(f"Forms kept from masked readers ({', '.join(self.review.forms)}): {self.review.said()}.")
        for site, counts in self.by_site().items():
            lines.append(f"{site}: " + ", ".join(f"{n} {_PLURAL[k][n != 1]}" for k, n in counts.items() if n))
        shown = self.blockers if limit is None else self.blockers[:limit]
        lines.extend(f"  {b.site} {b.text()}" for b in shown)
        if limit is not None and len(self.blockers) > limit:
            lines.append(f"  ... and {len(self.blockers) - limit} more")
        if self.not_due:
            n = len(self.not_due)
            lines.append(f"Not due: {n} {'visit' if n == 1 else 'visits'} an amendment added after the window closed.")
            listed = self.not_due if limit is None else self.not_due[:limit]
            lines.extend(f"  {v.site} {v.text()}" for v in listed)
            if limit is not None and n > limit:
                lines.append(f"  ... and {n - limit} more")
        return "\n".join(lines)


def meets_policy(policy: str, state: FormState, verified: bool) -> bool:
    """Whether a form in ``state`` (``verified``: by a monitor, and not voided since) meets the lock policy's
    ``forms`` level; a form the data manager locked meets every level."""
    if state is FormState.LOCKED:
        return True
    if policy == "complete":
        return state is not FormState.DRAFT
    if policy == "verified":
        return verified and state in (FormState.VERIFIED, FormState.SIGNED)
    return state is FormState.SIGNED


def lock_readiness(engine: Engine, actor: UserView, site: str | None = None) -> Readiness:
    """What blocks the lock now, for every site the actor sees (or one ``site``)."""
    if actor.role not in READERS:
        raise denied(FormError)("role: only a data manager or a monitor may read the lock readiness")
    loaded = current_protocol(engine)
    protocol = loaded.protocol
    if site is not None and site not in protocol.site_codes:
        raise FormError(f"site: there is no site {site}")
    if site is not None and actor.role.site_scoped and site not in actor.sites:
        raise FormError(f"site: {site} is not one of your sites")
    policy = protocol.lock_policy
    kept = kept_forms(protocol, actor.role)  # the one guard: nothing of these forms reaches a masked reader
    final = set(policy.sae_final_outcomes)
    found: list[Blocker] = []
    not_due: list[NotDueVisit] = []
    now = clock.now()
    with read_scope(engine) as session:
        people = [
            p
            for p in session.execute(select(participants).order_by(participants.c.site, participants.c.participant_id))
            if (site is None or p.site == site) and (not actor.role.site_scoped or p.site in actor.sites)
        ]
        ids = {p.participant_id for p in people}
        left = set(
            session.execute(select(withdrawals.c.participant_id).where(withdrawals.c.scope == "follow_up")).scalars()
        )
        visits: dict[str, list[Any]] = {}
        for v in session.execute(select(visit_records).order_by(visit_records.c.id)):
            visits.setdefault(v.participant_id, []).append(v)
        forms: dict[int, list[Any]] = {}
        record_of: dict[int, Any] = {}  # a form record by its id (a query names it)
        for f in session.execute(select(form_records).order_by(form_records.c.id)):
            forms.setdefault(f.visit_record_id, []).append(f)
            record_of[f.id] = f
        visit_of = {v.id: v.visit_id for rows in visits.values() for v in rows}
        entries: dict[str, list[Any]] = {}
        entry_names: dict[int, str] = {}  # every entry, removed ones included: a query may name any
        entry_at: dict[int, dict[str, Any]] = {}  # the same, as the pages say it (log and sequence)
        for e in session.execute(select(log_entries).order_by(log_entries.c.log_id, log_entries.c.sequence)):
            entry_names[e.id] = f"{e.log_id} entry {e.sequence}"
            entry_at[e.id] = {"log": e.log_id, "sequence": e.sequence}
            if e.state != REMOVED:
                entries.setdefault(e.participant_id, []).append(e)
        open_queries: dict[str, list[Any]] = {}
        for q in session.execute(select(queries).where(queries.c.status != "closed").order_by(queries.c.id)):
            open_queries.setdefault(q.participant_id, []).append(q)
        last_report: dict[int, Any] = {}
        for r in session.execute(select(ae_reports).order_by(ae_reports.c.event_id, ae_reports.c.sequence)):
            last_report[r.event_id] = r
        events: dict[str, list[Any]] = {}
        for e in session.execute(select(adverse_events).order_by(adverse_events.c.id)):
            events.setdefault(e.participant_id, []).append(e)
        added = visit_additions_in(session)
        schedules = {p.participant_id: _due_visits(session, protocol, p, visits.get(p.participant_id, []), now, added)
                     for p in people if p.participant_id not in left}  # fmt: skip
    breaches: dict[str, list[Any]] = {}
    for b in recheck_trial(engine, ids):
        breaches.setdefault(b.participant_id, []).append(b)
    for p in people:
        pid, where_site = p.participant_id, p.site

        def add(kind: BlockerKind, where: str, detail: str, pid: str = pid, s: str = where_site, **said: Any) -> None:
            found.append(Blocker(kind, s, pid, where, detail, **said))

        for v in visits.get(pid, []):
            if v.missed_reason:
                continue
            started = {f.form_id: f for f in forms.get(v.id, [])}
            due = [] if v.unscheduled else _visit_forms(protocol, v.visit_id)
            for form_id in dict.fromkeys([*due, *started]):
                if form_id in kept:
                    continue
                row = started.get(form_id)
                label = f"{v.visit_id} {form_id}"
                at = {"visit": v.visit_id, "form": form_id}
                if row is None:
                    add(BlockerKind.FORM, label, f"not started; the lock policy needs {policy.forms}", **at,
                        rule="form_not_started", values={"policy": policy.forms})  # fmt: skip
                    continue
                state = FormState(row.state)
                if not meets_policy(policy.forms, state, row.verified_by is not None):
                    add(BlockerKind.FORM, label, f"{state.value}; the lock policy needs {policy.forms}", **at,
                        rule="form_state", values={"state": state.value, "policy": policy.forms})  # fmt: skip
        if policy.forms != "complete":  # an entry is complete once added
            for e in entries.get(pid, []):
                if e.signed_at is None if policy.forms == "signed" else e.verified_at is None:
                    add(BlockerKind.LOG, entry_names[e.id], f"not {policy.forms}; the lock policy needs {policy.forms}",
                        rule="log_state", values={**entry_at[e.id], "policy": policy.forms})  # fmt: skip
        for q in open_queries.get(pid, []):
            on = f" on {q.field}" if q.field else ""
            if q.log_entry_id is not None:
                on = f" on {entry_names[q.log_entry_id]}" + (f" {q.field}" if q.field else "")
            record = record_of.get(q.form_record_id) if q.form_record_id is not None else None
            if record is not None and record.form_id in kept:
                continue
            on_entry = entry_at[q.log_entry_id] if q.log_entry_id is not None else {}
            add(BlockerKind.QUERY, f"query {q.id}", f"{q.status}{on}: {q.text}", query=q.id, rule="query",
                visit=visit_of.get(record.visit_record_id) if record is not None else None,
                form=record.form_id if record is not None else None,
                values={"status": q.status, "field": q.field, "text": q.text, **on_entry})  # fmt: skip
        for e in events.get(pid, []):
            report = last_report.get(e.id)
            if report is None or not report.serious:
                continue
            outcome = json.loads(report.assessment).get("outcome")
            if outcome not in final:
                which = "initial" if report.sequence == 0 else f"follow-up {report.sequence}"
                finals = ", ".join(policy.sae_final_outcomes)
                detail = (
                    f"last report ({which}) records the outcome {outcome}; a final follow-up records one of {finals}"
                )
                said = {"sequence": report.sequence, "outcome": outcome, "finals": tuple(policy.sae_final_outcomes)}
                add(BlockerKind.SAE, e.ae_number, detail, rule="sae_outcome", values=said)
        for sv in schedules.get(pid, []):
            if sv.status is VisitStatus.NOT_DUE:
                assert sv.added_by is not None and sv.latest is not None
                not_due.append(NotDueVisit(where_site, pid, sv.visit_id, sv.added_by.version, sv.added_by.effective,
                                           sv.latest))  # fmt: skip
                continue
            status, visit_id, latest = sv.status, sv.visit_id, sv.latest
            assert latest is not None
            add(BlockerKind.VISIT, f"visit {visit_id}", (
                f"{status}: neither done nor recorded as missed (window "
                f"{'closed' if status is VisitStatus.OVERDUE else 'open'} until {latest.isoformat()})"),
                visit=visit_id, rule="visit", values={"status": status.value, "until": latest})  # fmt: skip
        for c in breaches.get(pid, []):
            if _on_kept(protocol, kept, c.fields):
                continue
            add(BlockerKind.COHERENCE, f"{c.visit_id} {', '.join(c.fields)}", c.message, visit=c.visit_id,
                fields=tuple(c.fields), rule="coherence", values={"message": c.message})  # fmt: skip
    order = {k: i for i, k in enumerate(BlockerKind)}
    found.sort(key=lambda b: (b.site, b.participant_id, order[b.kind]))
    withheld = tuple(f.id for f in protocol.forms if f.id in kept)
    reviewers = tuple(r.value for r in READERS if r not in masked_roles(protocol)) if withheld else ()
    with read_scope(engine) as session:
        review = standing_review(session, loaded.protocol)
    return Readiness(now, site, policy.forms, len(people), tuple(found), withheld, reviewers, tuple(not_due), review)


# --- the unmasked reviewer's review of the forms withheld -----------------------------------------


def withheld_forms(protocol: Protocol) -> tuple[str, ...]:
    """The forms kept from some masked reader of this report (in protocol order): those an unmasked one reviews."""
    kept = frozenset().union(*(kept_forms(protocol, r) for r in READERS))
    return tuple(f.id for f in protocol.forms if f.id in kept)


def _digest(session: Session, protocol: Protocol, forms: tuple[str, ...], nonce: str) -> str:
    """A SHA-256 over ``nonce`` and what makes ``forms`` ready or not: their records (state, version, verification,
    signature, lock), the queries on them, and the visits that hold them (a visit held or missed makes a form due).
    Any save, lifecycle step or query change on those forms changes it."""
    f = form_records.c
    records = session.execute(
        select(f.id, f.participant_id, f.visit_record_id, f.form_id, f.state, f.version, f.verified_by, f.signed_by,
               f.locked_by).where(f.form_id.in_(forms)).order_by(f.id)
    ).all()  # fmt: skip
    q = queries.c
    on_them = select(f.id).where(f.form_id.in_(forms)).scalar_subquery()
    asked = session.execute(
        select(q.id, q.form_record_id, q.status, q.field).where(q.form_record_id.in_(on_them)).order_by(q.id)
    ).all()
    holding = sorted(v.id for v in protocol.visits if set(v.forms) & set(forms))
    v = visit_records.c
    held = session.execute(
        select(v.id, v.participant_id, v.visit_id, v.visit_date, v.missed_reason)
        .where(v.visit_id.in_(holding))
        .order_by(v.id)
    ).all()
    facts = [[list(r) for r in rows] for rows in (records, asked, held)]
    return hashlib.sha256(f"{nonce}:{json.dumps(facts, default=str)}".encode()).hexdigest()


def standing_review(session: Session, protocol: Protocol) -> WithheldReview | None:
    """The latest review of the forms withheld from masked readers, if it still stands: of the same forms, under
    the same protocol version, and nothing on them changed since (its digest matches). None otherwise."""
    forms = withheld_forms(protocol)
    if not forms:
        return None
    row = session.execute(select(withheld_reviews).order_by(withheld_reviews.c.id.desc()).limit(1)).first()
    if row is None or tuple(row.forms.split(",")) != forms or row.protocol_version != protocol.version.number:
        return None
    if _digest(session, protocol, forms, row.nonce) != row.digest:
        return None
    return WithheldReview(row.by, row.role, row.at, forms, row.protocol_version)


def review_withheld(
    engine: Engine, actor: UserView, reason: str, *, password: str, policy: AccessPolicy | None = None
) -> WithheldReview:
    """Record that the unmasked reviewer found the forms kept from masked readers ready (one transaction; audited
    ``lock.withheld_reviewed`` with the forms and the protocol version).

    Refused, naming the rule: a role that does not read the lock readiness, one the trial masks, a reviewer scoped
    to some sites (the review is of every site's forms), a trial where no form is withheld from a reader, a wrong
    password, no reason, and forms not ready as the reviewer sees them (the refusal lists those blockers: the
    reviewer may see them). Forms changed between the reading and the record refuse too (review them again)."""
    if actor.role not in READERS:
        raise denied(FormError)(f"role: {only_roles_may(READERS, 'review the forms kept from masked readers')}")
    loaded = current_protocol(engine)
    protocol = loaded.protocol
    forms = withheld_forms(protocol)
    if not forms:
        raise FormError(
            "withheld: no form is kept from a masked reader of the lock readiness (no form reveals the arm, or no "
            "reader is masked): there is nothing to review"
        )
    if actor.role in masked_roles(protocol):
        raise denied(FormError)(
            "role: the trial masks your role; only an unmasked reader of the lock readiness may review the forms "
            "kept from masked readers (they reveal the arm)"
        )
    if actor.role.site_scoped and not set(protocol.site_codes) <= set(actor.sites):
        raise denied(FormError)(
            "role: you see only some sites' forms; the review is of every site's forms kept from masked readers"
        )
    checked_text(reason, "reason", error=FormError)
    if not reason.strip():
        raise FormError("reason: say what you reviewed and found")
    require_password(engine, actor.username, password, policy, purpose="withheld review", error=FormError,
                     message="password: wrong password; a review of the forms kept from masked readers needs your "
                     "current password")  # fmt: skip
    nonce = secrets.token_hex(16)
    with read_scope(engine) as session:
        before = _digest(session, protocol, forms, nonce)
    report = lock_readiness(engine, actor)
    blocking = [b for b in report.blockers if on_forms(protocol, frozenset(forms), b)]
    if blocking:
        listed = "; ".join(f"{b.site} {b.text()}" for b in blocking[:REVIEW_SHOWN])
        more = len(blocking) - REVIEW_SHOWN
        n = len(blocking)
        raise FormError(
            f"withheld: the forms kept from masked readers ({', '.join(forms)}) are not ready: {n} "
            f"{'blocker' if n == 1 else 'blockers'} on them: {listed}" + (f"; and {more} more" if more > 0 else "")
        )
    with session_scope(engine) as session:
        if _digest(session, protocol, forms, nonce) != before:
            raise FormError("withheld: the forms changed while they were being reviewed; review them again")
        now = clock.now()
        version = protocol.version.number
        session.execute(
            withheld_reviews.insert().values(at=now, by=actor.username, role=actor.role.value, forms=",".join(forms),
                                             protocol_version=version, reason=reason.strip(), nonce=nonce,
                                             digest=before)
        )  # fmt: skip
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="lock.withheld_reviewed",
            reason=reason.strip(),
            detail={"forms": list(forms), "protocol_version": version},
        )
    return WithheldReview(actor.username, actor.role.value, now, forms, version)


def on_forms(protocol: Protocol, forms: frozenset[str], blocker: Blocker) -> bool:
    """Whether ``blocker`` is on one of ``forms``: a form of them not ready or not started, a query on one, a
    coherence breach reading a field of one (as ``_on_kept`` keeps them from a masked reader)."""
    if not forms:
        return False
    if blocker.form in forms:
        return True
    return blocker.kind is BlockerKind.COHERENCE and _on_kept(protocol, forms, blocker.fields)


def _on_kept(protocol: Protocol, kept: frozenset[str], fields: tuple[str, ...]) -> bool:
    """Whether a coherence breach reads a field of a form kept from the reader (``form.field``, or a bare field of
    a kept form: kept, rather than guessed to be another form's)."""
    if not kept:
        return False
    kept_fields = {f.id for form in protocol.forms if form.id in kept for f in form.fields}
    return any(ref.partition(".")[0] in kept if "." in ref else ref in kept_fields for ref in fields)


def _visit_forms(protocol: Protocol, visit_id: str) -> list[str]:
    try:
        return list(protocol.visit(visit_id).forms)
    except KeyError:
        return []


def _due_visits(
    session: Session,
    protocol: Protocol,
    participant: Any,
    held_rows: list[Any],
    now: dt.datetime,
    added: Mapping[str, VisitAddition],
) -> list[ScheduledVisit]:
    """The participant's visits that block (due or overdue) and those an amendment added after their window had
    closed (not due, listed beside the blockers)."""
    refs = _references(session, protocol, participant)
    held: Mapping[str, HeldVisit] = {
        r.visit_id: HeldVisit(r.visit_date, r.missed_reason) for r in held_rows if not r.unscheduled
    }
    today = local_date(now, _tz(protocol, participant.site))
    death = death_of(session, protocol, participant.participant_id)  # visits on or after the day of death are not due
    return [
        v
        for v in schedule(protocol.visits, refs, held, today, death.on if death else None, added)
        if v.status in (*BLOCKING_VISITS, VisitStatus.NOT_DUE) and v.latest is not None
    ]
