"""The trial (database) lock and the soft locks of one site or one participant.

The trial lock stops every data change; it is refused while the readiness report
(``trialwright.services.readiness``) lists anything that blocks it, unless the data manager overrides with a reason
and their password: the override is audited with the number of blockers left open, and every report made from that
lock prints it on its first page (``LockState.banner``). A count of blockers on a form that reveals the arm may
differ by arm, and masked roles read the lock, so the count stored and shown leaves those forms out (naming them);
an unmasked locker's blockers there are audited under a key audit masking hides from masked roles. A masked data
manager's lock over the forms kept from them stores those forms, and its banner says so: that an unmasked
reviewer must find them ready, or, while the reviewer's recorded review stands (``services.readiness.
standing_review``), who reviewed them and when.

A soft lock (e.g. for an interim analysis) freezes the data of one site or one participant: saves, visits and form
lifecycle steps there are refused until it is unlocked with a reason. Safety reports are never refused by a soft
lock (an SAE is reported within its deadline whatever the analysis), and queries may still be raised and answered.
Locks and unlocks are rows appended to a history, never updated, and each is audited.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, false, func, or_, select
from sqlalchemy.orm import Session

from trialwright.domain.masking import masked_roles
from trialwright.domain.roles import Role, only_roles_may
from trialwright.domain.text import checked_text
from trialwright.protocol import Protocol
from trialwright.services import audit, clock
from trialwright.services.bulk_reads import forget_read, once
from trialwright.services.bulk_writes import row_type
from trialwright.services.errors import FormError, denied
from trialwright.services.reauth import require_password
from trialwright.services.trial import current_protocol
from trialwright.services.users import AccessPolicy, UserView
from trialwright.store.data_tables import soft_locks, trial_locks
from trialwright.store.engine import read_scope, serialise, session_scope
from trialwright.store.prepared import Prepared
from trialwright.store.screening_tables import participants
from trialwright.store.tables import sites

__all__ = [
    "LOCKERS",
    "READERS",
    "LockBlocked",
    "LockState",
    "SoftLock",
    "active_soft_locks",
    "hold_data_lock",
    "lock_state",
    "lock_trial",
    "may_read_locks",
    "override_banner",
    "require_unlocked",
    "revealing",
    "soft_lock",
    "soft_locks_for",
    "soft_unlock",
    "state_of",
    "unlock_trial",
]

#: Who locks and unlocks (the trial and soft locks).
LOCKERS = (Role.DATA_MANAGER,)
#: Who reads the lock and the soft locks (the readers of forms: ``services.forms.READERS``, which imports this
#: module, so the tuple is spelled here; tests/spec/forms/test_read_roles.py holds them equal).
READERS = (
    Role.INVESTIGATOR,
    Role.STUDY_COORDINATOR,
    Role.OUTCOME_ASSESSOR,
    Role.ADMINISTRATOR,
    Role.MONITOR,
    Role.DATA_MANAGER,
)
#: Who reads the lock readiness report (``services.readiness.READERS``, which imports this module): the unmasked
#: ones review the forms withheld from a masked locker.
READINESS_READERS = (Role.DATA_MANAGER, Role.MONITOR)
#: How many blockers a refusal names one by one (the rest are counted).
SHOWN = 5


@dataclass(frozen=True)
class LockState:
    """Whether the trial database is locked, since when, by whom and why; ``open_blockers``: how many blockers the
    data manager's override left open outside the forms that reveal the arm (None: the lock was made with nothing
    there blocking it, or before the check); ``withheld``: the forms kept from a masked data manager who locked
    (they reveal the arm; never reviewed by the locker); ``uncounted``: the protocol's forms that reveal the arm,
    whose blockers ``open_blockers`` never counts (a count there may differ by arm); ``reviewers``: the unmasked
    readers of the readiness report, who must find the withheld forms ready; ``reviewed_by`` and ``reviewed_at``:
    the unmasked reviewer's review of the forms withheld, while it stands (nothing on them changed since)."""

    locked: bool
    at: dt.datetime | None
    by: str | None
    reason: str | None
    open_blockers: int | None = None
    withheld: tuple[str, ...] = ()
    uncounted: tuple[str, ...] = ()
    reviewers: tuple[str, ...] = ()
    reviewed_by: str | None = None
    reviewed_at: dt.datetime | None = None

    @property
    def banner(self) -> str | None:
        """The override, as printed on the first page of every report made from this lock (None: no override and
        no form withheld from the locker)."""
        return self.banner_said(lambda text: text, lambda text: text)

    def banner_said(
        self,
        gettext: Callable[[str], str],
        lang_digits: Callable[[str], str],
        form_name: Callable[[str], str] = str,
        role_name: Callable[[str], str] = lambda role: role.replace("_", " "),
        comma: str = ", ",
    ) -> str | None:
        """``banner`` in a page's language: the catalog's words, the count and the date (UTC) in its digits, the
        forms and the reviewers by their names there."""
        if not self.locked or self.at is None or not (self.open_blockers or self.withheld):
            return None
        reviewed = bool(self.withheld) and self.reviewed_at is not None
        message = _banner_message(self.open_blockers or 0, bool(self.uncounted), bool(self.withheld), reviewed)
        parts = banner_parts(self.open_blockers or 0, self.by or "", self.at, self.reason or "")
        if reviewed and self.reviewed_at is not None:
            parts["reviewer"] = self.reviewed_by or ""
            parts["reviewed_at"] = lang_digits(f"{self.reviewed_at.astimezone(dt.UTC):%Y-%m-%d %H:%M}")
        parts["n"], parts["at"] = lang_digits(parts["n"]), lang_digits(parts["at"])
        parts["forms"] = comma.join(form_name(f) for f in self.uncounted)
        parts["withheld"] = comma.join(form_name(f) for f in self.withheld)
        parts["reviewers"] = comma.join(role_name(r) for r in self.reviewers) or gettext("none")
        return gettext(message) % parts


