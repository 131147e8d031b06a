"""Importing every consent record of an ODM file: the ``consents`` table whole, with the ids the source gave them.

The export writes them (``trialwright.exports.odm.consents``): the consent a participant was enrolled on on
``tw:Enrolment`` (its id as ``ConsentId``), the participant's other consent records as ``tw:Consent`` in its
``tw:Enrolment`` after the withdrawals, and each screening never enrolled as a ``tw:Screening`` in ``ClinicalData``
(number, date, values, why not enrolled, its ``tw:Consent`` records if any, its AuditRecord and ``tw:History``: the
audit entries about it, ``screening.*`` and ``consent.*``, kept as recorded in its ``import.odm`` entry's ``recorded``
and ``earlier``, as an element's, so the export writes them back; a consent's ``RecordedBy`` of a screening with
records must be a User of the ``AdminData``).
``read_later`` checks a participant's while ``odm_import`` reads it, ``read_screening`` each screening as the file
is parsed (streamed: checked on the first reading, written on the second, then dropped); ``write_later`` and
``write_screening`` write them in the import's transaction with the ids the file gives (``consent_ids_past``: on
PostgreSQL the id sequence is moved past the largest), each screening with one ``import.odm`` entry (``screening``:
what was restored), a participant's later records in its own ``import.odm`` entry (``consents``).

Exactly or not at all: every attribute a record always has is required (``Id``, ``FormVersion``, ``GivenBy``,
``ObtainedBy``, ``ObtainedAt``, ``Kind``, ``Decision``, ``RecordedAt``, ``RecordedBy``), a time as the export writes it
(``exact_moment``), an id a positive whole number once in the file, a form version the protocol's, a kind and decision
the consent service accepts together (``record_consent``), a representative's consent with the representative's name and
relationship, a decision after regaining capacity the participant's own and after a representative's consent; an
attribute or element the export never writes is refused, never dropped. The assent and age-of-consent rules check a
record against what was in force when it was recorded (``ProtocolVersionInForce``, ``AgeInForce``,
``AssentRuleInForce``: ``values_in_force``; rules are compared, not version numbers), kept by the record's id in the
import's entry (``in_force``) so that the export writes them back. A ``tw:Screening`` names a screening of a site of the
protocol that no participant of the file was enrolled from. A file written before the export carried the consent records
has no ``ConsentId`` and none of these elements, and imports as before; one with ``ConsentId`` on some participants'
``tw:Enrolment`` but not others (or ``tw:Consent`` without it) is refused (``ConsentIds.seen``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text

from trialwright.domain.assent import assent_rule_digest
from trialwright.domain.eligibility import applies_if_problems, evaluate
from trialwright.protocol import Protocol
from trialwright.services import audit
from trialwright.services.odm_import_common import OdmImportError, odm_tag, parse_day
from trialwright.services.odm_import_elements import LATEST, read_element_history
from trialwright.services.odm_import_records import ASSENT_ATTRIBUTES, exact_moment
from trialwright.services.screening import _decision_detail, _dump, _typed_values
from trialwright.services.screening.consent import (
    consent_problem,
    dissent_problem,
    screening_assent_problem,
    screening_own_consent_problem,
)
from trialwright.services.screening.log import non_enrolment_problem
from trialwright.store.engine import inserted_id
from trialwright.store.screening_tables import consents, screenings

if TYPE_CHECKING:
    from trialwright.services.odm_import_reader import Reader
    from trialwright.services.odm_import_writer import Writer

__all__ = [
    "IN_FORCE",
    "IN_FORCE_KEY",
    "ConsentIds",
    "checked_assent",
    "consent_ids_past",
    "read_later",
    "read_screening",
    "reads_age",
    "refuse_enrolled_dissent",
    "take_in_force",
    "values_in_force",
    "write_later",
    "write_screening",
]

#: ``tw:Consent``'s attributes: the ``consents`` column each restores, and whether every record has it.
ATTRIBUTES = {
    "Id": ("id", True),
    "FormVersion": ("form_version", True),
    "GivenBy": ("given_by", True),
    "RepresentativeName": ("representative_name", False),
    "RepresentativeRelationship": ("representative_relationship", False),
    "Witness": ("witness", False),
    "ObtainedBy": ("obtained_by", True),
    "ObtainedAt": ("obtained_at", True),
    "Kind": ("kind", True),
    "Decision": ("decision", True),
    "RecordedAt": ("recorded_at", True),
    "RecordedBy": ("recorded_by", True),
    **{name: (column, False) for name, column in ASSENT_ATTRIBUTES.items()},
}
_SCREENING_ATTRIBUTES = ("ScreeningNumber", "ScreenedOn", "NonEnrolmentReason", "NonEnrolmentText")


@dataclass
class ConsentIds:
    """What the whole file has said so far about consent records: the ids read, the screenings enrolled, and whether
    its ``tw:Enrolment`` carry ``ConsentId`` (the first one read decides; a file mixing both is refused)."""

    ids: set[int] = field(default_factory=set)
    enrolled: set[str] = field(default_factory=set)
    never_enrolled: set[str] = field(default_factory=set)  # the screenings of tw:Screening read so far
    screenings: int = 0  # how many tw:Screening read so far
    with_ids: tuple[str, bool] | None = None

    def seen(self, there: bool, where: str) -> None:
        if self.with_ids is None:
            self.with_ids = (where, there)
        elif self.with_ids[1] != there:
            first, held = self.with_ids
            raise OdmImportError(
                f"{where}: {'present' if there else 'required'}, but {first} is {'present' if held else 'absent'}: a "
                "file carries every consent record with its id or none of them (a file written before the export "
                "carried them); some but not all is refused"
            )

    def new(self, text: str | None, where: str) -> int:
        if text is None or not text.isascii() or not text.isdigit() or text.startswith("0"):
            raise OdmImportError(f"{where}: {text!r} is not a consent record's id as the export writes one (a positive "
                                 "whole number in ASCII digits, no leading zero)")  # fmt: skip
        if int(text) in self.ids:
            raise OdmImportError(f"{where}: consent record {text} appears twice in the file")
        self.ids.add(int(text))
        return int(text)


def _ids(reader: Reader) -> ConsentIds:
    if reader.consent_ids is None:
        reader.consent_ids = ConsentIds()
    held: ConsentIds = reader.consent_ids
    return held


#: The attribute of ``tw:Consent`` that holds each field ``consent_problem`` names.
_FIELD_ATTRIBUTES = {"given_by": "GivenBy", "kind": "Kind", "decision": "Decision", "form_version": "FormVersion",
                     "representative_name": "RepresentativeName", "obtained_at": "ObtainedAt",
                     "representative_relationship": "RepresentativeRelationship"}  # fmt: skip


def _record(
    reader: Reader,
    elem: ET.Element,
    where: str,
    earlier: list[dict[str, Any]],
    screening: tuple[str, dt.date | None],
    values: dict[str, Any],
) -> dict[str, Any]:
    """One ``tw:Consent`` checked, as ``consents`` stores it (``earlier``: the screening's records before it;
    ``screening``: its site and date, None when the file does not say; ``values``: its screening values, which hold
    the age that decides whether assent was sought), by the rules ``record_consent`` applies (``consent_problem``,
    ``screening_assent_problem``)."""
    protocol: Protocol = reader.protocol
    strays = sorted(set(elem.attrib) - set(ATTRIBUTES) - set(IN_FORCE))
    if strays:
        raise OdmImportError(f"{where}/@{strays[0]}: the export never writes it; it cannot be restored, so it is "
                             "refused, never dropped")  # fmt: skip
    if len(elem) or (elem.text or "").strip():
        raise OdmImportError(f"{where}: the export writes nothing inside a tw:Consent (refused, never dropped)")
    tw = dict(elem.attrib)
    for name, (_, always) in ATTRIBUTES.items():
        if always and not tw.get(name, "").strip():
            raise OdmImportError(f"{where}/@{name}: required (a consent record is restored whole)")
    ids = _ids(reader)
    ids.seen(True, f"{where}/@Id")
    record: dict[str, Any] = {column: tw.get(name) for name, (column, _) in ATTRIBUTES.items()}
    record["id"] = ids.new(tw["Id"], f"{where}/@Id")
    for name in ("ObtainedAt", "RecordedAt"):
        record[ATTRIBUTES[name][0]] = exact_moment(tw[name], f"{where}/@{name}")
    if tw["GivenBy"] != "representative" and (tw.get("RepresentativeName") or tw.get("RepresentativeRelationship")):
        raise OdmImportError(f"{where}/@RepresentativeName: only a representative's consent names a representative")
    site, screened_on = screening
    problem = consent_problem(
        protocol, site=site, screened_on=screened_on or dt.date.min, form_version=tw["FormVersion"],
        given_by=tw["GivenBy"], obtained_at=record["obtained_at"], representative_name=tw.get("RepresentativeName"),
        representative_relationship=tw.get("RepresentativeRelationship"), kind=tw["Kind"], decision=tw["Decision"],
        earlier_given_by=[str(c["given_by"]) for c in earlier],
    )  # fmt: skip
    if problem is not None:
        field, _, why = problem.partition(": ")
        raise OdmImportError(f"{where}/@{_FIELD_ATTRIBUTES.get(field, field)}: {why} (the rule recording it applies)")
    checked_assent(protocol, record, (site, screened_on or dt.date.min, values),
                   (tw["GivenBy"], tw["Kind"], tw["Decision"]), where, tw)  # fmt: skip
    return record


#: The attributes of ``tw:Consent`` and ``tw:Enrolment`` that say what was in force when the consent record was
#: recorded (``trialwright.exports.odm.consents.in_force_attributes``): read, checked and used by the check, restored to
#: no column (the audit trail the export reads them from is the target's own).
IN_FORCE = ("ProtocolVersionInForce", "AgeInForce", "AssentRuleInForce")

#: ``AssentRuleInForce`` as the export writes it (``assent_rule_digest``).
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


#: The key of a record read here under which ``checked_assent`` holds what was in force (``[version, age, digest]``)
#: until
#: the writer takes it out (``take_in_force``) into its ``import.odm`` entry's ``in_force``, by the record's id.
IN_FORCE_KEY = "_in_force"


def take_in_force(records: list[tuple[int | None, dict[str, Any]]], where: str) -> dict[str, list[Any]]:
    """What was in force at each record (``records``: id and columns, as read), taken out of the columns, by id as
    text (``export_consents.in_force`` reads it back from the import's entry). A record without an id that carries it
    cannot be keyed, so it is refused, never dropped (the export writes both)."""
    out: dict[str, list[Any]] = {}
    for consent_id, record in records:
        held = record.pop(IN_FORCE_KEY, None)
        if held is None:
            continue
        if consent_id is None:
            raise OdmImportError(f"{where}/@ProtocolVersionInForce: present without ConsentId (the export writes both)")
        out[str(consent_id)] = held
    return out


def reads_age(protocol: Protocol, given_by: str, kind: str, decision: str) -> bool:
    """Whether the assent or age-of-consent rule reads the age for such a record: a representative's consent (not a
    decision after regaining capacity) is checked by ``eligibility.assent.from_age``, a participant's own record by
    ``consent_age``; for any other record the age decides nothing."""
    rule = protocol.eligibility.assent
    if rule is None:
        return False
    if given_by == "representative":
        return kind != "regained_capacity" and decision == "consent"
    return given_by == "participant" and rule.consent_age is not None


def values_in_force(
    protocol: Protocol, tw: dict[str, str], consent: tuple[str, str, str], values: dict[str, Any], where: str
) -> dict[str, Any]:
    """The screening values the rules check a consent record read from ``where`` against (``tw``: its attributes,
    ``consent``: its given_by, kind and decision; ``values``: the screening's values as the file ends): those with
    the age in force when it was recorded (``AgeInForce``, absent where none was recorded).

    Where the age decides the record (``reads_age``) the record is checked by the imported protocol's rule, so the
    rule in force when it was recorded must be that rule: the digest the file carries (``AssentRuleInForce``,
    ``assent_rule_digest``) must equal the imported protocol's, whatever the versions' numbers (an amendment that
    left the rule as it was re-imports); a record made under another rule cannot be checked by the rule it was
    made under (the import holds only the imported protocol), so it is refused naming the attribute and the rule,
    never guessed. A file written before the export carried the digest (``ProtocolVersionInForce`` without it) is
    accepted where the version is the imported protocol's (its rule is then that protocol's) and refused otherwise;
    one written before the export carried any of them is checked against its final values only where the age
    decides nothing, and refused where it does (the age may have been corrected since the record, and nothing in the
    file says what it was): export the trial again."""
    rule = protocol.eligibility.assent
    version, age_text, digest = (tw.get(name) for name in IN_FORCE)
    if digest is not None and _DIGEST.fullmatch(digest) is None:
        raise OdmImportError(f"{where}/@AssentRuleInForce: {digest!r} is not a digest as the export writes one "
                             "(sha256: and 64 lower-case hex digits)")  # fmt: skip
    if version is None and (age_text is not None or digest is not None):
        raise OdmImportError(f"{where}/@ProtocolVersionInForce: required with "
                             f"{'AgeInForce' if age_text is not None else 'AssentRuleInForce'}")  # fmt: skip
    if rule is None:
        if age_text is not None:
            raise OdmImportError(f"{where}/@AgeInForce: the export writes it only under a protocol that declares "
                                 "eligibility.assent; this one declares none (refused, never dropped)")  # fmt: skip
        return values
    if version is None:
        if not reads_age(protocol, *consent):
            return values
        raise OdmImportError(
            f"{where}/@ProtocolVersionInForce: required: the record is checked by eligibility.assent against the age "
            f"({rule.age_field}) and the rule in force when it was recorded, which this file does not carry (written "
            "before the export did: it predates ProtocolVersionInForce, AgeInForce and AssentRuleInForce); the age "
            "may have been corrected since, so the record cannot be checked; export the trial again"
        )
    if reads_age(protocol, *consent):
        current = assent_rule_digest(protocol)
        if digest is None and version != protocol.version.number:
            raise OdmImportError(
                f"{where}/@AssentRuleInForce: required: the record was recorded under protocol version {version}, and "
                "this file does not carry the eligibility.assent rule in force then (written before the export did: "
                f"it predates AssentRuleInForce), so it cannot be compared with the imported protocol's (version "
                f"{protocol.version.number}); export the trial again"
            )
        if digest is not None and digest != current:
            raise OdmImportError(
                f"{where}/@AssentRuleInForce: the record was recorded under protocol version {version} by an "
                f"eligibility.assent rule ({digest}) other than the imported protocol's (version "
                f"{protocol.version.number}: {current}); the import checks a record by the imported protocol's rule "
                "only, so this record cannot be checked by the rule it was recorded under: refused, never guessed"
            )
    held = dict(values)
    held.pop(rule.age_field, None)
    if age_text is not None:
        try:
            age: int | float = int(age_text) if age_text.lstrip("-").isdigit() else float(age_text)
        except ValueError:
            age = float("nan")
        if str(age) != age_text:
            raise OdmImportError(f"{where}/@AgeInForce: {age_text!r} is not a number as the export writes one")
        held[rule.age_field] = age
    return held


def checked_assent(
    protocol: Protocol,
    record: dict[str, Any],
    screening: tuple[str, dt.date, dict[str, Any]],
    consent: tuple[str, str, str],
    where: str,
    tw: dict[str, str],
) -> None:
    """The child's assent of a consent record read from ``where`` (``record``: its columns, the five assent ones as
    the file gives them, ``assent_obtained_at`` as text or None, replaced by the time), checked by the rule the
    consent service applies (``screening_assent_problem``: ``screening`` is the screening's site, date and values,
    ``consent`` the record's given_by, kind and decision), against the age in force when it was recorded
    (``values_in_force``, from ``tw``: the element's attributes); refused naming the attribute and the rule."""
    if record.get("assent_obtained_at") is not None:
        record["assent_obtained_at"] = exact_moment(record["assent_obtained_at"], f"{where}/@AssentObtainedAt")
    given_by, kind, decision = consent
    site, screened_on, values = screening
    values = values_in_force(protocol, tw, consent, values, where)
    if "ProtocolVersionInForce" in tw:  # kept in the import's entry, so that the export writes it back
        rule = protocol.eligibility.assent
        record[IN_FORCE_KEY] = [tw["ProtocolVersionInForce"], values.get(rule.age_field) if rule is not None else None,
                                tw.get("AssentRuleInForce")]
    problem = screening_assent_problem(
        protocol, site, screened_on, values, given_by=given_by, kind=kind, decision=decision,
        **{column: record.get(column) for column in ASSENT_ATTRIBUTES.values()},
    )  # fmt: skip
    if problem is not None:
        field, _, why = problem.partition(": ")
        names = {column: name for name, column in ASSENT_ATTRIBUTES.items()}
        raise OdmImportError(f"{where}/@{names.get(field, field)}: {why} (the rule recording it applies)")
    if isinstance(record.get("obtained_at"), dt.datetime):  # a participant's own consent below the age of consent
        problem = screening_own_consent_problem(protocol, site, screened_on, values, given_by=given_by,
                                                obtained_at=record["obtained_at"])  # fmt: skip
        if problem is not None:
            raise OdmImportError(f"{where}/@GivenBy: {problem.partition(': ')[2]} (the rule recording it applies)")


def refuse_enrolled_dissent(
    enrolled_on: dict[str, Any] | None,
    consent_id: int | None,
    later: list[dict[str, Any]],
    enrolled_at: dt.datetime,
    label: str,
    where: str,
) -> None:
    """A participant of the file enrolled although the latest consent record recorded before the enrolment (a
    decision after regaining capacity aside, as ``enrol`` reads it) carries the child's dissent is refused, in the
    words ``enrol`` refuses it with (``enrolled_on``: the consent on ``tw:Enrolment`` at ``where``, ``later``: its
    ``tw:Consent`` records)."""
    found = [({**enrolled_on, "id": consent_id or 0}, f"{where}/@Assent")] if enrolled_on is not None else []
    found += [(r, f"{where}/tw:Consent[{n}]/@Assent") for n, r in enumerate(later, start=1)]
    before = [(r, at) for r, at in found if r["kind"] != "regained_capacity" and r["recorded_at"] <= enrolled_at]
    if not before:
        return
    latest, at = max(before, key=lambda pair: int(pair[0]["id"]))
    if latest.get("assent") == "dissent":
        raise OdmImportError(f"{at}: {dissent_problem(label).partition(': ')[2]} (the rule enrolling applies)")


def read_later(
    reader: Reader,
    enrolment: ET.Element,
    where: str,
    enrolled_on: dict[str, Any] | None,
    screening: str,
    values: dict[str, Any],
) -> tuple[int | None, list[dict[str, Any]]]:
    """A participant's ``ConsentId`` (None in a file written before the export carried it) and its other consent
    records (``tw:Consent`` in its ``tw:Enrolment`` at ``where``), checked; ``enrolled_on``: the consent it was
    enrolled on, as ``read_consent`` read it; ``values``: the screening's values."""
    ids = _ids(reader)
    if screening in ids.enrolled:
        raise OdmImportError(f"{where}/@ScreeningNumber: {screening} is enrolled twice in the file")
    if screening in ids.never_enrolled:
        raise OdmImportError(f"{where}/@ScreeningNumber: {screening} is a tw:Screening of the file (never enrolled)")
    ids.enrolled.add(screening)
    found = enrolment.get("ConsentId")
    ids.seen(found is not None, f"{where}/@ConsentId")
    consent_id = ids.new(found, f"{where}/@ConsentId") if found is not None else None
    if consent_id is not None and enrolled_on is None:
        raise OdmImportError(f"{where}/@ConsentId: present without the consent's details (ConsentFormVersion, ...): "
                             "the consent record is restored whole")  # fmt: skip
    first = ({"given_by": enrolment.get("ConsentGivenBy")},) if enrolled_on is not None else ()
    later: list[dict[str, Any]] = []
    held = (screening.rpartition("-S")[0], parse_day(enrolment.get("ScreenedOn"), f"{where}/@ScreenedOn"))
    for n, elem in enumerate(enrolment.findall(reader.ext_tag("Consent")), start=1):
        later.append(_record(reader, elem, f"{where}/tw:Consent[{n}]", [*first, *later], held, values))
    return consent_id, later


def read_screening(reader: Reader, elem: ET.Element) -> dict[str, Any]:
    """One screening never enrolled with its consent records and audit records (a ``tw:Screening`` in
    ``ClinicalData``), checked; ``odm_import`` reads each as the file is parsed and drops it (streamed: the numbers
    seen are all that is held)."""
    ids = _ids(reader)
    ids.screenings += 1
    where = f"ClinicalData/tw:Screening[{ids.screenings}]"
    strays = sorted(set(elem.attrib) - set(_SCREENING_ATTRIBUTES))
    if strays:
        raise OdmImportError(f"{where}/@{strays[0]}: the export never writes it (refused, never dropped)")
    number = elem.get("ScreeningNumber") or ""
    site, _, digits = number.rpartition("-S")
    if site not in reader.protocol.site_codes or not digits.isdigit():
        raise OdmImportError(f"{where}/@ScreeningNumber: {number!r} is not a screening of a site of the protocol "
                             "(SITE-SNNNN)")  # fmt: skip
    if number in ids.enrolled:
        raise OdmImportError(f"{where}/@ScreeningNumber: {number} is the screening of a participant of the file; "
                             "its consent records are in that participant's tw:Enrolment")  # fmt: skip
    if number in ids.never_enrolled:
        raise OdmImportError(f"{where}/@ScreeningNumber: {number} appears twice")
    ids.never_enrolled.add(number)
    screened_on = parse_day(elem.get("ScreenedOn"), f"{where}/@ScreenedOn")
    if screened_on is None:
        raise OdmImportError(f"{where}/@ScreenedOn: required")
    values_elem = elem.find(reader.ext_tag("ScreeningValues"))
    try:
        values = json.loads(values_elem.text or "") if values_elem is not None else None
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, dict):
        raise OdmImportError(f"{where}/tw:ScreeningValues: required, a JSON object")
    for wrong in applies_if_problems(reader.protocol, _typed_values(reader.protocol, values))[:1]:
        raise OdmImportError(f"{where}/tw:ScreeningValues: {wrong} (the rule screening applies)")
    known = {reader.ext_tag("ScreeningValues"), reader.ext_tag("Consent"), odm_tag("AuditRecord"),
             reader.ext_tag("History")}
    for child in elem:
        if child.tag not in known:
            raise OdmImportError(f"{where}/{child.tag}: the export writes no such element here (refused, never "
                                 "dropped)")  # fmt: skip
    records: list[dict[str, Any]] = []
    for m, c in enumerate(elem.findall(reader.ext_tag("Consent")), start=1):
        records.append(_record(reader, c, f"{where}/tw:Consent[{m}]", records, (site, screened_on), values))
    recorded = reader.audit_record(elem, where, LATEST["screening"])
    earlier = read_element_history(reader, elem, recorded, "screening", where)
    for m, record in enumerate(records, start=1):  # who recorded a consent acted on the screening: listed
        if recorded is not None and record["recorded_by"] not in reader.users.values():
            raise OdmImportError(f"{where}/tw:Consent[{m}]/@RecordedBy: {record['recorded_by']} is not a User of "
                                 "the AdminData")  # fmt: skip
    if number != f"{site}-S{int(digits):04d}":
        raise OdmImportError(f"{where}/@ScreeningNumber: {number!r} is not written as the export writes a screening "
                             f"number ({site}-S{int(digits):04d})")  # fmt: skip
    reason = elem.get("NonEnrolmentReason")
    if reason is not None:
        decision = evaluate(reader.protocol, _typed_values(reader.protocol, values)).decision.value
        if (problem := non_enrolment_problem(reason, elem.get("NonEnrolmentText"), decision)) is not None:
            field, _, why = problem.partition(": ")
            attribute = "NonEnrolmentText" if field == "text" else "NonEnrolmentReason"
            raise OdmImportError(f"{where}/@{attribute}: {why} (the rule recording it applies)")
    return {"site": site, "number": int(digits), "label": number, "screened_on": screened_on, "values": values,
            "non_enrolment_reason": elem.get("NonEnrolmentReason"), "non_enrolment_text": elem.get("NonEnrolmentText"),
            "consents": records, "recorded": recorded, "earlier": earlier}  # fmt: skip


def _insert(writer: Writer, screening_id: int, records: list[dict[str, Any]]) -> None:
    for record in records:
        assert IN_FORCE_KEY not in record, "taken out by take_in_force first"
        writer.session.execute(consents.insert().values(screening_id=screening_id, **record))
        writer.counts["consents"] += 1


def kept(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consent records as an audit entry keeps them (times as text)."""
    return [{k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in r.items()} for r in records]


def write_later(writer: Writer, screening_id: int, records: list[dict[str, Any]]) -> None:
    """A participant's other consent records, with the ids the file gives (its import entry keeps them)."""
    _insert(writer, screening_id, records)


def write_screening(writer: Writer, s: dict[str, Any]) -> None:
    """A screening never enrolled and its consent records (``read_screening``), with one ``import.odm`` entry that
    keeps its audit records as recorded (``recorded``, ``earlier``)."""
    p = writer.protocol
    decision = evaluate(p, _typed_values(p, s["values"]))
    screening_id = inserted_id(
        writer.session,
        screenings.insert().values(
            site=s["site"], number=s["number"], screened_on=s["screened_on"], screening_values=_dump(s["values"]),
            decision=decision.decision.value, decision_detail=_dump(_decision_detail(decision)),
            protocol_version=p.version.number, non_enrolment_reason=s["non_enrolment_reason"],
            non_enrolment_text=s["non_enrolment_text"], created_at=writer.now,
            created_by=writer.actor.username, updated_at=writer.now,
        ),
    )  # fmt: skip
    in_force = take_in_force([(r["id"], r) for r in s["consents"]], f"ClinicalData/tw:Screening[{s['label']}]")
    _insert(writer, screening_id, s["consents"])
    audit.record(
        writer.session, actor=writer.actor.username, role=writer.actor.role.value, site=s["site"],
        form="consent", action="import.odm",
        new_value={"screening": {"screened_on": s["screened_on"].isoformat(), "values": s["values"],
                                 "non_enrolment_reason": s["non_enrolment_reason"],
                                 "non_enrolment_text": s["non_enrolment_text"]},
                   "consents": kept(s["consents"]), "recorded": s["recorded"], "earlier": s["earlier"],
                   **({"in_force": in_force} if in_force else {})},
        detail={**writer.detail, "screening": s["label"]},
    )  # fmt: skip
    writer.counts["screenings"] += 1
    writer.counts["records"] += s["recorded"] is not None
    writer.counts["earlier"] += len(s["earlier"])


def consent_ids_past(writer: Writer) -> None:
    """On PostgreSQL, the consents' id sequence moved past the largest id written (the ids are the file's)."""
    if writer.session.get_bind().dialect.name == "postgresql":
        largest = writer.session.execute(select(func.max(consents.c.id))).scalar()
        if largest:
            writer.session.execute(text("SELECT setval(pg_get_serial_sequence('consents', 'id'), :n)"), {"n": largest})
