"""Every consent record in the ODM file: the ``consents`` table whole, not only the consent a participant was enrolled
on.

The consent a participant was enrolled on (the first with the decision ``consent``) stays on ``tw:Enrolment``'s
attributes, with its record's id as ``ConsentId``. Every other consent record is a ``tw:Consent`` (``Id``,
``FormVersion``, ``GivenBy``, ``RepresentativeName``, ``RepresentativeRelationship``, ``Witness``, ``ObtainedBy``,
``ObtainedAt``, ``Kind``, ``Decision``, ``RecordedAt``, ``RecordedBy``: every column of the row), by id:

* in the participant's ``tw:Enrolment``, after the withdrawals, for a screening that was enrolled (a representative's
  consent followed by the participant's own after regaining capacity, a re-consent to a new consent form version, a
  refusal before a later consent, a decision to withdraw);
* in a ``tw:Screening`` in ``ClinicalData``, after the participants and before the DSMB's decisions, for a screening
  never enrolled (a refusal at screening): the screening's number, date, values (``tw:ScreeningValues``) and why it was
  not enrolled, then its consent records.

A screening never enrolled that has no consent record is not in the file (the screening log is not what ODM carries).
The consents are read once, before the participants stream (a few rows a screening), and held by screening number.
The audit entries about a consent that names a participant (a decision after enrolment) are in that participant's
``tw:History`` (``element_history``); an entry about a consent made before its screening was enrolled names no
participant and is not in the file (said in ``NOT_RESTORED``).

Masking: a consent record names no arm (who gave it, who obtained it, the form version, the decision), nor does a
screening's values (eligibility answers, stratification variables as entered); nothing here reads an arm.
"""

from __future__ import annotations

from collections.abc import Iterable

from trialwright.exports.base import ConsentRecord, ParticipantRecord
from trialwright.exports.odm.values import json_text
from trialwright.exports.odm.xmlstream import XmlStream

__all__ = ["ConsentsHeld"]


def _attrs(c: ConsentRecord) -> dict[str, str | None]:
    return {
        "Id": str(c.id), "FormVersion": c.form_version, "GivenBy": c.given_by,
        "RepresentativeName": c.representative_name, "RepresentativeRelationship": c.representative_relationship,
        "Witness": c.witness, "ObtainedBy": c.obtained_by, "ObtainedAt": c.obtained_at.isoformat(), "Kind": c.kind,
        "Decision": c.decision, "RecordedAt": c.recorded_at.isoformat(), "RecordedBy": c.recorded_by,
    }  # fmt: skip


class ConsentsHeld:
    """The trial's consent records by screening number, read once; each written where it belongs."""

    def __init__(self, records: Iterable[ConsentRecord]) -> None:
        self.by_screening: dict[str, list[ConsentRecord]] = {}
        for c in records:
            self.by_screening.setdefault(c.screening_number, []).append(c)

    def write_later(self, xml: XmlStream, p: ParticipantRecord) -> None:
        """The participant's consent records other than the one it was enrolled on (in its ``tw:Enrolment``)."""
        for c in self.by_screening.pop(p.screening_number, ()):
            if p.consent_id is None or c.id != p.consent_id:
                xml.leaf("tw:Consent", _attrs(c))

    def write_screenings(self, xml: XmlStream) -> None:
        """``tw:Screening`` per screening never enrolled that has consent records, by its first record's id."""
        for number, records in self.by_screening.items():
            first = records[0]
            if first.participant_id is not None:  # a participant not written (another site's): not this file's
                continue
            attrs = {"ScreeningNumber": number, "ScreenedOn": first.screened_on.isoformat(),
                     "NonEnrolmentReason": first.non_enrolment_reason,
                     "NonEnrolmentText": first.non_enrolment_text}  # fmt: skip
            with xml.element("tw:Screening", attrs):
                xml.leaf("tw:ScreeningValues", text=json_text(dict(first.screening_values)))
                for c in records:
                    xml.leaf("tw:Consent", _attrs(c))
        self.by_screening.clear()