@dataclass(frozen=True)
class SoftLock:
    """A site or participant soft-locked now: since when, by whom and why."""

    scope: str  # site or participant
    target: str
    at: dt.datetime
    by: str
    reason: str


class LockBlocked(FormError):
    """The lock is refused because things block it; ``readiness`` lists them."""

    def __init__(self, message: str, readiness: Any) -> None:
        super().__init__(message)
        self.readiness = readiness


#: The banner of a lock made over open blockers, one blocker and more (message ids of the catalog, which says them in
#: Persian; ``analysis.sentences`` says the same words in a report): in a trial with no form that reveals the arm;
OVERRIDE_BANNER = "Locked with %(n)s open blockers by %(user)s on %(at)s UTC: %(reason)s"
OVERRIDE_BANNER_ONE = "Locked with %(n)s open blocker by %(user)s on %(at)s UTC: %(reason)s"
#: in a trial with such forms (the count leaves their blockers out, whoever locked);
OUTSIDE_BANNER = (
    "Locked with %(n)s open blockers outside the forms that reveal the arm (%(forms)s) by %(user)s on %(at)s UTC: "
    "%(reason)s"
)
OUTSIDE_BANNER_ONE = (
    "Locked with %(n)s open blocker outside the forms that reveal the arm (%(forms)s) by %(user)s on %(at)s UTC: "
    "%(reason)s"
)
#: a masked data manager's lock over the forms kept from them, with no blocker they saw, and with some.
WITHHELD_BANNER = (
    "Locked by %(user)s on %(at)s UTC over forms kept from them (%(withheld)s), which an unmasked reviewer "
    "(%(reviewers)s) must find ready: %(reason)s"
)
OUTSIDE_WITHHELD_BANNER = (
    "Locked with %(n)s open blockers outside the forms that reveal the arm (%(forms)s) by %(user)s on %(at)s UTC, "
    "over forms kept from them (%(withheld)s), which an unmasked reviewer (%(reviewers)s) must find ready: "
    "%(reason)s"
)
OUTSIDE_WITHHELD_BANNER_ONE = (
    "Locked with %(n)s open blocker outside the forms that reveal the arm (%(forms)s) by %(user)s on %(at)s UTC, "
    "over forms kept from them (%(withheld)s), which an unmasked reviewer (%(reviewers)s) must find ready: "
    "%(reason)s"
)
#: The same, while the unmasked reviewer's recorded review of the forms withheld stands.
REVIEWED_BANNER = (
    "Locked by %(user)s on %(at)s UTC over forms kept from them (%(withheld)s), reviewed by %(reviewer)s on "
    "%(reviewed_at)s UTC: %(reason)s"
)
OUTSIDE_REVIEWED_BANNER = (
    "Locked with %(n)s open blockers outside the forms that reveal the arm (%(forms)s) by %(user)s on %(at)s UTC, "
    "over forms kept from them (%(withheld)s), reviewed by %(reviewer)s on %(reviewed_at)s UTC: %(reason)s"
)
OUTSIDE_REVIEWED_BANNER_ONE = (
    "Locked with %(n)s open blocker outside the forms that reveal the arm (%(forms)s) by %(user)s on %(at)s UTC, "
    "over forms kept from them (%(withheld)s), reviewed by %(reviewer)s on %(reviewed_at)s UTC: %(reason)s"
)
#: Every banner (the catalog holds each in Persian).
BANNERS = (OVERRIDE_BANNER, OVERRIDE_BANNER_ONE, OUTSIDE_BANNER, OUTSIDE_BANNER_ONE, WITHHELD_BANNER,
           OUTSIDE_WITHHELD_BANNER, OUTSIDE_WITHHELD_BANNER_ONE, REVIEWED_BANNER, OUTSIDE_REVIEWED_BANNER,
           OUTSIDE_REVIEWED_BANNER_ONE)  # fmt: skip


