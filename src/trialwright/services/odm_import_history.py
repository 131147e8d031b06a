"""Importing a value's audit history from an ODM file exactly: ``tw:History`` in ``ItemData``.

The export writes it (``trialwright.exports.odm.history``): every audit entry about a form's, a log entry's or an
adverse event's value before the latest, oldest first, each a ``tw:Earlier`` with its ``AuditRecord``, the ``Action``
it recorded and the value that entry set (``Value`` or ``IsNull="Yes"`` and ``tw:StoredValue``, or
``Removed="Yes"``). ``read_history`` checks one value's history while ``odm_import`` reads the form or log entry
(``report_history`` an adverse event's field, ``odm_import_ae``); the import keeps it, record by record and value by
value, in the form's, log entry's or event's ``import.odm`` audit entry (``history``: field -> the earlier records,
each the ``AuditRecord`` as recorded with its ``action`` and the value it set as ``value``: a stored value, or for an
event's field the report's value), beside the latest records (``items``), and the export reads them back
(``trialwright.exports.odm.audit_index``), so export -> import -> export stays byte-identical. A query's earlier
records (``read_records``) are its ``AuditRecord`` and ``Action`` only, kept in the query's ``import.odm`` entry
(``history``, ``odm_import_queries``).

``earlier_action`` is the one reader of a ``tw:Earlier``'s ``Action`` (a value's, a query's, an element's:
``odm_import_elements``): the action the record recorded, kept as its ``action``. A ``tw:Earlier`` without one (a
value's or a query's in a file written before the export named them) is kept without ``action``, as the latest
records of such files are: its action is unknown, and the re-export writes none, as the file had none.

Exactly or not at all; refused naming the element and the rule, never guessed:

* a ``tw:Earlier`` without its ``AuditRecord``, or an ``AuditRecord`` without its ``SourceID`` (``audit:<seq>:<hash>``);
* an ``Action`` that is not an action about the value or query (``odm_import_elements.LATEST``: a form's value
  ``form.value_entered``, ``form.value_changed``, ``form.value_derived``; a log entry's ``log.value_entered``,
  ``log.value_changed``; an adverse event's field ``ae.reported``, ``ae.followed_up``; a query ``query.raised``,
  ``query.answered``, ``query.closed``);
* records out of time order: a ``DateTimeStamp`` before the one of the record before it (the value's own, latest
  ``AuditRecord`` last). The ``SourceID`` sequences are not compared: a trial imported from ODM and changed since has
  records from two trails, whose sequences do not follow one another;
* a history on a value without its own ``AuditRecord`` (the latest record is where the history ends);
* an earlier value not valid for the field (not of its DataType, a code not in its CodeList, a stored value that is
  not one), checked as the value itself is checked; an adverse event's earlier value that is more than a value (a
  status, unit, reason or limit: a report's field holds none);
* ``Removed="Yes"`` with a value, or ``Value`` and ``IsNull`` both or neither otherwise; an attribute or child the
  export never writes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from trialwright.services.odm_import_common import OdmImportError, Recorded, in_time_order, odm_tag

if TYPE_CHECKING:
    from trialwright.services.odm_import_reader import Reader

__all__ = ["earlier_action", "read_history", "read_records", "report_history"]

_EARLIER_ATTRIBUTES = frozenset({"Value", "IsNull", "Removed", "Action"})


def earlier_action(earlier: ET.Element, actions: frozenset[str], about: str, at: str) -> str | None:
    """The action a ``tw:Earlier`` (at ``at``) recorded, its ``Action``; None if it names none (unknown). Refused
    unless one of ``actions``, the audit actions about ``about`` (``a form``, ``this value``, ...)."""
    action = earlier.get("Action")
    if action is not None and action not in actions:
        raise OdmImportError(f"{at}/@Action: {action!r} is not an action about {about} (one of "
                             f"{', '.join(sorted(actions))})")  # fmt: skip
    return action


def _with_action(recorded: Recorded, action: str | None) -> Recorded:
    """An earlier record as kept: its AuditRecord as recorded and, if the file named it, its ``action``."""
    return recorded if action is None else {**recorded, "action": action}


def report_history(
    reader: Reader, item: ET.Element, latest: Recorded | None, oid: str, where: str, actions: frozenset[str]
) -> list[dict[str, Any]]:
    """An adverse event's field's earlier records, as ``read_history`` reads them, each with the value its report set
    (``value``: the report's value, None: cleared)."""
    kept = read_history(reader, item, latest, oid, where, actions)
    for n, earlier in enumerate(kept, start=1):
        stored = earlier["value"]
        if stored is None:
            continue
        if set(stored) != {"value", "status"} or stored["status"] != "value":
            raise OdmImportError(f"{where}/tw:History/tw:Earlier[{n}]/tw:StoredValue: a report's field holds a value "
                                 "and nothing else (status, unit, reason or limit cannot be restored)")  # fmt: skip
        earlier["value"] = stored["value"]
    return kept


def read_history(
    reader: Reader, item: ET.Element, latest: Recorded | None, oid: str, where: str, actions: frozenset[str]
) -> list[dict[str, Any]]:
    """The earlier records of one form value (``item``, ItemDef ``oid``), oldest first, each its AuditRecord as recorded
    with the action it recorded (``action``, one of ``actions``; left out where the file names none) and the stored
    value it set (``value``, None: removed); empty if the value has no ``tw:History``."""
    found = item.findall(reader.ext_tag("History"))
    if not found:
        return []
    where = f"{where}/tw:History"
    if len(found) > 1:
        raise OdmImportError(f"{where}: appears twice in one ItemData")
    (history,) = found
    if latest is None:
        raise OdmImportError(f"{where}: a history needs the value's own AuditRecord (the latest), which is missing")
    earlier_tag = reader.ext_tag("Earlier")
    strays = sorted({child.tag for child in history if child.tag != earlier_tag})
    if strays:
        raise OdmImportError(f"{where}: {strays[0]} is not a child the export writes (only tw:Earlier)")
    earlier = list(history)
    if not earlier:
        raise OdmImportError(f"{where}: holds no tw:Earlier (the export writes a history only when there is one)")
    kept: list[dict[str, Any]] = []
    for n, elem in enumerate(earlier, start=1):
        at = f"{where}/tw:Earlier[{n}]"
        unknown = sorted(set(elem.attrib) - _EARLIER_ATTRIBUTES)
        if unknown:
            raise OdmImportError(f"{at}/@{unknown[0]}: not an attribute the export writes")
        allowed = {odm_tag("AuditRecord"), reader.ext_tag("StoredValue")}
        strays = sorted({child.tag for child in elem if child.tag not in allowed})
        if strays:
            raise OdmImportError(f"{at}: {strays[0]} is not a child the export writes (AuditRecord, tw:StoredValue)")
        if elem.find(odm_tag("AuditRecord")) is None:
            raise OdmImportError(f"{at}/AuditRecord: required (who changed the value, where, when and why)")
        action = earlier_action(elem, actions, "this value", at)
        recorded = reader.audit_record(elem, at)
        assert recorded is not None
        if elem.get("Removed") is not None:
            if elem.get("Removed") != "Yes" or {"Value", "IsNull"} & set(elem.attrib) or len(elem) != 1:
                raise OdmImportError(f'{at}/@Removed: "Yes" only, on a record without a value')
            value = None
        else:
            value = reader.stored_value(elem, oid, at)
        kept.append({**_with_action(recorded, action), "value": value})
    in_time_order([*kept, latest], where, len(kept))
    return kept


def read_records(
    reader: Reader, elem: ET.Element, latest: Recorded | None, where: str, actions: frozenset[str]
) -> list[Recorded]:
    """The earlier AuditRecords of a ``tw:Query``, oldest first, as recorded, each with the action it recorded
    (``action``, one of ``actions``; left out where the file names none); empty if it has no ``tw:History``. Each
    ``tw:Earlier`` holds its ``AuditRecord`` and ``Action`` and nothing else."""
    found = elem.findall(reader.ext_tag("History"))
    if not found:
        return []
    where = f"{where}/tw:History"
    if len(found) > 1:
        raise OdmImportError(f"{where}: appears twice")
    if latest is None:
        raise OdmImportError(f"{where}: a history needs the element's own AuditRecord (the latest), which is missing")
    kept: list[Recorded] = []
    for n, earlier in enumerate(found[0], start=1):
        at = f"{where}/tw:Earlier[{n}]"
        if earlier.tag != reader.ext_tag("Earlier"):
            raise OdmImportError(f"{where}: {earlier.tag} is not a child the export writes (only tw:Earlier)")
        unknown = sorted(set(earlier.attrib) - {"Action"})
        if unknown:
            raise OdmImportError(f"{at}/@{unknown[0]}: a query's earlier record holds no value (the export writes its "
                                 "AuditRecord and Action only)")  # fmt: skip
        action = earlier_action(earlier, actions, "this query", at)
        if [child.tag for child in earlier] != [odm_tag("AuditRecord")]:
            raise OdmImportError(f"{at}/AuditRecord: required, and nothing else (who acted on the query, where, "
                                 "when and why)")  # fmt: skip
        recorded = reader.audit_record(earlier, at)
        assert recorded is not None
        kept.append(_with_action(recorded, action))
    if not kept:
        raise OdmImportError(f"{where}: holds no tw:Earlier (the export writes a history only when there is one)")
    in_time_order([*kept, latest], where, len(kept))
    return kept
