"""Data queries in an ODM file (``tw:Query``, ``trialwright.exports.odm.queries``): read and checked with their
participant by the ODM import, and restored exactly.

A query is read where the export writes it: on the ``SubjectData`` (a query on the participant), on a form's
``ItemGroupData`` or on a log entry's ``ItemGroupData`` (``ItemOID`` naming the field, one of that item group's
``ItemRef``\\ s). Each is restored with its number (``ID``), target, field, origin, check, text, status, answer and
closing note, who raised, answered and closed it and when, and its ``AuditRecord`` as recorded, kept in the query's
own ``import.odm`` audit entry (its new value the query as restored, ``query``, and ``recorded``; its detail the file
and the query's number) with its earlier records (``tw:History``: ``history``, each an AuditRecord as recorded and the
action its ``tw:Earlier`` names, ``odm_import_history.read_records``; none in a file written before the export named
them: unknown), so that exporting the imported trial writes the file's AuditRecords again
(``trialwright.exports.odm.audit_index``).

Refused, naming the element or attribute and the rule, never dropped: a ``tw:Query`` anywhere else, an attribute or
child element the import does not restore, a number that is not a positive whole number or appears twice, an origin
or status that is not one, a state whose parts do not agree (an open query has no answer and is not closed, an answered
one has its answer, a closed one who closed it and when; an answer comes with who gave it and when), a time without
its zone, an ``ItemOID`` on a participant's query or one its item group does not hold, an earlier record's ``Action``
that is not an action about a query (``query.raised``, ``query.answered``, ``query.closed``).
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text

from trialwright.exports.odm import UNSCHEDULED
from trialwright.exports.odm.ae_outline import AE_EVENT
from trialwright.exports.odm.outline import LOGS_EVENT
from trialwright.services import audit
from trialwright.services.forms.common import form_queried
from trialwright.services.odm_import_common import OdmImportError, Recorded, odm_tag, parse_moment
from trialwright.services.odm_import_elements import LATEST
from trialwright.services.odm_import_history import read_records
from trialwright.store.data_tables import form_records, queries, visit_records
from trialwright.store.log_tables import log_entries

if TYPE_CHECKING:
    from trialwright.services.odm_import_common import Subject
    from trialwright.services.odm_import_reader import Reader
    from trialwright.services.odm_import_writer import Writer

__all__ = ["ImportedQuery", "QueryReader", "advance_query_numbers", "restore_queries"]

_ORIGINS = ("soft_limit", "data_check", "manual", "system")
_STATUSES = ("open", "answered", "closed")
#: ``tw:Query``'s attributes -> the ``queries`` column each restores (ItemOID: the field, by its item).
_COLUMNS = {
    "ID": "id", "ItemOID": "field", "Origin": "origin", "CheckID": "check_id", "Status": "status", "Text": "text",
    "RaisedAt": "raised_at", "RaisedBy": "raised_by", "Answer": "answer", "AnsweredAt": "answered_at",
    "AnsweredBy": "answered_by", "ClosedAt": "closed_at", "ClosedBy": "closed_by", "CloseNote": "close_note",
}  # fmt: skip
_TIMES = ("RaisedAt", "AnsweredAt", "ClosedAt")


@dataclass(frozen=True)
class ImportedQuery:
    """One query as the file has it: its target (``("participant",)``, ``("form", visit, form)`` or ``("entry", log,
    sequence)``), its ``queries`` row as text (times as the file wrote them) and its AuditRecord as recorded."""

    number: int
    target: tuple[Any, ...]
    row: dict[str, Any]
    recorded: Recorded | None
    history: tuple[Recorded, ...] = ()  # its earlier AuditRecords, oldest first, each with its action if named


class QueryReader:
    """The queries of each participant of one reading of the file (a number appears once in the whole file)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.numbers: set[int] = set()

    def read(self, elem: ET.Element, pid: str) -> list[ImportedQuery]:
        """The queries of ``SubjectData`` ``elem`` (already checked by the reader: visits, forms, item groups)."""
        r = self.reader
        tag = r.ext_tag("Query")
        where = f"SubjectData[@SubjectKey={pid}]"
        taken: set[int] = set()
        out: list[ImportedQuery] = []

        def take(parent: ET.Element, at: str, group: str | None, target: tuple[Any, ...]) -> None:
            for q in parent.findall(tag):
                out.append(self._query(q, at, group, target))
                taken.add(id(q))

        take(elem, where, None, ("participant",))
        for event in elem.findall(odm_tag("StudyEventData")):
            oid = event.get("StudyEventOID", "")
            e_where = f"{where}/StudyEventData[@StudyEventOID={oid}]"
            for form in event.findall(odm_tag("FormData")):
                form_oid = form.get("FormOID", "")
                f_where = f"{e_where}/FormData[@FormOID={form_oid}]"
                for group in form.findall(odm_tag("ItemGroupData")):
                    g_oid = group.get("ItemGroupOID", "")
                    if oid == AE_EVENT:  # the export writes no query on an adverse event's item group
                        continue
                    if oid == LOGS_EVENT:
                        key = group.get("ItemGroupRepeatKey", "")
                        target: tuple[Any, ...] = ("entry", form_oid.removeprefix("F.LOG."), int(key))
                        at = f"{f_where}/ItemGroupData[@ItemGroupRepeatKey={key}]"
                    else:
                        repeat = event.get("StudyEventRepeatKey")
                        visit = f"unscheduled-{repeat}" if oid == UNSCHEDULED else r.expected.visits[oid]
                        target = ("form", visit, form_oid.removeprefix("F."))
                        at = f"{f_where}/ItemGroupData[@ItemGroupOID={g_oid}]"
                    take(group, at, g_oid, target)
        for parent in elem.iter():  # a query anywhere else would not be restored: refused, never dropped
            for child in parent:
                if child.tag == tag and id(child) not in taken:
                    local = parent.tag.rpartition("}")[2]
                    raise OdmImportError(
                        f"{where}: tw:Query in {local}: the import restores a query on the SubjectData or a "
                        "form's or log entry's ItemGroupData only (refused, never dropped)"
                    )
        return out

    def _query(self, q: ET.Element, parent: str, group: str | None, target: tuple[Any, ...]) -> ImportedQuery:
        r = self.reader
        attrs = dict(q.attrib)
        number_text = attrs.get("ID", "")
        where = f"{parent}/tw:Query[@ID={number_text}]"
        unknown = sorted(set(attrs) - set(_COLUMNS))
        if unknown:
            raise OdmImportError(f"{where}/@{unknown[0]}: not a part of a query the import restores (refused, "
                                 "never dropped)")  # fmt: skip
        allowed = [odm_tag("AuditRecord"), r.ext_tag("History")]
        for n, child in enumerate(q):
            if n >= len(allowed) or child.tag != allowed[n]:
                local = child.tag.rpartition("}")[2]
                raise OdmImportError(f"{where}/{local}: a query holds one AuditRecord, then its tw:History, and "
                                     "nothing else (refused, never dropped)")  # fmt: skip
        if re.fullmatch(r"[1-9][0-9]*", number_text) is None:  # ASCII digits, no leading zero: written back as read
            raise OdmImportError(f"{where}/@ID: {number_text!r} is not a query's number (1, 2, ...)")
        number = int(number_text)
        if number in self.numbers:
            raise OdmImportError(f"{where}/@ID: query {number} appears twice in the file")
        self.numbers.add(number)
        for name in ("Origin", "Status", "Text", "RaisedAt", "RaisedBy"):
            if not attrs.get(name, "").strip():
                raise OdmImportError(f"{where}/@{name}: required")
        if attrs["Origin"] not in _ORIGINS:
            raise OdmImportError(f"{where}/@Origin: {attrs['Origin']!r} is not one of {', '.join(_ORIGINS)}")
        status = attrs["Status"]
        if status not in _STATUSES:
            raise OdmImportError(f"{where}/@Status: {status!r} is not one of {', '.join(_STATUSES)}")
        answered = [name in attrs for name in ("Answer", "AnsweredAt", "AnsweredBy")]
        if any(answered) and not all(answered):
            raise OdmImportError(f"{where}/@Answer: Answer, AnsweredAt and AnsweredBy come together or not at all")
        closed = [name in attrs for name in ("ClosedAt", "ClosedBy")]
        if any(closed) and not all(closed):
            raise OdmImportError(f"{where}/@ClosedAt: ClosedAt and ClosedBy come together or not at all")
        if "CloseNote" in attrs and not all(closed):
            raise OdmImportError(f"{where}/@CloseNote: only a closed query has a closing note")
        if status == "open" and (any(answered) or any(closed)):
            raise OdmImportError(f"{where}/@Status: an open query has no answer and is not closed")
        if status == "answered" and (not all(answered) or any(closed)):
            raise OdmImportError(f"{where}/@Status: an answered query has its answer (Answer) and is not closed")
        if status == "closed" and not all(closed):
            raise OdmImportError(f"{where}/@Status: a closed query says who closed it and when (ClosedBy, ClosedAt)")
        for name in _TIMES:
            moment = parse_moment(attrs.get(name), f"{where}/@{name}")
            if moment is not None and moment.isoformat() != attrs[name]:  # it would not come back as written
                raise OdmImportError(f"{where}/@{name}: {attrs[name]!r} is not a UTC time as the export writes it "
                                     f"({moment.isoformat()}); refused, never rewritten")  # fmt: skip
        field: str | None = None
        if "ItemOID" in attrs:
            item = attrs["ItemOID"]
            if group is None:
                raise OdmImportError(f"{where}/@ItemOID: a query on the participant names no field")
            assert r.found is not None
            if item not in r.found.groups.get(group, ()):
                raise OdmImportError(f"{where}/@ItemOID: {item} is not an ItemRef of ItemGroupDef {group}")
            field = r.expected.fields[item][1].id
        row: dict[str, Any] = {_COLUMNS[name]: value for name, value in attrs.items() if name not in {"ID", "ItemOID"}}
        row["field"] = field
        recorded = r.audit_record(q, where, LATEST["query"])
        earlier = read_records(r, q, recorded, where, LATEST["query"])
        return ImportedQuery(number, target, row, recorded, tuple(earlier))


