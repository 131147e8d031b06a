"""The audit trail's integrity rules: how an entry is serialised and hashed, and how a chain is verified.

Each entry's hash is the SHA-256 of a canonical JSON of every field of the entry, including its
sequence number, its UTC time and the previous entry's hash. Changing, removing, inserting or
reordering any stored entry therefore breaks the chain at that entry, and ``verify_chain`` names it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Literal

__all__ = ["GENESIS", "AuditEntry", "ChainReport", "canonical", "entry_hash", "verify_chain"]

#: The "previous hash" of the first entry.
GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """One audit entry as stored: who, when, what (old and new value), why, and its place in the chain."""

    seq: int
    at: dt.datetime
    actor: str
    action: str
    role: str | None = None
    site: str | None = None
    participant: str | None = None
    form: str | None = None
    field: str | None = None
    old_value: str | None = None
    new_value: str | None = None
    reason: str | None = None
    detail: str | None = None
    prev_hash: str = GENESIS
    hash: str = ""


_HASHED = tuple(f.name for f in fields(AuditEntry) if f.name != "hash")


def _utc_text(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(entry: AuditEntry) -> bytes:
    """The bytes the hash is computed over: every field but the hash itself, sorted keys, UTC time."""
    # Every field is a str, int or None but ``at``, so a plain mapping gives the same JSON as asdict()
    # would, without its deep copy (this runs for every entry written and every entry verified).
    content = {name: getattr(entry, name) for name in _HASHED}
    content["at"] = _utc_text(entry.at)
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: AuditEntry) -> str:
    """The SHA-256 (hex) that chains this entry to ``entry.prev_hash``."""
    return hashlib.sha256(canonical(entry)).hexdigest()


Problem = Literal["altered", "removed", "inserted", "reordered"]


@dataclass(frozen=True)
class ChainReport:
    """The result of verifying an audit chain."""

    ok: bool
    count: int
    first_bad_seq: int | None = None
    problem: Problem | None = None
    message: str = ""


def verify_chain(entries: Iterable[AuditEntry]) -> ChainReport:
    """Recompute the chain in sequence order and name the first entry that was tampered with.

    An entry whose own hash does not match its content was altered. A gap in the sequence means an
    entry was removed; a repeated sequence number, or an entry whose stored hash is right but whose
    ``prev_hash`` does not match the previous entry, means one was inserted (or removed and the chain
    re-stitched); a sequence that goes backwards means the order was changed.
    """
    expected_prev = GENESIS
    expected_seq = 1
    count = 0
    for entry in entries:
        count += 1
        if entry.seq < expected_seq:
            kind: Problem = "inserted" if entry.seq == expected_seq - 1 else "reordered"
            return ChainReport(False, count, entry.seq, kind, f"entry {entry.seq} appears out of sequence ({kind})")
        if entry.seq > expected_seq:
            missing = f"{expected_seq}" if entry.seq == expected_seq + 1 else f"{expected_seq}-{entry.seq - 1}"
            return ChainReport(False, count, expected_seq, "removed", f"entry {missing} is missing (removed)")
        if entry_hash(entry) != entry.hash:
            return ChainReport(
                False, count, entry.seq, "altered", f"entry {entry.seq} does not match its hash (altered)"
            )
        if entry.prev_hash != expected_prev:
            return ChainReport(
                False,
                count,
                entry.seq,
                "inserted",
                f"entry {entry.seq} does not follow entry {entry.seq - 1} (inserted or re-chained)",
            )
        expected_prev = entry.hash
        expected_seq += 1
    return ChainReport(True, count, message=f"audit trail intact: {count} entries")
