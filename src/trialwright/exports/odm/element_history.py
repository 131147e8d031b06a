"""The elements' own audit history in the ODM file, and the values whose latest change removed them.

``tw:History`` in ``SubjectData``, ``StudyEventData``, ``FormData`` and a log entry's or an adverse event's
``ItemGroupData`` (after the element's other extension, before its queries): a ``tw:Earlier`` per audit entry about
the element before the latest (whose ``AuditRecord`` the element carries), oldest first, each with its
``AuditRecord`` (user, EditPoint, site, time, reason, ``SourceID``) and ``Action``, the audit action it recorded
(none on a record an ODM import kept as an element's latest from a file written before the export named the latest
records' actions in ``tw:Action``), written as a value's and a query's earlier records are
(``history.open_earlier``). The element's own ``AuditRecord`` names its action in ``tw:Action``, its last child
(``ClinicalWriter._audit_record``); an earlier record's ``AuditRecord`` has none: its action is the ``tw:Earlier``'s,
never written twice.

Which entries are an element's (``audit_index._keys``):

* a participant (``SubjectData``): ``participant.enrolled``, ``participant.withdrawn`` and the ``consent.*`` entries
  that name the participant (a decision to continue or withdraw after enrolment); never ``participant.randomized``,
  ``dose.prepared`` or ``participant.unblinded``: ODM carries no arm (``carries_arms = False``), so these entries,
  which hold the preparation code, the seal or the unblinding's reason, are not written for any exporter (said in the
  module docstring of ``trialwright.exports.odm`` and in ``NOT_RESTORED``);
* a visit (``StudyEventData``): ``visit.held`` and ``visit.missed`` (a visit missed then held, a date changed);
* a form (``FormData``): every ``form.*`` entry about it (started, completed, reopened, verified, signed, locked,
  unlocked, a signature or verification voided, a field verified, ...);
* a log entry: every ``log.*`` entry naming its sequence (added, reviewed, removed, restored, coded, recoded, ...);
* an adverse event: every ``ae.*`` entry about it (reports, coding, submissions).

An entry that names a value (``audit_index.VALUE_ACTIONS`` with a field: ``form.value_*``, ``log.value_*``,
``ae.reported``/``ae.followed_up`` of a field) is in that value's own ``tw:History`` (``history``) and never in the
element's: no entry is written twice. The element's own ``AuditRecord`` stays the latest entry about it of any kind;
in a trial imported from ODM and changed since, the element's imported latest record goes to the element's history
(with the action its file named in ``tw:Action``; none from a file written before) unless it is also one of its
values' records (``indexed.no_value_twice``).

``tw:RemovedItemData`` (``ItemOID``, ``Removed="Yes"``) in an ``ItemGroupData``, after its other extension elements
and before the queries: a value whose latest change removed it (a form's or log entry's value cleared, an adverse event
report's field left out) has no ``ItemData``; this element carries that change's ``AuditRecord`` and the value's
earlier records (``tw:History``, as an ``ItemData``'s), so its history is not lost.

Blinding: the entries are read masked for the exporter (``ExportSource.audit_columns``), as the audit page shows them
to that role; the arm's entries are never read (above), so no arm, lot, preparation code or arm-revealing reason can be
in an element's history.
"""

from __future__ import annotations

from collections.abc import Sequence

from trialwright.exports.odm.audit_index import Audited
from trialwright.exports.odm.history import AuditWriter, write_history, write_records
from trialwright.exports.odm.values import ValueCodec
from trialwright.exports.odm.xmlstream import XmlStream, quoted
from trialwright.protocol import FormField

__all__ = ["AuditWriter", "write_element_history", "write_removed"]

#: ``tw:History`` of an element: a ``tw:Earlier Action=...`` per earlier entry, oldest first (nothing if none), as a
#: query's: ``history.write_records``, the one writer of an earlier record and its action (``history.open_earlier``).
write_element_history = write_records


def write_removed(
    xml: XmlStream, oid: str, f: FormField, latest: Audited, earlier: Sequence[Audited], codec: ValueCodec, site: str,
    audit_record: AuditWriter,
) -> None:  # fmt: skip
    """``tw:RemovedItemData`` of a value its latest change removed: that change's AuditRecord, the earlier ones."""
    xml.write(f'{xml.indent()}<tw:RemovedItemData ItemOID={quoted(oid)} Removed="Yes">\n')
    xml.depth += 1
    audit_record(latest, site)
    write_history(xml, earlier, codec, oid, f, site, audit_record)
    xml.end("tw:RemovedItemData")


def removed(latest: Audited | None) -> bool:
    """Whether a value's latest entry removed it (set no value: ``null``)."""
    return latest is not None and (latest.extra is None or latest.extra == "null")
