"""Writing and reading the audit trail.

``record`` (and ``record_many``, one batch) appends entries inside the caller's transaction without a global
lock held across it:

- **PostgreSQL**: the entries are written to ``audit_pending`` in the user's transaction, each signed with the
  audit key (an HMAC of its content), so many transactions write and commit at once. Right after the commit,
  ``chain_pending`` (the single chainer: a short transaction under an advisory lock) moves every pending entry into
  ``audit_entries`` in the order it finds them, giving each its sequence number, the previous entry's hash, its
  hash and its MAC: one chainer pass serves every transaction that committed meanwhile. Within a process the
  writers that commit while a pass runs wait on a condition for the next pass, which one of them runs for all
  (group commit), instead of each running or polling for its own. Each pending entry carries
  a random nonce its MAC covers; a pending entry whose MAC does not match, that has none on a keyed trail, or whose
  nonce was chained before (a replayed copy) is never chained: it is moved to ``audit_pending_rejected`` and an
  ``audit.pending_rejected`` entry naming it is chained in its place, so one bad row never stops the trail, and
  ``verify`` reports the trail as tampered with while any is kept there. Entries left pending by a crash are
  chained by the next pass (any write, ``audit verify``, a backup, the server's start).
- **SQLite**: one writer at a time already (every write transaction begins IMMEDIATE, see
  ``trialwright.store.engine``), so entries are chained as they are written, with no pending step.

Values are stored as canonical JSON text, and that exact text is what the hash covers.

Each chained entry is signed (HMAC) with the audit key the engine was made with
(``trialwright.store.audit_keys``). The first entry chained with a key begins keying: ``audit_keying`` records
its sequence number and the key's check value, and allocation entries made before then are given their digest.
A trial keyed so is never written to without the key: a writer without a key, or with another trial's, is
refused before anything is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import MISSING, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, func, inspect, select, text
from sqlalchemy.orm import Session

from trialwright.domain.audit import GENESIS, AuditEntry, ChainReport, canonical_fields
from trialwright.services import clock
from trialwright.store.audit_keys import AuditKey, AuditKeyError, is_checked, key_check, key_of, mark_checked
from trialwright.store.engine import after_commit, before_commit, is_postgresql, serialise, session_scope
from trialwright.store.prepared import Prepared, innermost_connection, insert_many
from trialwright.store.tables import audit_entries, audit_keying, audit_pending, audit_pending_rejected

if TYPE_CHECKING:
    from trialwright.settings import Settings

__all__ = [
    "AuditEntry",
    "AuditKeyError",
    "Change",
    "batched",
    "begin_keying",
    "chain_pending",
    "count",
    "entries",
    "gathered",
    "head_columns",
    "head_read",
    "pending_count",
    "record",
    "record_many",
    "record_now",
    "rejected_pending",
    "side_files",
    "verify",
]

_log = logging.getLogger(__name__)

#: One entry to record: the keyword arguments of ``record`` (actor and action required).
Change = Mapping[str, Any]

_CONTENT = ("at", "actor", "role", "site", "participant", "form", "field", "action", "old_value", "new_value",
            "reason", "detail")  # fmt: skip


#: ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)``, built once
#: (``json.dumps`` with options builds an encoder per call, and this runs several times for every entry).
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


def _json(value: object) -> str | None:
    if value is None:
        return None
    return _ENCODE(value)


def _content(change: Change, now: dt.datetime) -> dict[str, Any]:
    """The stored columns of one change: values as canonical JSON text, the time in UTC."""
    at = change.get("at") or now
    return {
        "at": at.astimezone(dt.UTC),
        "actor": change["actor"],
        "role": change.get("role"),
        "site": change.get("site"),
        "participant": change.get("participant"),
        "form": change.get("form"),
        "field": change.get("field"),
        "action": change["action"],
        "old_value": _json(change.get("old_value")),
        "new_value": _json(change.get("new_value")),
        "reason": change.get("reason"),
        "detail": _json(change.get("detail")),
    }


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    role: str | None = None,
    site: str | None = None,
    participant: str | None = None,
    form: str | None = None,
    field: str | None = None,
    old_value: object = None,
    new_value: object = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
    last: bool = False,
) -> None:
    """Append one entry to the audit trail in the caller's transaction (inside ``batched``, when it ends).

    ``last``: the caller writes nothing more and takes no other lock before its transaction commits, so on
    PostgreSQL the entry is given its commit-order number (``_order``) by the INSERT that writes it, not by one more
    statement just before the commit (inside ``batched``, or after other entries of the transaction, it is numbered
    as usual).

    Raises ``AuditKeyError`` when the trail is keyed and this engine has no key, or not this trial's key.
    """
    # ``_content`` of this one change, built from the arguments directly (this runs for every value a form saves).
    content = {"at": (at or clock.now()).astimezone(dt.UTC), "actor": actor, "role": role, "site": site,
               "participant": participant, "form": form, "field": field, "action": action,
               "old_value": None if old_value is None else _ENCODE(old_value),
               "new_value": None if new_value is None else _ENCODE(new_value), "reason": reason,
               "detail": None if detail is None else _ENCODE(detail)}  # fmt: skip
    buffers = session.info.get(_BUFFERS)
    if buffers:
        buffers[-1].append(content)
        return
    _write(session, [content], last=last)


_BUFFERS = "trialwright.audit.buffers"


@contextmanager
def batched(session: Session, *, last: bool = False) -> Iterator[None]:
    """Gather the entries ``record`` makes in the block and write them, in order, with one INSERT when it ends
    (nothing if it raises: its transaction or savepoint is rolled back by the caller). May be nested: each block
    writes its own entries when it ends. ``last``: as ``record``'s (the block's end is the transaction's last write,
    after every lock it takes)."""
    buffers: list[list[dict[str, Any]]] = session.info.setdefault(_BUFFERS, [])
    buffers.append([])
    try:
        yield
    except BaseException:
        buffers.pop()
        raise
    _write(session, buffers.pop(), last=last)


@contextmanager
def gathered(session: Session, *, last: bool = False) -> Iterator[None]:
    """Like ``batched``, but inside an enclosing ``batched`` block the entries made here join that block's single
    INSERT when this block ends (dropped if it raises: the caller rolls back its savepoint); outside one, they are
    written when it ends, as ``batched`` does (``last`` as there; inside a block it says nothing). One form's save is
    gathered: a bulk import writes many forms' entries with one INSERT, in the order the one-by-one saves would
    have written them."""
    buffers: list[list[dict[str, Any]]] | None = session.info.get(_BUFFERS)
    if not buffers:
        with batched(session, last=last):
            yield
        return
    buffers.append([])
    try:
        yield
    except BaseException:
        buffers.pop()
        raise
    mine = buffers.pop()
    buffers[-1].extend(mine)


def record_many(session: Session, changes: Sequence[Change], *, last: bool = False) -> None:
    """Append entries, in this order, in the caller's transaction with one INSERT (see ``record``). Each value is
    serialised now, so a change the caller makes to an object afterwards never reaches the trail."""
    now = clock.now()
    contents = [_content(change, now) for change in changes]
    buffers = session.info.get(_BUFFERS)
    if buffers:
        buffers[-1].extend(contents)
        return
    _write(session, contents, last=last)


def _write(session: Session, contents: Sequence[dict[str, Any]], *, last: bool = False) -> None:
    if not contents:
        return
    if session.get_bind().dialect.name == "postgresql":
        _write_pending(session, contents, last=last)
    else:
        _write_chained(session, contents)


def record_now(engine: Engine, **change: Any) -> int:
    """Record one entry in a transaction of its own, chained before it returns; its sequence number.

    For the few callers that must name the entry they wrote (a backup, a restore): the chain is extended inside
    the transaction, under the chainer's lock.
    """
    with session_scope(engine) as session:
        content = _content(change, clock.now())
        if not is_postgresql(engine):
            return _write_chained(session, [content])[-1]
        serialise(session, "audit")
        key = _writer_key(session)
        _chain_rows(session, _take_pending(session, limit=None))
        return _chain_rows(session, [{**content, "mac": _pending_mac(key, content, None), "id": None}])[-1]


# -- PostgreSQL: pending entries, chained after the commit -------------------------------------------------------

_PENDING = "trialwright.audit.pending"
_PENDING_COLUMNS = (*_CONTENT, "nonce", "mac")


def _rows_insert(table: str, columns: Sequence[str], returning: str | None = None, *, ordered: bool = False) -> Any:
    """PostgreSQL: an INSERT of many rows passed as one JSON array (``_as_json_rows``), in the array's order, so the
    statement's text is the same whatever the number of rows: psycopg converts and prepares it once, where an
    INSERT of many VALUES (SQLAlchemy's insertmanyvalues, for RETURNING) is new text of thousands of parameters that
    psycopg parses again every time, executemany sends one statement per row, and array parameters are escaped
    value by value in Python. The same rows as an INSERT of each: every value is a JSON string, number or null read
    back as it was, and the columns' types check them as they would (``at`` is UTC already, see ``_content``)."""
    names = ", ".join(columns)  # plain names, none a reserved word, as SQLAlchemy writes them
    values = ", ".join(f"CAST(r->>'{c}' AS {_TYPES.get(c, 'text')})" for c in columns)
    if ordered:  # one number for every row (an uncorrelated subquery is evaluated once), as ``_order`` gives
        names, values = f"ord, {names}", f"(SELECT nextval('audit_order')), {values}"
    rows = f"SELECT {values} FROM json_array_elements(CAST(:rows AS json)) WITH ORDINALITY AS e(r, n) ORDER BY n"  # noqa: S608
    sql = f"INSERT INTO {table} ({names}) {rows}"  # the names are this module's constants, never input
    return text(sql + (f" RETURNING {returning}" if returning else ""))


_TYPES = {"at": "timestamptz", "seq": "bigint"}


def _iso(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _as_json_rows(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, str]:
    """The parameter of a ``_rows_insert``: the rows' columns as one JSON array (times in ISO 8601, to the
    microsecond)."""
    return {"rows": json.dumps([{name: row[name] for name in names} for row in rows], default=_iso)}


#: Run on the driver's cursor (``Prepared``): every writer's hot path on PostgreSQL.
_INSERT_PENDING = Prepared(_rows_insert("audit_pending", _PENDING_COLUMNS, returning="id"))
#: The same, every row given one number from ``audit_order`` (``_order``'s, for a transaction's last write).
_INSERT_PENDING_ORDERED = Prepared(_rows_insert("audit_pending", _PENDING_COLUMNS, returning="id", ordered=True))
_PENDING_LABEL = b"pending\x00"


def _pending_mac(key: bytes | None, content: Mapping[str, Any], nonce: str | None) -> str | None:
    """The MAC of a pending entry: its content and its nonce (an entry written before nonces has none)."""
    if key is None:
        return None
    # ``canonical(AuditEntry(seq=0, prev_hash="", **content))``'s bytes, without making an entry per row.
    data = canonical_fields({**{name: content[name] for name in _CONTENT}, "seq": 0, "prev_hash": ""})
    head = _PENDING_LABEL + (nonce.encode() + b"\x00" if nonce else b"")
    return hmac.new(key, head + data, hashlib.sha256).hexdigest()


def _writer_key(session: Session) -> bytes | None:
    """The key this engine writes with, refusing a writer without the trail's key (None: the trail is not keyed
    and the engine has no key). The key is matched against the check value once per engine."""
    bind = session.get_bind()
    ring = key_of(bind)
    secret = ring.secret if ring is not None else None
    if secret is not None and is_checked(bind):
        return secret
    row = session.execute(select(audit_keying.c.key_check)).first()
    if secret is None:
        if row is not None:
            raise (ring or AuditKey(None, "this engine was made without one")).missing()
        return None
    if row is not None:
        if row.key_check != key_check(secret):
            raise (ring or AuditKey(None, "")).wrong()
        mark_checked(bind)
    return secret


def _write_pending(session: Session, contents: Sequence[dict[str, Any]], *, last: bool = False) -> None:
    state = session.info.get(_PENDING)
    if state is None:
        state = {"key": _writer_key(session), "last": 0, "first": None}
        session.info[_PENDING] = state
        engine = session.get_bind()
        before_commit(session, lambda: _order(session, state["first"], state["last"]))
        after_commit(session, lambda: _chain_after_commit(engine, state["last"]))  # type: ignore[arg-type]
    rows = []
    for content in contents:
        nonce = secrets.token_hex(16)
        rows.append({**content, "nonce": nonce, "mac": _pending_mac(state["key"], content, nonce)})
    # Numbered now only if nothing of this transaction waits for its number (``first``: the first unnumbered id).
    ordered = last and state["first"] is None
    insert = _INSERT_PENDING_ORDERED if ordered else _INSERT_PENDING
    ids = [row["id"] for row in insert.rows(session, _as_json_rows(rows, _PENDING_COLUMNS))]
    state["last"] = max(state["last"], *ids)
    if not ordered:
        state["first"] = min(ids) if state["first"] is None else min(state["first"], *ids)


_ORDER = text(
    "UPDATE audit_pending SET ord = (SELECT nextval('audit_order')) "
    "WHERE id BETWEEN :first AND :last AND ord IS NULL"
)


def _order(session: Session, first: int | None, last: int) -> None:
    """Give this transaction's entries one number from ``audit_order`` just before it commits (after every row
    lock it took), which the chainer chains by: a transaction that waited for another's lock, and so commits after
    it, is chained after it too. Rows of other transactions in the id range are either committed (numbered) or
    invisible here, so only this transaction's are numbered."""
    if first is not None:
        session.execute(_ORDER, {"first": first, "last": last})


class _Passes:
    """One process's chainer passes for one engine (group commit): the writers that committed while a pass ran wait
    for the next one, which one of them runs for all; the others wait on a condition, sending nothing."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.running = False
        self.begun = 0  # passes begun, and ended, in this process
        self.ended = 0
        self.waiting: set[int] = set()  # the last pending id of each writer waiting for a pass
        self.chained: set[int] = set()  # of those, the ones an ended pass took (it may have begun before they waited)


_PASSES: weakref.WeakKeyDictionary[Engine, _Passes] = weakref.WeakKeyDictionary()
_PASSES_GUARD = threading.Lock()


def _passes_of(engine: Engine) -> _Passes:
    with _PASSES_GUARD:
        passes = _PASSES.get(engine)
        if passes is None:
            passes = _PASSES[engine] = _Passes()
        return passes


def _chain_after_commit(engine: Engine, last: int) -> None:
    """Return once a chainer pass begun after this writer's commit has ended (so its entries, ``last`` the last of
    them, are chained, unless that pass failed: they then wait, signed, for the next one). Within a process one
    writer runs that pass for every writer that committed before it began; across processes the advisory lock
    serialises the passes (``_chain``)."""
    passes = _passes_of(engine)
    with passes.cond:
        passes.waiting.add(last)
        needed = passes.begun + 1  # a pass that begins after this writer's commit (or one that took its entries)
        while passes.ended < needed and last not in passes.chained:
            if passes.running:
                passes.cond.wait()
                continue
            passes.running = True
            passes.begun += 1
            mine, ids = passes.begun, frozenset(passes.waiting)
            taken: set[int] = set()
            passes.cond.release()
            try:
                _chain(engine, batch=2000, until=ids, taken=taken)
            except Exception:  # the users' changes are committed; their entries wait, signed, for the next pass
                taken.clear()  # what the failed transaction took was rolled back: nobody counts on it
                _log.exception("audit entries left pending; the next write, a backup or `audit verify` chains them")
            finally:
                passes.cond.acquire()
                passes.running = False
                passes.ended = mine
                passes.chained |= taken & passes.waiting
                passes.waiting -= ids | passes.chained
                passes.cond.notify_all()
        passes.chained.discard(last)


def _take_pending(session: Session, *, limit: int | None) -> list[dict[str, Any]]:
    """Take (delete, under the chainer's lock) the oldest pending entries, in the order they are chained: by commit
    order (``ord``; an entry left from before it existed first), then as written within a transaction. One
    statement; the caller chains them, or sets them aside, in the same transaction."""
    first = select(audit_pending.c.id).order_by(audit_pending.c.ord.asc().nulls_first(), audit_pending.c.id)
    if limit is not None:
        first = first.limit(limit)
    taken = delete(audit_pending).where(audit_pending.c.id.in_(first.scalar_subquery())).returning(*audit_pending.c)
    rows = [dict(row._mapping) for row in session.execute(taken)]
    return sorted(rows, key=lambda r: (r["ord"] is not None, r["ord"] or 0, r["id"]))


def chain_pending(engine: Engine, *, batch: int = 2000, until: int | None = None) -> int:
    """Chain every pending entry (the single chainer); returns how many it chained. Idempotent and safe to call
    from any process at any time: passes are serialised by an advisory lock and each is one short transaction.

    With ``until`` (the last pending id a transaction wrote, right after its commit), one pass that takes the lock
    chains it, with every entry committed before it; a writer that finds the lock held does not wait for it but
    looks, now and then, whether that pass (or a later one) chained its entries, so one pass serves every
    transaction that committed before it began.

    A pending entry the chainer refuses (see ``_chain_rows``) is set aside and named in the chain; the rest are
    chained as usual."""
    return _chain(engine, batch=batch, until=None if until is None else frozenset({until}))


def _chain(engine: Engine, *, batch: int, until: frozenset[int] | None, taken: set[int] | None = None) -> int:
    """``chain_pending``, for the writers whose last pending ids are ``until`` (None: every pending entry); the ids
    of the pending entries it took are added to ``taken``."""
    if not is_postgresql(engine) or not _has_pending_table(engine):
        return 0
    waiting = None if until is None else select(audit_pending.c.id).where(audit_pending.c.id.in_(until)).limit(1)
    taken = set() if taken is None else taken
    chained = 0
    pause = _POLL_SECONDS
    looked = False
    while True:
        with session_scope(engine) as session:
            if until is None:
                serialise(session, "audit")
            elif looked and waiting is not None and session.execute(waiting).first() is None:
                return chained
            elif not session.execute(_TRY_LOCK).scalar_one():
                # Another pass is running: it, or the next one, chains these entries. Waiting for the lock would
                # queue every writer behind every other (each taking and releasing it in turn); a read does not.
                looked = True
                busy = True
            else:
                busy = False
            if until is None or not busy:
                rows = _take_pending(session, limit=batch)
                chained += len(_chain_rows(session, rows))
                taken.update(row["id"] for row in rows)
                # Every entry committed before this pass began was visible to it: the writers' own were among those
                # taken, or chained by an earlier pass, unless the batch was full; and a pass that took every writer's
                # last entry needs no transaction to look again.
                if not rows or (until is not None and (len(rows) < batch or until <= taken)):
                    return chained
                continue
        time.sleep(pause)
        pause = min(pause * 2, _POLL_MAX_SECONDS)  # back off: many waiting writers must not flood the database


_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtext('audit'))")
_POLL_SECONDS = 0.002
_POLL_MAX_SECONDS = 0.05

_UPGRADED: weakref.WeakSet[Engine] = weakref.WeakSet()


def _has_pending_table(engine: Engine) -> bool:
    """Whether the schema has ``audit_pending`` (a database not yet upgraded has nothing pending)."""
    if engine not in _UPGRADED:
        if not inspect(engine).has_table("audit_pending"):
            return False
        _UPGRADED.add(engine)
    return True


def _chain_rows(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Chain ``rows`` (pending entries taken by ``_take_pending``, in order) after the head, under the lock; their
    sequence numbers.

    A pending row is refused when its MAC does not match its content and nonce (``altered``), when it has no MAC
    on a keyed trail (``unsigned``: written by someone without the key), or when its nonce was chained before
    (``replayed``: a copy of a genuine entry). A refused row is moved to ``audit_pending_rejected`` as found and an
    ``audit.pending_rejected`` entry (its pending id and the reason, nothing of its content) is chained where it
    stood. Rows made here (``id`` None, by ``record_now``) are this process's own and need no check."""
    if not rows:
        return []
    bind = session.get_bind()
    ring = key_of(bind)
    secret = ring.secret if ring is not None else None
    # A key matched against the trail's check value means the trail is keyed (keying is never undone).
    keyed = is_checked(bind) or session.execute(select(audit_keying.c.key_check)).first() is not None
    refused: dict[int, str] = {}
    for row in rows:
        if row["id"] is None:
            continue
        if row["mac"] is None:
            if keyed:
                refused[row["id"]] = "unsigned"
        elif secret is not None:
            expected = _pending_mac(secret, row, row.get("nonce")) or ""
            if not hmac.compare_digest(row["mac"], expected):
                refused[row["id"]] = "altered"
    nonces: dict[str, int] = {}
    for row in rows:
        nonce = row.get("nonce")
        if row["id"] is None or row["id"] in refused or not nonce:
            continue
        if nonce in nonces:
            refused[row["id"]] = "replayed"  # a copy within the same pass: the first one stands
        else:
            nonces[nonce] = row["id"]
    if nonces:
        fresh = set(session.execute(_INSERT_NONCES, {"nonces": list(nonces)}).scalars())
        refused.update({pid: "replayed" for nonce, pid in nonces.items() if nonce not in fresh})
    contents: list[dict[str, Any]] = []
    now = clock.now()
    for row in rows:
        reason = refused.get(row["id"]) if row["id"] is not None else None
        if reason is None:
            contents.append({name: row[name] for name in _CONTENT})
            continue
        _log.error("pending audit entry %s refused (%s): kept in audit_pending_rejected", row["id"], reason)
        session.execute(
            audit_pending_rejected.insert().values(
                pending_id=row["id"], rejected_at=now, reason=reason, row=_json(row)
            )
        )
        change: Change = {"actor": "trialwright", "action": "audit.pending_rejected",
                          "detail": {"pending_id": row["id"], "reason": reason}}  # fmt: skip
        contents.append(_content(change, now))
    return _write_chained(session, contents)


#: The nonces chained in a pass, each stored once; those already there (replays) are not returned. One array parameter.
_INSERT_NONCES = text(
    "INSERT INTO audit_nonces (nonce) SELECT unnest(CAST(:nonces AS text[])) ON CONFLICT DO NOTHING RETURNING nonce"
)


def rejected_pending(engine: Engine) -> list[tuple[int, str]]:
    """Pending entries the chainer refused, as (pending id, reason), oldest first (none on SQLite)."""
    if not is_postgresql(engine) or not inspect(engine).has_table("audit_pending_rejected"):
        return []
    query = select(audit_pending_rejected.c.pending_id, audit_pending_rejected.c.reason)
    with session_scope(engine) as session:
        return [(int(r.pending_id), r.reason) for r in session.execute(query.order_by(audit_pending_rejected.c.id))]


def pending_count(engine: Engine) -> int:
    """How many entries wait to be chained (0 on SQLite, and between requests)."""
    with session_scope(engine) as session:
        return int(session.execute(select(func.count()).select_from(audit_pending)).scalar_one())


# -- The chain ---------------------------------------------------------------------------------------------------

_HEAD_QUERY = (
    select(audit_entries.c.seq, audit_entries.c.hash, audit_entries.c.mac).order_by(audit_entries.c.seq.desc()).limit(1)
)
_HEAD = "trialwright.audit.head"
_HEAD_READ = Prepared(_HEAD_QUERY)  # compiled once: read by a transaction's first chained entry
_CHAINED_COLUMNS = tuple(c.name for c in audit_entries.columns)
_INSERT_CHAINED = _rows_insert("audit_entries", _CHAINED_COLUMNS)
#: An entry's fields with their defaults, in the entry's order (a chained row's keys).
_ENTRY_DEFAULTS = {f.name: None if f.default is MISSING else f.default for f in fields(AuditEntry)}


def _write_chained(session: Session, contents: Sequence[Mapping[str, Any]]) -> list[int]:
    """Chain entries after the head in the caller's transaction (which holds the writer's lock: SQLite's write
    transaction, or the chainer's advisory lock); one INSERT. Returns their sequence numbers."""
    seq, prev, head_signed = _head(session)
    key = _signing_key(session, seq, head_signed)
    rows: list[dict[str, Any]] = []
    for content in contents:
        # The entry's stored fields, as ``AuditEntry(seq=seq, prev_hash=prev, **content)`` would hold them (every
        # content has each of them: ``_content``), without making the entry and a copy of it per row.
        row = {**_ENTRY_DEFAULTS, **content, "seq": seq, "prev_hash": prev}
        data = canonical_fields(row)  # once: the hash and the MAC cover the same bytes
        row["hash"] = hashlib.sha256(data).hexdigest()
        row["mac"] = hmac.new(key, data, hashlib.sha256).hexdigest() if key is not None else None
        rows.append(row)
        seq, prev = seq + 1, row["hash"]
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_INSERT_CHAINED, _as_json_rows(rows, _CHAINED_COLUMNS))
    else:
        insert_many(innermost_connection(session), audit_entries, rows)
    session.info[_HEAD] = (_innermost(session), seq - 1, prev, key is not None)
    return [row["seq"] for row in rows]


def _signing_key(session: Session, seq: int, head_signed: bool) -> bytes | None:
    """The key to sign entry ``seq`` with (None: the trail is not keyed and no key is configured).

    A keyed head and no key is refused. A key is matched against the database's check value the first time
    an engine writes (then remembered for the engine); if keying has not begun, it begins with this entry.
    """
    bind = session.get_bind()
    ring = key_of(bind)
    if ring is None or ring.secret is None:
        if head_signed:
            raise (ring or AuditKey(None, "this engine was made without one")).missing()
        return None
    if is_checked(bind):
        return ring.secret
    row = session.execute(select(audit_keying.c.key_check)).first()
    if row is None:
        _begin(session, ring.secret, seq)
    elif row.key_check != key_check(ring.secret):
        raise ring.wrong()
    else:
        mark_checked(bind)
    return ring.secret


def _begin(session: Session, secret: bytes, seq: int) -> None:
    from trialwright.services.audit_keys import sign_unsigned_allocations

    session.execute(audit_keying.insert().values(keyed_from=seq, key_check=key_check(secret), keyed_at=clock.now()))
    sign_unsigned_allocations(session, secret)


def begin_keying(engine: Engine, *, actor: str = "system") -> int | None:
    """Begin keying the trail now if the engine has a key and the trail is not keyed yet (``audit.keyed``).

    Returns the sequence number keying began at (None: no key, or keyed already). ``trialwright init`` calls
    this, so a new trial is keyed from its first entry and an upgraded one from the upgrade.
    """
    ring = key_of(engine)
    if ring is None or ring.secret is None:
        return None
    chain_pending(engine)
    with session_scope(engine) as session:
        serialise(session, "audit")
        if session.execute(select(audit_keying.c.id)).first() is not None:
            return None
        content = _content(
            {"actor": actor, "action": "audit.keyed", "detail": {"key_check": key_check(ring.secret)}}, clock.now()
        )
        return _write_chained(session, [content])[-1]


def _innermost(session: Session) -> object:
    return session.get_nested_transaction() or session.get_transaction()


def _head(session: Session) -> tuple[int, str, bool]:
    """The next sequence number and the hash to chain to.

    The first chained entry of a transaction reads the head; later ones of the same (innermost) transaction
    continue from the entry written last, which only they can have moved, since the writer's lock is held to the
    end of the transaction. A savepoint begun, released or rolled back in between changes the innermost
    transaction, so the head is read again and a rolled-back entry is never chained.
    """
    cached = session.info.get(_HEAD)
    if cached is not None and cached[0] is _innermost(session):
        return cached[1] + 1, cached[2], cached[3]
    rows = _HEAD_READ.rows(session, {})
    if not rows:
        return 1, GENESIS, False
    head = rows[0]
    return head["seq"] + 1, head["hash"], head["mac"] is not None


def head_columns() -> list[Any]:
    """The trail's head (``audit_head_seq``, ``audit_head_hash``, ``audit_head_mac``: the last entry's, NULL when
    there is none) as columns a caller's statement reads along (SQLite, in its write transaction: ``head_read``)."""
    return [
        _HEAD_QUERY.with_only_columns(column).scalar_subquery().label(f"audit_head_{column.name}")
        for column in (audit_entries.c.seq, audit_entries.c.hash, audit_entries.c.mac)
    ]


def head_read(session: Session, seq: int | None, hash_: str | None, mac: str | None) -> None:
    """The head as ``head_columns`` read it in this transaction, which holds the writer's lock (SQLite's write
    transaction, begun IMMEDIATE): the transaction's first chained entry continues from it, not read again."""
    if seq is None:
        session.info[_HEAD] = (_innermost(session), 0, GENESIS, False)
    else:
        session.info[_HEAD] = (_innermost(session), seq, hash_, mac is not None)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(**row._mapping)


def _filtered(
    query: Any,
    *,
    participant: str | None,
    actor: str | None,
    action_prefix: str | None,
    sites: Sequence[str] | None,
) -> Any:
    if sites is not None:
        query = query.where(audit_entries.c.site.in_(list(sites)))
    if participant is not None:
        query = query.where(audit_entries.c.participant == participant)
    if actor is not None:
        query = query.where(audit_entries.c.actor == actor)
    if action_prefix is not None:
        query = query.where(audit_entries.c.action.startswith(action_prefix, autoescape=True))
    return query


def entries(
    engine: Engine,
    *,
    participant: str | None = None,
    actor: str | None = None,
    action_prefix: str | None = None,
    limit: int = 100,
    before_seq: int | None = None,
    sites: Sequence[str] | None = None,
) -> list[AuditEntry]:
    """Entries newest first, filtered; page with ``before_seq``; ``sites`` keeps only those sites' entries."""
    query = select(audit_entries).order_by(audit_entries.c.seq.desc()).limit(limit)
    query = _filtered(query, participant=participant, actor=actor, action_prefix=action_prefix, sites=sites)
    if before_seq is not None:
        query = query.where(audit_entries.c.seq < before_seq)
    with session_scope(engine) as session:
        return [_entry(row) for row in session.execute(query)]


def count(
    engine: Engine,
    *,
    participant: str | None = None,
    actor: str | None = None,
    action_prefix: str | None = None,
    sites: Sequence[str] | None = None,
) -> int:
    """How many entries the trail holds (matching the filters of ``entries``, if given)."""
    query = _filtered(
        select(func.count()).select_from(audit_entries),
        participant=participant,
        actor=actor,
        action_prefix=action_prefix,
        sites=sites,
    )
    with session_scope(engine) as session:
        return int(session.execute(query).scalar_one())


def verify(engine: Engine, *, batch: int = 5000, progress: Callable[[int], None] | None = None) -> ChainReport:
    """Recompute the whole chain (streaming, in sequence order), check it against the anchors and the key,
    then every allocation entry's digest; see ``trialwright.services.audit_keys.verify_trail``.

    Entries still pending (PostgreSQL, after a crash) are checked against their MAC and chained first, so the
    verification covers them; one that was altered while pending is named and stays unchained."""
    from trialwright.services.audit_keys import verify_trail

    try:
        chain_pending(engine)
    except AuditKeyError as exc:
        return ChainReport(False, 0, None, "key", str(exc))
    report = verify_trail(engine, batch=batch, progress=progress)
    refused = rejected_pending(engine)
    if report.ok and refused:
        named = ", ".join(f"{pid} ({reason})" for pid, reason in refused)
        return replace(
            report,
            ok=False,
            problem="forged",
            message=f"the chain verifies, but the chainer refused {len(refused)} pending audit entries: {named} "
            "(altered, written without the key, or a replayed copy); they are kept in audit_pending_rejected and "
            "named by audit.pending_rejected entries",
        )
    return report


def side_files(settings: Settings) -> list[Path]:
    """The files outside the database a backup must hold (apart from it): the audit key file, unless the key
    is the secret TRIALWRIGHT_AUDIT_KEY, and the anchor file. Either may not exist yet."""
    from trialwright.services.audit_keys import side_files as files

    return files(settings)
