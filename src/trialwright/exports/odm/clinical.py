"""The ODM file's ``ClinicalData``, written straight from the source's rows as they stream.

Participants and form records come in participant order; each participant's form records and indexed audit
entries (``AuditIndex.about``) are held while that participant is written, then dropped, so memory does not grow
with the trial's forms. Log entries (``trialwright.protocol.logs``) come by log, not by participant, so they are
read first and held by participant (a few small entries each): each participant's are written in the study event
``SE.LOGS``, a ``FormData`` per log with one repeating ``ItemGroupData`` per entry (``ItemGroupRepeatKey`` its
sequence), removed entries included with their reason, with who added it, its verification, signature
(also as ODM's ``Signature``) and coding (``tw:LogEntry``). Adverse events, also by participant, are written after
the logs in the study event ``SE.AE`` (``ae_clinical``).
Data queries come by participant, as the forms do, and are held while their participant is written: each on the
``SubjectData``, form ``ItemGroupData`` or log entry ``ItemGroupData`` it concerns (``queries``).
The elements written for every form and value (``AuditRecord``, ``ItemData``) are put together
as text directly rather than through ``XmlStream.element``: the same bytes, without a context manager and a
mapping per element."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trialwright.exports.base import ExportSource, FormRecord, LogRecord, ParticipantRecord, Progress, QueryRecord
from trialwright.exports.odm.ae_clinical import AdverseEventWriter
from trialwright.exports.odm.audit_index import Audited, Indexed
from trialwright.exports.odm.consents import ConsentsHeld, assent_attributes, in_force_attributes
from trialwright.exports.odm.element_history import removed, write_element_history, write_removed
from trialwright.exports.odm.history import write_history
from trialwright.exports.odm.indexed import Audits
from trialwright.exports.odm.locks import HeldLocks
from trialwright.exports.odm.outline import (
    LOGS_EVENT,
    SIGNATURE_DEF,
    UNSCHEDULED,
    item_oid,
    log_oid,
    mdv_oid,
    unit_oids,
    user_oid,
)
from trialwright.exports.odm.queries import QueriesHeld, write_queries
from trialwright.exports.odm.values import ValueCodec, json_text
from trialwright.exports.odm.xmlstream import XmlStream, quoted, safe_text
from trialwright.protocol import FormField

__all__ = ["ClinicalWriter"]

_EDIT_POINTS = {"monitor": "Monitoring", "data_manager": "DataManagement"}
#: How many AuditRecord openings and endings are remembered (forgotten all at once when full).
_REMEMBERED = 1024


def _iso(moment: dt.datetime | dt.date | None) -> str | None:
    return None if moment is None else moment.isoformat()


@dataclass
class _Visit:
    visit_id: str
    date: dt.date | None = None
    missed: str | None = None
    label: str | None = None
    audited: Audited | None = None


class ClinicalWriter:
    """``ClinicalData`` for one export: every participant's visits, forms and values with their audit records."""

    def __init__(
        self, source: ExportSource, index: Audits, xml: XmlStream, progress: Progress | None, codec: ValueCodec,
        locks: HeldLocks | None = None,
    ) -> None:
        self.source, self.index, self.xml, self.progress = source, index, xml, progress
        self.protocol = source.protocol
        self.units = unit_oids(source.protocol)
        self.order = {v.id: i for i, v in enumerate(self.protocol.visits)}
        self.sites = set(self.protocol.site_codes)
        self.fields = {form.id: (form, {f.id for f in form.fields}) for form in self.protocol.forms}
        self.oids = {(form.id, f.id): item_oid(form.id, f.id) for form in self.protocol.forms for f in form.fields}
        self.oids |= {(log.id, f.id): item_oid(log_oid(log.id), f.id) for log in self.protocol.logs for f in log.fields}
        self._starts = {  # each form's FormData and ItemGroupData start tags (``_form``)
            form.id: (
                f"<FormData FormOID={quoted(f'F.{form.id}')}>\n",
                f"<ItemGroupData ItemGroupOID={quoted(f'IG.{form.id}')}>\n",
            )
            for form in self.protocol.forms
        }
        self.logs = {log.id: log for log in self.protocol.logs}
        self.entries: dict[str, list[LogRecord]] = {}  # participant -> log entries, by log and sequence
        self.codec = codec
        self.written = 0
        self.queries = QueriesHeld("", ())  # the participant being written's queries
        self.adverse_events = AdverseEventWriter(self)  # SE.AE (``ae_clinical``)
        self.consents = ConsentsHeld(())  # every consent record, by screening (``consents``)
        self.locks = locks or HeldLocks(())  # the trial lock and soft locks (``locks``)
        self._openings: dict[tuple[int, str | None, str, str | None], str] = {}  # see ``_audit_text``
        self._endings: dict[tuple[int, str | None], str] = {}
        self._render = self._item_text  # bound once: handed to the codec for every value

    def write(self) -> None:
        src = self.source
        for entry in src.logs():  # by log, participant, sequence: held by participant (see the module's note)
            if entry.log_id not in self.logs:
                raise ValueError(f"logs: {entry.participant_id} has entries of log {entry.log_id!r}, not a log of "
                                 f"protocol version {src.protocol_version}")  # fmt: skip
            self.entries.setdefault(entry.participant_id, []).append(entry)
        self.adverse_events.read()
        self.consents = ConsentsHeld(src.consents())
        participants = iter(src.participants())
        first = next(participants, None)  # read before the form stream opens (one reader at a time on SQLite)
        forms = iter(src.forms())
        pending = next(forms, None)
        queries = iter(src.queries())
        asked = next(queries, None)
        attrs = {"StudyOID": src.trial_id, "MetaDataVersionOID": mdv_oid(src.protocol_version)}
        with self.xml.element("ClinicalData", attrs):
            for person in itertools.chain([first] if first else [], participants):
                records: list[FormRecord] = []
                while pending is not None and pending.participant_id == person.participant_id:
                    records.append(pending)
                    pending = next(forms, None)
                held: list[QueryRecord] = []
                while asked is not None and asked.participant_id == person.participant_id:
                    held.append(asked)
                    asked = next(queries, None)
                self.queries = QueriesHeld(person.participant_id, held)
                self._subject(person, records)
                self.queries.done()
            self.index.done()
            self.consents.write_screenings(self.xml, src.screenings_never_enrolled(), self.index, self._audit_record)
            self._dsmb_decisions()
            self.locks.clinical(self.xml, self.protocol.site_codes[0], self._audit_record)
        if pending is not None:
            raise ValueError(f"participant: {pending.participant_id} has form records but no participant record")
        if asked is not None:
            raise ValueError(f"participant: {asked.participant_id} has queries but no participant record")
        self.adverse_events.done()

    def _audit_record(self, a: Audited | None, site: str) -> None:
        if a is not None:
            self.xml.write(self._audit_text(a, site, self.xml.depth))

    def _audit_text(self, a: Audited, site: str, depth: int) -> str:
        """The ``AuditRecord`` of ``a`` at ``depth``. Its opening (EditPoint, user, location) and its end
        (the action, ``tw:Action``, the last child: ODM's AuditRecordElementExtension) repeat from record to record,
        so each is put together once per depth and remembered (a few: users, sites, actions)."""
        where = a.site if a.site in self.sites else site
        opening = self._openings.get((depth, a.role, a.actor, where))
        if opening is None:
            outer, inner = "  " * depth, "  " * (depth + 1)
            point = _EDIT_POINTS.get(a.role or "")
            opening = (
                f"{outer}<AuditRecord{'' if point is None else ' EditPoint=' + quoted(point)}>\n"
                f"{inner}<UserRef UserOID={quoted(user_oid(a.actor))}/>\n"
                f"{inner}<LocationRef LocationOID={quoted(where)}/>\n"
                f"{inner}<DateTimeStamp>"
            )
            if len(self._openings) >= _REMEMBERED:
                self._openings.clear()
            self._openings[(depth, a.role, a.actor, where)] = opening
        # An earlier record's writer hands it without an action (its action is on its ``tw:Earlier``); an imported
        # record whose file did not name it has none.
        ending = self._endings.get((depth, a.action))
        if ending is None:
            outer, inner = "  " * depth, "  " * (depth + 1)
            action = f"{inner}<tw:Action>{safe_text(a.action)}</tw:Action>\n" if a.action else ""
            ending = f"{action}{outer}</AuditRecord>\n"
            if len(self._endings) >= _REMEMBERED:
                self._endings.clear()
            self._endings[(depth, a.action)] = ending
        inner = "  " * (depth + 1)
        reason = f"{inner}<ReasonForChange>{safe_text(a.reason)}</ReasonForChange>\n" if a.reason else ""
        return (
            f"{opening}{safe_text(a.at)}</DateTimeStamp>\n{reason}"
            f"{inner}<SourceID>{safe_text(f'audit:{a.seq}:{a.hash}')}</SourceID>\n{ending}"
        )

    def _subject(self, person: ParticipantRecord, records: list[FormRecord]) -> None:
        xml, pid = self.xml, person.participant_id
        audited = self.index.about(pid)
        visits: dict[str, _Visit] = {}
        for vid, a in audited.visits.items():
            held = json.loads(a.extra or "{}")
            missed = a.reason if held.get("missed") else None
            day = dt.date.fromisoformat(held["date"]) if held.get("date") and not missed else None
            visits[vid] = _Visit(vid, day, missed, held.get("label"), a)
        by_visit: dict[str, list[FormRecord]] = {}
        for r in records:
            v = visits.setdefault(r.visit_id, _Visit(r.visit_id))
            v.date, v.missed = r.visit_date, r.visit_missed
            by_visit.setdefault(r.visit_id, []).append(r)
        with xml.element("SubjectData", {"SubjectKey": pid}):
            self._audit_record(audited.subject, person.site)
            xml.leaf("SiteRef", {"LocationOID": person.site})
            for v in sorted(visits.values(), key=self._visit_order):
                self._visit(person, v, by_visit.get(v.visit_id, []), audited)
            self._logs(person, self.entries.pop(pid, []), audited)
            self.adverse_events.write(person, audited)
            self._enrolment(person, audited.subject)
            write_element_history(xml, audited.subject_history, person.site, self._audit_record)
            self.locks.subject(xml, pid, person.site, self._audit_record)
            write_queries(xml, self.queries.on_subject(), audited, person.site, None, self._audit_record)

    def _visit_order(self, v: _Visit) -> tuple[int, int, str]:
        number = v.visit_id.removeprefix("unscheduled-")
        return self.order.get(v.visit_id, len(self.order)), int(number) if number.isdigit() else 0, v.visit_id

    def _visit(self, person: ParticipantRecord, v: _Visit, records: list[FormRecord], audited: Indexed) -> None:
        xml = self.xml
        if v.visit_id in self.order:
            attrs = {"StudyEventOID": f"SE.{v.visit_id}"}
        elif v.visit_id.startswith("unscheduled-") and v.visit_id.removeprefix("unscheduled-").isdigit():
            attrs = {"StudyEventOID": UNSCHEDULED, "StudyEventRepeatKey": v.visit_id.removeprefix("unscheduled-")}
        else:
            raise ValueError(f"visit: {person.participant_id} has visit {v.visit_id!r}, not a visit of the protocol")
        with xml.element("StudyEventData", attrs):
            self._audit_record(v.audited, person.site)
            for r in records:
                self._form(r, audited)
            xml.leaf("tw:Visit", {"Date": _iso(v.date), "MissedReason": v.missed, "Label": v.label})
            write_element_history(xml, audited.visit_history.get(v.visit_id, ()), person.site, self._audit_record)

    def _form(self, r: FormRecord, audited: Indexed) -> None:
        xml = self.xml
        if r.form_id not in self.fields:
            self.protocol.form(r.form_id)  # KeyError naming the form
        form, known = self.fields[r.form_id]
        key = (r.visit_id, r.form_id)
        visit_id, form_id, values, site = r.visit_id, r.form_id, r.values, r.site
        # FormData and ItemGroupData opened and ended by hand (the same text as ``XmlStream.element``, made once per
        # form of the protocol): two of them per form record.
        form_start, group_start = self._starts[form_id]
        indent = "  " * xml.depth
        xml.write(f"{indent}{form_start}")
        xml.depth += 1
        self._audit_record(audited.forms.get(key), site)
        if r.signed_by and r.signed_at and r.signed_by in self.index.users:
            self._signature(f"SIG.{r.participant_id}.{visit_id}.{form_id}", r.signed_by, site, r.signed_at)
        strays = () if known.issuperset(values) else sorted(set(values) - known)
        if strays:
            raise ValueError(f"{r.participant_id} {visit_id} {form_id}: fields {', '.join(strays)} are not "
                             f"in protocol version {self.source.protocol_version}")  # fmt: skip
        xml.write(f"{indent}  {group_start}")
        xml.depth += 1
        items, history = audited.items, audited.history
        for f in form.fields:
            if f.id in values:
                item = (visit_id, form_id, f.id)
                self._item(form_id, site, f, values[f.id], items.get(item), history.get(item, ()))
        if len(values) < len(known):  # no stray field (above): a form with every value has none removed
            self._removed(form_id, site, form.fields, values, items, history, key)
        asked = self.queries.on_form(visit_id, form_id)
        if asked:
            write_queries(xml, asked, audited, site, self._field_oid(form_id), self._audit_record)
        xml.end("ItemGroupData")
        locked = audited.locks.get(key) if r.state == "locked" else None
        xml.leaf("tw:Form", {
            "State": r.state, "Version": str(r.version), "UpdatedAt": r.updated_at.isoformat(),
            "UpdatedBy": r.updated_by, "VerifiedBy": r.verified_by, "VerifiedAt": _iso(r.verified_at),
            "SignedBy": r.signed_by, "SignedAt": _iso(r.signed_at),
            "LockedBy": locked.actor if locked else None, "LockedAt": locked.at if locked else None,
            "StateBeforeLock": locked.extra if locked else None,
        })  # fmt: skip
        write_element_history(xml, audited.form_history.get(key, ()), r.site, self._audit_record)
        xml.end("FormData")
        self.written += 1
        if self.progress is not None:
            self.progress(self.written)

    def _signature(self, sid: str, by: str, site: str, at: dt.datetime) -> None:
        with self.xml.element("Signature", {"ID": sid}):
            self.xml.leaf("UserRef", {"UserOID": user_oid(by)})
            self.xml.leaf("LocationRef", {"LocationOID": site})
            self.xml.leaf("SignatureRef", {"SignatureOID": SIGNATURE_DEF})
            self.xml.leaf("DateTimeStamp", text=at.isoformat())

    def _log_entry(self, e: LogRecord) -> None:
        """``tw:LogEntry``: the entry's state, version, who added and last changed it and when, why it was removed,
        its source data verification and signature, and its coding (``tw:Coding``, the path as ``tw:Level``)."""
        attrs = {
            "State": e.state, "Version": str(e.version), "UpdatedAt": e.updated_at.isoformat(),
            "UpdatedBy": e.updated_by, "RemovedReason": e.removed_reason, "CreatedAt": _iso(e.created_at),
            "CreatedBy": e.created_by, "ProtocolVersion": e.protocol_version, "VerifiedBy": e.verified_by,
            "VerifiedAt": _iso(e.verified_at), "SignedBy": e.signed_by, "SignedAt": _iso(e.signed_at),
        }  # fmt: skip
        c = e.coding
        if c is None:
            self.xml.leaf("tw:LogEntry", attrs)
            return
        where = f"{e.participant_id} log {e.log_id} entry {e.sequence}: coding"
        levels = []
        for step in c["path"]:  # every part of the path is written, or the export stops naming it: never dropped
            if (
                not isinstance(step, Mapping)
                or set(step) != {"level", "code", "name"}
                or not isinstance(step["level"], int)
                or not isinstance(step["code"], str)
                or not isinstance(step["name"], str)
            ):
                raise ValueError(f"{where}: path step {step!r} is not {{level, code, name}}")  # fmt: skip
            levels.append({"Level": str(step["level"]), "Code": step["code"], "Name": step["name"]})
        coded = {
            "Dictionary": c["dictionary"], "Version": c["version"], "Verbatim": c["verbatim"], "Code": c["code"],
            "Name": c["name"], "CodedAt": _iso(e.coded_at), "CodedBy": e.coded_by,
        }  # fmt: skip
        with self.xml.element("tw:LogEntry", attrs), self.xml.element("tw:Coding", coded):
            for level in levels:
                self.xml.leaf("tw:Level", level)

    def _logs(self, person: ParticipantRecord, entries: list[LogRecord], audited: Indexed) -> None:
        """The participant's log entries: ``SE.LOGS``, a ``FormData`` per log, an ``ItemGroupData`` per entry."""
        if not entries:
            return
        xml = self.xml
        with xml.element("StudyEventData", {"StudyEventOID": LOGS_EVENT}):
            for log_id, grouped in itertools.groupby(entries, key=lambda e: e.log_id):
                log = self.logs[log_id]
                with xml.element("FormData", {"FormOID": f"F.{log_oid(log_id)}"}):
                    for e in grouped:
                        key = (log_id, str(e.sequence))
                        strays = sorted(set(e.values) - {f.id for f in log.fields})
                        if strays:
                            raise ValueError(f"{e.participant_id} log {log_id} entry {e.sequence}: fields "
                                             f"{', '.join(strays)} are not in protocol version "
                                             f"{self.source.protocol_version}")  # fmt: skip
                        attrs = {"ItemGroupOID": f"IG.{log_oid(log_id)}", "ItemGroupRepeatKey": str(e.sequence)}
                        with xml.element("ItemGroupData", attrs):
                            self._audit_record(audited.entries.get(key), e.site)
                            if e.signed_by and e.signed_at and e.signed_by in self.index.users:
                                signature = f"SIG.{e.participant_id}.{log_oid(log_id)}.{e.sequence}"
                                self._signature(signature, e.signed_by, e.site, e.signed_at)
                            for f in log.fields:
                                if f.id in e.values:
                                    self._item(log_id, e.site, f, e.values[f.id],
                                               audited.entry_items.get((*key, f.id)),
                                               audited.entry_history.get((*key, f.id), ()))  # fmt: skip
                            self._log_entry(e)
                            write_element_history(xml, audited.entry_records.get(key, ()), e.site, self._audit_record)
                            self._removed(log_id, e.site, log.fields, e.values, audited.entry_items,
                                          audited.entry_history, key)  # fmt: skip
                            asked = self.queries.on_entry(log_id, e.sequence)
                            if asked:
                                write_queries(xml, asked, audited, e.site, self._field_oid(log_id), self._audit_record)

    def _removed(
        self, owner: str, site: str, fields: Sequence[FormField], values: Mapping[str, Any],
        latest: Mapping[tuple[str, str, str], Audited], history: Mapping[tuple[str, str, str], Sequence[Audited]],
        key: tuple[str, str],
    ) -> None:  # fmt: skip
        """A ``tw:RemovedItemData`` per field without a value whose latest entry removed it (``element_history``)."""
        for f in fields:
            audited = latest.get((*key, f.id))
            if f.id not in values and removed(audited):
                assert audited is not None
                write_removed(self.xml, self.oids[(owner, f.id)], f, audited, history.get((*key, f.id), ()),
                              self.codec, site, self._audit_record)  # fmt: skip

    def _field_oid(self, owner: str) -> Callable[[str], str]:
        """The ItemOID of a field of form or log ``owner``, for a query on it (a field it lacks stops the export)."""

        def oid(name: str) -> str:
            if (owner, name) not in self.oids:
                raise ValueError(f"queries: a query names field {name!r}, which {owner} does not have in protocol "
                                 f"version {self.source.protocol_version}")  # fmt: skip
            return self.oids[(owner, name)]

        return oid

    def _item(
        self, owner: str, site: str, f: FormField, stored: Mapping[str, Any], audited: Audited | None,
        earlier: Sequence[Audited] = (),
    ) -> None:  # fmt: skip
        """One value of a form (``owner`` its form id), a log entry (the log's id) or an adverse event, with its
        earlier audit records (``history``)."""
        xml = self.xml
        oid = self.oids[(owner, f.id)]
        start, unit, detail = self.codec.written(oid, f, stored, self._render)
        depth = xml.depth
        outer = "  " * depth
        if audited is None and not detail and not unit:
            xml.write(f"{outer}{start}/>\n")
            return
        inner = outer + "  "
        record = "" if audited is None else self._audit_text(audited, site, depth + 1)
        if not earlier:  # most values: the whole element in one piece
            xml.write(f"{outer}{start}>\n{record}{inner if unit else ''}{unit}{inner if detail else ''}{detail}"
                      f"{outer}</ItemData>\n")  # fmt: skip
            return
        xml.write(f"{outer}{start}>\n{record}{inner if unit else ''}{unit}{inner if detail else ''}{detail}")
        xml.depth += 1  # ended by ``end``
        write_history(xml, earlier, self.codec, oid, f, site, self._audit_record)
        xml.end("ItemData")

    def _item_text(self, oid: str, f: FormField, text: str | None, detail: Mapping[str, str]) -> tuple[str, str, str]:
        """What ``_item`` writes of one distinct stored value, without the indent: the ``ItemData`` start tag (open),
        its ``MeasurementUnitRef`` and its ``tw:StoredValue`` lines ("" when it has none)."""
        start = f"<ItemData ItemOID={quoted(oid)}" + (' IsNull="Yes"' if text is None else f" Value={quoted(text)}")
        unit = ""
        if f.unit and text is not None:
            unit = f"<MeasurementUnitRef MeasurementUnitOID={quoted(self.units[f.unit])}/>\n"
        stored = ""
        if detail:
            stored = "<tw:StoredValue" + "".join(f" {k}={quoted(v)}" for k, v in detail.items() if v is not None)
            stored += "/>\n"
        return start, unit, stored

    def _enrolment(self, p: ParticipantRecord, subject: Audited | None) -> None:
        # A participant of a trial imported from ODM has no allocation here (the arm stayed in the source trial's
        # sealed list): its randomization is written as the import kept it from the file, text for text.
        imported = subject is not None and subject.extra and p.randomization_number is None
        kept = json.loads(subject.extra) if imported and subject is not None and subject.extra else {}
        attrs = {
            "ScreeningNumber": p.screening_number, "ScreenedOn": p.screened_on.isoformat(),
            "EnrolledAt": p.enrolled_at.isoformat(), "ConsentGivenBy": p.consent_given_by,
            "ConsentedAt": _iso(p.consented_at),
            "RandomizationNumber": None if p.randomization_number is None else str(p.randomization_number),
            "RandomizedAt": _iso(p.randomized_at), "Stratum": p.stratum,
        }  # fmt: skip
        if kept:
            attrs.update({k: kept.get(k) for k in ("RandomizationNumber", "RandomizedAt", "Stratum")})
        c = p.consent
        if c is not None:  # the rest of the consent record: who obtained it, the representative, who recorded it
            attrs |= {
                "ConsentFormVersion": c.form_version, "ConsentKind": c.kind, "ConsentObtainedBy": c.obtained_by,
                "RepresentativeName": c.representative_name,
                "RepresentativeRelationship": c.representative_relationship, "ConsentWitness": c.witness,
                "ConsentRecordedAt": c.recorded_at.isoformat(), "ConsentRecordedBy": c.recorded_by,
                "ConsentId": None if p.consent_id is None else str(p.consent_id), **assent_attributes(c),
                **in_force_attributes(self.consents.record(p.screening_number, p.consent_id)),
            }  # fmt: skip
        recorded = p.withdrawals_recorded
        if recorded and len(recorded) != len(p.withdrawals):
            raise ValueError(f"participant: {p.participant_id} has {len(p.withdrawals)} withdrawals but who recorded "
                             f"{len(recorded)}")  # fmt: skip
        with self.xml.element("tw:Enrolment", attrs):
            self.xml.leaf("tw:ScreeningValues", text=json_text(dict(p.screening_values)))
            for n, (scope, on, reason, cause) in enumerate(p.withdrawals):
                attrs = {"Scope": scope, "On": on.isoformat(), "Reason": reason, "Cause": cause}
                if recorded:
                    attrs |= {"RecordedAt": recorded[n][0].isoformat(), "RecordedBy": recorded[n][1]}
                self.xml.leaf("tw:Withdrawal", attrs)
            # the other consent records, the screening's entries before enrolment (``consents``)
            self.consents.write_later(self.xml, p, self.index, self._audit_record)

    def _dsmb_decisions(self) -> None:
        """``tw:DsmbDecision`` in ``ClinicalData`` after the participants: the DSMB's decisions on the safety pause,
        trial-level, in the order made (decision, the related SAEs it was made on, who and when), never the reason
        (the DSMB's words may speak of the arms)."""
        for d in self.source.dsmb_decisions():
            self.xml.leaf("tw:DsmbDecision", {
                "Decision": d.decision, "RelatedSaes": str(d.related_saes), "DecidedAt": d.decided_at.isoformat(),
                "DecidedBy": d.decided_by,
            })  # fmt: skip
