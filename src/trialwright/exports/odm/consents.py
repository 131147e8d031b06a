"""Every consent record in the ODM file: the ``consents`` table whole, not only the consent a participant was enrolled
on.

The consent a participant was enrolled on (the first with the decision ``consent``) stays on ``tw:Enrolment``'s
attributes, with its record's id as ``ConsentId``. Every other consent record is a ``tw:Consent`` (``Id``,
``FormVersion``, ``GivenBy``, ``RepresentativeName``, ``RepresentativeRelationship``, ``Witness``, ``ObtainedBy``,
``ObtainedAt``, ``Kind``, ``Decision``, ``RecordedAt``, ``RecordedBy``, and the child's assent recorded with it where
one was sought, ``Assent``, ``AssentObtainedBy``, ``AssentObtainedAt``, ``AssentFormVersion``,
``AssentNotSoughtReason``: every column of the row, and what was in force when it was recorded, which the assent and
age-of-consent rules read: ``ProtocolVersionInForce``, ``AgeInForce`` and ``AssentRuleInForce``,
``in_force_attributes``), by id (the consent
on ``tw:Enrolment`` carries its assent and what was in force in the same attributes):

* in the participant's ``tw:Enrolment``, after the withdrawals, for a screening that was enrolled (a representative's
  consent followed by the participant's own after regaining capacity, a re-consent to a new consent form version, a
  refusal before a later consent, a decision to withdraw);
* in a ``tw:Screening`` in ``ClinicalData``, after the participants and before the DSMB's decisions, for a screening
  never enrolled (a refusal at screening, a screen failure, one with no decision yet): the screening's number, date,
  why it was not enrolled, its AuditRecord (the latest audit entry about it), values (``tw:ScreeningValues``), its
  consent records if any, then its earlier audit entries (``tw:History``, as an element's: ``element_history``).

Every screening never enrolled is in the file, streamed from the source in the order screened
(``ExportSource.screenings_never_enrolled``). The consents are read once, before the participants stream (a few rows a
screening), and held by screening number. The audit entries about a screening never enrolled (``screening.*``:
created, its values and eligibility changed, why it was not enrolled; ``consent.*``) name no participant: the index
keys them by the screening (``audit_index.SCREENING``). The audit entries about a consent that names a participant (a
decision after enrolment) are in that participant's ``tw:History`` (``element_history``). The entries about an
enrolled screening made before it was enrolled (``screening.created``, ``screening.changed``, ``consent.*``) name no
participant either, nor does a change of its values after (``screening.changed``): keyed by the screening as well,
they are the ``tw:History`` of the participant's ``tw:Enrolment`` (after its consent records), every one a
``tw:Earlier`` with its ``Action``, oldest first (the enrolment itself, ``participant.enrolled``, is the participant's
own record, so none of them is the latest of anything).

Masking: a consent record names no arm (who gave it, who obtained it, the form version, the decision), nor does a
screening's values (eligibility answers, stratification variables as entered); nothing here reads an arm. The
screening's audit entries are read masked for the exporter as every other (``ExportSource.audit_columns``).
"""

from __future__ import annotations

from collections.abc import Iterable

from trialwright.exports.base import ConsentDetails, ConsentRecord, ParticipantRecord, ScreeningRecord
from trialwright.exports.odm.audit_index import SCREENING
from trialwright.exports.odm.element_history import AuditWriter, write_element_history
from trialwright.exports.odm.indexed import Audits
from trialwright.exports.odm.values import json_text
from trialwright.exports.odm.xmlstream import XmlStream

__all__ = ["ConsentsHeld", "assent_attributes", "in_force_attributes"]


def _attrs(c: ConsentRecord) -> dict[str, str | None]:
    return {
        "Id": str(c.id), "FormVersion": c.form_version, "GivenBy": c.given_by,
        "RepresentativeName": c.representative_name, "RepresentativeRelationship": c.representative_relationship,
        "Witness": c.witness, "ObtainedBy": c.obtained_by, "ObtainedAt": c.obtained_at.isoformat(), "Kind": c.kind,
        "Decision": c.decision, "RecordedAt": c.recorded_at.isoformat(), "RecordedBy": c.recorded_by,
        **assent_attributes(c), **in_force_attributes(c),
    }  # fmt: skip


