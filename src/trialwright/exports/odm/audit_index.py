"""The latest audit entry about each participant, visit, form, lock and item, for the ODM file's AuditRecords.

The audit trail comes oldest first, in no participant order, while the file is written participant by
participant. ``AuditIndex`` reads it once, as plain rows of the few columns it needs and only the actions that
say something about the clinical data (``ExportSource.audit_columns``, masked as the source masks), keeps the
latest entry per key in a temporary SQLite file (on disk, not in memory; for a form's value every entry, oldest first,
with the value it set: the latest is its AuditRecord, the ones before its ``tw:History``), and then hands the writer one
participant's entries at a time (``about``). The users named by the indexed entries (with the last role each
acted in) are kept in memory: they are few, and ``AdminData`` lists them before any participant. The export reads the
participants' entries beside the participant stream instead (``audit_merge``: the same keys, ``entries``, without the
file) and indexes here only the entries naming no participant; indexing the whole trail (``of``) is kept as the
reference its spec compares with.

Where an entry is indexed (``_keys``):

* ``participant.enrolled``: the participant (``SubjectData``);
* ``visit.held``, ``visit.missed``, and ``import.odm`` of a visit: the visit, with its date, label and whether it
  was missed as JSON (a visit without forms is found only here);
* ``log.*`` (its detail names the entry's sequence) and ``import.odm`` of a log entry (its ``form`` the log, its
  detail the sequence, no visit): the entry; ``log.value_entered`` and ``log.value_changed`` (or the values an import
  kept, its ``history`` first) also the entry's value, every entry kept with the value it set, as a form's value;
* ``ae.*`` and ``import.odm`` of an adverse event (its ``form`` ``adverse_event:<AE number>``): the event;
  ``ae.reported`` and ``ae.followed_up`` (or the values an import kept, its ``history`` first) also the event's
  field, every entry kept with the value the report set;
* ``form.*`` and ``import.odm`` of a form: the form; ``form.locked`` (or an imported lock) also the lock, with the
  state before it; ``form.value_entered``, ``form.value_changed`` and ``form.value_derived`` also the item, with the
  stored value the entry set (its new value) as extra; an import's ``history`` (the earlier records it kept, each with
  its ``value``) and then ``items`` (the latest, with the value restored) the item the same way;
* ``query.raised``, ``query.answered``, ``query.closed`` (their new value names the query) and ``import.odm`` of a
  query (its new value the query as restored, ``query``, and its ``history`` first): the query, by its number, every
  entry kept (the latest its AuditRecord, the ones before its ``tw:History``).

An ``import.odm`` entry keeps the AuditRecords of the file it imported as recorded (``recorded``, and ``items`` for a
form's values: user, role, site, time stamp, reason, the source entry's seq and hash, and the action the record's
``tw:Action`` named, or an earlier record's ``tw:Earlier`` its ``Action``, if it named one), and the index takes
those instead of the import's own user and time: exporting an imported trial writes the AuditRecords of the file it
came from. The participant's own import entry also keeps its randomization as the file stated it (the entry's
extra, as JSON), the records of its screening's entries that name no participant (``screening_earlier``: the
screening's number and its records, indexed by the screening as its own entries are), and the first one the file's
users (``AdminData``) with their ``UserType``. An import entry whose
``recorded`` is null (the file had no AuditRecord there) is not indexed, so none is made up.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from trialwright.exports.base import ExportSource
from trialwright.exports.odm.indexed import KINDS, Audited, Indexed, collect, no_value_twice
from trialwright.exports.odm.values import json_text

__all__ = [
    "AUDIT_ACTIONS",
    "AUDIT_COLUMNS",
    "AUDIT_ONLY",
    "AUDIT_PREFIXES",
    "AUDIT_UNNAMED",
    "FORM_ACTIONS",
    "QUERY_ACTIONS",
    "SCREENING",
    "USER_COLUMNS",
    "USER_ONLY",
    "USER_PRESENT",
    "VALUE_FORM_ACTIONS",
    "AuditIndex",
    "Audited",
    "Indexed",
]

#: The columns read from the trail, in the order ``AuditIndex.add`` unpacks them.
AUDIT_COLUMNS = (
    "seq", "at", "actor", "role", "site", "reason", "hash", "action",
    "participant", "form", "field", "detail", "new_value", "old_value",
)  # fmt: skip
#: The columns of ``ExportSource.audit_distinct`` that tell which users the indexed entries name (``note_users``):
#: ``participant`` and ``field`` as present or not, ``new_value`` only where it says whether an entry is indexed.
USER_COLUMNS = ("actor", "role", "action", "participant", "form", "field", "detail", "new_value")
USER_PRESENT = ("participant", "field")
#: The actions the index reads (every other action indexes nothing: see ``_keys``).
QUERY_ACTIONS = frozenset({"query.raised", "query.answered", "query.closed"})
#: A participant's own entries (``SubjectData``): never ``participant.randomized``, ``dose.prepared`` or
#: ``participant.unblinded``, which ODM does not carry (``carries_arms = False``: see ``element_history``).
SUBJECT_ACTIONS = frozenset({"participant.enrolled", "participant.withdrawn"})
AUDIT_ACTIONS = frozenset({"visit.held", "visit.missed", "import.odm"}) | SUBJECT_ACTIONS | QUERY_ACTIONS
AUDIT_PREFIXES = ("form.", "log.", "ae.", "consent.", "screening.")
#: The forms of the entries read though they name no participant: a screening's (``screening.*``) and a consent's
#: (``consent.*`` before enrolment, and an ODM import's entry of a screening never enrolled).
AUDIT_UNNAMED = ("consent", "screening")
#: The key of a screening never enrolled (``tw:Screening``): this prefix and its number (no participant id has a colon).
SCREENING = "screening:"
#: Columns read only for some actions: a visit's date and label, an import's lock, the state before a lock.
AUDIT_ONLY = {
    "new_value": frozenset({"visit.held", "visit.missed", "import.odm", "form.value_entered", "form.value_changed",
                            "form.value_derived", "log.value_entered", "log.value_changed", "ae.reported",
                            "ae.followed_up"}) | QUERY_ACTIONS,
    "old_value": frozenset({"form.locked"}),
}

#: ``new_value`` read for the users only where it says whether an entry is indexed: an import's, a query's.
USER_ONLY = {"new_value": frozenset({"import.odm"}) | QUERY_ACTIONS}

_SUBJECT, _VISIT, _FORM, _LOCK, _ITEM, _ENTRY, _ENTRY_ITEM, _QUERY, _EVENT, _EVENT_ITEM = KINDS
_AE_FORM = "adverse_event:"
_AE_VALUE_ACTIONS = frozenset({"ae.reported", "ae.followed_up"})
VALUE_FORM_ACTIONS = _VALUE_ACTIONS = frozenset({"form.value_entered", "form.value_changed", "form.value_derived"})
_LOG_VALUE_ACTIONS = frozenset({"log.value_entered", "log.value_changed"})
#: The ``form.*`` actions a form's own audit entries record, indexed by ``add`` directly (``_keys`` gives each the
#: form and, for a value's, the item; ``form.locked`` also the lock, so it goes through ``_keys``).
FORM_ACTIONS = _FORM_ACTIONS = frozenset({
    "form.started", "form.completed", "form.verified", "form.signed", "form.reopened", "form.unlocked",
    "form.signature_voided", "form.verification_voided", "form.field_verified",
}) | _VALUE_ACTIONS  # fmt: skip
#: Actions whose entries name a value (their ``field``): kept in that value's history, never the element's.
VALUE_ACTIONS = frozenset({"form.value_entered", "form.value_changed", "form.value_derived", "log.value_entered",
                           "log.value_changed", "ae.reported", "ae.followed_up"})


class AuditIndex:
    """The trail indexed once into ``path`` (a new SQLite file); ``close`` when the file is written."""

    def __init__(self, path: Path, batch: int) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode = OFF")  # a scratch file: nothing to recover after a crash
        self.db.execute("PRAGMA synchronous = OFF")
        # Rows appended in the trail's order, indexed by participant once all are in (cheaper than keeping a
        # key unique on every insert); ``about`` reads them in that order, so a later entry replaces one before.
        self.db.execute(
            "CREATE TABLE entry (k0 TEXT, kind INTEGER, k1 TEXT, k2 TEXT, k3 TEXT, "
            "seq, at, actor, role, site, reason, hash, extra, action, value, origin)"
        )
        self.users: dict[str, str | None] = {}
        self._listed: dict[str, str | None] = {}  # users an imported file listed, with the role their type implies
        self._details: dict[str, tuple[str | None, Any]] = {}
        self._stamps: dict[dt.datetime, str] = {}  # a time stamp's ISO text (``entries``)
        self._batch = batch  # keys gathered before they are written; parsed details remembered

    @classmethod
    def of(cls, source: ExportSource, path: Path, batch: int) -> AuditIndex:
        """The index of ``source``'s trail."""
        index = cls(path, batch)
        try:
            index.add(source.audit_columns(AUDIT_COLUMNS, AUDIT_ACTIONS, AUDIT_PREFIXES, AUDIT_ONLY, AUDIT_UNNAMED))
        except BaseException:
            index.close()
            raise
        return index

    def close(self) -> None:
        self.db.close()

    def add(self, rows: Iterable[tuple[Any, ...]], users: bool = True) -> None:
        """Index rows of ``AUDIT_COLUMNS``, oldest first (a later entry about the same thing replaces one before),
        noting the users they name (unless ``users`` is False: known already, ``note_users``)."""
        trail: list[tuple[Any, ...]] = []
        for entry in self.entries(rows, self.users if users else {}):
            trail.append(entry)
            if len(trail) >= self._batch:
                self.insert(trail)
        self.insert(trail)
        if users:
            self.users.update(self._listed)  # an imported file's list of users, as it listed them
        self.db.execute("CREATE INDEX entry_k0 ON entry (k0)")

    def entries(self, rows: Iterable[tuple[Any, ...]], users: dict[str, str | None]) -> Iterator[tuple[Any, ...]]:
        """Each indexed entry of rows of ``AUDIT_COLUMNS`` as a row of the index (its key, its AuditRecord's columns,
        ``extra``, ``action``, whether it names a value, and the seq of the trail's entry it comes from), in their
        order; ``users`` gets the users they name, with the last role each acted in."""
        visit_of = self._visit_of
        stamps = self._stamps
        for seq, at, actor, role, site, reason, digest, action, participant, form, item, detail, new, old in rows:
            if participant is None:  # a screening's entry before any enrolment (``tw:Screening``'s), or none
                participant = _screening_of(action, form, detail)
                if participant is None:
                    continue
            if action in _FORM_ACTIONS:  # most of the trail: what ``_keys`` yields for them, without a generator
                visit = visit_of(detail)[0]
                if visit is not None and form:
                    # The entries of one save share their time: its text made once per distinct time (in UTC,
                    # where equal times are written alike; the source reads them so).
                    when = stamps.get(at) if at.tzinfo is dt.UTC else None
                    if when is None:
                        when = at.isoformat()
                        if at.tzinfo is dt.UTC:
                            if len(stamps) >= self._batch:
                                stamps.clear()
                            stamps[at] = when
                    users[actor] = role or users.get(actor)
                    named = int(bool(item) and action in _VALUE_ACTIONS)
                    yield (participant, _FORM, visit, form, "", seq, when, actor, role, site, reason, digest,
                           None, action, named, seq)  # fmt: skip
                    if named:
                        yield (participant, _ITEM, visit, form, item, seq, when, actor, role, site, reason,
                               digest, new, action, 1, seq)  # fmt: skip
                continue
            stamp: str | None = None
            for key, extra, who in self._keys(action, participant, form, item, detail, new, old):
                named = int(action in VALUE_ACTIONS and bool(item))
                if who is None:
                    stamp = stamp or at.isoformat()
                    yield (*key, seq, stamp, actor, role, site, reason, digest, extra, action, named, seq)
                    users[actor] = role or users.get(actor)
                elif "seq" in who:  # an AuditRecord an ODM import kept as recorded (its action, if the file gave it)
                    yield (*key, who["seq"], who["at"], who["by"], who.get("role"), who.get("site"), who.get("reason"),
                           who["hash"], extra, who.get("action"), 0, seq)  # fmt: skip
                    users[who["by"]] = who.get("role") or users.get(who["by"])
                else:  # an imported lock: who locked the form and when
                    yield (*key, seq, who["at"], who["by"], role, site, reason, digest, extra, action, 0, seq)
                    users[who["by"]] = role or users.get(who["by"])

    def note_users(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """The users named by the entries ``rows`` stand for, into ``users``: rows of ``ExportSource.audit_distinct``
        of ``USER_COLUMNS`` (``participant`` and ``field`` read as present or not), each standing for the entries
        that read so, at the newest of them. Whether an entry is indexed, and which users it names, depends only on
        those columns, so each distinct row is taken as those entries are (``entries``), in the order of its newest
        entry: each user ends with the role of the last entry that named one, as indexing every entry would leave it."""
        users = self.users
        when = dt.datetime.min.replace(tzinfo=dt.UTC)  # no entry's own time is read from these rows
        trail = (
            (seq, when, actor, role, None, None, "", action, None if present is None else "", form,
             "" if item else None, detail, new, None)
            for seq, actor, role, action, present, form, item, detail, new in rows
        )  # fmt: skip
        for _ in self.entries(trail, users):
            pass
        users.update(self._listed)

    def insert(self, trail: list[tuple[Any, ...]]) -> None:
        """Rows of ``entries`` into the index (``trail`` emptied)."""
        if trail:
            self.db.executemany("INSERT INTO entry VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", trail)
            trail.clear()

    def _visit_of(self, detail: str | None) -> tuple[str | None, Any]:
        """The visit an entry's detail names (None if it names none) and its label."""
        if not detail:
            return None, None
        found = self._details.get(detail)
        if found is None:
            parsed = json.loads(detail)
            if isinstance(parsed, dict):
                visit = parsed.get("visit")
                found = (visit if isinstance(visit, str) else None, parsed.get("label"))
            else:
                found = (None, None)
            if len(self._details) >= self._batch:
                self._details.clear()
            self._details[detail] = found
        return found

    def _keys(
        self, action: str, participant: str, form: str | None, item: str | None, detail: str | None,
        new: str | None, old: str | None,
    ) -> Iterator[tuple[tuple[str, int, str, str, str], Any, dict[str, Any] | None]]:  # fmt: skip
        """Where an entry is indexed: its key (participant, kind, visit, form, item), extra, and, if not the entry's
        own, the AuditRecord an ODM import kept (``seq``, ``hash``, ``by``, ``role``, ``site``, ``at``, ``reason``)
        or who locked a form and when (``by``, ``at``: a lock restored by an ODM import)."""
        if participant.startswith(SCREENING):  # a screening never enrolled: its own entries, or the import's
            yield from _screening_keys(action, participant, new)
            return
        if action in SUBJECT_ACTIONS or action.startswith("consent."):
            yield (participant, _SUBJECT, "", "", ""), None, None
            return
        if action in QUERY_ACTIONS:  # a query's: its new value names the query
            about = json.loads(new) if new else None
            if isinstance(about, dict) and isinstance(about.get("query"), int):
                yield (participant, _QUERY, str(about["query"]), "", ""), None, None
            return
        if form and form.startswith(_AE_FORM) and (
            action.startswith("ae.") or (action == "import.odm" and not _restores_query(new))
        ):
            yield from _event_keys(action, participant, form.removeprefix(_AE_FORM), item, new)
            return
        if action.startswith("log."):  # a log entry's: its detail names the entry's sequence
            sequence = json.loads(detail).get("sequence") if detail else None
            if form and isinstance(sequence, int):
                yield (participant, _ENTRY, form, str(sequence), ""), None, None
                if item and action in _LOG_VALUE_ACTIONS:
                    yield (participant, _ENTRY_ITEM, form, str(sequence), item), new, None
            return
        imported = json.loads(new or "{}") if action == "import.odm" else {}
        if not isinstance(imported, dict):
            imported = {}
        kept = "recorded" in imported  # written by an import that keeps the file's AuditRecords
        recorded = imported.get("recorded")
        restored = imported.get("query")
        if action == "import.odm" and isinstance(restored, dict):  # a query's import entry: the query as restored
            if isinstance(recorded, dict) and isinstance(restored.get("id"), int):
                for earlier in imported.get("history") or ():  # the earlier AuditRecords the file held, oldest first
                    yield (participant, _QUERY, str(restored["id"]), "", ""), None, earlier
                yield (participant, _QUERY, str(restored["id"]), "", ""), None, recorded
            return
        visit, label = self._visit_of(detail)
        if action == "import.odm" and form and visit is None:  # a log entry's import entry, its sequence in the detail
            sequence = json.loads(detail).get("sequence") if detail else None
            if isinstance(sequence, int):
                if isinstance(recorded, dict):
                    for earlier in imported.get("earlier") or ():  # the entry's earlier records, oldest first
                        yield (participant, _ENTRY, form, str(sequence), ""), None, earlier
                    yield (participant, _ENTRY, form, str(sequence), ""), None, recorded
                values, history = imported.get("values") or {}, imported.get("history") or {}
                for name, about in (imported.get("items") or {}).items():
                    key = (participant, _ENTRY_ITEM, form, str(sequence), str(name))
                    for earlier in history.get(name) or ():  # the earlier AuditRecords the file held, oldest first
                        yield key, json_text(earlier.get("value")), earlier
                    yield key, json_text(values.get(name)), about
            return
        if action == "import.odm" and visit is None and not form:  # the participant's own import entry
            for name, kind in (imported.get("users") or {}).items():
                self._listed[str(name)] = "investigator" if kind == "Investigator" else None
            before = imported.get("screening_earlier")  # its screening's entries before enrolment, oldest first
            if isinstance(before, dict) and isinstance(before.get("screening"), str):
                for earlier in before.get("records") or ():
                    yield (f"{SCREENING}{before['screening']}", _SUBJECT, "", "", ""), None, earlier
            if isinstance(recorded, dict):
                randomization = imported.get("randomization")
                for earlier in imported.get("earlier") or ():  # the participant's earlier records, oldest first
                    yield (participant, _SUBJECT, "", "", ""), None, earlier
                yield (participant, _SUBJECT, "", "", ""), json_text(randomization) if randomization else None, recorded
            return
        if visit is None:
            return
        if action in {"visit.held", "visit.missed"} or (action == "import.odm" and not form):
            value = json.loads(new) if new else None
            day, named = (value.get("visit_date"), value.get("label")) if isinstance(value, dict) else (value, None)
            missed = action == "visit.missed" or (action == "import.odm" and day is None)
            held = {"date": day, "label": named or label, "missed": missed}
            if kept and not isinstance(recorded, dict):
                return
            for earlier in imported.get("earlier") or ():  # the visit's earlier records, oldest first
                yield (participant, _VISIT, visit, "", ""), json_text(held), earlier
            yield (participant, _VISIT, visit, "", ""), json_text(held), recorded if kept else None
        elif (action.startswith("form.") or action == "import.odm") and form:
            if not kept or isinstance(recorded, dict):
                for earlier in imported.get("earlier") or ():  # the form's earlier records, oldest first
                    yield (participant, _FORM, visit, form, ""), None, earlier
                yield (participant, _FORM, visit, form, ""), None, recorded if kept else None
            if action == "form.locked":
                yield (participant, _LOCK, visit, form, ""), json.loads(old) if old else None, None
            if item and action in _VALUE_ACTIONS:
                yield (participant, _ITEM, visit, form, item), new, None
            values = imported.get("values") or {}
            history = imported.get("history") or {}
            for name, about in (imported.get("items") or {}).items():
                for earlier in history.get(name) or ():  # the earlier AuditRecords the file held, oldest first
                    yield (participant, _ITEM, visit, form, str(name)), json_text(earlier.get("value")), earlier
                yield (participant, _ITEM, visit, form, str(name)), json_text(values.get(name)), about
            lock = imported.get("lock")
            if isinstance(lock, dict) and lock.get("by") and lock.get("at"):
                who = {"by": str(lock.get("by")), "at": str(lock.get("at"))}
                yield (participant, _LOCK, visit, form, ""), lock.get("before"), who

    def about(self, participant: str) -> Indexed:
        """Everything indexed about one participant (or a screening: ``SCREENING`` and its number), in the order of
        the trail's entries it comes from."""
        found = Indexed()
        query = (
            "SELECT kind, k1, k2, k3, seq, at, actor, role, site, reason, hash, extra, action, value FROM entry "
            "WHERE k0 = ? ORDER BY origin, rowid"
        )
        for kind, k1, k2, k3, seq, at, actor, role, site, reason, digest, extra, action, named in self.db.execute(
            query, (participant,)
        ):
            collect(found, kind, k1, k2, k3, Audited(seq, at, actor, role, site, reason, digest, extra, action,
                                                       bool(named)))  # fmt: skip
        no_value_twice(found)
        return found

    def done(self) -> None:
        """Every participant written (nothing to check: the whole trail is in the index)."""


def _screening_of(action: str, form: str | None, detail: str | None) -> str | None:
    """The key of the screening an entry naming no participant is about (``SCREENING`` and its number), if any."""
    if not (action.startswith(("screening.", "consent.")) or action == "import.odm") or form not in AUDIT_UNNAMED:
        return None
    about = json.loads(detail) if detail else None
    number = about.get("screening") if isinstance(about, dict) else None
    return f"{SCREENING}{number}" if isinstance(number, str) else None


def _screening_keys(
    action: str, key: str, new: str | None
) -> Iterator[tuple[tuple[str, int, str, str, str], Any, dict[str, Any] | None]]:
    """A screening's entry (``screening.*``, ``consent.*``), or the records an import of its ``tw:Screening`` kept
    (``recorded`` and ``earlier``; none when the file had none)."""
    if action != "import.odm":
        yield (key, _SUBJECT, "", "", ""), None, None
        return
    imported = json.loads(new or "{}")
    if isinstance(imported, dict) and isinstance(imported.get("recorded"), dict):
        for earlier in imported.get("earlier") or ():  # the screening's earlier records, oldest first
            yield (key, _SUBJECT, "", "", ""), None, earlier
        yield (key, _SUBJECT, "", "", ""), None, imported["recorded"]


def _restores_query(new: str | None) -> bool:
    """Whether an ``import.odm`` entry is a query's (a coder's query names the adverse event as its form)."""
    about = json.loads(new) if new else None
    return isinstance(about, dict) and isinstance(about.get("query"), dict)


def _event_keys(
    action: str, participant: str, number: str, item: str | None, new: str | None
) -> Iterator[tuple[tuple[str, int, str, str, str], Any, dict[str, Any] | None]]:
    """An adverse event's entry: the event, and a report's field (``ae.reported``, ``ae.followed_up``); an import's
    entry gives the AuditRecords it kept (``recorded``, ``items``), none when the file had none."""
    if action != "import.odm":
        yield (participant, _EVENT, number, "", ""), None, None
        if item and action in _AE_VALUE_ACTIONS:
            yield (participant, _EVENT_ITEM, number, item, ""), new, None
        return
    imported = json.loads(new or "{}")
    if not isinstance(imported, dict):
        return
    if isinstance(imported.get("recorded"), dict):
        for earlier in imported.get("earlier") or ():  # the event's earlier records, oldest first
            yield (participant, _EVENT, number, "", ""), None, earlier
        yield (participant, _EVENT, number, "", ""), None, imported["recorded"]
    reports, history = imported.get("reports") or [{}], imported.get("history") or {}
    values = reports[-1].get("assessment") or {}  # the event as its latest report states it
    for name, about in (imported.get("items") or {}).items():
        for earlier in history.get(name) or ():  # the earlier AuditRecords the file held, oldest first
            yield (participant, _EVENT_ITEM, number, str(name), ""), json_text(earlier.get("value")), earlier
        yield (participant, _EVENT_ITEM, number, str(name), ""), json_text(values.get(name)), about
