"""Verification checkpoints: the audit page verifies only what is new; a full verify records what it found.

A *checkpoint* (a row of ``audit_checkpoints``) says the chain was verified up to entry ``seq``, whose hash was
``hash``, at a time, by someone; it is signed with the audit key (``trialwright.domain.audit.checkpoint_mac``),
so an insider without the key cannot move it past entries never verified. ``check_new_entries`` (the audit page)
takes the newest checkpoint, checks its MAC and that its entry still has the checkpointed hash, then verifies the
entries after it (at most ``cap`` of them, so a page load stays constant-time) and writes a new checkpoint. A
checkpoint that fails either check is reported and nothing is verified in the request: the status falls back to
"not verified since" the newest checkpoint that holds, and ``trialwright audit verify`` (which reads the whole
trail and never trusts a checkpoint) says what was done.

``record_full_verify`` stores the outcome of ``trialwright audit verify`` (the chain, the allocation digests and
the replay of the trail against the data tables), with a checkpoint at the head when the chain is intact;
``last_full_verify`` reads it back for the page, which never runs the replay itself.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, inspect, select

from trialwright.domain.audit import GENESIS, ChainReport, Problem, checkpoint_mac, verify_chain
from trialwright.domain.replay import ReplayReport
from trialwright.services import audit, clock
from trialwright.services.audit import _entry
from trialwright.services.audit_keys import read_anchors
from trialwright.store.audit_keys import key_of
from trialwright.store.engine import session_scope
from trialwright.store.tables import audit_checkpoints, audit_entries, audit_keying

__all__ = [
    "PAGE_CAP",
    "FullVerify",
    "TrailStatus",
    "check_new_entries",
    "last_full_verify",
    "record_full_verify",
]

#: The most entries a page load verifies; beyond that the page asks for ``trialwright audit verify``.
PAGE_CAP = 5000
#: How many older checkpoints a page load looks through for one that holds (constant time).
_LOOK_BACK = 20


@dataclass(frozen=True)
class FullVerify:
    """The outcome of the last ``trialwright audit verify``, as recorded (``signed``: its MAC holds)."""

    at: dt.datetime
    by: str
    chain_ok: bool
    problem: str | None
    message: str
    entries: int
    allocations: int
    replay_ok: bool | None
    replay_disagreements: int
    replay_rows: int
    signed: bool


@dataclass(frozen=True)
class TrailStatus:
    """What a page load knows of the chain: verified up to ``verified_to`` (``checked`` entries by this call),
    ``unverified`` entries after it left for ``trialwright audit verify``; ``problem`` names what was found."""

    ok: bool
    head: int
    verified_to: int
    checked: int
    unverified: int
    problem: Problem | None = None
    first_bad_seq: int | None = None
    message: str = ""
    keyed_from: int | None = None
    verified_at: dt.datetime | None = None


def _outcome(row: Any) -> str:
    """The canonical text of a full verify's outcome that its MAC covers ('' for a page checkpoint)."""
    if row["kind"] != "full":
        return ""
    names = ("by", "chain_ok", "problem", "message", "entries", "allocations", "replay_ok", "replay_disagreements",
             "replay_rows")  # fmt: skip
    return json.dumps({n: row[n] for n in names}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _secret(engine: Engine) -> bytes | None:
    ring = key_of(engine)
    return ring.secret if ring is not None else None


def _covered(row: Any, keyed_from: int | None) -> str:
    """What a checkpoint's MAC covers besides its entry: a full verify's outcome, and where keying began, so a
    checkpoint is void once someone moves the keying record (which would let unsigned entries after it pass)."""
    return f"{_outcome(row)}\x00keyed_from={keyed_from}"


def _signed(secret: bytes | None, row: Any, keyed_from: int | None) -> bool:
    """Whether a checkpoint row's MAC holds (without a key, only an unsigned row of an unkeyed trail is taken)."""
    if secret is None:
        return row["mac"] is None
    expected = checkpoint_mac(secret, row["seq"], row["hash"], row["at"], _covered(row, keyed_from))
    return row["mac"] is not None and hmac.compare_digest(row["mac"], expected)


def _write(engine: Engine, *, at: dt.datetime | None = None, **values: Any) -> None:
    at = at or clock.now()
    secret = _secret(engine)
    row = {c.name: values.get(c.name) for c in audit_checkpoints.c if c.name not in {"id", "at"}}
    row["at"] = at
    with session_scope(engine) as session:
        keyed_from = session.execute(select(audit_keying.c.keyed_from)).scalar()
        row["mac"] = checkpoint_mac(secret, row["seq"], row["hash"], at, _covered(row, keyed_from)) if secret else None
        session.execute(audit_checkpoints.insert().values(**row))


def check_new_entries(engine: Engine, *, by: str, cap: int = PAGE_CAP) -> TrailStatus:
    """Verify the entries after the newest checkpoint that holds (at most ``cap``) and checkpoint them."""
    secret = _secret(engine)
    with engine.connect() as conn:
        head = int(conn.execute(select(func.max(audit_entries.c.seq))).scalar() or 0)
        keyed_from = conn.execute(select(audit_keying.c.keyed_from)).scalar()
        rows = conn.execute(
            select(audit_checkpoints)
            .where(audit_checkpoints.c.seq.is_not(None))
            .order_by(audit_checkpoints.c.seq.desc(), audit_checkpoints.c.id.desc())
            .limit(_LOOK_BACK)
        ).all()
        refused: str | None = None
        base: Any = None
        for row in rows:
            m = row._mapping
            stored = conn.execute(select(audit_entries.c.hash).where(audit_entries.c.seq == m["seq"])).scalar()
            if not _signed(secret, m, keyed_from):
                why = f"the checkpoint of entry {m['seq']} ({_when(m['at'])}) is not signed with the audit key (forged)"
            elif stored != m["hash"]:
                what = "is gone" if stored is None else "no longer has the checkpointed hash"
                why = (
                    f"entry {m['seq']} {what} since it was verified on {_when(m['at'])} "
                    "(altered, removed or re-chained)"
                )
            else:
                base = m
                break
            refused = refused or why
    verified_to = int(base["seq"]) if base is not None else 0
    since = base["at"] if base is not None else None
    if refused is not None:
        bad = rows[0]._mapping["seq"]
        return TrailStatus(False, head, verified_to, 0, head - verified_to, "checkpoint", bad,
                           f"{refused}; not verified since entry {verified_to}: run `trialwright audit verify`",
                           keyed_from, since)  # fmt: skip
    anchors = _anchors(engine)
    if anchors and max(a.seq for a in anchors) > head:
        last = max(a.seq for a in anchors)
        return TrailStatus(False, head, verified_to, 0, head - verified_to, "truncated", head + 1,
                           f"the trail ends at entry {head} but entry {last} was anchored (deleted tail)",
                           keyed_from, since)  # fmt: skip
    stop = min(head, verified_to + cap)
    if stop <= verified_to:
        return TrailStatus(True, head, verified_to, 0, head - verified_to, keyed_from=keyed_from, verified_at=since)
    after = (verified_to, str(base["hash"])) if base is not None else (0, GENESIS)
    query = (
        select(audit_entries)
        .where(audit_entries.c.seq > verified_to, audit_entries.c.seq <= stop)
        .order_by(audit_entries.c.seq)
    )
    verified: list[str] = []  # the last hash verify_chain checked: the one the new checkpoint signs

    def read(result: Any) -> Iterator[Any]:
        for row in result:
            verified[:] = [row.hash]
            yield _entry(row)

    with engine.connect() as conn:
        result = conn.execution_options(yield_per=1000).execute(query)
        report = verify_chain(
            read(result),
            key=secret,
            keyed_from=keyed_from,
            anchors=[a for a in anchors if verified_to < a.seq <= stop],
            after=after,
        )
    if report.ok and report.count < stop - verified_to:
        report = ChainReport(False, report.count, verified_to + report.count + 1, "removed",
                             f"entry {verified_to + report.count + 1} is missing (removed)")  # fmt: skip
    if not report.ok:
        return TrailStatus(False, head, verified_to, report.count, head - verified_to, report.problem,
                           report.first_bad_seq, report.message, keyed_from, since)  # fmt: skip
    now = clock.now()
    _write(engine, kind="page", seq=stop, hash=verified[-1], at=now, by=by, entries=report.count, chain_ok=True)
    return TrailStatus(True, head, stop, report.count, head - stop, keyed_from=keyed_from, verified_at=now)


def _anchors(engine: Engine) -> list[Any]:
    ring = key_of(engine)
    try:
        return read_anchors(ring.anchor_file if ring is not None else None)
    except ValueError:
        return []  # a damaged anchor file is the full verify's to report


def _when(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def record_full_verify(engine: Engine, report: ChainReport, replayed: ReplayReport | None, *, by: str) -> None:
    """Record the outcome of a full verification, with a checkpoint at the entry it verified up to when the chain
    is intact (the entries verified are the trail's first ``report.count``). A database not yet upgraded (no
    ``audit_checkpoints``) records nothing."""
    if not inspect(engine).has_table("audit_checkpoints"):
        return
    seq = hash_ = None
    if report.ok and report.count:
        with engine.connect() as conn:
            hash_ = conn.execute(select(audit_entries.c.hash).where(audit_entries.c.seq == report.count)).scalar()
        seq = report.count if hash_ is not None else None
    outcome: dict[str, Any] = {
        "chain_ok": report.ok,
        "problem": report.problem,
        "entries": report.count,
        "replay_ok": replayed.ok if replayed is not None else None,
        "replay_disagreements": replayed.count if replayed is not None else 0,
    }
    _write(
        engine,
        kind="full",
        seq=seq,
        hash=hash_,
        by=by,
        message=report.message,
        allocations=report.allocations,
        replay_rows=replayed.rows if replayed is not None else 0,
        **outcome,
    )
    # The outcome also goes into the chain: a failed verification's record deleted from audit_checkpoints (which
    # would let the page show an older, intact one) then disagrees with the trail's newest audit.verified entry.
    with session_scope(engine) as session:
        audit.record(session, actor=by, action="audit.verified", detail=outcome)


def _agrees(row: Any, chained: str | None) -> bool:
    """Whether a full verify's record says what the trail's newest ``audit.verified`` entry says (a database from
    before those entries has none: nothing to compare)."""
    if chained is None:
        return True
    said = json.loads(chained)
    return all(said.get(name) == row[name] for name in ("chain_ok", "problem", "entries", "replay_ok",
                                                         "replay_disagreements"))  # fmt: skip


def last_full_verify(engine: Engine) -> FullVerify | None:
    """The outcome of the newest full verification recorded (None: never run)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(audit_checkpoints)
            .where(audit_checkpoints.c.kind == "full")
            .order_by(audit_checkpoints.c.id.desc())
            .limit(1)
        ).first()
        keyed_from = conn.execute(select(audit_keying.c.keyed_from)).scalar()
        chained = conn.execute(
            select(audit_entries.c.detail)
            .where(audit_entries.c.action == "audit.verified")
            .order_by(audit_entries.c.seq.desc())
            .limit(1)
        ).scalar()
    if row is None:
        return None
    m = row._mapping
    return FullVerify(
        at=m["at"],
        by=m["by"],
        chain_ok=bool(m["chain_ok"]),
        problem=m["problem"],
        message=m["message"] or "",
        entries=int(m["entries"] or 0),
        allocations=int(m["allocations"] or 0),
        replay_ok=m["replay_ok"],
        replay_disagreements=int(m["replay_disagreements"] or 0),
        replay_rows=int(m["replay_rows"] or 0),
        signed=_signed(_secret(engine), m, keyed_from) and _agrees(m, chained),
    )
