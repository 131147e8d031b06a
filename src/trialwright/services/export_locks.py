"""The trial lock's and the soft locks' history for an export, each row with the AuditRecord of its audit entry.

Each row of ``trial_locks`` and ``soft_locks`` is written in one transaction with one audit entry
(``trial.locked``/``trial.unlocked``, ``lock.soft_locked``/``lock.soft_unlocked`` naming its scope and target:
``trialwright.services.lock``), so a target's rows in the order made and its entries in the trail's order pair one to
one. A trial imported from ODM holds its restored rows' records in the import's trial-level ``import.odm`` entry
(``locks``, in the order the rows were written: ``trialwright.services.odm_import_locks``), at that entry's place in
the trail. A target whose rows and entries do not pair (a row written without its entry) stops the export naming it:
a record is never attributed to the wrong change.

No arm: a lock names the trial, a site or a participant, who, when and why (the audit page shows these to every
role: ``trialwright.domain.audit_masking``). For an exporter kept from the arms each record's hash is ``masked``, as
in every other record of such an export (``trialwright.services.export_audit``): an unmasked locker's entry holds a
count of blockers on the forms that reveal the arm, which the hashes around it would let a reader try counts against.
A record an ODM import kept is written as recorded.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from trialwright.domain.masking import MASKED
from trialwright.exports.base import LockRecord
from trialwright.store.data_tables import soft_locks, trial_locks
from trialwright.store.screening_tables import participants
from trialwright.store.tables import audit_entries

__all__ = ["LOCK_ACTIONS", "lock_records"]

#: The audit actions of a lock row (``services.lock``).
LOCK_ACTIONS = frozenset({"trial.locked", "trial.unlocked", "lock.soft_locked", "lock.soft_unlocked"})

Key = tuple[str, str | None]


def _records(session: Session, masked: bool) -> dict[Key, list[dict[str, Any] | None]]:
    """Each target's records, in the trail's order; ``masked``: their hashes withheld (the module's note)."""
    a = audit_entries.c
    query = (
        select(a.seq, a.at, a.actor, a.role, a.site, a.reason, a.hash, a.action, a.detail, a.new_value)
        .where(or_(a.action.in_(sorted(LOCK_ACTIONS)), and_(a.action == "import.odm", a.participant.is_(None))))
        .order_by(a.seq)
    )
    out: dict[Key, list[dict[str, Any] | None]] = {}
    for r in session.execute(query):
        if r.action == "import.odm":
            kept = json.loads(r.new_value or "{}")
            for item in (kept.get("locks") or ()) if isinstance(kept, dict) else ():
                out.setdefault((item["scope"], item["target"]), []).append(item["recorded"])
            continue
        if r.action.startswith("trial."):
            key: Key = ("trial", None)
        else:
            detail = json.loads(r.detail or "{}")
            key = (str(detail.get("scope")), str(detail.get("target")))
        out.setdefault(key, []).append({
            "seq": r.seq, "at": r.at.isoformat(), "by": r.actor, "role": r.role, "site": r.site, "reason": r.reason,
            "hash": MASKED if masked else r.hash,
            "action": r.action,
        })  # fmt: skip
    return out


def lock_records(session: Session, sites: Collection[str] | None = None, *, masked: bool) -> list[LockRecord]:
    """The trial lock's rows, then the soft locks' (each target's in the order made), each with its AuditRecord;
    ``sites``: an export of those sites only (their soft locks and their participants'; the trial lock always);
    ``masked``: for an exporter kept from the arms."""
    records = _records(session, masked)
    rows: dict[Key, list[Any]] = {}
    for t in session.execute(select(trial_locks).order_by(trial_locks.c.id)):
        rows.setdefault(("trial", None), []).append(t)
    for s in session.execute(select(soft_locks).order_by(soft_locks.c.id)):
        rows.setdefault((s.scope, s.target), []).append(s)
    at_site: dict[str, str] = {}  # a soft-locked participant's site, for an export of some sites
    if sites is not None:
        locked = {t for scope, t in rows if scope == "participant"}
        who = select(participants.c.participant_id, participants.c.site)
        found = session.execute(who.where(participants.c.participant_id.in_(locked)))
        at_site = {p.participant_id: p.site for p in found}
    out: list[LockRecord] = []
    for (scope, target), held in rows.items():
        if sites is not None and scope == "site" and target not in sites:
            continue
        if sites is not None and scope == "participant" and at_site.get(str(target)) not in sites:
            continue
        kept = records.get((scope, target), [])
        if len(kept) != len(held):
            name = "the trial lock" if scope == "trial" else f"{scope} {target}'s soft locks"
            raise ValueError(f"locks: {name} has {len(held)} changes but {len(kept)} audit entries; each change is "
                             "written with its entry, so the records cannot be paired (refused, never "
                             "guessed)")  # fmt: skip
        for row, recorded in zip(held, kept, strict=True):
            blockers = getattr(row, "open_blockers", None)
            stored = getattr(row, "withheld", None)  # NULL: a lock before migration 0042 (its count of every blocker)
            withheld = None if stored is None else tuple(f for f in stored.split(",") if f)
            out.append(LockRecord(scope, target, bool(row.locked), row.at, row.by, row.reason, blockers, recorded,
                                  withheld))  # fmt: skip
    return out
