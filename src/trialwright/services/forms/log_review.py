"""Review of log entries, as of a form's values: source data verification by the monitor (one entry, a series, or
the casebook's bulk verification), the investigator's signature (the casebook's: signing a casebook signs the log
entries it showed), and both voided by a later amendment or removal of the entry. Queries on an entry's field are
the forms' queries (``services.forms.queries.raise_query`` with ``log_id`` and ``sequence``).

An entry is verified or signed as a whole, as a form is; its record keeps who and when (and the signature's meaning,
the protocol's ``signature_meaning``). In the casebook each entry carries a *seal* (a digest of its version, state
and values), as each form does: an entry changed since the review is not signed or verified but excluded with the
reason, as is an entry not ready (removed, already signed or verified, an open query on it for a signature). Every
step and every voiding has its audit entry (``log.entry_verified``, ``log.entry_signed``,
``log.verification_voided``, ``log.signature_voided``). A removed entry is out of the data: it needs neither.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from trialwright.domain.forms import Transition
from trialwright.domain.roles import Role
from trialwright.protocol import Protocol
from trialwright.services import audit, clock
from trialwright.services.forms.common import _role
from trialwright.services.lock import require_unlocked
from trialwright.services.log_views import (
    REMOVED,
    SELECT_ENTRIES,
    LogEntryView,
    LogError,
    entry_row,
    entry_view,
    log_def,
    read_entry,
)
from trialwright.services.screening import participant_row
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.data_tables import queries
from trialwright.store.engine import session_scope
from trialwright.store.log_tables import log_entries

__all__ = [
    "CasebookEntry",
    "apply_entries",
    "casebook_entries",
    "entry_seal",
    "verify_entries",
    "verify_entry",
    "void_review",
]


@dataclass(frozen=True)
class CasebookEntry:
    """One log entry of the casebook: its view and seal, its open queries, and why it cannot be signed or verified
    now (None = it can)."""

    log_name: str
    view: LogEntryView
    seal: str
    open_queries: int
    not_signable: str | None
    not_verifiable: str | None

    @property
    def key(self) -> tuple[str, int]:
        """``(log, sequence)``, as the casebook's signing and verification name it."""
        return self.view.log_id, self.view.sequence


