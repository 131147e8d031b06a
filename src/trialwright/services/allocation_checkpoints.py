"""Verified allocations: a table by arm verifies only the allocation entries added or changed since its last load.

Every arm a table by arm reads must match its entry's keyed digest, and every participant the audit trail records
as randomized must still have their entry (``trialwright.services.audit_keys``). Checking the whole list on every
load costs a digest per entry and a read of every ``participant.randomized`` entry of the trail. Instead:

- ``verified_allocations`` keeps each entry as a load last verified it (every column the digest covers, and the
  digest). A load asks the database, in one statement, for the entries that differ from their copy or have none,
  and checks only those against their digest; an entry whose copy named a participant and that now names another
  or none (moved, or put back to an older state) is refused, naming that participant; a copied entry that is gone
  (deleted) and was claimed is refused the same way (``AllocationsMissing``).
- ``allocation_checkpoints`` says, signed with the audit key, up to which audit entry the trail's randomizations
  were matched to an entry: a load matches only the ``participant.randomized`` entries after the newest checkpoint
  that holds. Without one that holds (none yet, or forged), the whole list is checked and the copy is not used.
- Each load also checks ``SWEEP`` entries of the list against their digests whatever their copy says, from a place
  drawn at random, so an entry altered together with its copy is found after about N / SWEEP loads on average
  (and by ``trialwright audit verify``, which reads every entry and never uses the copy).
- Each load counts the trail's randomized participants against the claimed entries (one aggregate statement): an
  entry deleted or put back unclaimed together with its copy makes them differ, and then every randomization of the
  trail is matched to an entry, not only those after the checkpoint, so that participant is refused by name.

A load is read in one snapshot; what it verified is remembered afterwards in its own short write transaction
(``remember``), and only when there is something new. Without a key (or before keying began) there is nothing to
verify and callers read the list as before (``verified_allocations`` returns None).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, exists, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from trialwright.domain.audit import ALLOCATION_FIELDS, allocation_digest, checkpoint_mac
from trialwright.services import clock
from trialwright.services.audit_keys import AllocationsAltered, AllocationsMissing
from trialwright.store.audit_keys import key_of
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import allocation_checkpoints, allocation_entries, verified_allocations
from trialwright.store.tables import audit_entries, audit_keying

_log = logging.getLogger(__name__)

__all__ = ["SWEEP", "VerifiedList", "remember", "verified_list"]

#: How many entries each load checks against their digests whatever their copy says.
SWEEP = 500
#: How many trail entries may pass without a randomization before a load writes a checkpoint anyway.
_ADVANCE = 5000
#: How many older checkpoints a load looks through for one that holds.
_LOOK_BACK = 20
_COVERED = "allocations"


@dataclass(frozen=True)
class VerifiedList:
    """A load's allocations: ``claimed`` (how many entries are claimed, every one verified in the load's snapshot: the
    caller counts them by arm in SQL in the same snapshot, never reading each entry's arm), the entries it checked
    because they changed (``verified``, to remember; ``checked`` of them) and the trail entry it covered up to
    (``head``; ``since``: the checkpoint's)."""

    claimed: int
    verified: list[dict[str, Any]] = field(default_factory=list)
    head: int = 0
    since: int = 0
    checked: int = 0


def _secret(session: Session) -> bytes | None:
    ring = key_of(session.get_bind())
    return ring.secret if ring is not None else None


def _since(session: Session, secret: bytes) -> int | None:
    """The trail entry the newest checkpoint that holds covers up to (None: no checkpoint holds)."""
    rows = session.execute(
        select(allocation_checkpoints).order_by(allocation_checkpoints.c.id.desc()).limit(_LOOK_BACK)
    ).all()
    for row in rows:
        expected = checkpoint_mac(secret, row.seq, None, row.at, _COVERED)
        if row.mac is not None and hmac.compare_digest(row.mac, expected):
            return int(row.seq)
    return None


def verified_list(session: Session) -> VerifiedList | None:
    """Every claimed allocation entry's arm, each verified, in the session's snapshot (None: the trail is not keyed,
    so there is no digest to check: read the list as ``checked_allocations`` does).

    Raises ``AllocationsAltered`` naming the entries (and participants) that do not match their digest or were moved
    from their participant, ``AllocationsMissing`` naming randomized participants whose entry is gone."""
    secret = _secret(session)
    if secret is None or session.execute(select(audit_keying.c.id)).first() is None:
        return None
    head = int(session.execute(select(func.max(audit_entries.c.seq))).scalar() or 0)
    since = _since(session, secret)
    live, copy = allocation_entries, verified_allocations
    columns = [live.c[name] for name in ALLOCATION_FIELDS]
    query = select(live, *(copy.c[n].label(f"was_{n}") for n in ("entry_id", "participant_id")))
    query = query.outerjoin(copy, copy.c.entry_id == live.c.id).where(live.c.participant_id.is_not(None))
    if since is not None:  # the copy is trusted only under a checkpoint that holds
        differs = [c.is_distinct_from(copy.c[c.name]) for c in [*columns, live.c.digest]]
        query = query.where(or_(copy.c.entry_id.is_(None), *differs))
    changed = session.execute(query.order_by(live.c.id)).all()
    altered: dict[int, str | None] = {}
    for row in changed:
        m = row._mapping
        copied = since is not None and row.was_entry_id is not None and row.was_participant_id is not None
        if copied and row.participant_id != row.was_participant_id:  # claimed entries never change hands
            altered[int(row.id)] = row.was_participant_id
            continue
        if m["digest"] != allocation_digest(secret, m):
            altered[int(row.id)] = row.participant_id
    claimed = int(session.execute(select(func.count()).where(live.c.participant_id.is_not(None))).scalar() or 0)
    # without a checkpoint that holds every claimed entry was just checked: no sweep
    swept = _sweep(session, secret, claimed, {int(r.id) for r in changed}) if since is not None else []
    for entry_id, participant in swept:
        altered.setdefault(entry_id, participant)
    if altered:
        ids = sorted(altered)
        raise AllocationsAltered(ids, sorted({p for i in ids if (p := altered[i]) is not None}))
    if since is not None:
        # a copied entry that is gone, or no longer names its participant (deleted, or put back unclaimed)
        gone = session.execute(
            select(copy.c.participant_id).where(
                copy.c.participant_id.is_not(None),
                ~exists().where(live.c.id == copy.c.entry_id, live.c.participant_id == copy.c.participant_id),
            )
        ).scalars()
        lost = sorted(set(gone))
        if lost:
            raise AllocationsMissing(lost)
    # An entry deleted (or put back unclaimed) together with its copy leaves no copy to miss: the trail's
    # randomized participants, counted by the database, must be as many as the claimed entries, or every one of
    # them is looked for, not only those after the checkpoint (one aggregate statement a load either way).
    in_trail = session.execute(
        select(func.count(func.distinct(audit_entries.c.participant))).where(
            audit_entries.c.action == "participant.randomized"
        )
    ).scalar()
    after = since if since is not None and int(in_trail or 0) <= claimed else 0
    randomized = select(audit_entries.c.participant).where(
        audit_entries.c.action == "participant.randomized",
        audit_entries.c.seq > after,
        ~exists().where(live.c.participant_id == audit_entries.c.participant),
    )
    lost = sorted(set(session.execute(randomized.distinct()).scalars()) - {None})
    if lost:
        raise AllocationsMissing(lost)
    verified = [{"entry_id": int(r.id), **{n: r._mapping[n] for n in (*ALLOCATION_FIELDS, "digest")}} for r in changed]
    return VerifiedList(claimed, verified, head, since or 0, len(changed))


def _sweep(session: Session, secret: bytes, claimed: int, checked: set[int]) -> list[tuple[int, str | None]]:
    """``SWEEP`` of the ``claimed`` entries (in id order), from a place drawn at random each load and round from the
    start, checked against their digests (but those in ``checked``, just checked): the entries (and participants)
    that do not match. Drawn, not moved with the clock: loads at a fixed period would otherwise sweep the same window
    again and again (a review found it for lists whose size divides the minute's step). The window is chosen by the
    database (by position, ``OFFSET``), so only its ``SWEEP`` entries are read, never the list's ids."""
    start = secrets.randbelow(max(claimed, 1))
    live = allocation_entries
    ordered = select(live.c.id).where(live.c.participant_id.is_not(None)).order_by(live.c.id)
    tail = ordered.limit(SWEEP).offset(start).subquery("tail")
    head = ordered.limit(max(0, SWEEP - (claimed - start))).subquery("head")
    # one statement whatever was chosen (none too), so that a load sends as many statements every time
    rows = session.execute(
        select(live).where(or_(live.c.id.in_(select(tail.c.id)), live.c.id.in_(select(head.c.id))))
    ).all()
    return [
        (int(r.id), r.participant_id)
        for r in rows
        if int(r.id) not in checked and r.digest != allocation_digest(secret, r._mapping)
    ]


def remember(engine: Engine, checked: VerifiedList | None) -> None:
    """Keep what a load verified (its entries' copies) and a keyed checkpoint of the trail entry it covered up to; in
    its own write transaction, and only when there is something new."""
    if checked is None or (not checked.verified and checked.head - checked.since < _ADVANCE):
        return
    ring = key_of(engine)
    secret = ring.secret if ring is not None else None
    if secret is None:
        return
    dialect = engine.dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(verified_allocations)
    upsert = insert.on_conflict_do_update(
        index_elements=[verified_allocations.c.entry_id],
        set_={c.name: insert.excluded[c.name] for c in verified_allocations.c if c.name != "entry_id"},
    )
    now = clock.now()
    try:
        _keep(engine, checked, upsert, secret, now)
    except OperationalError as exc:  # a cache of what was verified, not trial data: a page that has read its tables
        # is not failed because it could not write (e.g. a long import holding SQLite's writer past its wait); the
        # next load verifies more instead
        _log.warning("allocation checkpoint not kept (%s): the next load checks more", exc.orig or exc)


def _keep(engine: Engine, checked: VerifiedList, upsert: Any, secret: bytes, now: Any) -> None:
    with session_scope(engine) as session:
        if checked.verified:
            session.execute(upsert, checked.verified)
        session.execute(
            allocation_checkpoints.insert().values(
                seq=checked.head, at=now, mac=checkpoint_mac(secret, checked.head, None, now, _COVERED)
            )
        )