def _banner_message(blockers: int, uncounted: bool, withheld: bool, reviewed: bool = False) -> str:
    if reviewed and not blockers:
        return REVIEWED_BANNER
    if reviewed:
        return OUTSIDE_REVIEWED_BANNER_ONE if blockers == 1 else OUTSIDE_REVIEWED_BANNER
    if withheld and not blockers:
        return WITHHELD_BANNER
    if withheld:
        return OUTSIDE_WITHHELD_BANNER_ONE if blockers == 1 else OUTSIDE_WITHHELD_BANNER
    if uncounted:
        return OUTSIDE_BANNER_ONE if blockers == 1 else OUTSIDE_BANNER
    return OVERRIDE_BANNER_ONE if blockers == 1 else OVERRIDE_BANNER


def override_banner(blockers: int, by: str, at: dt.datetime, reason: str) -> str:
    """``Locked with N open blockers by <user> on <date>: <reason>`` (the date in UTC)."""
    return (OVERRIDE_BANNER_ONE if blockers == 1 else OVERRIDE_BANNER) % banner_parts(blockers, by, at, reason)


def banner_parts(blockers: int, by: str, at: dt.datetime, reason: str) -> dict[str, str]:
    """The parts of ``override_banner``'s message, for a page that says it in its own language."""
    return {"n": str(blockers), "user": by, "at": f"{at.astimezone(dt.UTC):%Y-%m-%d %H:%M}", "reason": reason}


def _role(actor: UserView, what: str) -> None:
    if actor.role not in LOCKERS:
        raise denied(FormError)(f"role: {only_roles_may(LOCKERS, what)}")


def may_lock(actor: UserView) -> None:
    """Refuse, with the role rule, a user whose role may never lock or unlock the database (the command line asks
    it before it asks a password)."""
    _role(actor, "lock and unlock the trial database")


def _reason(reason: str, what: str) -> str:
    checked_text(reason, "reason", error=FormError)
    if not reason.strip():
        raise FormError(f"reason: say why the {what}")
    return reason.strip()


# --- the trial lock -------------------------------------------------------------------------------


#: The trial lock's latest row, compiled once (``Prepared``): every data change reads it.
_LOCK_ROW = Prepared(select(trial_locks).order_by(trial_locks.c.id.desc()).limit(1))


def _lock_row(session: Session) -> Any:
    rows = _LOCK_ROW.rows(session, {})
    return row_type(trial_locks)(**rows[0]) if rows else None


def _soft_row(session: Session, scope: str, target: str) -> Any:
    return session.execute(
        select(soft_locks)
        .where(soft_locks.c.scope == scope, soft_locks.c.target == target)
        .order_by(soft_locks.c.id.desc())
        .limit(1)
    ).first()


