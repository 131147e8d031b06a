"""A value's audit history in the ODM file: ``tw:History`` in ``ItemData``, after ``tw:StoredValue``.

A Snapshot ``ItemData`` holds the value as it stands and the ``AuditRecord`` of the latest audit entry about it.
Every audit entry before that one (a form's ``form.value_entered``, ``form.value_changed``, ``form.value_derived``; a
log entry's ``log.value_entered``, ``log.value_changed``; an adverse event report field's ``ae.reported``,
``ae.followed_up``, its value written as a stored value holding only the value; in a trial imported from ODM, the
earlier records its import kept) is one ``tw:Earlier`` in ``tw:History``, oldest first: its own
``AuditRecord`` (user, EditPoint, site, time, reason for change, ``SourceID`` ``audit:<seq>:<hash>``) and the value
that entry set, written as ``ItemData`` writes a value (``Value`` or ``IsNull="Yes"``, and ``tw:StoredValue`` for
what plain ODM cannot hold), or ``Removed="Yes"`` for an entry that removed the value. The value an entry set is the
value as it was before the next change, so the history and the current value give every state the value went
through, each with who, where, when and why.

Why an extension element rather than ODM's own Transactional file: a Transactional file states each change as a
separate ``ClinicalData``/``ItemData`` with ``TransactionType``, which drops the Snapshot's one-place-per-value layout
every reader of these files (and the import) relies on, and would repeat the subject, visit and form around every
earlier value. ODM 1.3.2 gives no place for an earlier value in a Snapshot ``ItemData``; ``ItemDataElementExtension``
does, and ODM readers skip it.

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

__all__ = ["write_history", "write_records"]


def write_records(
    xml: XmlStream, earlier: Sequence[Audited], site: str, audit_record: Callable[[Audited | None, str], None]
) -> None:
    """``tw:History`` of an element that holds no value (a query): a ``tw:Earlier`` per earlier audit entry about it,
    oldest first, its ``AuditRecord`` only (nothing if none)."""
    if not earlier:
        return
    with xml.element("tw:History"):
        for a in earlier:
            with xml.element("tw:Earlier"):
                audit_record(a._replace(action=None), site)  # a query's earlier action is not written


def write_history(
    xml: XmlStream,
    earlier: Sequence[Audited],
    codec: ValueCodec,
    oid: str,
    f: FormField,
    site: str,
    audit_record: Callable[[Audited | None, str], None],
) -> None:
    """``tw:History`` of one value: a ``tw:Earlier`` per earlier audit entry, oldest first (nothing if none)."""
    if not earlier:
        return
    xml.start("tw:History")
    for a in earlier:
        stored = json.loads(a.extra) if a.extra is not None else None
        if stored is None:
            xml.write(f"{xml.indent()}<tw:Earlier Removed=\"Yes\">\n")
            detail: dict[str, str] | None = None
        else:
            if not isinstance(stored, dict):
                raise ValueError(f"{oid}: audit entry {a.seq} holds {str(a.extra)[:60]!r}, not a stored value")
            text, found = codec.to_odm(oid, f, stored)
            detail = dict(found)
            value = ' IsNull="Yes"' if text is None else f" Value={quoted(text)}"
            xml.write(f"{xml.indent()}<tw:Earlier{value}>\n")
        xml.depth += 1
        audit_record(a._replace(action=None), site)  # a value's earlier action is not written
        if detail:
            xml.leaf("tw:StoredValue", detail)
        xml.end("tw:Earlier")
    xml.end("tw:History")