def entry_seal(row: Any) -> str:
    """A log entry's seal: what the reviewer saw (version, state, stored values)."""
    text = json.dumps([row.version, row.state, json.loads(row.entry_values)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _not_signable(view: LogEntryView, open_queries: int) -> str | None:
    if view.removed:
        return "removed"
    if view.signed_at is not None:
        return "already signed"
    if open_queries:
        return "open queries"
    return None


def _not_verifiable(view: LogEntryView) -> str | None:
    if view.removed:
        return "removed"
    if view.verified_at is not None:
        return "already verified"
    return None


def casebook_entries(session: Session, protocol: Protocol, participant_id: str, site: str) -> list[CasebookEntry]:
    """The participant's log entries in the protocol's order of logs, then by sequence (removed ones included)."""
    rows = session.execute(SELECT_ENTRIES.where(log_entries.c.participant_id == participant_id)).all()
    waiting = Counter(session.execute(select(queries.c.log_entry_id).where(
        queries.c.participant_id == participant_id, queries.c.log_entry_id.is_not(None),
        queries.c.status != "closed")).scalars())  # fmt: skip
    order = {g.id: i for i, g in enumerate(protocol.logs)}
    names = {g.id: g.name for g in protocol.logs}
    out = []
    for row in sorted(rows, key=lambda r: (order.get(r.log_id, len(order)), r.log_id, r.sequence)):
        view = entry_view(row, site)
        n = waiting[row.id]
        out.append(CasebookEntry(names.get(row.log_id, row.log_id), view, entry_seal(row), n,
                                 _not_signable(view, n), _not_verifiable(view)))  # fmt: skip
    return out


def _review(
    session: Session, protocol: Protocol, actor: UserView, participant: Any, row: Any, move: Transition
) -> LogEntryView:
    """Verify or sign one entry inside the caller's transaction, with its audit entry."""
    require_unlocked(session, participant.participant_id, site=participant.site)  # a soft lock of them or their site
    now = clock.now()
    if move is Transition.SIGN:
        values: dict[str, Any] = {"signed_at": now, "signed_by": actor.username,
                                  "signature_meaning": protocol.signature_meaning}  # fmt: skip
        action, detail = "log.entry_signed", {"sequence": row.sequence, "meaning": protocol.signature_meaning}
    else:
        values = {"verified_at": now, "verified_by": actor.username}
        action, detail = "log.entry_verified", {"sequence": row.sequence}
    session.execute(log_entries.update().where(log_entries.c.id == row.id).values(**values))
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=participant.site,
        participant=participant.participant_id,
        form=row.log_id,
        action=action,
        new_value={"sequence": row.sequence, "version": row.version},
        detail=detail,
    )
    return read_entry(session, row.id, participant.site)


def apply_entries(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    participant: Any,
    reviewed: Mapping[tuple[str, int], str],
    move: Transition,
) -> tuple[list[LogEntryView], list[tuple[str, int, str]]]:
    """Sign or verify the reviewed entries of a casebook (``(log, sequence) -> seal`` as shown) in the caller's
    transaction: the entries done, and each entry left with why (``(log, sequence, reason)``)."""
    now = {e.key: e for e in casebook_entries(session, protocol, participant.participant_id, participant.site)}
    done: list[LogEntryView] = []
    excluded: list[tuple[str, int, str]] = []
    for (log_id, sequence), seal in reviewed.items():
        current = now.get((log_id, sequence))
        if current is None:
            excluded.append((log_id, sequence, "not an entry of this casebook"))
            continue
        why = current.not_signable if move is Transition.SIGN else current.not_verifiable
        if current.seal != seal:
            why = "changed since you reviewed it; review the casebook again"
        if why is not None:
            excluded.append((log_id, sequence, why))
            continue
        row = entry_row(session, participant.participant_id, log_id, sequence)
        done.append(_review(session, protocol, actor, participant, row, move))
    return done, excluded


def verify_entries(
    engine: Engine, actor: UserView, entries: Sequence[tuple[str, str, int]]
) -> tuple[LogEntryView, ...]:
    """Source data verification of a series of log entries, each ``(participant, log, sequence)``, by the monitor:
    one verification and audit entry per entry; all or nothing (the first entry that cannot be verified is named)."""
    _role(actor, [Role.MONITOR], "verify log entries against source")
    if not entries:
        raise LogError("entries: name at least one log entry")
    protocol = current_protocol(engine).protocol
    for _, log_id, _ in entries:
        log_def(protocol, log_id)
    with session_scope(engine) as session:
        require_unlocked(session)
        views = []
        for participant_id, log_id, sequence in entries:
            participant = participant_row(session, actor, participant_id)
            row = entry_row(session, participant_id, log_id, sequence)
            if row.state == REMOVED:
                why = f"removed ({row.removed_reason}); a removed entry is not verified"
            elif row.verified_at is not None:
                why = f"already verified (by {row.verified_by}); a change voids it first"
            else:
                views.append(_review(session, protocol, actor, participant, row, Transition.VERIFY))
                continue
            more = "" if len(entries) == 1 else "; nothing was verified"
            raise LogError(f"sequence: entry {sequence} of {log_id} of {participant_id} is {why}{more}")
        return tuple(views)


def verify_entry(engine: Engine, actor: UserView, participant_id: str, log_id: str, sequence: int) -> LogEntryView:
    """Source data verification of one log entry by the monitor."""
    (view,) = verify_entries(engine, actor, [(participant_id, log_id, sequence)])
    return view


def void_review(session: Session, actor: UserView, participant: Any, row: Any, reason: str) -> dict[str, None]:
    """An entry amended or removed loses its verification and signature: each voiding audited
    (``log.signature_voided``, ``log.verification_voided``) with the reason; the columns to clear."""
    cleared: dict[str, None] = {}
    for action, at, by, columns in (
        ("log.signature_voided", row.signed_at, row.signed_by, ("signed_at", "signed_by", "signature_meaning")),
        ("log.verification_voided", row.verified_at, row.verified_by, ("verified_at", "verified_by")),
    ):
        if at is None:
            continue
        cleared |= dict.fromkeys(columns)
        audit.record(
            session,
            actor=actor.username,
            role=actor.role.value,
            site=participant.site,
            participant=participant.participant_id,
            form=row.log_id,
            action=action,
            old_value={"by": by, "at": at.isoformat()},
            reason=reason,
            detail={"sequence": row.sequence},
        )
    return cleared
