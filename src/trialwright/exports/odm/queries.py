"""Data queries in the ODM file: ``tw:Query``, on the ``SubjectData`` (a query on the participant), the form's
``ItemGroupData`` (a query on a form record or one of its fields) or the log entry's ``ItemGroupData`` (a query on
the entry or one of its fields) they concern.

A query on a field names the field's ``ItemOID`` rather than sitting inside its ``ItemData``: a query may ask about
a value that is not there (never entered, or cleared since), which has no ``ItemData``, and writing one for it would
state a value the trial does not hold. ODM 1.3.2's own ``Annotation`` (a ``Comment`` and ``Flag``s) cannot carry a
query exactly: it has no user or time, one comment where a query has a question, an answer and a closing note each
with who and when, and a ``Flag`` needs a ``CodeList`` the protocol's metadata does not declare. So each query is one
``tw:Query`` element: ``ID`` (the query's number), ``ItemOID`` (its field, if any), ``Origin`` (soft_limit,
data_check, manual, system), ``CheckID``, ``Status`` (open, answered, closed), ``Text``, ``RaisedAt``/``RaisedBy``,
``Answer``/``AnsweredAt``/``AnsweredBy``, ``ClosedAt``/``ClosedBy``/``CloseNote``, and ODM's ``AuditRecord`` of
the latest audit entry about it (``query.raised``, ``query.answered`` or ``query.closed``; in a trial imported from
ODM, the AuditRecord its import kept), then the earlier ones in ``tw:History`` (a ``tw:Earlier`` each, its
``AuditRecord`` and the ``Action`` it recorded, oldest first: ``history.write_records``). Queries come in the order
of their numbers.

``QueriesHeld`` holds one participant's queries while the participant is written and hands each element its own;
whatever is left when the participant is done (a query on a form or entry the file does not hold) stops the export
naming it: a query is never dropped. A query's text is what blinded staff read on the query pages: no arm.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from trialwright.exports.base import QueryRecord
from trialwright.exports.odm.audit_index import Indexed
from trialwright.exports.odm.history import AuditWriter, write_records
from trialwright.exports.odm.xmlstream import XmlStream

__all__ = ["QueriesHeld", "write_queries"]

class QueriesHeld:
    """One participant's queries, by where they are written."""

    def __init__(self, participant_id: str, queries: Iterable[QueryRecord]) -> None:
        self.participant_id = participant_id
        self.subject: list[QueryRecord] = []
        self.forms: dict[tuple[str, str], list[QueryRecord]] = {}
        self.entries: dict[tuple[str, int], list[QueryRecord]] = {}
        for q in queries:
            if q.log_id is not None and q.sequence is not None:
                self.entries.setdefault((q.log_id, q.sequence), []).append(q)
            elif q.visit_id is not None and q.form_id is not None:
                self.forms.setdefault((q.visit_id, q.form_id), []).append(q)
            else:
                self.subject.append(q)

    def on_subject(self) -> list[QueryRecord]:
        found, self.subject = self.subject, []
        return found

    def on_form(self, visit_id: str, form_id: str) -> list[QueryRecord]:
        return self.forms.pop((visit_id, form_id), [])

    def on_entry(self, log_id: str, sequence: int) -> list[QueryRecord]:
        return self.entries.pop((log_id, sequence), [])

    def done(self) -> None:
        """Every query was written, or the export stops naming the first that was not."""
        if not (self.subject or self.forms or self.entries):  # most participants: nothing left to look through
            return
        left = [*self.subject, *(q for qs in self.forms.values() for q in qs),
                *(q for qs in self.entries.values() for q in qs)]  # fmt: skip
        if left:
            q = left[0]
            where = f"log {q.log_id} entry {q.sequence}" if q.log_id else f"{q.visit_id} {q.form_id}"
            raise ValueError(f"queries: query {q.query_id} of {self.participant_id} is on {where}, which the file "
                             "does not hold")  # fmt: skip


def write_queries(
    xml: XmlStream, found: list[QueryRecord], audited: Indexed, site: str, item_oid: Callable[[str], str] | None,
    audit_record: AuditWriter,
) -> None:  # fmt: skip
    """``found`` as ``tw:Query`` elements (``item_oid`` gives a field's ItemOID; None where a query has no field)."""
    for q in found:
        if q.site != site:
            raise ValueError(f"queries: query {q.query_id} of {q.participant_id} is held by site {q.site}, not the "
                             f"participant's site {site}")  # fmt: skip
        if q.field is not None and item_oid is None:
            raise ValueError(f"queries: query {q.query_id} of {q.participant_id} names field {q.field} but no form")
        attrs = {
            "ID": str(q.query_id), "ItemOID": item_oid(q.field) if q.field is not None and item_oid else None,
            "Origin": q.origin, "CheckID": q.check_id, "Status": q.status, "Text": q.text,
            "RaisedAt": q.raised_at.isoformat(), "RaisedBy": q.raised_by, "Answer": q.answer,
            "AnsweredAt": _iso(q.answered_at), "AnsweredBy": q.answered_by, "ClosedAt": _iso(q.closed_at),
            "ClosedBy": q.closed_by, "CloseNote": q.close_note,
        }  # fmt: skip
        record = audited.queries.get(str(q.query_id))
        if record is None:
            xml.leaf("tw:Query", attrs)
            continue
        with xml.element("tw:Query", attrs):
            audit_record(record, site)
            write_records(xml, audited.query_history.get(str(q.query_id), ()), site, audit_record)


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
