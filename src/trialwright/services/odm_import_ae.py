"""Importing the adverse events of an ODM file (``SE.AE``, see ``trialwright.exports.odm.ae_clinical``) exactly.

``read_adverse_events`` reads one participant's ``SE.AE`` while ``odm_import`` checks the file (the first reading)
and again while it writes (the second); ``write_adverse_event`` writes one event in the import's transaction. What
is restored: the event's row (its AE number, the participant's site, who reported it first and when), every report
(its assessment JSON as a report stores it, the classification stored with it, who reported it, when, under which
protocol version and why), the submissions recorded, and the MedDRA coding as it was (a stale one too), with one
``import.odm`` audit entry per event (``form`` ``adverse_event:<AE number>``, its detail the ``ae_number``) keeping
the event's and its fields' AuditRecords as recorded (``recorded``, ``items``), which the ODM export reads back.

Each report is checked as a report's save checks it (``validate_report``: every field and rule, and that its JSON
is the one such a report stores); the ``ItemData`` must be the latest report's fields; a report made under this
protocol version must carry the classification the protocol gives it; the reports due (``tw:Due``) must be the ones
the reports and the protocol's deadlines give. Whatever the file holds that cannot be restored exactly (an
attribute or element the export never writes, an AuditRecord, Signature or Annotation where it writes none, an AE
number twice, a time not written as the export writes it (UTC, ``isoformat()``: ``Z``, ``+03:30`` or ``.000000``
would come back otherwise), a MedDRA code not in ASCII digits or with a leading zero) is refused naming it, never
dropped. No SAE notification or e-mail is sent again: those were the
source trial's. Adverse events carry no arm; nothing here reads or writes one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trialwright.domain.safety import DeadlineKind, SafetyInputError, classify, validate_report
from trialwright.exports.base import AeReportRecord
from trialwright.exports.odm import Outline
from trialwright.exports.odm.ae_clinical import CODING_ATTRIBUTES
from trialwright.exports.odm.ae_outline import AE_EVENT, AE_FORM, AE_GROUP, AE_OID
from trialwright.exports.odm.values import json_text
from trialwright.services import audit, clock
from trialwright.services.export_ae import due_reports
from trialwright.services.odm_import_common import OdmImportError, Recorded, need_attribute, nothing_else, odm_tag
from trialwright.services.odm_import_elements import LATEST
from trialwright.services.odm_import_forms import read_item
from trialwright.services.odm_import_history import report_history
from trialwright.services.odm_import_records import exact_moment
from trialwright.services.safety.common import _tz
from trialwright.store.coding_tables import ae_codings
from trialwright.store.engine import inserted_id
from trialwright.store.safety_tables import adverse_events, ae_reports, ae_submissions, criteria_text

if TYPE_CHECKING:
    from trialwright.services.odm_import_common import Subject
    from trialwright.services.odm_import_reader import Reader
    from trialwright.services.odm_import_writer import Writer

__all__ = ["ImportedEvent", "read_adverse_events", "without_adverse_events", "write_adverse_event"]

_AE_NUMBER = re.compile(r"AE-[0-9]{4,}")
_FLAGS = {"true": True, "false": False}
_ATTRIBUTES = {
    "AdverseEvent": {"CreatedAt", "CreatedBy"},
    "Report": {"Sequence", "ReportedAt", "ReportedBy", "ProtocolVersion", "Reason", "Serious", "Related", "Expected",
               "Susar"},
    "Assessment": set(),
    "Due": {"Kind", "DueAt"},
    "Submission": {"Kind", "SubmittedAt", "Note", "RecordedAt", "RecordedBy"},
    "Coding": set(CODING_ATTRIBUTES),
}  # fmt: skip
_CODES = ("llt_code", "pt_code", "hlt_code", "hlgt_code", "soc_code")
_MEDDRA_CODE = re.compile(r"[1-9][0-9]*")  # ASCII digits, no leading zero: the code as the export writes it


@dataclass
class ImportedEvent:
    """One adverse event as the file has it, checked: its row, reports, submissions, coding and AuditRecords."""

    ae_number: str
    created_at: str
    created_by: str
    reports: list[dict[str, Any]]  # each: sequence, assessment (JSON), flags, reason, reported_at/by, protocol_version
    submissions: list[dict[str, Any]]
    coding: dict[str, Any] | None
    recorded: Recorded | None = None
    items: dict[str, Recorded] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # field -> earlier (odm_import_history)
    earlier: list[Recorded] = field(default_factory=list)  # the event's own earlier records (odm_import_elements)


def without_adverse_events(expected: Outline) -> Outline:
    """The outline a file written before the export carried adverse events has: the protocol's without ``SE.AE`` and
    its form, item group, items and code lists (all of them absent, or the file is refused naming the first found).
    Such a file holds no adverse event; the import restores none, and its re-export is not the file (it says so)."""
    ae = f".{AE_OID}"
    return dataclasses.replace(
        expected,
        events={k: v for k, v in expected.events.items() if k != AE_EVENT},
        forms={k: v for k, v in expected.forms.items() if k != AE_FORM},
        groups={k: v for k, v in expected.groups.items() if k != AE_GROUP},
        items={k: v for k, v in expected.items.items() if not k.startswith(f"IT{ae}.")},
        codelists={k: v for k, v in expected.codelists.items() if not k.startswith(f"CL{ae}.")},
    )


def _known(elem: ET.Element, local: str, where: str) -> None:
    """Only the attributes the export writes: another could not be restored, so it is refused."""
    odd = sorted(set(elem.attrib) - _ATTRIBUTES[local])
    if odd:
        raise OdmImportError(f"{where}/@{odd[0]}: the export writes no such attribute on tw:{local}; the import cannot "
                             "restore it (never dropped: refused)")  # fmt: skip


def read_adverse_events(reader: Reader, event: ET.Element, parent: str, site: str) -> list[ImportedEvent]:
    """The participant's adverse events (``SE.AE``), each checked (see the module docstring)."""
    assert reader.found is not None
    where = f"{parent}/StudyEventData[@StudyEventOID={AE_EVENT}]"
    if AE_EVENT not in reader.found.events:
        raise OdmImportError(f"{parent}/StudyEventData/@StudyEventOID: {AE_EVENT} is not defined in the metadata")
    nothing_else(event, where)
    forms = event.findall(odm_tag("FormData"))
    if len(forms) != 1 or forms[0].get("FormOID") != AE_FORM or forms[0].get("FormRepeatKey") is not None:
        raise OdmImportError(f"{where}/FormData: holds one FormData, FormOID {AE_FORM}, without FormRepeatKey")
    form = forms[0]
    f_where = f"{where}/FormData[@FormOID={AE_FORM}]"
    nothing_else(form, f_where)
    out: list[ImportedEvent] = []
    for group in form.findall(odm_tag("ItemGroupData")):
        out.append(_event(reader, group, f_where, site))
    return out


