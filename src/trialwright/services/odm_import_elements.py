"""Importing the elements' own audit history from an ODM file exactly, and the values whose latest change removed them.

The export writes them (``trialwright.exports.odm.element_history``): ``tw:History`` in ``SubjectData``,
``StudyEventData``, ``FormData`` and a log entry's or an adverse event's ``ItemGroupData``, a ``tw:Earlier`` per
earlier audit entry about the element, oldest first, each its ``AuditRecord`` and the ``Action`` it recorded; and
``tw:RemovedItemData`` (``ItemOID``, ``Removed="Yes"``) in an ``ItemGroupData``, the AuditRecord of the change that
removed a value and the value's earlier records (``tw:History``, as an ``ItemData``'s).

``read_element_history`` reads an element's records, each the ``AuditRecord`` as recorded with its ``action``; the
import keeps them in the element's ``import.odm`` audit entry (``earlier``), beside the latest (``recorded``).
``read_removed`` reads the removed values of an item group: each one's latest record goes to the entry's ``items``
and its earlier ones to ``history`` (as a value's), with no value in ``values``: the export reads them back
(``trialwright.exports.odm.audit_index``) as a value whose latest entry removed it, so export -> import -> export stays
byte-identical.

Refused naming the element and the rule, never guessed: a ``tw:Earlier`` without its ``AuditRecord`` or with
anything else, an ``AuditRecord`` without its ``SourceID``, records out of time order (the element's own latest
``AuditRecord`` last), a history on an element without its own ``AuditRecord``, an ``Action`` that is not one of the
element's (``ACTIONS``; read by ``odm_import_history.earlier_action``, as a value's and a query's are), a value on an
element's record, a ``tw:History`` twice or where the export never writes one;
a ``tw:RemovedItemData`` without its AuditRecord, of an item the group does not hold or that has an ``ItemData`` too,
or twice.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trialwright.domain.audit_masking import AUDITED
from trialwright.services.odm_import_common import OdmImportError, in_time_order, odm_tag
from trialwright.services.odm_import_history import earlier_action, read_history

if TYPE_CHECKING:
    from trialwright.services.odm_import_common import Recorded
    from trialwright.services.odm_import_reader import Reader

__all__ = ["ACTIONS", "LATEST", "read_element_history", "read_removed"]

_VALUE_ACTIONS = frozenset({"form.value_entered", "form.value_changed", "form.value_derived", "log.value_entered",
                            "log.value_changed"})  # fmt: skip


def _of(prefix: str) -> frozenset[str]:
    return frozenset(a for a in AUDITED if a.startswith(prefix) and a not in _VALUE_ACTIONS)


#: The actions an element's earlier record may have recorded (``element_history``), by element.
ACTIONS = {
    "participant": frozenset({"participant.enrolled", "participant.withdrawn"}) | _of("consent."),
    "visit": frozenset({"visit.held", "visit.missed"}),
    "form": _of("form."),
    "log entry": _of("log."),
    "adverse event": _of("ae."),
    # a screening never enrolled (``tw:Screening``), or an enrolled one before its enrolment (``tw:Enrolment``)
    "screening": _of("screening.") | _of("consent."),
}
#: The actions an element's or value's latest record may name in its AuditRecord's ``tw:Action``: an element's latest
#: is the latest entry about it of any kind, so a form's or log entry's may be one of its values' (``odm_import``).
LATEST = {
    **ACTIONS,
    "form": ACTIONS["form"] | {a for a in _VALUE_ACTIONS if a.startswith("form.")},
    "log entry": ACTIONS["log entry"] | {a for a in _VALUE_ACTIONS if a.startswith("log.")},
    "form value": frozenset(a for a in _VALUE_ACTIONS if a.startswith("form.")),
    "log entry value": frozenset(a for a in _VALUE_ACTIONS if a.startswith("log.")),
    "adverse event value": frozenset({"ae.reported", "ae.followed_up"}),
    "query": frozenset({"query.raised", "query.answered", "query.closed"}),
}


def read_element_history(
    reader: Reader, elem: ET.Element, latest: Recorded | None, element: str, where: str, *, alone: bool = False
) -> list[Recorded]:
    """The earlier records of ``elem`` (an ``element`` of ``ACTIONS``), oldest first, each its AuditRecord as recorded
    with the ``action`` it recorded (None where the file gives none); empty if it has no ``tw:History``. ``alone``: a
    history with no latest record after it (an enrolled screening's entries before its enrolment, kept in the
    participant's ``import.odm`` entry as ``screening_earlier``: ``odm_import``)."""
    found = elem.findall(reader.ext_tag("History"))
    if not found:
        return []
    where = f"{where}/tw:History"
    if len(found) > 1:
        raise OdmImportError(f"{where}: appears twice")
    if latest is None and not alone:
        raise OdmImportError(f"{where}: a history needs the {element}'s own AuditRecord (the latest), which is missing")
    kept: list[Recorded] = []
    for n, earlier in enumerate(found[0], start=1):
        at = f"{where}/tw:Earlier[{n}]"
        if earlier.tag != reader.ext_tag("Earlier"):
            raise OdmImportError(f"{where}: {earlier.tag} is not a child the export writes (only tw:Earlier)")
        unknown = sorted(set(earlier.attrib) - {"Action"})
        if unknown:
            raise OdmImportError(f"{at}/@{unknown[0]}: a {element}'s earlier record holds no value (the export "
                                 "writes its AuditRecord and Action only)")  # fmt: skip
        action = earlier_action(earlier, ACTIONS[element], f"a {element}", at)
        if [child.tag for child in earlier] != [odm_tag("AuditRecord")]:
            raise OdmImportError(f"{at}/AuditRecord: required, and nothing else (who acted on the {element}, where, "
                                 "when and why)")  # fmt: skip
        recorded = reader.audit_record(earlier, at)
        assert recorded is not None
        kept.append({**recorded, "action": action})
    if not kept:
        raise OdmImportError(f"{where}: holds no tw:Earlier (the export writes a history only when there is one)")
    in_time_order([*kept, latest] if latest is not None else kept, where, len(kept))
    return kept


def no_history(reader: Reader, elem: ET.Element, where: str) -> None:
    """Refuse a ``tw:History`` where the export never writes one (it could not be restored: never dropped)."""
    if elem.find(reader.ext_tag("History")) is not None:
        raise OdmImportError(f"{where}/tw:History: the export writes none here, so the import cannot restore it")


def read_removed(
    reader: Reader, group: ET.Element, g_oid: str, where: str, values: dict[str, Any],
    items: dict[str, Recorded], history: dict[str, list[dict[str, Any]]],
    read: Callable[[Reader, ET.Element, Recorded | None, str, str, frozenset[str]], list[dict[str, Any]]] = (
        read_history
    ),
    actions: frozenset[str] = LATEST["form value"],
) -> int:  # fmt: skip
    """The group's ``tw:RemovedItemData``: each one's latest record into ``items``, its earlier ones into ``history``
    (``read`` reads them: ``read_history``, or ``report_history`` for an adverse event's field; ``actions`` those its
    records may name, the latest in its ``tw:Action`` and the earlier ones in their ``Action``, ``LATEST``); how
    many."""
    assert reader.found is not None
    count = 0
    for elem in group.findall(reader.ext_tag("RemovedItemData")):
        oid = elem.get("ItemOID")
        at = f"{where}/tw:RemovedItemData[@ItemOID={oid}]"
        if oid is None or oid not in reader.found.groups[g_oid]:
            raise OdmImportError(f"{where}/tw:RemovedItemData/@ItemOID: {oid} is not an ItemRef of ItemGroupDef "
                                 f"{g_oid}")  # fmt: skip
        name = reader.expected.fields[oid][1].id
        if name in values:
            raise OdmImportError(f"{at}: the value is in an ItemData too (a removed value has none)")
        if name in items:
            raise OdmImportError(f"{at}: appears twice")
        unknown = sorted(set(elem.attrib) - {"ItemOID", "Removed"})
        if elem.get("Removed") != "Yes" or unknown:
            raise OdmImportError(f'{at}/@{unknown[0] if unknown else "Removed"}: the export writes ItemOID and '
                                 'Removed="Yes" only')  # fmt: skip
        strays = sorted({child.tag for child in elem} - {odm_tag("AuditRecord"), reader.ext_tag("History")})
        if strays:
            raise OdmImportError(f"{at}: {strays[0]} is not a child the export writes (AuditRecord, tw:History)")
        latest = reader.audit_record(elem, at, actions)
        if latest is None:
            raise OdmImportError(f"{at}/AuditRecord: required (who removed the value, where, when and why)")
        items[name] = latest
        earlier = read(reader, elem, latest, oid, at, actions)
        if earlier:
            history[name] = earlier
        count += 1
    return count