def require_unlocked(
    session: Session,
    participant_id: str | None = None,
    *,
    site: str | None = None,
    error: type[Exception] = FormError,
) -> None:
    """Refuse a data change (raising ``error``) while the trial is locked, or (given the participant) while the
    participant or their site is soft-locked, or (given a site alone: a screening before enrolment) while the site
    is soft-locked. A caller that has read the participant passes their ``site`` (one look-up fewer).

    The change holds the data-lock lock (shared) until it commits, and a lock or soft lock being set holds it alone:
    so no change checked before a lock commits after it (PostgreSQL; SQLite has one writer at a time). It is taken
    again whenever the transaction that took it has ended (see ``hold_data_lock``)."""
    hold_data_lock(session)
    refusal = _frozen(session, participant_id, site)
    if refusal is not None:
        raise error(refusal)


def frozen(engine: Engine, participant_id: str | None = None) -> str | None:
    """Why no data can change now (the trial locked; given the participant, they or their site soft-locked), in
    the words a change would be refused with; None when changes are allowed. For pages, which then offer no
    change instead of offering one the save refuses."""
    with read_scope(engine) as session:
        return _frozen(session, participant_id, None)


def _frozen(session: Session, participant_id: str | None, site: str | None) -> str | None:
    row = once(session, ("trial_lock",), lambda: _lock_row(session))
    if row is not None and row.locked:
        return (
            f"trial: the database is locked (since {row.at:%Y-%m-%d %H:%M} UTC, by {row.by}); "
            "the data manager unlocks it with a reason"
        )
    if participant_id is None and site is None:
        return None
    if site is None:
        site = once(
            session,
            ("site_of", participant_id),
            lambda: session.execute(
                select(participants.c.site).where(participants.c.participant_id == participant_id)
            ).scalar(),
        )
    targets = ([("participant", participant_id)] if participant_id is not None else []) + (
        [("site", site)] if site is not None else []
    )
    # The latest row of each target decides; both are read in one statement.
    found = once(
        session,
        ("soft_locks", *targets),
        lambda: session.execute(
            select(soft_locks)
            .where(
                or_(*(and_(soft_locks.c.scope == scope, soft_locks.c.target == target) for scope, target in targets))
            )
            .order_by(soft_locks.c.id.desc())
        ).all(),
    )
    latest: dict[tuple[str, str], Any] = {}
    for each in found:
        latest.setdefault((each.scope, each.target), each)
    for scope, target in targets:
        soft = latest.get((scope, target))
        if soft is not None and soft.locked:
            return (
                f"{scope}: {target} is soft-locked (since {soft.at:%Y-%m-%d %H:%M} UTC, by {soft.by}: {soft.reason}); "
                "nothing there can be changed until the data manager unlocks it with a reason"
            )
    return None


def frozen_expression(participant_id: ColumnElement[str]) -> ColumnElement[bool]:
    """Whether ``_frozen`` refuses a change of the participant (``participant_id``, a bound parameter or column), as
    an SQL expression a hot path reads with its other facts in one statement (the randomization's): the trial
    locked, or the latest soft-lock row of the participant or their site locked. True only where ``_frozen`` gives a
    refusal, whose words ``require_unlocked`` then raises. Read under the data lock (``DATA_LOCK``), as
    ``require_unlocked`` reads."""

    def latest(table: Any, *where: ColumnElement[bool]) -> ColumnElement[Any]:
        return func.coalesce(
            select(table.c.locked).where(*where).order_by(table.c.id.desc()).limit(1).scalar_subquery(), false()
        )

    site = select(participants.c.site).where(participants.c.participant_id == participant_id).scalar_subquery()
    return or_(
        latest(trial_locks),
        latest(soft_locks, soft_locks.c.scope == "participant", soft_locks.c.target == participant_id),
        latest(soft_locks, soft_locks.c.scope == "site", soft_locks.c.target == site),
    )


def lock_state(engine: Engine) -> LockState:
    """The trial lock now (with the unmasked reviewer's review of the forms withheld, while it stands)."""
    protocol = current_protocol(engine).protocol
    with read_scope(engine) as session:
        row = _lock_row(session)
        review = standing(session, protocol, row)
    return state_of(row, protocol, review)


def standing(session: Session, protocol: Protocol, row: Any) -> Any:
    """The review standing now of the forms a lock (``row``) was made over without its locker seeing them; None
    when the lock withheld none (``services.readiness.standing_review``)."""
    # Imported here: the readiness report reads the forms service, which re-exports this module's functions.
    from trialwright.services.readiness import standing_review

    if row is None or not row.locked or not getattr(row, "withheld", None):
        return None
    return standing_review(session, protocol)


