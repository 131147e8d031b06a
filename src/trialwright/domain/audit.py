"""The audit trail's integrity rules: how an entry is serialised, hashed and signed, and how a chain is verified.

Each entry's hash is the SHA-256 of a canonical JSON of every field of the entry, including its
sequence number, its UTC time and the previous entry's hash. Changing, removing, inserting or
reordering any stored entry therefore breaks the chain at that entry, and ``verify_chain`` names it.

A SHA-256 chain alone holds only against accidents: whoever can write the database can recompute it.
From the entry where keying began, each entry also carries a MAC, an HMAC-SHA256 of the same canonical
bytes with a key held outside the database, which nobody without the key can compute. An *anchor* is a
signed checkpoint of the head (sequence, hash, time) kept outside the database: the entry at an anchored
sequence must still have the anchored hash, and the trail must still reach the last anchored sequence.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

__all__ = [
    "ALLOCATION_FIELDS",
    "GENESIS",
    "Anchor",
    "AuditEntry",
    "ChainReport",
    "Problem",
    "allocation_digest",
    "anchor_mac",
    "canonical",
    "canonical_fields",
    "checkpoint_mac",
    "entry_hash",
    "entry_mac",
    "verify_chain",
]

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
    mac: str | None = None


_HASHED = tuple(f.name for f in fields(AuditEntry) if f.name not in {"hash", "mac"})


def _utc_text(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(entry: AuditEntry) -> bytes:
    """The bytes the hash is computed over: every field but the hash itself, sorted keys, UTC time."""
    # Every field is a str, int or None but ``at``, so a plain mapping gives the same JSON as asdict()
    # would, without its deep copy (this runs for every entry written and every entry verified).
    return canonical_fields(entry.__dict__)


def canonical_fields(fields: Mapping[str, Any]) -> bytes:
    """``canonical`` of the entry these stored fields make (every field of ``AuditEntry`` but the hash and the MAC
    present, ``at`` aware): the same bytes, for a writer that builds rows without making entries."""
    content = {name: fields[name] for name in _HASHED}
    content["at"] = _utc_text(fields["at"])
    return _ENCODE(content).encode("utf-8")


#: ``json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, its encoder built once.
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def entry_hash(entry: AuditEntry) -> str:
    """The SHA-256 (hex) that chains this entry to ``entry.prev_hash``."""
    return hashlib.sha256(canonical(entry)).hexdigest()


def entry_mac(key: bytes, entry: AuditEntry) -> str:
    """The HMAC-SHA256 (hex) of the entry's canonical bytes (which hold its sequence and previous hash)."""
    return hmac.new(key, canonical(entry), hashlib.sha256).hexdigest()


def allocation_digest(key: bytes, entry: Mapping[Any, Any]) -> str:
    """The keyed digest of one allocation entry: every column that says who gets which arm.

    Covers the list, stratum, sequence, block, block size, position, arm and preparation code (and the
    minimization decision), and once the entry is claimed, the participant and randomization number, so
    flipping an arm or swapping two participants' entries shows.
    """
    content = {name: entry.get(name) for name in _ALLOCATION_FIELDS}
    data = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, b"allocation\x00" + data.encode("utf-8"), hashlib.sha256).hexdigest()


_ALLOCATION_FIELDS = (
    "list_id",
    "stratum",
    "sequence",
    "block",
    "block_size",
    "position",
    "arm",
    "preparation_code",
    "participant_id",
    "randomization_number",
    "decision",
)

#: Every column of an allocation entry its keyed digest covers.
ALLOCATION_FIELDS = _ALLOCATION_FIELDS


