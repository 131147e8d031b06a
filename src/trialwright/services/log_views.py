"""What a log entry reads as (``LogEntryView``, with its coding, verification and signature), read by the log
entries' use cases (``services.logs``) and by their review (``services.forms.log_review``: queries, source data
verification and the casebook's signature). It imports nothing of the forms' services, so both may use it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trialwright.domain.forms import StoredValue
from trialwright.protocol import Protocol
from trialwright.protocol.logs import LogDef
from trialwright.services.errors import FormError
from trialwright.store.log_tables import log_codings, log_entries

__all__ = [
    "ACTIVE",
    "REMOVED",
    "SELECT_ENTRIES",
    "LogCoding",
    "LogEntryView",
    "LogError",
    "LogVersionConflict",
    "entry_row",
    "entry_view",
    "load_values",
    "log_def",
    "read_entry",
]

ACTIVE = "active"
REMOVED = "removed"


class LogError(FormError):
    """A log entry refused; ``problems`` holds one ``field: rule`` message per problem (the message joins them)."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class LogVersionConflict(LogError):
    """An amendment or removal made from a version of the entry that is no longer the stored one (someone changed
    it in between): refused, naming the entry, the version read and the version stored."""

    def __init__(self, log_id: str, sequence: int, read: int, stored: int, by: str, at: dt.datetime) -> None:
        super().__init__(
            f"version: entry {sequence} of {log_id} was changed after you read it (you read version {read}; it is "
            f"at version {stored}, changed by {by} at {at:%Y-%m-%d %H:%M} UTC); read it again and make your change "
            "from there"
        )
        self.log_id, self.sequence, self.read, self.stored = log_id, sequence, read, stored


@dataclass(frozen=True)
class LogCoding:
    """An entry's coding: the dictionary and version, the code and name, and the path from level 1 down."""

    dictionary: str
    version: str
    verbatim: str
    code: str
    name: str
    path: tuple[tuple[int, str, str], ...]  # (level, code, name), level 1 first
    coded_at: dt.datetime
    coded_by: str

    def _level(self, level: int) -> tuple[str, str] | None:
        return next(((code, name) for at, code, name in self.path if at == level), None)

    @property
    def pt(self) -> tuple[str, str] | None:
        """A MedDRA coding's preferred term (code, name); None for another dictionary."""
        return self._level(4) if self.dictionary == "MedDRA" else None

    @property
    def soc(self) -> tuple[str, str] | None:
        """A MedDRA coding's primary system organ class (code, name); None for another dictionary."""
        return self._level(1) if self.dictionary == "MedDRA" else None


@dataclass(frozen=True)
class LogEntryView:
    """One entry of a participant's log as stored now, with its source data verification and signature (None:
    not verified or signed, or voided by a later change)."""

    participant_id: str
    site: str
    log_id: str
    sequence: int
    values: Mapping[str, StoredValue]
    state: str
    version: int
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    updated_by: str
    removed_reason: str | None
    coding: LogCoding | None = None
    verified_at: dt.datetime | None = None
    verified_by: str | None = None
    signed_at: dt.datetime | None = None
    signed_by: str | None = None
    signature_meaning: str | None = None

    @property
    def removed(self) -> bool:
        """Whether the entry was removed (kept, with the reason)."""
        return self.state == REMOVED


def log_def(protocol: Protocol, log_id: str) -> LogDef:
    """The protocol's log ``log_id``, or refused naming the logs it declares."""
    try:
        return protocol.log(log_id)
    except KeyError:
        known = ", ".join(g.id for g in protocol.logs) or "none"
        raise LogError(f"log: the protocol declares no log {log_id!r} (logs: {known})") from None


def load_values(text: str) -> dict[str, StoredValue]:
    """An entry's stored values (its JSON document)."""
    return {k: StoredValue.from_json(v) for k, v in json.loads(text).items()}


#: An entry with its coding, if any.
SELECT_ENTRIES = select(
    log_entries,
    log_codings.c.dictionary,
    log_codings.c.version.label("coding_version"),
    log_codings.c.verbatim,
    log_codings.c.code,
    log_codings.c.name.label("coding_name"),
    log_codings.c.path,
    log_codings.c.coded_at,
    log_codings.c.coded_by,
).outerjoin(log_codings, log_codings.c.entry_id == log_entries.c.id)


def entry_row(session: Session, participant_id: str, log_id: str, sequence: int, read: int | None = None) -> Any:
    """The entry's row, locked for the caller's transaction, or refused naming it; refused too when ``read`` (the
    version a change was made from) is no longer the stored version (``LogVersionConflict``)."""
    row = session.execute(
        select(log_entries)
        .where(
            log_entries.c.participant_id == participant_id,
            log_entries.c.log_id == log_id,
            log_entries.c.sequence == sequence,
        )
        .with_for_update()
    ).first()
    if row is None:
        raise LogError(f"sequence: {participant_id} has no entry {sequence} in log {log_id}")
    if read is not None and read != row.version:
        raise LogVersionConflict(log_id, sequence, read, row.version, row.updated_by, row.updated_at)
    return row


def read_entry(session: Session, entry_id: int, site: str) -> LogEntryView:
    """The entry ``entry_id`` as stored now (``SELECT_ENTRIES``)."""
    return entry_view(session.execute(SELECT_ENTRIES.where(log_entries.c.id == entry_id)).one(), site)


def entry_view(row: Any, site: str) -> LogEntryView:
    """A ``SELECT_ENTRIES`` row as its view."""
    coding = None
    if row.code is not None:
        path = tuple((int(p["level"]), str(p["code"]), str(p["name"])) for p in json.loads(row.path))
        coding = LogCoding(row.dictionary, row.coding_version, row.verbatim, row.code, row.coding_name, path,
                           row.coded_at, row.coded_by)  # fmt: skip
    return LogEntryView(
        participant_id=row.participant_id,
        site=site,
        log_id=row.log_id,
        sequence=row.sequence,
        values=load_values(row.entry_values),
        state=row.state,
        version=row.version,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        removed_reason=row.removed_reason,
        coding=coding,
        verified_at=row.verified_at,
        verified_by=row.verified_by,
        signed_at=row.signed_at,
        signed_by=row.signed_by,
        signature_meaning=row.signature_meaning,
    )