def state_of(row: Any, protocol: Protocol, review: Any = None) -> LockState:
    """The lock of ``row`` (the latest of ``trial_locks``; None: never locked) under ``protocol``: the forms that
    reveal the arm (uncounted) and the unmasked reviewers of the forms withheld are the protocol's; ``review``: the
    standing review of those forms (``services.readiness.WithheldReview``), said in the banner."""
    if row is None:
        return LockState(False, None, None, None)
    if not row.locked:
        return LockState(False, row.at, row.by, row.reason)
    stored = getattr(row, "withheld", None)
    withheld = tuple(f for f in (stored or "").split(",") if f)
    reviewers = tuple(r.value for r in READINESS_READERS if r not in masked_roles(protocol)) if withheld else ()
    # NULL: a lock under a protocol with no form that reveals the arm, or made before migration 0042 (or read from a
    # file without ``Withheld``), whose count was of every blocker: its banner claims no form left out of the count.
    # Since 0042 a lock under a protocol with such forms stores the forms withheld, '' when none.
    uncounted = revealing(protocol) if stored is not None else ()
    by, at = (review.by, review.at) if review is not None and withheld else (None, None)
    return LockState(True, row.at, row.by, row.reason, row.open_blockers, withheld, uncounted, reviewers, by, at)


def revealing(protocol: Protocol) -> tuple[str, ...]:
    """The protocol's forms that reveal the arm (``forms[].reveals_arm``), whose blockers no lock count holds."""
    return tuple(f.id for f in protocol.forms if f.reveals_arm)


_DATA_LOCK = "data_lock"
#: The name of the data lock (``serialise``): a hot path takes it shared in a statement of its own (PostgreSQL).
DATA_LOCK = _DATA_LOCK
_GUARDED = "trialwright.lock.guarded"
#: The answers ``require_unlocked`` reads once (``bulk_reads.once``) that a trial or soft lock changes.
_LOCK_FACTS = ("trial_lock", "soft_locks")


def _holding(session: Session) -> bool:
    """Whether the data lock taken for this session is held now: the (sub)transaction that took it is the current
    one or one of its parents. A savepoint rolled back releases what was taken inside it (PostgreSQL releases a
    transaction-level advisory lock taken in a rolled-back subtransaction), so a lock taken there is no longer
    held, and one taken in an earlier transaction of the session never is."""
    took = session.info.get(_GUARDED)
    if took is None:
        return False
    trans = session.get_nested_transaction() or session.get_transaction()
    while trans is not None:
        if trans is took:
            return bool(trans.is_active)
        trans = trans.parent
    return False


def hold_data_lock(session: Session) -> None:
    """Hold the data lock (shared) in the session's current transaction, once: a batch calls it before reading
    ahead and before its first savepoint, so the lock outlives every savepoint a refused row rolls back and every
    lock fact it reads ahead is read under it. ``require_unlocked`` calls it too: if the lock is not held now (never
    taken, or taken in a savepoint since rolled back or released), it is taken again and the lock facts read
    before are forgotten (a trial or soft lock may have committed while it was not held). SQLite: nothing to take;
    every write transaction begins IMMEDIATE and keeps its writer lock until it ends, whatever its savepoints do."""
    if session.get_bind().dialect.name != "postgresql" or _holding(session):
        return
    serialise(session, _DATA_LOCK, shared=True)
    session.info[_GUARDED] = session.get_nested_transaction() or session.get_transaction()
    forget_read(session, _LOCK_FACTS)


def _set_lock(
    engine: Engine,
    actor: UserView,
    locked: bool,
    reason: str,
    open_blockers: int | None = None,
    withheld: tuple[str, ...] = (),
    uncounted: tuple[str, ...] = (),
    on_revealing: int | None = None,
) -> None:
    with session_scope(engine) as session:
        serialise(session, _DATA_LOCK)  # waits for changes in flight; the next ones see this lock
        row = _lock_row(session)
        if bool(row and row.locked) == locked:
            raise FormError(f"trial: the database is already {'locked' if locked else 'unlocked'}")
        session.execute(
            trial_locks.insert().values(locked=locked, at=clock.now(), by=actor.username, reason=reason,
                                        open_blockers=open_blockers,
                                        withheld=",".join(withheld) if locked and uncounted else None)
        )  # fmt: skip
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            action="trial.locked" if locked else "trial.unlocked",
            old_value={"locked": not locked},
            new_value={"locked": locked},
            reason=reason,
            detail=_override(open_blockers, withheld, uncounted, on_revealing),
        )


