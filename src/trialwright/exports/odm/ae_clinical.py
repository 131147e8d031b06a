"""Adverse events in the ODM file's ``ClinicalData``: each participant's in the study event ``SE.AE`` (``ae_outline``).

One ``FormData`` ``F.AE`` holds an ``ItemGroupData`` ``IG.AE`` per event, ``ItemGroupRepeatKey`` its AE number, with
the AuditRecord of the latest audit entry about the event (``ae.*``, or the import that restored it), an ``ItemData``
per field of its latest report (the event as it stands now, each with the AuditRecord of the latest report that set
it), and ``tw:AdverseEvent``: who reported it first and when, every report (``tw:Report``: sequence, who reported it
and when, under which protocol version, the reason for a follow-up, the classification stored with it, and the whole
assessment as JSON in ``tw:Assessment``), the reports due (``tw:Due``: kind and due time), the submissions recorded
(``tw:Submission``) and the MedDRA coding (``tw:Coding``: release, verbatim, the LLT and its primary path, coder and
time). Events come by participant (``ExportSource.adverse_events``), read first and held by participant like log
entries (a few each). Adverse events carry no arm, and nothing here reads one.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

from trialwright.exports.base import AdverseEventHistory, ParticipantRecord
from trialwright.exports.odm.ae_outline import AE_EVENT, AE_FORM, AE_GROUP, AE_OID, ae_fields
from trialwright.exports.odm.audit_index import Audited, Indexed
from trialwright.exports.odm.element_history import removed, write_element_history, write_removed
from trialwright.exports.odm.outline import item_oid
from trialwright.exports.odm.values import json_text

if TYPE_CHECKING:
    from trialwright.exports.odm.clinical import ClinicalWriter

__all__ = ["CODING_ATTRIBUTES", "AdverseEventWriter"]

#: ``tw:Coding``'s attributes and the ``ae_codings`` column each holds.
CODING_ATTRIBUTES = {
    "Dictionary": "dictionary", "Version": "version", "Verbatim": "verbatim", "LltCode": "llt_code",
    "LltName": "llt_name", "PtCode": "pt_code", "PtName": "pt_name", "HltCode": "hlt_code", "HltName": "hlt_name",
    "HlgtCode": "hlgt_code", "HlgtName": "hlgt_name", "SocCode": "soc_code", "SocName": "soc_name",
    "CodedAt": "coded_at", "CodedBy": "coded_by",
}  # fmt: skip


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.datetime | dt.date) else str(value)


def _as_stored(a: Audited) -> Audited:
    """An earlier report's entry with the value it set as a form's stored value (a report's field is a value and
    nothing else), or none when the report cleared it (``Removed``)."""
    value = json.loads(a.extra) if a.extra is not None else None
    return a._replace(extra=None if value is None else json_text({"value": value, "status": "value"}))


def _flag(value: bool) -> str:
    return "true" if value else "false"


class AdverseEventWriter:
    """The adverse events of one export, held by participant and written into each participant's ``SubjectData``."""

    def __init__(self, clinical: ClinicalWriter) -> None:
        self.clinical = clinical
        self.fields = ae_fields(clinical.protocol)
        clinical.oids |= {(AE_OID, f.id): item_oid(AE_OID, f.id) for f in self.fields}
        self.held: dict[str, list[AdverseEventHistory]] = {}

    def read(self) -> None:
        """Read every event (before the participants' stream opens: one reader at a time on SQLite)."""
        for e in self.clinical.source.adverse_events():
            self.held.setdefault(e.participant_id, []).append(e)

    def done(self) -> None:
        """Every event held was written: one of a participant the file does not hold stops the export."""
        if self.held:
            pid, events = next(iter(self.held.items()))
            raise ValueError(f"adverse events: {events[0].ae_number} is of {pid}, who has no participant record")

    def write(self, person: ParticipantRecord, audited: Indexed) -> None:
        events = self.held.pop(person.participant_id, [])
        if not events:
            return
        xml = self.clinical.xml
        with xml.element("StudyEventData", {"StudyEventOID": AE_EVENT}), xml.element("FormData", {"FormOID": AE_FORM}):
            for e in events:
                if e.site != person.site:
                    raise ValueError(f"adverse event {e.ae_number}: site {e.site} is not {person.participant_id}'s "
                                     f"site {person.site}")  # fmt: skip
                with xml.element("ItemGroupData", {"ItemGroupOID": AE_GROUP, "ItemGroupRepeatKey": e.ae_number}):
                    self.clinical._audit_record(audited.events.get(e.ae_number), e.site)
                    latest = e.reports[-1].assessment
                    strays = sorted(set(latest) - {f.id for f in self.fields})
                    if strays:
                        raise ValueError(f"adverse event {e.ae_number}: report fields {', '.join(strays)} have no "
                                         "item")  # fmt: skip
                    gone = []
                    for f in self.fields:
                        key = (e.ae_number, f.id)
                        earlier = [_as_stored(a) for a in audited.event_history.get(key, ())]
                        if latest.get(f.id) is not None:
                            stored = {"value": latest[f.id], "status": "value"}
                            self.clinical._item(AE_OID, e.site, f, stored, audited.event_items.get(key), earlier)
                        elif removed(audited.event_items.get(key)):
                            gone.append((f, audited.event_items[key], earlier))
                    self._extension(e)
                    record = self.clinical._audit_record
                    write_element_history(xml, audited.event_records.get(e.ae_number, ()), e.site, record)
                    for f, last, earlier in gone:  # a field its latest report left out (``element_history``)
                        oid = self.clinical.oids[(AE_OID, f.id)]
                        write_removed(xml, oid, f, last, earlier, self.clinical.codec, e.site, record)

    def _extension(self, e: AdverseEventHistory) -> None:
        xml = self.clinical.xml
        with xml.element("tw:AdverseEvent", {"CreatedAt": e.created_at.isoformat(), "CreatedBy": e.created_by}):
            for r in e.reports:
                attrs = {
                    "Sequence": str(r.sequence), "ReportedAt": r.reported_at.isoformat(), "ReportedBy": r.reported_by,
                    "ProtocolVersion": r.protocol_version, "Reason": r.reason, "Serious": _flag(r.serious),
                    "Related": _flag(r.related), "Expected": _flag(r.expected), "Susar": _flag(r.susar),
                }  # fmt: skip
                with xml.element("tw:Report", attrs):
                    xml.leaf("tw:Assessment", text=json_text(dict(r.assessment)))
            for kind, due_at in e.due:
                xml.leaf("tw:Due", {"Kind": kind, "DueAt": due_at.isoformat()})
            for s in e.submissions:
                xml.leaf("tw:Submission", {"Kind": s.kind, "SubmittedAt": s.submitted_at.isoformat(), "Note": s.note,
                                           "RecordedAt": s.recorded_at.isoformat(), "RecordedBy": s.recorded_by})
            if e.coding is not None:
                xml.leaf("tw:Coding", {name: _text(e.coding[column]) for name, column in CODING_ATTRIBUTES.items()})