def restore_queries(writer: Writer, s: Subject, found: list[ImportedQuery]) -> None:
    """Write the participant's queries (after its forms and log entries), each with its ``import.odm`` entry."""
    session = writer.session
    for q in found:
        row = dict(q.row)
        kind, *target = q.target
        record_id = entry_id = on = None
        if kind == "form":
            visit_id, on = target
            record_id = session.execute(
                select(form_records.c.id)
                .join(visit_records, visit_records.c.id == form_records.c.visit_record_id)
                .where(form_records.c.participant_id == s.participant_id, visit_records.c.visit_id == visit_id,
                       form_records.c.form_id == on)
            ).scalar_one()  # fmt: skip
        elif kind == "entry":
            on, sequence = target
            entry_id = session.execute(
                select(log_entries.c.id).where(log_entries.c.participant_id == s.participant_id,
                                               log_entries.c.log_id == on, log_entries.c.sequence == sequence)
            ).scalar_one()  # fmt: skip
        values: dict[str, Any] = {**row, "id": q.number, "participant_id": s.participant_id, "site": s.site,
                                  "form_record_id": record_id, "log_entry_id": entry_id}  # fmt: skip
        for k in ("raised_at", "answered_at", "closed_at"):
            if k in row:
                values[k] = dt.datetime.fromisoformat(row[k])
        session.execute(queries.insert().values(**values))
        if record_id is not None:  # a record this transaction inserted has a query now: look-ups read for it again
            form_queried(session, record_id)
        names = ("log", "entry") if kind == "entry" else ("visit", "form")
        restored: dict[str, Any] = {"id": q.number, "on": kind, **dict(zip(names, target, strict=False))}
        audit.record(
            session, actor=writer.actor.username, role=writer.actor.role.value, site=s.site,
            participant=s.participant_id, form=on, field=row["field"], action="import.odm",
            new_value={"query": {**restored, **row}, "recorded": q.recorded,
                       **({"history": list(q.history)} if q.history else {})},
            detail={**writer.detail, "query": q.number},
        )  # fmt: skip
        writer.counts["queries"] += 1
        writer.counts["records"] += q.recorded is not None
        writer.counts["earlier"] += len(q.history)


def advance_query_numbers(writer: Writer) -> None:
    """After restoring queries with their numbers: PostgreSQL's sequence of query ids goes past the largest, so the
    next query raised here takes the next number (SQLite takes the largest plus one by itself)."""
    session = writer.session
    if session.get_bind().dialect.name != "postgresql":
        return
    largest = session.execute(select(func.max(queries.c.id))).scalar_one()
    if largest is not None:
        session.execute(text("SELECT setval(pg_get_serial_sequence('queries', 'id'), :n)"), {"n": largest})