def _override(
    open_blockers: int | None, withheld: tuple[str, ...], uncounted: tuple[str, ...], on_revealing: int | None
) -> dict[str, Any] | None:
    """A lock's audited override: the blockers left open outside the forms that reveal the arm (``uncounted``,
    named), the forms kept from a masked data manager (never a count of what is on them); and, for an unmasked
    locker in a trial with such forms, how many blockers on them were left open (``on_revealing``, whatever it is,
    0 included, so the key is there in every such lock: audit masking shows a masked reader ``masked`` in its
    place; stored with a random nonce, ``{"count": N, "nonce": ...}``, so the entry's hash cannot be matched by
    trying counts). None when there is nothing of these."""
    detail: dict[str, Any] = {}
    if open_blockers or withheld:
        detail = {"override": True, "open_blockers": open_blockers or 0}
        if withheld:
            detail["withheld"] = list(withheld)
        if uncounted:
            detail["uncounted"] = list(uncounted)
    if on_revealing is not None:
        # With a random nonce: the entry's hash (in every ODM export's AuditRecord) is a SHA-256 of all its fields,
        # so a bare small count could be found by a masked reader trying 0, 1, 2... against it.
        detail["revealing_open_blockers"] = {"count": on_revealing, "nonce": secrets.token_hex(16)}
    return detail or None


def lock_trial(
    engine: Engine,
    actor: UserView,
    reason: str,
    *,
    password: str | None = None,
    policy: AccessPolicy | None = None,
) -> LockState:
    """Lock the whole trial database before the final analysis (data manager): no data changes after.

    Refused (``LockBlocked``, naming the counts and the first blockers) while the readiness report lists anything,
    unless ``password`` is the data manager's: then the lock is an override, audited with the number of blockers
    left open and printed on every report made from it. A data manager the trial masks, from whom forms that reveal
    the arm are kept (``Readiness.withheld``), is refused so whatever those forms hold (an unmasked reviewer reads
    them); their override is audited with the forms withheld and the blockers they saw, never a count of the rest,
    and the lock stores the forms withheld (its banner names them). The count stored and shown is of the blockers
    outside the forms that reveal the arm, whoever locks.
    """
    # Imported here: the readiness report reads the forms service, which re-exports this module's functions.
    from trialwright.services.readiness import lock_readiness, on_forms

    _role(actor, "lock and unlock the trial database")
    reason = _reason(reason, "database is locked")
    if lock_state(engine).locked:
        raise FormError("trial: the database is already locked")
    readiness = lock_readiness(engine, actor)
    blockers = len(readiness.blockers)
    withheld = "" if (kept := readiness.withheld_text()) is None else f" Also: {kept}."
    if blockers and password is None:
        raise LockBlocked(
            f"trial: {readiness.counted()} {'blocks' if blockers == 1 else 'block'} the lock; resolve "
            f"{'it' if blockers == 1 else 'them'}, or override with a reason and your "
            f"password.{withheld} {readiness.first_text(SHOWN)}",
            readiness,
        )
    if kept is not None and password is None:  # said whatever the data: the withheld forms are not known ready
        raise LockBlocked(
            f"trial: {readiness.headline()}; once an unmasked reviewer has found them ready, override with a reason "
            "and your password",
            readiness,
        )
    if blockers or readiness.withheld:
        require_password(engine, actor.username, password or "", policy, purpose="lock override", error=FormError,
                         message="password: wrong password; an override of the lock readiness needs your current "
                         "password")  # fmt: skip
    # The count stored and shown leaves out the blockers on the forms that reveal the arm (a count there may differ
    # by arm, and masked roles read the lock); an unmasked locker's are audited under a key masked roles never read.
    protocol = current_protocol(engine).protocol
    uncounted = revealing(protocol)
    on_revealing = sum(1 for b in readiness.blockers if on_forms(protocol, frozenset(uncounted), b))
    outside = blockers - on_revealing
    audited = on_revealing if uncounted and not readiness.withheld else None
    _set_lock(engine, actor, True, reason, outside or None, readiness.withheld, uncounted, audited)
    return lock_state(engine)