@dataclass(frozen=True)
class Anchor:
    """A signed checkpoint of the head, kept outside the database: one JSON line of the anchor file."""

    seq: int
    hash: str
    at: dt.datetime
    keyed_from: int | None
    mac: str | None = None

    def line(self) -> str:
        content = {"seq": self.seq, "hash": self.hash, "at": _utc_text(self.at), "keyed_from": self.keyed_from}
        return json.dumps({**content, "mac": self.mac}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def parse(cls, line: str) -> Anchor:
        """One anchor line; ValueError if it is not one."""
        try:
            data = json.loads(line)
            at = dt.datetime.strptime(data["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
            keyed = data.get("keyed_from")
            return cls(int(data["seq"]), str(data["hash"]), at, None if keyed is None else int(keyed), data.get("mac"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an anchor: {exc}") from None


def anchor_mac(key: bytes, anchor: Anchor) -> str:
    """The HMAC-SHA256 that signs an anchor (its sequence, hash, time and where keying began)."""
    data = f"anchor\x00{anchor.seq}\x00{anchor.hash}\x00{_utc_text(anchor.at)}\x00{anchor.keyed_from}"
    return hmac.new(key, data.encode("utf-8"), hashlib.sha256).hexdigest()


def checkpoint_mac(key: bytes, seq: int | None, hash: str | None, at: dt.datetime, outcome: str = "") -> str:
    """The HMAC-SHA256 that signs a verification checkpoint: the entry verified up to, its hash, the time, and
    (for a full verification) the canonical text of its outcome, so none of them can be changed without the key."""
    data = f"checkpoint\x00{seq}\x00{hash}\x00{_utc_text(at)}\x00{outcome}"
    return hmac.new(key, data.encode("utf-8"), hashlib.sha256).hexdigest()


Problem = Literal[
    "altered",
    "removed",
    "inserted",
    "reordered",
    "unsigned",
    "forged",
    "truncated",
    "anchor",
    "keying",
    "key",
    "allocation",
    "checkpoint",
]


@dataclass(frozen=True)
class ChainReport:
    """The result of verifying an audit chain (and, from the service, the allocation list).

    ``problem`` names what was found at ``first_bad_seq``: ``altered`` (an entry no longer matches its hash),
    ``removed`` (a gap), ``inserted`` or ``reordered`` (the chain does not follow), ``unsigned`` (an entry
    after keying began carries no MAC: written without the key, e.g. inserted with a recomputed hash),
    ``forged`` (its MAC is wrong: altered and re-hashed, or the chain recomputed without the key),
    ``truncated`` (the trail ends before an anchored entry: its tail was deleted), ``anchor`` (an entry
    differs from its anchor, or an anchor is not signed with the key), ``keying`` (where keying began was
    changed), ``key`` (no key, or not this trial's key), ``allocation`` (an allocation entry does not match
    its digest; ``first_bad_seq`` is then the allocation entry's id), ``checkpoint`` (a verification checkpoint
    is not signed with the key, or its entry no longer has the checkpointed hash).
    """

    ok: bool
    count: int
    first_bad_seq: int | None = None
    problem: Problem | None = None
    message: str = ""
    keyed_from: int | None = None
    anchors: int = 0
    allocations: int = 0


def _check_anchors(anchors: Sequence[Anchor], key: bytes | None, keyed_from: int | None) -> ChainReport | None:
    for anchor in anchors:
        if key is not None and (anchor.mac is None or not hmac.compare_digest(anchor.mac, anchor_mac(key, anchor))):
            return ChainReport(
                False, 0, anchor.seq, "anchor", f"the anchor of entry {anchor.seq} is not signed with the key (forged)"
            )
        if anchor.keyed_from is not None and anchor.keyed_from != keyed_from:
            now = "no keying" if keyed_from is None else f"keying from entry {keyed_from}"
            return ChainReport(
                False,
                0,
                anchor.keyed_from,
                "keying",
                f"the anchor of entry {anchor.seq} says the trail is keyed from entry {anchor.keyed_from}, "
                f"but the database records {now} (keying record altered)",
            )
    return None


def verify_chain(
    entries: Iterable[AuditEntry],
    *,
    key: bytes | None = None,
    keyed_from: int | None = None,
    anchors: Sequence[Anchor] = (),
    after: tuple[int, str] = (0, GENESIS),
) -> ChainReport:
    """Recompute the chain in sequence order and name the first entry that was tampered with.

    An entry whose own hash does not match its content was altered. A gap in the sequence means an
    entry was removed; a repeated sequence number, or an entry whose stored hash is right but whose
    ``prev_hash`` does not match the previous entry, means one was inserted (or removed and the chain
    re-stitched); a sequence that goes backwards means the order was changed. From ``keyed_from`` on,
    every entry must carry the MAC only ``key`` makes; every anchor must be signed with ``key``, its
    entry must still have the anchored hash, and the trail must reach the last anchored sequence.

    ``after`` (a sequence number and that entry's hash, from a verification checkpoint) verifies only the entries
    after it: the first must be the next one and follow that hash. ``count`` is then the entries verified here.
    """
    found = _check_anchors(anchors, key, keyed_from)
    if found is not None:
        return found
    anchored = {a.seq: a for a in anchors}
    keyed = keyed_from if keyed_from is not None else 1 << 62
    expected_seq, expected_prev = after[0] + 1, after[1]
    count = 0

    def bad(seq: int, problem: Problem, message: str) -> ChainReport:
        return ChainReport(False, count, seq, problem, message, keyed_from, len(anchors))

    for entry in entries:
        count += 1
        seq = entry.seq
        if seq < expected_seq:
            kind: Problem = "inserted" if seq == expected_seq - 1 else "reordered"
            return bad(seq, kind, f"entry {seq} appears out of sequence ({kind})")
        if seq > expected_seq:
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}-{seq - 1}"
            return bad(expected_seq, "removed", f"entry {missing} is missing (removed)")
        if entry_hash(entry) != entry.hash:
            return bad(seq, "altered", f"entry {seq} does not match its hash (altered)")
        if seq >= keyed:
            if entry.mac is None:
                return bad(
                    seq,
                    "unsigned",
                    f"entry {seq} carries no MAC though the trail is keyed from entry {keyed_from} "
                    "(written without the key: inserted or replaced)",
                )
            if key is not None and not hmac.compare_digest(entry.mac, entry_mac(key, entry)):
                return bad(
                    seq,
                    "forged",
                    f"entry {seq} does not match its MAC (altered and re-hashed, or re-chained without the key)",
                )
        elif entry.mac is not None:
            where = f"keying from entry {keyed_from}" if keyed_from is not None else "no keying"
            return bad(seq, "keying", f"entry {seq} carries a MAC but the database records {where} (altered)")
        if entry.prev_hash != expected_prev:
            return bad(seq, "inserted", f"entry {seq} does not follow entry {seq - 1} (inserted or re-chained)")
        anchor = anchored.get(seq)
        if anchor is not None and anchor.hash != entry.hash:
            when = anchor.at.strftime("%Y-%m-%d %H:%M UTC")
            return bad(seq, "anchor", f"entry {seq} differs from its anchor of {when} (re-chained or replaced)")
        expected_prev = entry.hash
        expected_seq += 1
    if anchors:
        last = max(anchors, key=lambda a: a.seq)
        end = expected_seq - 1
        if last.seq > end:
            when = last.at.strftime("%Y-%m-%d %H:%M UTC")
            return bad(
                end + 1,
                "truncated",
                f"the trail ends at entry {end} but entry {last.seq} was anchored on {when}: "
                f"entries {end + 1}-{last.seq} were deleted (deleted tail)",
            )
    return ChainReport(
        True, count, message=f"audit trail intact: {count} entries", keyed_from=keyed_from, anchors=len(anchors)
    )
