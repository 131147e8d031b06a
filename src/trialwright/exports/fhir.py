"""The trial as HL7 FHIR R4 JSON: the study from the protocol, and one Bundle per participant.

``study.json`` is a ``collection`` Bundle with the ResearchStudy (registry ids, title, status, phase, ICD-10
conditions, period, the planned enrolment as a Group, the principal investigator the protocol names, if any, as
a PractitionerRole: ``fhir_people``) and the sponsor as an Organization. The protocol's arms
(``ResearchStudy.arm``) are written only in an export made ``with_arms``: the masking policy never shows an
arm's name to a blinded user, even where it says nothing about who is in it.

``participants/<participant id>.json`` is a ``collection`` Bundle per participant with:

* a pseudonymous **Patient**: its id is a keyed hash (HMAC-SHA256) of the participant id; it holds the
  gender from the fields the protocol's ``demographics.sex`` names (its CDISC codes: F female, M male, U
  unknown, INTERSEX other), and nothing else: no name, identifier, address, telecom, and no
  birth date (not even the year: age is a quasi-identifier and no analysis here needs it);
* a **ResearchSubject**: the study, the Patient, a status from enrolment, randomization and withdrawal, the
  period from enrolment to withdrawal; ``assignedArm`` only when the source was made ``with_arms`` (only the
  unblinded statistician may), and then only that participant's arm code;
* an **Observation** per numeric value of a field whose protocol ``codes`` declare an ``observation`` category
  (``trialwright.protocol.codes``): coded with the LOINC codes the field declares, if any, and always with the
  local code system ``https://trialwright.dev/fhir/CodeSystem/<trial id>`` (code ``form.field``);
  ``valueQuantity`` in the field's declared UCUM code (nothing is looked up from a name or unit);
  ``effectiveDateTime`` from the form's first date-time field (the sample or assessment time), else the visit
  date; status ``preliminary`` for a draft form,
  ``amended`` for a value changed after its form was first completed (read from the audit trail),
  ``final`` otherwise; ``dataAbsentReason`` for not done / not applicable (the free-text reason is left
  out); ``valueQuantity.comparator`` ``<`` or ``>`` with the limit, and interpretation off scale low/high,
  for a value below or above the limit of quantification; ``referenceRange`` low/high in the valueQuantity's
  unit from the field's declared ``normal_range`` (none without one);
* an **AdverseEvent** per event of the participant: actual, the term as text (with its MedDRA LLT and PT as
  codings, once coded), the CTCAE grade as an
  extension and as a severity, seriousness, outcome, onset date. ``suspectEntity`` is left out: naming the
  product would name the arm, and the arm belongs in the ResearchSubject only. Narratives and causes of
  death (free text) are left out;
* a **MedicationStatement** per entry of a concomitant medications log (one written to SDTM CM) and a
  **Condition** per entry of a medical history log (MH), removed entries as entered in error, with their ATC or
  MedDRA codings once coded (``trialwright.exports.fhir_logs``).

Each participant's bundle also carries the study's resources and each recruitment centre (an Organization, a
Location, its responsible person as a Practitioner in a PractitionerRole, and its principal investigator when
the protocol names one), a **Consent** per consent record of the participant (``trialwright.exports.fhir_consents``)
and an **Encounter** per visit with forms, of the class the visit declares (a v3 ActEncounterCode, else
NullFlavor UNK), which the visit's Observations name: every reference in a bundle resolves inside it. A field
may declare ``codes.fhir_ucum``, the unit its Observation is sent in (LOINC's), converted exactly by the UCUM
factor.

Each resource is built as plain JSON (a dict in the element order of the FHIR specification, numbers and
instants as the R4B models write them) and written as soon as it is built: building every resource as a
``fhir.resources`` model cost nine tenths of the export's time. Every resource passes the checks those models
leave out (the required code bindings and the Observation invariants); a sample is validated with the R4B
(4.3.0) models (``FhirSample``, ``fhir_check``: the first few of each resource type and of the bundles, and a
seeded uniform sample of the rest over the whole export, bounded whatever the trial's size, validated at its
end), and a sampled resource must also serialize through its model to exactly the text written. What repeats
is built once per export: each field's codings, unit and conversion and each visit's coding and class
(``fhir_observations``), the study's resources as written (checked and serialized once, then copied into every
bundle), each participant's Patient and Encounter ids; the amended values are found from the completions and
changes of the audit trail only, a few columns each.
A failure stops the export naming the resource type, id and error (``FhirExportError``); the service then
removes the partly written folder, so an invalid file is never left looking complete. The specs validate
every resource of their exports with the models. R4B changed none of the resources used here (its changes are
in the medication definition, subscription and evidence resources: hl7.org/fhir/R4B/history.html), so the files
are R4 (4.0.1) JSON. The FHIR version is not written into the files: ``Meta`` has no such element (only
conformance resources carry ``fhirVersion``), and an invented extension would help no reader.

Participants are written one at a time as the form stream reaches them (memory: one participant's forms, the
participant list and the adverse events, which are few). Pseudonyms are keyed by a random key drawn for each
export unless the caller passes ``key``: two exports then give unlinkable Patient ids, while the file names
let the data manager who holds the export link a bundle to its participant.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pydantic_core

from trialwright.exports.base import (
    ConsentRecord,
    EventRecord,
    Exporter,
    ExportSource,
    FormRecord,
    LogRecord,
    ParticipantRecord,
    Progress,
)
from trialwright.exports.fhir_check import FhirExportError, FhirSample, Sampler, check_bindings, validate_resource
from trialwright.exports.fhir_consents import consent_resources
from trialwright.exports.fhir_logs import FhirLogError, log_resource
from trialwright.exports.fhir_observations import (
    BASE,
    LOINC_SYSTEM,
    SNOMED_SYSTEM,
    TERMINOLOGY,
    UCUM_SYSTEM,
    Observations,
    coding,
    concept,
    instant,
    number,
)
from trialwright.exports.fhir_people import address as _address
from trialwright.exports.fhir_people import investigator_resources, telecom
from trialwright.exports.meddra import fhir_coding
from trialwright.protocol import Protocol
from trialwright.protocol.demographics import fhir_gender
from trialwright.protocol.encounters import ACT_CODE_SYSTEM, encounter_class_display
from trialwright.protocol.sources import source as field_source

__all__ = ["BASE", "LOINC_SYSTEM", "SNOMED_SYSTEM", "UCUM_SYSTEM", "FhirExportError", "FhirExporter", "FhirSample",
           "check_bindings", "validate_resource"]  # fmt: skip

ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
_TERMINOLOGY = TERMINOLOGY
_GRADE_URL = f"{BASE}/StructureDefinition/ctcae-grade"
_coding, _concept, _instant, _number = coding, concept, instant, number


def _fhir_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", text)[:64]


# --- the study -----------------------------------------------------------------------------------------

_PHASES = {"not_applicable": "n-a", "early_1": "early-phase-1", "1": "phase-1", "1/2": "phase-1-phase-2",
           "2": "phase-2", "2/3": "phase-2-phase-3", "3": "phase-3", "4": "phase-4"}  # fmt: skip
_STUDY_STATUS = {"not_yet_recruiting": "approved", "recruiting": "active", "suspended": "temporarily-closed-to-accrual",
                 "complete": "closed-to-accrual", "stopped_early": "administratively-completed"}  # fmt: skip
_PURPOSES = {"treatment", "prevention", "diagnostic", "supportive-care", "screening", "health-services-research",
             "basic-science", "device-feasibility"}  # fmt: skip


def _study_resources(protocol: Protocol, study_id: str, with_arms: bool) -> list[dict[str, Any]]:
    trial = protocol.trial
    dates = trial.dates
    status = _STUDY_STATUS[trial.recruitment_status.value]
    if trial.recruitment_status.value == "complete" and dates.completion is not None:
        status = "completed"
    start = dates.actual_recruitment_start or dates.expected_recruitment_start
    end = dates.completion or dates.actual_recruitment_end or dates.expected_recruitment_end
    purpose = trial.design.purpose.replace("_", "-")
    sponsor = {"resourceType": "Organization", "id": f"{study_id}-sponsor", "name": trial.sponsors[0].organisation}
    planned = {
        "resourceType": "Group",
        "id": f"{study_id}-planned",
        "type": "person",
        "actual": False,
        "name": "Planned enrolment",
        "quantity": protocol.sample_size.target,
    }
    study: dict[str, Any] = {
        "resourceType": "ResearchStudy",
        "id": study_id,
        "identifier": [
            {"use": "official" if i.primary else "secondary", "type": {"text": i.registry}, "value": i.id}
            for i in trial.ids
        ],
        "title": trial.titles.scientific,
        "status": status,
        "primaryPurposeType": (
            _concept(f"{_TERMINOLOGY}/research-study-prim-purp-type", purpose)
            if purpose in _PURPOSES
            else {"text": trial.design.purpose}
        ),
        "phase": _concept(f"{_TERMINOLOGY}/research-study-phase", _PHASES[trial.phase.value]),
        "condition": [_concept(ICD10_SYSTEM, c.icd10, c.icd10_description, c.description) for c in trial.conditions],
        "description": trial.summary.aim,
        "enrollment": [{"reference": f"Group/{planned['id']}"}],
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "sponsor": {"reference": f"Organization/{sponsor['id']}", "display": sponsor["name"]},
        "principalInvestigator": (
            {"reference": f"PractitionerRole/{_lead_id(study_id)}", "display": trial.principal_investigator.name}
            if trial.principal_investigator
            else None
        ),
        "site": [{"reference": f"Location/{_site_id(study_id, s.code)}", "display": s.name} for s in protocol.sites],
    }
    if with_arms:
        study["arm"] = [
            {
                "name": a.code,
                "type": {"text": a.role.value.replace("_", " ")},
                "description": f"{a.name}. {a.description}",
            }
            for a in protocol.arms
        ]
    lead = trial.principal_investigator
    lead_resources = investigator_resources(lead, _lead_id(study_id)) if lead else []
    return [_pruned(study), _pruned(sponsor), _pruned(planned), *lead_resources, *_site_resources(protocol, study_id)]


def _site_id(study_id: str, code: str) -> str:
    return _fhir_id(f"{study_id}-site-{code}")


def _lead_id(study_id: str, code: str | None = None) -> str:
    """The id of the trial's (or a centre's) principal investigator: the role first, so that cutting a long trial
    id to FHIR's 64 characters can never make it another resource's id."""
    return _fhir_id(f"pi-site-{code}-{study_id}" if code else f"pi-study-{study_id}")


def _site_resources(protocol: Protocol, study_id: str) -> list[dict[str, Any]]:
    """Each recruitment centre as an Organization and the Location the ResearchStudy names, its responsible
    person (the registry's "responsible person" of the centre) as a Practitioner in a PractitionerRole there, and
    its principal investigator, when the protocol names one, in a PractitionerRole coded so (``fhir_people``)."""
    out: list[dict[str, Any]] = []
    for site in protocol.sites:
        ident = _site_id(study_id, site.code)
        address = _address(site.address)
        organization = {
            "resourceType": "Organization",
            "id": ident,
            "identifier": [{"system": f"{BASE}/{study_id}/site", "value": site.code}],
            "name": site.name,
            "telecom": telecom(site.address),
            "address": [address] if address else None,
        }
        location = {
            "resourceType": "Location",
            "id": ident,
            "status": "active",
            "name": site.name,
            "address": address,
            "managingOrganization": {"reference": f"Organization/{ident}"},
        }
        out += [_pruned(organization), _pruned(location)]
        if site.responsible_person:
            person = {"resourceType": "Practitioner", "id": ident, "name": [{"text": site.responsible_person}]}
            role = {
                "resourceType": "PractitionerRole",
                "id": ident,
                "practitioner": {"reference": f"Practitioner/{ident}", "display": site.responsible_person},
                "organization": {"reference": f"Organization/{ident}"},
                "code": [{"text": "Responsible person of the recruitment centre (trial registry)"}],
                "location": [{"reference": f"Location/{ident}"}],
            }
            out += [person, role]
        if site.principal_investigator is not None:
            out += investigator_resources(site.principal_investigator, _lead_id(study_id, site.code), ident, ident)
    return out


def _pruned(value: Any) -> Any:
    """``value`` without the elements that are None or empty lists, which the R4B models leave out of what they
    write (a null inside a list they refuse, and so does this)."""
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None and v != []}
    if isinstance(value, list):
        if any(v is None for v in value):
            raise FhirExportError(f"study: a list with a null: {value!r}")
        return [_pruned(v) for v in value]
    return value


#: The order the specification (and the R4B models' JSON) gives the elements this export writes.
_ADVERSE_EVENT_ORDER = ("resourceType", "id", "extension", "identifier", "actuality", "event", "subject", "date",
                        "detected", "recordedDate", "seriousness", "severity", "outcome", "study")  # fmt: skip


def _ordered(resource: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    if not resource.keys() <= set(order):
        raise FhirExportError(f"{resource.get('resourceType')}: no place for {sorted(resource.keys() - set(order))}")
    return {k: resource[k] for k in order if k in resource}


# --- participants --------------------------------------------------------------------------------------


_CHANGES = frozenset({"form.value_changed", "form.value_derived"})
_READ = _CHANGES | {"form.completed"}


def _amended(source: ExportSource) -> set[tuple[str, str, str, str]]:
    """(participant, visit, form, field) of values changed (typed or re-derived) after their form's first
    completion, from the audit trail (one pass over the completions and changes only, a few columns each;
    memory: the completed forms and the amended values). A value given for the first time after completion is not
    an amendment: there was no earlier result."""
    completed: set[tuple[str, str, str]] = set()
    amended: set[tuple[str, str, str, str]] = set()
    columns = ("participant", "form", "field", "detail", "old_value", "action")
    # The details repeat (the visit, and little else, for every value a save wrote): each distinct text is parsed
    # once; at most _DETAILS remembered (forgotten all at once when full), so memory stays bounded.
    visits: dict[str, str | None] = {}
    for participant, form, field, detail, old_value, action in source.audit_columns(columns, _READ):
        if not (participant and form and detail):
            continue
        if detail in visits:
            visit = visits[detail]
        else:
            if len(visits) >= _DETAILS:
                visits.clear()
            visit = visits[detail] = _visit_of(detail)
        if visit is None:
            continue
        key = (participant, visit, form)
        if action == "form.completed":
            completed.add(key)
        elif field and key in completed and old_value is not None and action in _CHANGES:
            amended.add((*key, field))
    return amended


_DETAILS = 10_000


def _visit_of(detail: str) -> str | None:
    """The visit an audit entry's detail names, as text (None: a detail that is not a JSON object)."""
    try:
        return str(json.loads(detail).get("visit"))
    except (ValueError, AttributeError):
        return None


def _subject_status(p: ParticipantRecord) -> str:
    scopes = {w[0] for w in p.withdrawals}
    if scopes & {"follow_up", "data_use"}:
        return "withdrawn"
    if "intervention" in scopes:
        return "on-study-observation"
    return "on-study" if p.randomization_number is not None else "pending-on-study"


def _gender(protocol: Protocol, p: ParticipantRecord, forms: Iterable[FormRecord]) -> str | None:
    """The gender from the first source of the protocol's ``demographics.sex`` that has a value."""
    sex = protocol.demographics.sex if protocol.demographics else None
    if sex is None:
        return None
    for ref in sex.sources:
        found = field_source(protocol, ref)  # the screening record's or a form's (protocol.sources)
        if found.screening:
            value = p.screening_values.get(found.name)
        else:
            stored = next(
                (r.values.get(found.name) for r in forms if r.form_id == found.form and r.values.get(found.name)), None
            )
            value = stored.get("value") if stored else None
        if value is not None and str(value) in sex.codes:
            return fhir_gender(sex.codes[str(value)])
    return None


class _Plan:
    """What one export repeats, built once: the bundles' base URL and timestamp, each visit's Encounter class and
    type, and the Observations' codings (``fhir_observations``)."""

    def __init__(self, protocol: Protocol, study_id: str, timestamp: str) -> None:
        self.base = f"{BASE}/{study_id}"
        self.timestamp = timestamp
        self.observations = Observations(protocol, study_id)
        self._local = f"{BASE}/CodeSystem/{study_id}/visit"
        self._protocol = protocol
        self._visits: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}

    def url(self, resource: dict[str, Any]) -> str:
        return f"{self.base}/{resource['resourceType']}/{resource['id']}"

    def visit(self, visit_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The Encounter class and type of a visit."""
        found = self._visits.get(visit_id)
        if found is None:
            visit = next((v for v in self._protocol.visits if v.id == visit_id), None)
            name = visit.name if visit else visit_id
            declared = visit.encounter_class if visit else None
            kind = (
                _coding(ACT_CODE_SYSTEM, declared.value, encounter_class_display(declared))
                if declared
                else _coding(f"{_TERMINOLOGY}/v3-NullFlavor", "UNK", "unknown")
            )
            found = self._visits[visit_id] = (kind, _pruned([{"coding": [_coding(self._local, visit_id, name)],
                                                                "text": name}]))  # fmt: skip
        return found


class FhirExporter(Exporter):
    """FHIR R4 JSON: the ResearchStudy, and a Bundle per participant (Patient, ResearchSubject, Observations,
    AdverseEvents)."""

    name = "fhir"
    description = "HL7 FHIR R4 JSON: the study, and a pseudonymous bundle per participant (labs, vitals, AEs)"

    def __init__(self, key: bytes | None = None, sample: FhirSample | None = None) -> None:
        if key is not None and len(key) < 16:
            raise FhirExportError("key: a pseudonym key needs at least 16 bytes")
        self._key = key if key is not None else secrets.token_bytes(32)
        self._mac = hmac.new(self._key, digestmod=hashlib.sha256)  # keyed once; each pseudonym copies it
        self._sample = sample if sample is not None else FhirSample()
        #: What the last ``write`` validated with the R4B models, by resource type (Bundle: whole files).
        self.validated: dict[str, int] = {}
        self._shared: list[dict[str, Any]] = []
        self._shared_text: list[bytes] = []  # each shared resource as written (its entry: the same in every bundle)
        self._entries: dict[str, list[LogRecord]] = {}
        self._consents: dict[str, list[ConsentRecord]] = {}  # participant -> their consent records, by id
        self._plan: _Plan | None = None
        self._person: tuple[str, str, dict[str, str]] = ("", "", {})  # participant, Patient id, Encounter ids

    def pseudonym(self, kind: str, text: str) -> str:
        """A FHIR id for ``text`` (a participant id, an observation's place...), keyed, not reversible."""
        mac = self._mac.copy()
        mac.update(f"{kind}|{text}".encode())
        return mac.hexdigest()[:32]

    def write(self, source: ExportSource, folder: Path, progress: Progress | None = None) -> list[Path]:
        protocol = source.protocol
        study_id = _fhir_id(source.trial_id)
        self._plan = plan = _Plan(protocol, study_id, _instant(source.taken_at))
        self._person = ("", "", {})
        # The study's resources come from the protocol, not the rows: always validated, whatever the sample.
        every = Sampler(FhirSample(first=0, rate=1, participants=None, most=None))
        shared = _study_resources(protocol, study_id, source.with_arms)
        self._shared, self._shared_text = [], []
        written = [self._bundle(folder / "study.json", "study", source, shared, every)]
        # In every participant's bundle too, so that each bundle's references resolve in it: checked and
        # serialized once (the text of each entry, with its fullUrl), validated in the study's bundle above.
        for r in shared:
            check_bindings(r)
            self._shared_text.append(pydantic_core.to_json(r))
        self._shared = shared
        shared_entries = b",".join(
            b'{"fullUrl":' + pydantic_core.to_json(plan.url(r)) + b',"resource":' + text + b"}"
            for r, text in zip(shared, self._shared_text, strict=True)
        )
        people = {p.participant_id: p for p in source.participants()}
        sampler = Sampler(self._sample, participants=len(people))
        sampler.passed |= every.passed
        self.validated = sampler.validated
        self.validated.update(every.validated)
        events: dict[str, list[EventRecord]] = {}
        for e in source.events():
            events.setdefault(e.participant_id, []).append(e)
        self._entries = {}  # participant -> log entries (a few each), read first
        for entry in source.logs():
            self._entries.setdefault(entry.participant_id, []).append(entry)
        # Each participant's consent records (a few each), read first: the source gives them by id, not by participant.
        self._consents = {}
        for c in source.consents():
            if c.participant_id is not None:
                self._consents.setdefault(c.participant_id, []).append(c)
        if self._consents.keys() - people.keys():
            raise FhirExportError(f"consents: records of participants not in the export: "
                                  f"{', '.join(sorted(self._consents.keys() - people.keys()))}")  # fmt: skip
        amended = _amended(source)
        (folder / "participants").mkdir()
        done: set[str] = set()
        count = 0
        for pid, group in itertools.groupby(source.forms(), key=lambda r: r.participant_id):
            if pid in done or pid not in people:
                raise FhirExportError(f"forms: the records of {pid} are not together or not of an enrolled participant")
            records = list(group)
            observations = []
            for rec in records:
                observations += self._observations(source, study_id, rec, amended)
                count += 1
                if progress:
                    progress(count)
            written.append(
                self._participant(
                    folder, source, study_id, people[pid], records, observations, events, sampler, shared_entries
                )
            )
            done.add(pid)
        for pid in sorted(people.keys() - done):
            written.append(
                self._participant(folder, source, study_id, people[pid], [], [], events, sampler, shared_entries)
            )
        if events:
            raise FhirExportError(f"events: adverse events of participants not in the export: {', '.join(events)}")
        sampler.finish()  # the reservoirs: a uniform sample of the whole export's candidates, each type
        return written

    # -- writing --

    def _bundle(
        self,
        path: Path,
        bundle_id: str,
        source: ExportSource,
        resources: list[dict[str, Any]],
        sampler: Sampler,
        shared: bytes = b"",
    ) -> Path:
        """Write a collection Bundle of ``resources`` and then the study's (``shared``: their entries as written,
        checked once) as the R4B models would (compact JSON, their order), each resource checked and drawn for the
        sample, and the bundle itself drawn for a whole validation."""
        plan = self._plan
        assert plan is not None
        head = {"resourceType": "Bundle", "id": bundle_id, "type": "collection", "timestamp": plan.timestamp}
        check_bindings(head)
        entries = []
        for r in resources:
            check_bindings(r)
            if sampler.drawn(r["resourceType"]):
                sampler.validate(r, pydantic_core.to_json(r))
            entries.append({"fullUrl": plan.url(r), "resource": r})
        if shared:
            for r, text in zip(self._shared, self._shared_text, strict=True):
                if sampler.drawn(r["resourceType"]):
                    sampler.validate(r, text, repeated=True)
        parts = [pydantic_core.to_json(entries)[1:-1]] if entries else []
        if shared:
            parts.append(shared)
        if not parts:
            raise FhirExportError(f"Bundle/{bundle_id}: a bundle with no resource")
        whole = pydantic_core.to_json(head)[:-1] + b',"entry":[' + b",".join(parts) + b"]}"
        if sampler.drawn("Bundle"):
            every = [*resources, *(self._shared if shared else ())]
            whole_entries = [{"fullUrl": plan.url(r), "resource": r} for r in every]
            sampler.validate({**head, "entry": whole_entries}, whole)
        path.write_bytes(whole)
        return path

    def _ids(self, pid: str) -> tuple[str, dict[str, str]]:
        """The participant's Patient id and their Encounter ids by visit (the participant being written)."""
        if self._person[0] != pid:
            self._person = (pid, self.pseudonym("patient", pid), {})
        return self._person[1], self._person[2]

    def _participant(
        self,
        folder: Path,
        source: ExportSource,
        study_id: str,
        p: ParticipantRecord,
        records: list[FormRecord],
        observations: list[dict[str, Any]],
        events: dict[str, list[EventRecord]],
        sampler: Sampler,
        shared: bytes,
    ) -> Path:
        pid = p.participant_id
        if not re.fullmatch(r"[A-Za-z0-9_-]+", pid):
            raise FhirExportError(f"participant id {pid!r} cannot be a file name")
        patient: dict[str, Any] = {"resourceType": "Patient", "id": self._ids(pid)[0]}
        gender = _gender(source.protocol, p, records)
        if gender:
            patient["gender"] = gender
        subject: dict[str, Any] = {
            "resourceType": "ResearchSubject",
            "id": self.pseudonym("subject", pid),
            "status": _subject_status(p),
            "period": {"start": _instant(p.enrolled_at)},
            "study": {"reference": f"ResearchStudy/{study_id}"},
            "individual": {"reference": f"Patient/{patient['id']}"},
        }
        left = [w[1] for w in p.withdrawals if w[0] in {"follow_up", "data_use"}]
        if left:
            subject["period"]["end"] = min(left).isoformat()
        if source.with_arms and p.arm is not None:
            if p.arm not in source.protocol.arm_codes:
                raise FhirExportError(f"{pid}: arm {p.arm!r} is not an arm of the protocol")
            subject["assignedArm"] = p.arm
        adverse = [self._adverse_event(source, study_id, patient["id"], e) for e in events.pop(pid, [])]
        adverse += self._log_entries(source, pid, patient["id"])
        consent = consent_resources(
            p, self._consents.pop(pid, []), patient["id"], _site_id(study_id, p.site),
            f"The protocol of trial {source.trial_id}", self.pseudonym,
        )  # fmt: skip
        encounters = self._encounters(source, study_id, p, records, patient["id"])
        path = folder / "participants" / f"{pid}.json"
        resources = [patient, subject, *consent, *encounters, *observations, *adverse]
        return self._bundle(path, self.pseudonym("bundle", pid), source, resources, sampler, shared)

    def _log_entries(self, source: ExportSource, pid: str, patient_id: str) -> list[dict[str, Any]]:
        """The participant's log entries as MedicationStatements and Conditions (``fhir_logs``)."""
        entries = self._entries.pop(pid, [])
        if not entries:
            return []
        logs = {log.id: log for log in source.protocol.logs}
        out = []
        for entry in entries:
            if entry.log_id not in logs:
                raise FhirExportError(f"{pid}: entries of log {entry.log_id!r}, not a log of the protocol")
            rid = self.pseudonym("log-entry", f"{pid}|{entry.log_id}|{entry.sequence}")
            try:
                made = log_resource(logs[entry.log_id], entry, rid, patient_id, _instant, _number)
            except FhirLogError as exc:
                raise FhirExportError(str(exc)) from None
            if made is not None:
                out.append(made)
        return out

    def _encounter_id(self, pid: str, visit_id: str) -> str:
        encounters = self._ids(pid)[1]
        found = encounters.get(visit_id)
        if found is None:
            found = encounters[visit_id] = self.pseudonym("encounter", f"{pid}|{visit_id}")
        return found

    def _encounters(
        self, source: ExportSource, study_id: str, p: ParticipantRecord, records: list[FormRecord], patient_id: str
    ) -> list[dict[str, Any]]:
        """An Encounter per visit with forms: the visit as its type, the visit date as its start, at the site's
        Location; finished when none of its forms is a draft. The class is the visit's ``encounter_class`` (a v3
        ActEncounterCode); a visit that declares none is sent as unknown (v3 NullFlavor UNK), not guessed."""
        plan = self._plan
        assert plan is not None
        site = _site_id(study_id, p.site)
        visits: dict[str, list[FormRecord]] = {}
        for rec in records:
            visits.setdefault(rec.visit_id, []).append(rec)
        out = []
        for visit_id, recs in visits.items():
            kind, typed = plan.visit(visit_id)
            date = next((r.visit_date for r in recs if r.visit_date), None)
            encounter: dict[str, Any] = {
                "resourceType": "Encounter",
                "id": self._encounter_id(p.participant_id, visit_id),
                "status": "in-progress" if any(r.state == "draft" for r in recs) else "finished",
                "class": kind,
                "type": typed,
                "subject": {"reference": f"Patient/{patient_id}"},
            }
            if date:
                encounter["period"] = {"start": date.isoformat()}
            encounter["location"] = [{"location": {"reference": f"Location/{site}"}}]
            encounter["serviceProvider"] = {"reference": f"Organization/{site}"}
            out.append(encounter)
        return out

    def _observations(
        self, source: ExportSource, study_id: str, rec: FormRecord, amended: set[tuple[str, str, str, str]]
    ) -> list[dict[str, Any]]:
        plan = self._plan
        assert plan is not None
        patient_id = self._ids(rec.participant_id)[0]
        encounter_id = self._encounter_id(rec.participant_id, rec.visit_id)
        return plan.observations.of(rec, amended, self.pseudonym, patient_id, encounter_id)

    def _adverse_event(self, source: ExportSource, study_id: str, patient_id: str, e: EventRecord) -> dict[str, Any]:
        a = e.assessment
        grade = a.get("grade")
        resource: dict[str, Any] = {
            "resourceType": "AdverseEvent",
            "id": self.pseudonym("adverse-event", e.ae_number),
            "identifier": {"system": f"{BASE}/{study_id}/adverse-event", "value": e.ae_number},
            "actuality": "actual",
            "event": {
                **({"coding": fhir_coding(e.coding)} if e.coding else {}),
                "text": str(a.get("term") or "adverse event"),
            },
            "subject": {"reference": f"Patient/{patient_id}"},
            "recordedDate": _instant(e.first_reported_at),
            "seriousness": _concept(
                f"{_TERMINOLOGY}/adverse-event-seriousness",
                "serious" if e.serious else "non-serious",
                "Serious" if e.serious else "Non-serious",
            ),
            "study": [{"reference": f"ResearchStudy/{study_id}"}],
        }
        if a.get("onset"):
            resource["date"] = dt.date.fromisoformat(str(a["onset"])).isoformat()
        if a.get("aware_at"):
            resource["detected"] = _instant(dt.datetime.fromisoformat(str(a["aware_at"])))
        if isinstance(grade, int) and 1 <= grade <= 5:
            resource["extension"] = [
                {
                    "extension": [
                        {"url": "grade", "valueInteger": grade},
                        {"url": "version", "valueString": f"CTCAE {source.protocol.safety.ctcae_version}"},
                    ],
                    "url": _GRADE_URL,
                }
            ]
            severity = "mild" if grade == 1 else "moderate" if grade == 2 else "severe"
            resource["severity"] = _concept(f"{_TERMINOLOGY}/adverse-event-severity", severity, severity.title())
        outcome = _OUTCOMES.get(str(a.get("outcome")))
        if outcome:
            resource["outcome"] = _concept(f"{_TERMINOLOGY}/adverse-event-outcome", *outcome)
        return _ordered(resource, _ADVERSE_EVENT_ORDER)


_OUTCOMES = {
    "recovered": ("resolved", "Resolved"),
    "recovering": ("recovering", "Recovering"),
    "not_recovered": ("ongoing", "Ongoing"),
    "recovered_with_sequelae": ("resolvedWithSequelae", "Resolved with Sequelae"),
    "fatal": ("fatal", "Fatal"),
    "unknown": ("unknown", "Unknown"),
}