def _event(reader: Reader, group: ET.Element, parent: str, site: str) -> ImportedEvent:
    if group.get("ItemGroupOID") != AE_GROUP:
        raise OdmImportError(f"{parent}/ItemGroupData/@ItemGroupOID: {group.get('ItemGroupOID')} is not {AE_GROUP}")
    number = need_attribute(group, "ItemGroupRepeatKey", f"{parent}/ItemGroupData[@ItemGroupOID={AE_GROUP}]")
    if not _AE_NUMBER.fullmatch(number):
        raise OdmImportError(f"{parent}/ItemGroupData/@ItemGroupRepeatKey: {number!r} is not an AE number (AE-0001)")
    if number in reader.ae_numbers:
        raise OdmImportError(f"{parent}/ItemGroupData/@ItemGroupRepeatKey: {number} appears twice in the file")
    reader.ae_numbers.add(number)
    where = f"{parent}/ItemGroupData[@ItemGroupRepeatKey={number}]"
    known = {odm_tag("AuditRecord"), odm_tag("ItemData"), reader.ext_tag("AdverseEvent"), reader.ext_tag("History"),
             reader.ext_tag("RemovedItemData")}  # fmt: skip
    for child in group:  # an AuditRecord, the items, tw:AdverseEvent, its history, the fields removed: nothing else
        if child.tag not in known:
            raise OdmImportError(f"{where}/{child.tag}: the import does not restore it here (never dropped: refused)")
    ae = group.find(reader.ext_tag("AdverseEvent"))
    if ae is None:
        raise OdmImportError(f"{where}/tw:AdverseEvent: required (the event's reports)")
    t_where = f"{where}/tw:AdverseEvent"
    _known(ae, "AdverseEvent", t_where)
    exact_moment(ae.get("CreatedAt"), f"{t_where}/@CreatedAt")
    order = ["Report", "Due", "Submission", "Coding"]
    seen: list[int] = []
    for child in ae:  # only the elements and attributes the export writes, in its order
        local = child.tag.removeprefix(f"{{{reader.extension}}}")
        if local not in order:
            raise OdmImportError(f"{t_where}/{child.tag}: the export writes no such element; the import cannot "
                                 "restore it (never dropped: refused)")  # fmt: skip
        seen.append(order.index(local))
        _known(child, local, f"{t_where}/tw:{local}[{seen.count(order.index(local))}]")
    if seen != sorted(seen):
        raise OdmImportError(f"{t_where}: its elements come in the order tw:Report, tw:Due, tw:Submission, tw:Coding")
    reports = [_report(reader, r, n, f"{t_where}/tw:Report[{n + 1}]", site)
               for n, r in enumerate(ae.findall(reader.ext_tag("Report")))]  # fmt: skip
    if not reports:
        raise OdmImportError(f"{t_where}/tw:Report: an event has its initial report")
    items: dict[str, Recorded] = {}
    history: dict[str, list[dict[str, Any]]] = {}
    values: dict[str, Any] = {}
    for item in group.findall(odm_tag("ItemData")):
        name, stored = read_item(reader, item, AE_GROUP, where)
        if name in values:
            raise OdmImportError(f"{where}/ItemData: {name} appears twice")
        if set(stored) != {"value", "status"} or stored["status"] != "value":  # a report's field is a value
            raise OdmImportError(f"{where}/ItemData[@ItemOID={item.get('ItemOID')}]/tw:StoredValue: a report's field "
                                 "holds a value and nothing else (status, unit, reason or limit cannot be restored)")
        values[name] = stored.get("value")
        item_where = f"{where}/ItemData[@ItemOID={item.get('ItemOID')}]"
        recorded = reader.audit_record(item, item_where, LATEST["adverse event value"])
        if recorded is not None:
            items[name] = recorded
        earlier = report_history(reader, item, recorded, str(item.get("ItemOID")), item_where,
                                 LATEST["adverse event value"])  # fmt: skip
        if earlier:
            history[name] = earlier
    from trialwright.services.odm_import_elements import read_element_history, read_removed

    read_removed(reader, group, AE_GROUP, where, values, items, history, report_history, LATEST["adverse event value"])
    latest = {k: v for k, v in reports[-1]["assessment"].items() if v is not None}
    for name in sorted(set(values) | set(latest)):
        if name not in values or name not in latest or json_text(values[name]) != json_text(latest[name]):
            raise OdmImportError(
                f"{where}/ItemData[@ItemOID=IT.AE.{name}]: {values.get(name)!r} is not the latest report's "
                f"{name} ({latest.get(name)!r}); the items are the event as its latest report states it"
            )
    submissions = _submissions(ae, reader, t_where)
    _due(ae, reader, reports, submissions, site, t_where)
    recorded = reader.audit_record(group, where, LATEST["adverse event"])
    own = read_element_history(reader, group, recorded, "adverse event", where)
    return ImportedEvent(number, ae.attrib["CreatedAt"], need_attribute(ae, "CreatedBy", t_where), reports, submissions,
                         _coding(ae, reader, t_where), recorded, items, history, own)  # fmt: skip


