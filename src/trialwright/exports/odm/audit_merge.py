"""The audit trail read beside the participant stream: each participant's indexed entries without indexing the trail.

``AuditIndex`` (``audit_index``) used to take the whole trail, oldest first, into a temporary SQLite file and read it
back one participant at a time. ``AuditStream`` hands the writer the same ``Indexed`` for each participant from
three reads instead:

* the users the indexed entries name (``AdminData`` lists them before any participant): the distinct values of the
  few columns that decide it, grouped by the database with the newest seq of each (``ExportSource.audit_distinct``,
  ``AuditIndex.note_users``), so no row per entry reaches Python for them;
* the entries naming no participant (a screening's and a consent's before enrolment: ``tw:Enrolment``'s and
  ``tw:Screening``'s), few, into the temporary index as before (they are read by screening, in two orders);
* the entries naming a participant, in the order the participants stream (``audit_columns(part="named")``: joined
  to the participants, by participant, oldest first), taken a participant at a time as the writer reaches it (a
  merge join): the same keys (``AuditIndex.entries``) collected straight into the participant's ``Indexed``.

An entry an import kept about a participant's screening (``screening_earlier``) goes into the temporary index when its
participant is read, before that participant's ``tw:Enrolment`` reads it, in the order of the trail's entry it came
from. The two streams must agree on the order: an entry left unread when the participants are done (its participant
not reached in the order the trail gave it) stops the export naming it, never skipped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trialwright.exports.base import ExportSource
from trialwright.exports.odm.audit_index import (
    AUDIT_ACTIONS,
    AUDIT_COLUMNS,
    AUDIT_ONLY,
    AUDIT_PREFIXES,
    AUDIT_UNNAMED,
    FORM_ACTIONS,
    SCREENING,
    USER_COLUMNS,
    USER_ONLY,
    USER_PRESENT,
    VALUE_FORM_ACTIONS,
    AuditIndex,
)
from trialwright.exports.odm.indexed import Audited, Indexed, collect, keep_element, keep_value, no_value_twice

__all__ = ["AuditStream"]

_PARTICIPANT = AUDIT_COLUMNS.index("participant")


class AuditStream:
    """Each participant's indexed entries, read beside the participant stream; ``close`` when the file is written."""

    def __init__(self, source: ExportSource, path: Path, batch: int) -> None:
        self.index = AuditIndex(path, batch)  # the screenings' entries, and the keys (``entries``)
        self.users = self.index.users
        self._rows: Iterator[tuple[Any, ...]] = iter(())
        self._next: tuple[Any, ...] | None = None
        self._started = False  # the participants' entries are read from the first participant on
        try:
            users = source.audit_distinct(
                USER_COLUMNS, AUDIT_ACTIONS, AUDIT_PREFIXES, USER_ONLY, AUDIT_UNNAMED, USER_PRESENT
            )
            self.index.note_users(users)
            unnamed = source.audit_columns(
                AUDIT_COLUMNS, AUDIT_ACTIONS, AUDIT_PREFIXES, AUDIT_ONLY, AUDIT_UNNAMED, part="unnamed"
            )
            self.index.add(unnamed, users=False)  # the users are known already
        except BaseException:
            self.index.close()
            raise
        self._source = source

    def close(self) -> None:
        self.index.close()

    def about(self, participant: str) -> Indexed:
        """Everything indexed about one participant (the next of the participant stream, or one after it), or a
        screening (``SCREENING`` and its number)."""
        if participant.startswith(SCREENING):
            return self.index.about(participant)
        if not self._started:
            self._start()
        rows: list[tuple[Any, ...]] = []
        while self._next is not None and self._next[_PARTICIPANT] == participant:
            rows.append(self._next)
            self._next = next(self._rows, None)
        found = Indexed()
        if not rows:
            return found
        elsewhere: list[tuple[Any, ...]] = []  # an imported participant's screening's records (``screening_earlier``)
        make = tuple.__new__  # an ``Audited`` without its Python-level ``__new__`` (the same tuple)
        index = self.index
        visit_of, stamps, batch = index._visit_of, index._stamps, index._batch
        forms, form_history, items, history = found.forms, found.form_history, found.items, found.history
        imported = False  # whether an import's entry is among them (only its kept records can be two things' at once)
        for row in rows:
            seq, at, actor, role, site, reason, digest, action, _, form, item, detail, new, _ = row
            if action in FORM_ACTIONS:
                # A form's own action (most of the trail): the form's key, and a value's also the item's, collected
                # as ``entries`` yields them and ``collect`` takes them, without a row of the index each.
                visit = visit_of(detail)[0]
                if visit is None or not form:
                    continue
                when = stamps.get(at) if at.tzinfo is dt.UTC else None  # as ``entries``: once per distinct time
                if when is None:
                    when = at.isoformat()
                    if at.tzinfo is dt.UTC:
                        if len(stamps) >= batch:
                            stamps.clear()
                        stamps[at] = when
                named = bool(item) and action in VALUE_FORM_ACTIONS
                record = make(Audited, (seq, when, actor, role, site, reason, digest, None, action, named))
                keep_element(forms, form_history, (visit, form), record)
                if named:
                    record = make(Audited, (seq, when, actor, role, site, reason, digest, new, action, True))
                    keep_value(items, history, (visit, form, item), record)
                continue
            imported = imported or action == "import.odm"
            for k0, kind, k1, k2, k3, seq, at, actor, role, site, reason, digest, extra, action, named, origin in (
                index.entries((row,), {})
            ):
                if k0 == participant:
                    collect(found, kind, k1, k2, k3, make(Audited, (seq, at, actor, role, site, reason, digest, extra,
                                                                    action, named == 1)))  # fmt: skip
                else:
                    elsewhere.append((k0, kind, k1, k2, k3, seq, at, actor, role, site, reason, digest, extra, action,
                                      named, origin))  # fmt: skip
        index.insert(elsewhere)
        if imported:  # without an import's kept records no element's record is a value's too: nothing to leave out
            no_value_twice(found)
        return found

    def _start(self) -> None:
        self._started = True
        self._rows = iter(
            self._source.audit_columns(
                AUDIT_COLUMNS, AUDIT_ACTIONS, AUDIT_PREFIXES, AUDIT_ONLY, AUDIT_UNNAMED, part="named"
            )
        )
        self._next = next(self._rows, None)

    def done(self) -> None:
        """Every participant written: an entry not read means the two streams disagreed on the order (refused)."""
        if not self._started:
            self._start()
        if self._next is not None:
            who = self._next[_PARTICIPANT]
            raise ValueError(f"audit: the entries about participant {who} were not read beside the participant stream "
                             "(the trail and the participants came in different orders)")  # fmt: skip
