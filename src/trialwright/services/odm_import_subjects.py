"""Importing one participant from an ODM file: its ``SubjectData`` read into a ``Subject``, and its stored values
checked as the save path checks them.

``read_subject`` reads the participant's site and id, ``tw:Enrolment`` (its screening, the consent it was enrolled
on, its withdrawals, its other consent records, its randomization as the file states it: number, time and stratum,
never an arm), its visits and forms (``odm_import_forms``), log entries (``odm_import_logs``) and adverse events
(``odm_import_ae``), and its own AuditRecord and earlier records (``odm_import_elements``). ``refused_values`` lists
every stored value the save path would refuse (type, choice, hard limits, text rules, dates, the coherence rules, a
log entry's rules), so that the import refuses the file before it writes anything.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from trialwright.domain.calendars import local_date
from trialwright.domain.coherence import ParticipantFacts, hard_breaches
from trialwright.domain.eligibility import applies_if_problems
from trialwright.domain.forms import FormValueError, StoredValue, validate_entries
from trialwright.domain.logs import entry_problems
from trialwright.exports.odm.ae_outline import AE_EVENT
from trialwright.exports.odm.outline import LOGS_EVENT
from trialwright.protocol import Protocol
from trialwright.services import clock
from trialwright.services.odm_import_common import (
    ImportedLogEntry,
    ImportedVisit,
    OdmImportError,
    Subject,
    need_attribute,
    odm_tag,
    parse_day,
    parse_moment,
    who,
)
from trialwright.services.odm_import_forms import read_visit
from trialwright.services.odm_import_logs import read_logs
from trialwright.services.screening import WithdrawalCause, _typed_values

if TYPE_CHECKING:
    from trialwright.services.odm_import_reader import Reader

__all__ = ["read_subject", "refused_values"]


def read_subject(reader: Reader, elem: ET.Element) -> Subject:
    pid = need_attribute(elem, "SubjectKey", "SubjectData")
    where = f"SubjectData[@SubjectKey={pid}]"
    site_ref = elem.find(odm_tag("SiteRef"))
    if site_ref is None:
        raise OdmImportError(f"{where}/SiteRef: required (the participant's site)")
    site = need_attribute(site_ref, "LocationOID", f"{where}/SiteRef")
    if site not in reader.locations or site not in reader.protocol.site_codes:
        raise OdmImportError(f"{where}/SiteRef/@LocationOID: {site} is not a site of the protocol")
    prefix, _, number = pid.rpartition("-")
    if prefix != site or not number.isdigit():
        raise OdmImportError(f"{where}/@SubjectKey: {pid} is not a participant id of site {site} ({site}-NNN)")
    enrolment = elem.find(reader.ext_tag("Enrolment"))
    if enrolment is None:
        raise OdmImportError(f"{where}/tw:Enrolment: required (the file was not written by trialwright's export)")
    tw = dict(enrolment.attrib)
    w = f"{where}/tw:Enrolment"
    for name in ("ScreeningNumber", "ScreenedOn", "EnrolledAt", "ConsentGivenBy", "ConsentedAt"):
        need_attribute(enrolment, name, w)
    s_site, _, s_number = tw["ScreeningNumber"].rpartition("-S")
    if s_site != site or not s_number.isdigit():
        raise OdmImportError(f"{w}/@ScreeningNumber: {tw['ScreeningNumber']} is not a screening of site {site}")
    if tw["ConsentGivenBy"] not in {"participant", "representative"}:
        raise OdmImportError(f"{w}/@ConsentGivenBy: must be participant or representative")
    parse_day(tw["ScreenedOn"], f"{w}/@ScreenedOn")
    parse_moment(tw["EnrolledAt"], f"{w}/@EnrolledAt")
    parse_moment(tw["ConsentedAt"], f"{w}/@ConsentedAt")
    values_elem = enrolment.find(reader.ext_tag("ScreeningValues"))
    try:
        values = json.loads(values_elem.text or "") if values_elem is not None else None
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, dict):
        raise OdmImportError(f"{w}/tw:ScreeningValues: required, a JSON object")
    for wrong in applies_if_problems(reader.protocol, _typed_values(reader.protocol, values))[:1]:
        raise OdmImportError(f"{w}/tw:ScreeningValues: {wrong} (the rule screening applies)")
    from trialwright.services.odm_import_records import read_consent, read_withdrawal, same_generation

    consent = read_consent(reader.protocol, tw, w, site)
    left = []
    withdrawn: list[tuple[dt.datetime, str] | None] = []
    for x in enrolment.findall(reader.ext_tag("Withdrawal")):
        on = parse_day(need_attribute(x, "On", f"{w}/tw:Withdrawal"), f"{w}/tw:Withdrawal/@On")
        assert on is not None
        cause = x.get("Cause")
        if cause is not None and cause not in {c.value for c in WithdrawalCause}:
            raise OdmImportError(
                f"{w}/tw:Withdrawal/@Cause: {cause!r} is not one of {', '.join(c.value for c in WithdrawalCause)}"
            )
        scope = need_attribute(x, "Scope", f"{w}/tw:Withdrawal")
        left.append((scope, on, need_attribute(x, "Reason", f"{w}/tw:Withdrawal"), cause))
        withdrawn.append(read_withdrawal(x, f"{w}/tw:Withdrawal[{len(left)}]"))
    same_generation(reader, consent, withdrawn, w)
    from trialwright.services.odm_import_consents import checked_assent, read_later, refuse_enrolled_dissent

    screened_on = parse_day(tw["ScreenedOn"], f"{w}/@ScreenedOn")
    assert screened_on is not None
    checked_assent(reader.protocol, consent if consent is not None else {}, (site, screened_on, values),
                   (tw["ConsentGivenBy"], consent["kind"] if consent else "initial", "consent"), w, tw)  # fmt: skip
    if consent is None and "ProtocolVersionInForce" in tw:
        raise OdmImportError(f"{w}/@ProtocolVersionInForce: present without the consent's details (ConsentFormVersion, "
                             "...): the export writes both")  # fmt: skip
    consent_id, later = read_later(reader, enrolment, w, consent, tw["ScreeningNumber"], values)
    enrolled_at = parse_moment(tw["EnrolledAt"], f"{w}/@EnrolledAt")
    assert enrolled_at is not None
    refuse_enrolled_dissent(consent, consent_id, later, enrolled_at, tw["ScreeningNumber"], w)
    visits: list[ImportedVisit] = []
    entries: list[ImportedLogEntry] | None = None
    events: list[Any] | None = None
    for event in elem.findall(odm_tag("StudyEventData")):
        if event.get("StudyEventOID") == AE_EVENT:  # adverse events: ``odm_import_ae``
            from trialwright.services.odm_import_ae import read_adverse_events

            if events is not None:
                raise OdmImportError(f"{where}/StudyEventData[@StudyEventOID={AE_EVENT}]: appears twice")
            events = read_adverse_events(reader, event, where, site)
        elif event.get("StudyEventOID") != LOGS_EVENT:
            visits.append(read_visit(reader, event, where))
        elif entries is None:
            entries = read_logs(reader, event, where)
        else:
            raise OdmImportError(f"{where}/StudyEventData[@StudyEventOID={LOGS_EVENT}]: appears twice")
    held = [v.visit_id for v in visits]
    if len(held) != len(set(held)):
        raise OdmImportError(f"{where}/StudyEventData: a visit appears twice")
    kinds = ("RandomizationNumber", "RandomizedAt", "Stratum")
    randomization: dict[str, str] = {k: tw[k] for k in kinds if k in tw}
    if randomization:
        if set(randomization) != {"RandomizationNumber", "RandomizedAt", "Stratum"}:
            raise OdmImportError(f"{w}: RandomizationNumber, RandomizedAt and Stratum come together or not at all")
        if not randomization["RandomizationNumber"].isdigit():
            number_text = randomization["RandomizationNumber"]
            raise OdmImportError(f"{w}/@RandomizationNumber: {number_text!r} is not a number")
        parse_moment(randomization["RandomizedAt"], f"{w}/@RandomizedAt")
    from trialwright.services.odm_import_elements import LATEST, read_element_history

    recorded = reader.audit_record(elem, where, LATEST["participant"])
    earlier = read_element_history(reader, elem, recorded, "participant", where)
    # The entries about its screening before it was enrolled (they name no participant): no latest after them.
    before = read_element_history(reader, enrolment, None, "screening", w, alone=True)
    # Who enrolled the participant: the record of its enrolment (the latest if the history names none).
    enrolment_record = next((r for r in earlier if r["action"] == "participant.enrolled"), recorded)
    return Subject(
        pid, site, int(number), int(s_number), tw, values, left, who(enrolment_record), visits, recorded,
        randomization or None, entries or [], adverse_events=events or [], consent=consent, withdrawn=withdrawn,
        earlier=earlier, consent_id=consent_id, later_consents=later, screening_earlier=before,
    )  # fmt: skip


def refused_values(protocol: Protocol, subject: Subject) -> list[str]:
    """Every stored value of the subject's forms that the save path would refuse (type, choice, hard limits,
    text rules, dates, and the coherence rules), as ``participant P, visit V, form F: field: rule``. A form is
    checked as it is saved: its entered values as entries, its derived values as the rules read them."""
    tz = ZoneInfo(protocol.site(subject.site).timezone)
    consented = subject.enrolment.get("ConsentedAt")
    enrolled = subject.enrolment.get("EnrolledAt")
    facts = ParticipantFacts(
        timezone=tz,
        consented_at=dt.datetime.fromisoformat(consented) if consented else None,
        enrolled_at=dt.datetime.fromisoformat(enrolled) if enrolled else None,
    )
    now = clock.now()
    today = local_date(now, tz)
    enrolled_on = local_date(facts.enrolled_at, tz) if facts.enrolled_at else None
    out: list[str] = []
    for visit in subject.visits:
        visit_forms = {f.form_id: {k: StoredValue.from_json(v) for k, v in f.values.items()} for f in visit.forms}
        for form in visit.forms:
            where = f"participant {subject.participant_id}, visit {visit.visit_id}, form {form.form_id}"
            definition = protocol.form(form.form_id)
            entries = {name: _entry(value) for name, value in form.values.items()
                       if value.get("status") != "derived" and definition.field(name).derived is None}  # fmt: skip
            try:
                validate_entries(definition, entries, today=today, enrolled_on=enrolled_on, timezone=tz.key, now=now)
            except FormValueError as exc:
                out += [f"{where}: {problem}" for problem in exc.problems]
            for breach in hard_breaches(protocol, form.form_id, visit_forms, facts):
                line = f"{where}: {breach.message}"
                if line not in out and breach.fields[0].startswith(f"{form.form_id}."):
                    out.append(line)  # each breach once, under the form of the field it names first
    for e in subject.entries:  # a log's fields are form fields, checked as a log entry's save checks them
        where = f"participant {subject.participant_id}, log {e.log_id}, entry {e.sequence}"
        try:
            validate_entries(protocol.log(e.log_id), {name: _entry(value) for name, value in e.values.items()},
                             today=today, enrolled_on=enrolled_on, timezone=tz.key, now=now)  # fmt: skip
        except FormValueError as exc:
            out += [f"{where}: {problem}" for problem in exc.problems]
        log = protocol.log(e.log_id)  # and the whole entry's rules, as its save checks them (domain.logs)
        declared = {f.id for f in log.fields}
        stored = {k: StoredValue.from_json(v) for k, v in e.values.items() if k in declared}
        out += [f"{where}: {problem}" for problem in entry_problems(log, stored)]
    return out


def _entry(stored: Mapping[str, Any]) -> Any:
    """A stored value as the save path takes it: the canonical value, or its status with reason or limit."""
    status = stored.get("status", "value")
    if status == "value":
        return stored.get("value")
    if status in {"below_lloq", "above_uloq"}:
        return {status: stored.get("limit")}  # the limit in the canonical unit
    return {status: stored.get("reason")}