def _report(reader: Reader, elem: ET.Element, n: int, where: str, site: str) -> dict[str, Any]:
    protocol = reader.protocol
    sequence = need_attribute(elem, "Sequence", where)
    if sequence != str(n):
        raise OdmImportError(f"{where}/@Sequence: {sequence!r}; the reports are 0 (the initial one), 1, 2, ... in "
                             "order")  # fmt: skip
    for name in ("ReportedAt", "ReportedBy", "ProtocolVersion"):
        need_attribute(elem, name, where)
    exact_moment(elem.get("ReportedAt"), f"{where}/@ReportedAt")
    flags = {}
    for name in ("Serious", "Related", "Expected", "Susar"):
        text = need_attribute(elem, name, where)
        if text not in _FLAGS:
            raise OdmImportError(f"{where}/@{name}: {text!r} is not true or false")
        flags[name.lower()] = _FLAGS[text]
    if [child.tag for child in elem] != [reader.ext_tag("Assessment")]:
        raise OdmImportError(f"{where}: holds one tw:Assessment and nothing else")
    held = elem.find(reader.ext_tag("Assessment"))
    try:
        data = json.loads(held.text or "") if held is not None else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise OdmImportError(f"{where}/tw:Assessment: required, a JSON object (the report's assessment)")
    try:
        checked = validate_report(data, protocol.safety, _tz(protocol, site), clock.now())
    except SafetyInputError as exc:
        raise OdmImportError(f"{where}/tw:Assessment: the report breaks the protocol's rules: {exc}") from None
    if json_text(checked.as_json()) != json_text(data):
        raise OdmImportError(f"{where}/tw:Assessment: is not the assessment a report stores (fields and their form "
                             f"as trialwright writes them: {json_text(checked.as_json())})")  # fmt: skip
    if elem.get("ProtocolVersion") == protocol.version.number:
        c = classify(checked, protocol.safety)
        given = {"serious": c.serious, "related": c.related, "expected": c.expected, "susar": c.susar}
        wrong = [k for k in given if given[k] != flags[k]]
        if wrong:
            raise OdmImportError(f"{where}/@{wrong[0].capitalize()}: {flags[wrong[0]]} is not what protocol version "
                                 f"{protocol.version.number} makes of the assessment ({given[wrong[0]]})")  # fmt: skip
    return {"sequence": n, "assessment": data, **flags, "reason": elem.get("Reason"),
            "reported_at": elem.attrib["ReportedAt"], "reported_by": elem.attrib["ReportedBy"],
            "protocol_version": elem.attrib["ProtocolVersion"]}  # fmt: skip


