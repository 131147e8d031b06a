"""A value's audit history in the ODM file: ``tw:History`` in ``ItemData``, after ``tw:StoredValue``.

A Snapshot ``ItemData`` holds the value as it stands and the ``AuditRecord`` of the latest audit entry about it.
Every audit entry before that one (a form's ``form.value_entered``, ``form.value_changed``, ``form.value_derived``; a
log entry's ``log.value_entered``, ``log.value_changed``; an adverse event report field's ``ae.reported``,
``ae.followed_up``, its value written as a stored value holding only the value; in a trial imported from ODM, the
earlier records its import kept) is one ``tw:Earlier`` in ``tw:History``, oldest first: its own
``AuditRecord`` (user, EditPoint, site, time, reason for change, ``SourceID`` ``audit:<seq>:<hash>``, the hash
``masked`` in an export made without the arms), the ``Action``
that entry recorded (as an element's earlier records carry theirs: ``element_history``; none on a record an ODM
import kept from a file that did not name it) and the value that entry set, written as ``ItemData`` writes a value
(``Value`` or ``IsNull="Yes"``, and ``tw:StoredValue`` for what plain ODM cannot hold), or ``Removed="Yes"`` for an
entry that removed the value. The value an entry set is the
value as it was before the next change, so the history and the current value give every state the value went
through, each with who, where, when and why.

Why an extension element rather than ODM's own Transactional file: a Transactional file states each change as a
separate ``ClinicalData``/``ItemData`` with ``TransactionType``, which drops the Snapshot's one-place-per-value layout
every reader of these files (and the import) relies on, and would repeat the subject, visit and form around every
earlier value. ODM 1.3.2 gives no place for an earlier value in a Snapshot ``ItemData``; ``ItemDataElementExtension``
does, and ODM readers skip it.

A query's earlier records (``write_records``: ``query.raised``, ``query.answered``, ``query.closed``) are
``tw:Earlier`` elements too, each its ``AuditRecord`` and ``Action`` only. Every ``tw:Earlier`` of the file, a
value's, a query's or an element's, is opened by ``open_earlier``: one way of writing an earlier record's action, on
the ``tw:Earlier`` and never in its ``AuditRecord`` (whose ``tw:Action`` names the latest record's only).

Blinding: the entries come from ``ExportSource.audit_columns``, masked for the exporter as the audit page masks them
(``trialwright.domain.audit_masking``); form, log entry and adverse event values are what blinded staff enter and
read, and no arm, allocation or preparation attribute is one, so none can be in the history.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from trialwright.exports.odm.audit_index import Audited
from trialwright.exports.odm.values import ValueCodec
from trialwright.exports.odm.xmlstream import XmlStream, quoted
from trialwright.protocol import FormField

__all__ = ["AuditWriter", "open_earlier", "write_history", "write_records"]

#: Writes an AuditRecord (``ClinicalWriter._audit_record``): the entry, the participant's site.
AuditWriter = Callable[[Audited | None, str], None]


def open_earlier(xml: XmlStream, a: Audited, site: str, audit_record: AuditWriter, value: str = "") -> None:
    """Open ``a``'s ``tw:Earlier`` (``value``: the attributes of the value it set, if any) with ``Action``, the
    action it recorded (none if unknown: an imported record whose file did not name it), and write its AuditRecord
    without the action, never written twice; the caller writes the rest and ends the element."""
    action = "" if a.action is None else f" Action={quoted(a.action)}"
    xml.write(f"{xml.indent()}<tw:Earlier{value}{action}>\n")
    xml.depth += 1
    audit_record(a._replace(action=None), site)


def write_records(xml: XmlStream, earlier: Sequence[Audited], site: str, audit_record: AuditWriter) -> None:
    """``tw:History`` of an element that holds no value (a query or an element: ``element_history``): a
    ``tw:Earlier`` per earlier audit entry about it, oldest first, its ``AuditRecord`` and ``Action`` (nothing if
    none)."""
    if not earlier:
        return
    xml.start("tw:History")
    for a in earlier:
        open_earlier(xml, a, site, audit_record)
        xml.end("tw:Earlier")
    xml.end("tw:History")


def write_history(
    xml: XmlStream,
    earlier: Sequence[Audited],
    codec: ValueCodec,
    oid: str,
    f: FormField,
    site: str,
    audit_record: AuditWriter,
) -> None:
    """``tw:History`` of one value: a ``tw:Earlier`` per earlier audit entry, oldest first, with the value it set and
    its ``Action`` (nothing if none)."""
    if not earlier:
        return
    xml.start("tw:History")
    for a in earlier:
        stored = json.loads(a.extra) if a.extra is not None else None
        if stored is None:
            value = ' Removed="Yes"'
            detail: dict[str, str] | None = None
        else:
            if not isinstance(stored, dict):
                raise ValueError(f"{oid}: audit entry {a.seq} holds {str(a.extra)[:60]!r}, not a stored value")
            text, found = codec.to_odm(oid, f, stored)
            detail = dict(found)
            value = ' IsNull="Yes"' if text is None else f" Value={quoted(text)}"
        open_earlier(xml, a, site, audit_record, value)
        if detail:
            xml.leaf("tw:StoredValue", detail)
        xml.end("tw:Earlier")
    xml.end("tw:History")