def unlock_trial(engine: Engine, actor: UserView, reason: str) -> LockState:
    """Unlock the trial database (data manager, with a reason; audited)."""
    _role(actor, "lock and unlock the trial database")
    _set_lock(engine, actor, False, _reason(reason, "database is unlocked"))
    return lock_state(engine)


# --- soft locks -----------------------------------------------------------------------------------


def _target(session: Session, site: str | None, participant_id: str | None) -> tuple[str, str, str]:
    """(scope, target, the target's site) for exactly one of a site or a participant."""
    if (site is None) == (participant_id is None):
        raise FormError("target: name one site or one participant to soft-lock")
    if participant_id is not None:
        row = session.execute(select(participants.c.site).where(participants.c.participant_id == participant_id))
        found = row.scalar()
        if found is None:
            raise FormError(f"participant: there is no participant {participant_id}")
        return "participant", participant_id, found
    assert site is not None
    if session.execute(select(sites.c.code).where(sites.c.code == site)).scalar() is None:
        raise FormError(f"site: there is no site {site}")
    return "site", site, site


def _set_soft(
    engine: Engine, actor: UserView, locked: bool, reason: str, site: str | None, participant_id: str | None
) -> SoftLock | None:
    _role(actor, "soft-lock and unlock sites and participants")
    reason = _reason(reason, ("site or participant is soft-locked" if locked else "soft lock is lifted"))
    with session_scope(engine) as session:
        serialise(session, _DATA_LOCK)
        scope, target, its_site = _target(session, site, participant_id)
        row = _soft_row(session, scope, target)
        if bool(row and row.locked) == locked:
            raise FormError(f"{scope}: {target} is {'already soft-locked' if locked else 'not soft-locked'}")
        now = clock.now()
        session.execute(
            soft_locks.insert().values(scope=scope, target=target, locked=locked, at=now, by=actor.username,
                                       reason=reason)
        )  # fmt: skip
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=its_site,
            participant=participant_id,
            action="lock.soft_locked" if locked else "lock.soft_unlocked",
            old_value={"locked": not locked},
            new_value={"locked": locked},
            reason=reason,
            detail={"scope": scope, "target": target},
        )
    return SoftLock(scope, target, now, actor.username, reason) if locked else None


def soft_lock(
    engine: Engine, actor: UserView, reason: str, *, site: str | None = None, participant_id: str | None = None
) -> SoftLock:
    """Soft-lock one site or one participant (data manager, with a reason; audited)."""
    lock = _set_soft(engine, actor, True, reason, site, participant_id)
    assert lock is not None
    return lock


def soft_unlock(
    engine: Engine, actor: UserView, reason: str, *, site: str | None = None, participant_id: str | None = None
) -> None:
    """Lift a soft lock (data manager, with a reason; audited)."""
    _set_soft(engine, actor, False, reason, site, participant_id)


def may_read_locks(actor: UserView) -> None:
    """Refuse, with the role rule, a user whose role does not read the lock and the soft locks (the API's
    ``/trial/lock`` and ``/soft-locks``, the command line's ``database status``)."""
    if actor.role not in READERS:
        raise denied(FormError)(f"role: {only_roles_may(READERS, 'read the database lock and the soft locks')}")


def soft_locks_for(engine: Engine, actor: UserView) -> tuple[SoftLock, ...]:
    """``active_soft_locks`` as ``actor`` reads them: only a role of ``READERS`` does (they name participants)."""
    may_read_locks(actor)
    return active_soft_locks(engine)


def active_soft_locks(engine: Engine, scopes: Sequence[str] = ("site", "participant")) -> tuple[SoftLock, ...]:
    """The sites and participants soft-locked now, sites first, then by target."""
    with read_scope(engine) as session:
        rows = session.execute(select(soft_locks).order_by(soft_locks.c.id)).all()
    last: dict[tuple[str, str], Any] = {}
    for r in rows:
        last[(r.scope, r.target)] = r
    active = [SoftLock(r.scope, r.target, r.at, r.by, r.reason) for r in last.values() if r.locked]
    return tuple(sorted((s for s in active if s.scope in scopes), key=lambda s: (s.scope != "site", s.target)))
