"""What the audit index (``audit_index``) hands the writer about one participant: each thing's latest audit entry
(its AuditRecord) and the earlier ones (its ``tw:History``), for values, queries and the elements themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

__all__ = ["KINDS", "Audited", "Audits", "Indexed", "collect", "keep_element", "keep_value", "no_value_twice"]

#: What an indexed entry is about (its key's kind): the participant (or a screening), a visit, a form, a form's
#: lock, a form's value, a log entry, a log entry's value, a query, an adverse event, a field of its report.
KINDS = SUBJECT, VISIT, FORM, LOCK, ITEM, ENTRY, ENTRY_ITEM, QUERY, EVENT, EVENT_ITEM = range(10)


class Audited(NamedTuple):
    """The latest audit entry about one thing, as its AuditRecord needs it."""

    seq: int
    at: str
    actor: str
    role: str | None
    site: str | None
    reason: str | None
    hash: str
    extra: str | None  # visits: {"date", "label", "missed"} as JSON; locks: the state before the lock; a form's
    # or log entry's value: the stored value the entry set, as JSON (``null``: removed); an adverse event's field:
    # the value the report set, as JSON (``null``: cleared)
    action: str | None = None  # the action the entry recorded (None: an imported record whose file named none)
    value: bool = False  # an entry that names a value (``VALUE_ACTIONS``): in the value's history, not the element's


@dataclass
class Indexed:
    """One participant's indexed entries: the participant's, and by visit, form, lock and item."""

    subject: Audited | None = None
    visits: dict[str, Audited] = field(default_factory=dict)
    forms: dict[tuple[str, str], Audited] = field(default_factory=dict)
    locks: dict[tuple[str, str], Audited] = field(default_factory=dict)
    items: dict[tuple[str, str, str], Audited] = field(default_factory=dict)
    history: dict[tuple[str, str, str], list[Audited]] = field(default_factory=dict)  # a value's earlier, oldest first
    entries: dict[tuple[str, str], Audited] = field(default_factory=dict)  # (log, sequence) -> its latest entry
    entry_items: dict[tuple[str, str, str], Audited] = field(default_factory=dict)  # (log, sequence, field)
    entry_history: dict[tuple[str, str, str], list[Audited]] = field(default_factory=dict)  # a log value's earlier
    queries: dict[str, Audited] = field(default_factory=dict)  # query number -> its latest entry
    query_history: dict[str, list[Audited]] = field(default_factory=dict)  # query number -> its earlier entries
    events: dict[str, Audited] = field(default_factory=dict)  # AE number -> its latest entry
    event_items: dict[tuple[str, str], Audited] = field(default_factory=dict)  # (AE number, field)
    event_history: dict[tuple[str, str], list[Audited]] = field(default_factory=dict)  # a report field's earlier
    # The elements' own earlier entries, oldest first, values' entries left out (``element_history``).
    subject_history: list[Audited] = field(default_factory=list)
    visit_history: dict[str, list[Audited]] = field(default_factory=dict)
    form_history: dict[tuple[str, str], list[Audited]] = field(default_factory=dict)
    entry_records: dict[tuple[str, str], list[Audited]] = field(default_factory=dict)  # a log entry's own earlier
    event_records: dict[str, list[Audited]] = field(default_factory=dict)  # an adverse event's own earlier


class Audits(Protocol):
    """What the writer reads the indexed entries through (``AuditStream``; ``AuditIndex``, the whole trail indexed)."""

    users: dict[str, str | None]  # the users the indexed entries name, with the last role each acted in

    def about(self, participant: str) -> Indexed:
        """Everything indexed about one participant (in the participant stream's order) or screening."""

    def done(self) -> None:
        """Every participant written."""


def no_value_twice(found: Indexed) -> None:
    """Leave out of the elements' histories a record that is a value's too: an element's latest record an import kept
    (whatever action its file named) that is also one of its values' records, superseded since."""
    valued = {(a.seq, a.hash) for records in (found.items, found.entry_items, found.event_items)
              for a in records.values()}  # fmt: skip
    valued |= {(a.seq, a.hash) for kept in (found.history, found.entry_history, found.event_history)
               for records in kept.values() for a in records}  # fmt: skip
    if not valued:
        return
    found.subject_history = [a for a in found.subject_history if (a.seq, a.hash) not in valued]
    histories: tuple[dict[Any, list[Audited]], ...] = (
        found.visit_history, found.form_history, found.entry_records, found.event_records,
    )  # fmt: skip
    for history in histories:
        for key, records in history.items():
            history[key] = [a for a in records if (a.seq, a.hash) not in valued]


def keep_element(latest: dict[Any, Audited], history: dict[Any, list[Audited]], key: Any, audited: Audited) -> None:
    """``audited`` the element's latest entry; the one it follows goes to the element's history unless it names a
    value (that entry is in the value's own history: never written twice)."""
    before = latest.get(key)
    if before is not None and not before.value:
        history.setdefault(key, []).append(before)
    latest[key] = audited


def keep_value(latest: dict[Any, Audited], history: dict[Any, list[Audited]], key: Any, audited: Audited) -> None:
    """``audited`` the value's latest entry; the one it follows, if any, goes to the value's history."""
    before = latest.get(key)
    if before is not None:
        history.setdefault(key, []).append(before)
    latest[key] = audited


def collect(found: Indexed, kind: int, k1: str, k2: str, k3: str, audited: Audited) -> None:
    """Take one indexed entry about ``found``'s participant (or screening), its key ``(kind, k1, k2, k3)``, into
    ``found``; entries come oldest first (a later one about the same thing is its latest, the one before goes to its
    history). When all are in: ``no_value_twice``."""
    if kind == ITEM:  # every entry about a value, oldest first: the latest its AuditRecord, the rest history
        keep_value(found.items, found.history, (k1, k2, k3), audited)
    elif kind == FORM:
        keep_element(found.forms, found.form_history, (k1, k2), audited)
    elif kind == VISIT:
        keep_element(found.visits, found.visit_history, k1, audited)
    elif kind == LOCK:
        found.locks[(k1, k2)] = audited
    elif kind == ENTRY:
        keep_element(found.entries, found.entry_records, (k1, k2), audited)
    elif kind == ENTRY_ITEM:
        keep_value(found.entry_items, found.entry_history, (k1, k2, k3), audited)
    elif kind == QUERY:
        keep_value(found.queries, found.query_history, k1, audited)
    elif kind == EVENT:
        keep_element(found.events, found.event_records, k1, audited)
    elif kind == EVENT_ITEM:
        keep_value(found.event_items, found.event_history, (k1, k2), audited)
    else:
        before = found.subject
        if before is not None:
            if not before.value:
                found.subject_history.append(before)
            if audited.extra is None:  # an imported participant's randomization stays with its latest record
                audited = audited._replace(extra=before.extra)
        found.subject = audited