def in_force_attributes(c: ConsentRecord | None) -> dict[str, str | None]:
    """What was in force when the consent record was recorded, as its attributes: the protocol version
    (``ProtocolVersionInForce``), the value of ``eligibility.assent.age_field`` (``AgeInForce``, none where the age
    was not recorded or the protocol declares no assent) and the digest of the assent rule in force
    (``AssentRuleInForce``, ``trialwright.domain.assent.assent_rule_digest``: ``sha256:`` and 64 hex digits; none for
    a record an import restored before the import kept it); none where the trial's audit trail does not tell
    (``trialwright.services.export_consents``)."""
    if c is None or c.in_force is None:
        return {}
    version, age, rule = c.in_force
    return {"ProtocolVersionInForce": version, "AgeInForce": None if age is None else str(age),
            "AssentRuleInForce": rule}  # fmt: skip


def assent_attributes(c: ConsentRecord | ConsentDetails) -> dict[str, str | None]:
    """The child's assent recorded with a consent (``eligibility.assent``) as the attributes of its ``tw:Consent`` or
    ``tw:Enrolment``: none where no assent was sought."""
    return {
        "Assent": c.assent, "AssentObtainedBy": c.assent_obtained_by,
        "AssentObtainedAt": None if c.assent_obtained_at is None else c.assent_obtained_at.isoformat(),
        "AssentFormVersion": c.assent_form_version, "AssentNotSoughtReason": c.assent_not_sought_reason,
    }  # fmt: skip


class ConsentsHeld:
    """The trial's consent records by screening number, read once; each written where it belongs."""

    def __init__(self, records: Iterable[ConsentRecord]) -> None:
        self.by_screening: dict[str, list[ConsentRecord]] = {}
        for c in records:
            self.by_screening.setdefault(c.screening_number, []).append(c)

    def record(self, screening_number: str, consent_id: int | None) -> ConsentRecord | None:
        """The consent record ``consent_id`` of the screening (the one a participant was enrolled on), if held."""
        return next((c for c in self.by_screening.get(screening_number, ()) if c.id == consent_id), None)

    def write_later(self, xml: XmlStream, p: ParticipantRecord, index: Audits, audit_record: AuditWriter) -> None:
        """The participant's consent records other than the one it was enrolled on, then the audit entries about its
        screening before it was enrolled (``tw:History``, every one a ``tw:Earlier``), in its ``tw:Enrolment``."""
        for c in self.by_screening.pop(p.screening_number, ()):
            if p.consent_id is None or c.id != p.consent_id:
                xml.leaf("tw:Consent", _attrs(c))
        before = index.about(f"{SCREENING}{p.screening_number}")  # they name no participant: keyed by the screening
        records = [*before.subject_history, before.subject] if before.subject is not None else []
        write_element_history(xml, records, p.site, audit_record)

    def write_screenings(
        self, xml: XmlStream, found: Iterable[ScreeningRecord], index: Audits, audit_record: AuditWriter
    ) -> None:
        """``tw:Screening`` per screening never enrolled (``found``, streamed), with its AuditRecord (the latest entry
        about it), values, consent records and earlier records (``tw:History``)."""
        for s in found:
            audited = index.about(f"{SCREENING}{s.screening_number}")
            attrs = {"ScreeningNumber": s.screening_number, "ScreenedOn": s.screened_on.isoformat(),
                     "NonEnrolmentReason": s.non_enrolment_reason,
                     "NonEnrolmentText": s.non_enrolment_text}  # fmt: skip
            with xml.element("tw:Screening", attrs):
                audit_record(audited.subject, s.site)
                xml.leaf("tw:ScreeningValues", text=json_text(dict(s.screening_values)))
                for c in self.by_screening.pop(s.screening_number, ()):
                    xml.leaf("tw:Consent", _attrs(c))
                write_element_history(xml, audited.subject_history, s.site, audit_record)
        self.by_screening.clear()  # what is left: of participants not written (another site's)