def _submissions(ae: ET.Element, reader: Reader, parent: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    kinds = [k.value for k in DeadlineKind]
    for elem in ae.findall(reader.ext_tag("Submission")):
        where = f"{parent}/tw:Submission"
        kind = need_attribute(elem, "Kind", where)
        if kind not in kinds:
            raise OdmImportError(f"{where}/@Kind: {kind!r} is not one of {', '.join(kinds)}")
        if any(s["kind"] == kind for s in out):
            raise OdmImportError(f"{where}/@Kind: {kind} appears twice; a report is submitted once")
        for name in ("SubmittedAt", "RecordedAt"):
            exact_moment(elem.get(name), f"{where}/@{name}")
        out.append({"kind": kind, "submitted_at": elem.attrib["SubmittedAt"], "note": elem.get("Note"),
                    "recorded_at": elem.attrib["RecordedAt"], "recorded_by": need_attribute(elem, "RecordedBy", where)})
    return out


def _due(ae: ET.Element, reader: Reader, reports: list[dict[str, Any]], submissions: list[dict[str, Any]],
         site: str, parent: str) -> None:  # fmt: skip
    """``tw:Due`` must be the reports due that the reports and the protocol's deadlines give, and a submission one of
    them."""
    records = [AeReportRecord(r["sequence"], r["assessment"], r["serious"], r["related"], r["expected"], r["susar"],
                              r["reason"], dt.datetime.fromisoformat(r["reported_at"]), r["reported_by"],
                              r["protocol_version"]) for r in reports]  # fmt: skip
    sent = {DeadlineKind(s["kind"]): dt.datetime.fromisoformat(s["submitted_at"]) for s in submissions}
    expected = [(kind, due.isoformat()) for kind, due in due_reports(reader.protocol, site, records, sent)]
    found = [(need_attribute(d, "Kind", f"{parent}/tw:Due"), need_attribute(d, "DueAt", f"{parent}/tw:Due"))
             for d in ae.findall(reader.ext_tag("Due"))]  # fmt: skip
    if found != expected:
        raise OdmImportError(f"{parent}/tw:Due: {found} are not the reports due that the reports and the protocol's "
                             f"deadlines give ({expected})")  # fmt: skip
    for s in submissions:
        if s["kind"] not in {k for k, _ in expected}:
            raise OdmImportError(f"{parent}/tw:Submission/@Kind: no {s['kind']} report is due for this event")


def _coding(ae: ET.Element, reader: Reader, parent: str) -> dict[str, Any] | None:
    found = ae.findall(reader.ext_tag("Coding"))
    if not found:
        return None
    where = f"{parent}/tw:Coding"
    if len(found) > 1:
        raise OdmImportError(f"{where}: an event has one coding")
    elem = found[0]
    coding: dict[str, Any] = {}
    for name, column in CODING_ATTRIBUTES.items():
        text = elem.get(name)
        if text is None or (name != "Verbatim" and not text.strip()):
            raise OdmImportError(f"{where}/@{name}: required")
        if column in _CODES and not _MEDDRA_CODE.fullmatch(text):
            raise OdmImportError(f"{where}/@{name}: {text!r} is not a MedDRA code as the export writes one (ASCII "
                                 "digits, no leading zero): it could not be given back exactly, so it is "
                                 "refused")  # fmt: skip
        coding[column] = int(text) if column in _CODES else text
    if coding["dictionary"] != "MedDRA":
        raise OdmImportError(f"{where}/@Dictionary: {coding['dictionary']!r}; adverse events are coded to MedDRA")
    exact_moment(coding["coded_at"], f"{where}/@CodedAt")
    return coding


def write_adverse_event(writer: Writer, s: Subject, e: ImportedEvent) -> None:
    """One event as the file has it (its row, reports, submissions, coding) and its import entry."""
    session = writer.session
    event_id = inserted_id(
        session,
        adverse_events.insert().values(ae_number=e.ae_number, number=int(e.ae_number.removeprefix("AE-")),
                                       participant_id=s.participant_id, site=s.site,
                                       created_at=dt.datetime.fromisoformat(e.created_at), created_by=e.created_by),
    )  # fmt: skip
    for r in e.reports:
        a = r["assessment"]
        session.execute(
            ae_reports.insert().values(
                event_id=event_id, sequence=r["sequence"], aware_at=dt.datetime.fromisoformat(a["aware_at"]),
                assessment=json.dumps(a, sort_keys=True, ensure_ascii=False),  # as services.safety stores it
                serious=r["serious"], related=r["related"], expected=r["expected"], susar=r["susar"],
                reason=r["reason"], reported_at=dt.datetime.fromisoformat(r["reported_at"]),
                reported_by=r["reported_by"], protocol_version=r["protocol_version"], grade=a["grade"],
                causality=a["causality"], expected_event=a.get("expected_event"),
                criteria=criteria_text(a["seriousness_criteria"]),
            )
        )  # fmt: skip
    for sub in e.submissions:
        session.execute(
            ae_submissions.insert().values(
                event_id=event_id, kind=sub["kind"], submitted_at=dt.datetime.fromisoformat(sub["submitted_at"]),
                note=sub["note"], recorded_at=dt.datetime.fromisoformat(sub["recorded_at"]),
                recorded_by=sub["recorded_by"],
            )
        )  # fmt: skip
    if e.coding is not None:
        session.execute(ae_codings.insert().values(
            event_id=event_id, **{k: v for k, v in e.coding.items() if k != "coded_at"},
            coded_at=dt.datetime.fromisoformat(e.coding["coded_at"]),
        ))  # fmt: skip
    actor = writer.actor
    audit.record(
        session, actor=actor.username, role=actor.role.value, site=s.site, participant=s.participant_id,
        form=f"adverse_event:{e.ae_number}", action="import.odm",
        new_value={"created": {"at": e.created_at, "by": e.created_by}, "reports": e.reports,
                   "submissions": e.submissions, "coding": e.coding, "recorded": e.recorded, "items": e.items,
                   **({"history": e.history} if e.history else {}), **({"earlier": e.earlier} if e.earlier else {})},
        detail={**writer.detail, "ae_number": e.ae_number},
    )  # fmt: skip
    writer.counts["adverse_events"] += 1
    writer.counts["records"] += (e.recorded is not None) + len(e.items)
    writer.counts["earlier"] += sum(len(records) for records in e.history.values()) + len(e.earlier)
