"""Log entries a protocol version no longer declares: listed, never left out unsaid.

A later protocol version may drop a log, or a field of a log, for which entries are stored already. The entries stay
(nothing is deleted, and the audit trail holds every value); what reads them through the current protocol (the
participant page, the exports, the amendment that makes the version current) says which logs and fields they are and
how many entries hold them, as a form's field dropped by a later version is kept and named (the export's README).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from trialwright.protocol import Protocol

__all__ = ["Undeclared", "undeclared"]


@dataclass(frozen=True)
class Undeclared:
    """A log (``field`` None) or a log's field the protocol no longer declares, and the entries that hold it."""

    log_id: str
    field: str | None
    entries: int

    def describe(self) -> str:
        """One line for a note: what is no longer declared and how many entries hold it."""
        plural = "entry holds" if self.entries == 1 else "entries hold"
        if self.field is None:
            return (f"logs/{self.log_id}: the protocol no longer declares this log; {self.entries} stored {plural} "
                    "it (kept in the database and the audit trail)")  # fmt: skip
        return (f"logs/{self.log_id}: the protocol no longer declares field {self.field}; {self.entries} stored "
                f"{plural} a value for it (kept in the database and the audit trail)")  # fmt: skip


def undeclared(protocol: Protocol, stored: Iterable[tuple[str, Iterable[str]]]) -> tuple[Undeclared, ...]:
    """What the stored entries (each its log id and the field ids it holds) hold that ``protocol`` no longer
    declares, by log then field."""
    fields = {log.id: {f.id for f in log.fields} for log in protocol.logs}
    logs: Counter[str] = Counter()
    values: Counter[tuple[str, str]] = Counter()
    for log_id, names in stored:
        if log_id not in fields:
            logs[log_id] += 1
            continue
        for name in set(names) - fields[log_id]:
            values[(log_id, name)] += 1
    found = [Undeclared(log_id, None, n) for log_id, n in logs.items()]
    found += [Undeclared(log_id, name, n) for (log_id, name), n in values.items()]
    return tuple(sorted(found, key=lambda u: (u.log_id, u.field or "")))
