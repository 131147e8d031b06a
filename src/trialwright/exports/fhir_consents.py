"""A participant's consent records as FHIR R4 Consents: one per row of ``consents`` for their screening, in id order
(the consent they were enrolled on, a representative's or their own; a re-consent to a new form version; their own
decision after regaining capacity), each with the RelatedPerson of a legally authorised representative it names.

Status (R4 ``consent-state-codes``: draft | proposed | active | rejected | inactive | entered-in-error) and provision:

* a consent (``consent``, or ``continue`` after regaining capacity): ``active``, provision ``permit``; ``inactive``
  (terminated or replaced) once a later record of the participant replaces it (a re-consent or a decision after
  regaining capacity, whatever its decision) or once the participant withdrew from follow-up or from data use;
* a refusal (``refuse``): ``rejected``, provision ``deny``;
* a withdrawal after regaining capacity (``withdraw``): ``inactive``, provision ``deny``.

``dateTime`` and the provision's period start are when it was obtained; the consent form version is the
``sourceAttachment``'s title. A representative is a RelatedPerson with no name (one per representative named, by
name and relationship); the participant's own decision has the Patient as performer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from trialwright.exports.base import ConsentRecord, ParticipantRecord
from trialwright.exports.fhir_check import FhirExportError
from trialwright.exports.fhir_observations import TERMINOLOGY, concept, instant

__all__ = ["consent_resources"]

#: A consent decision -> (its Consent's status, its provision's type); a consent's status may become inactive.
_DECISIONS = {"consent": ("active", "permit"), "continue": ("active", "permit"), "refuse": ("rejected", "deny"),
              "withdraw": ("inactive", "deny")}  # fmt: skip
#: The kinds of record that replace the participant's earlier consents.
_REPLACING = frozenset({"reconsent", "regained_capacity"})


@dataclass(frozen=True, slots=True)
class _Row:
    """What a Consent is made of: a row of ``consents``, or the enrolling consent a source gives only in the
    ParticipantRecord."""

    id: int | None
    kind: str
    decision: str
    given_by: str | None
    representative: tuple[str | None, str | None]
    form_version: str | None
    obtained_at: dt.datetime


def _rows(p: ParticipantRecord, records: Sequence[ConsentRecord]) -> list[_Row]:
    if records:
        return [
            _Row(r.id, r.kind, r.decision, r.given_by, (r.representative_name, r.representative_relationship),
                 r.form_version, r.obtained_at)
            for r in sorted(records, key=lambda r: r.id)
        ]  # fmt: skip
    if p.consented_at is None:
        return []
    details = p.consent
    representative = (details.representative_name, details.representative_relationship) if details else (None, None)
    return [_Row(p.consent_id, details.kind if details else "initial", "consent", p.consent_given_by, representative,
                 details.form_version if details else None, p.consented_at)]  # fmt: skip


def consent_resources(
    p: ParticipantRecord,
    records: Sequence[ConsentRecord],
    patient_id: str,
    organization: str,
    policy: str,
    pseudonym: Callable[[str, str], str],
) -> list[dict[str, Any]]:
    """The participant's Consents (``records``: their rows of ``consents``; none: the enrolling consent the
    ParticipantRecord gives, if any), then the RelatedPersons they name. ``organization`` is the site's Organization
    id, ``policy`` the policy rule's text."""
    pid = p.participant_id
    rows = _rows(p, records)
    withdrawn = bool({w[0] for w in p.withdrawals} & {"follow_up", "data_use"})
    replaced_from = max((i for i, r in enumerate(rows) if r.kind in _REPLACING), default=-1)
    consents: list[dict[str, Any]] = []
    related: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for i, row in enumerate(rows):
        where = f"{pid}: consent record {row.id}" if row.id is not None else f"{pid}: consent"
        if row.decision not in _DECISIONS:
            raise FhirExportError(f"{where}: decision {row.decision!r} is not known")
        status, provision = _DECISIONS[row.decision]
        if status == "active" and (withdrawn or i < replaced_from):
            status = "inactive"
        if row.given_by == "participant":
            performer = f"Patient/{patient_id}"
        elif row.given_by == "representative":
            person = related.get(row.representative)
            if person is None:
                person = related[row.representative] = {
                    "resourceType": "RelatedPerson",
                    "id": pseudonym("representative", pid if not related else f"{pid}|{row.id}"),
                    "patient": {"reference": f"Patient/{patient_id}"},
                    "relationship": [{"text": "Legally authorised representative"}],
                }
            performer = f"RelatedPerson/{person['id']}"
        else:
            raise FhirExportError(f"{where}: consent given by {row.given_by!r} is not known")
        enrolling = row.id is None or row.id == p.consent_id or (p.consent_id is None and i == 0)
        consent: dict[str, Any] = {
            "resourceType": "Consent",
            "id": pseudonym("consent", pid if enrolling else f"{pid}|{row.id}"),
            "status": status,
            "scope": concept(f"{TERMINOLOGY}/consentscope", "research", "Research"),
            "category": [{"text": "Informed consent to take part in the trial"}],
            "patient": {"reference": f"Patient/{patient_id}"},
            "dateTime": instant(row.obtained_at),
            "performer": [{"reference": performer}],
            "organization": [{"reference": f"Organization/{organization}"}],
        }
        if row.form_version is not None:
            consent["sourceAttachment"] = {"title": f"Consent form version {row.form_version}"}
        consent["policyRule"] = {"text": policy}
        consent["provision"] = {"type": provision, "period": {"start": instant(row.obtained_at)}}
        consents.append(consent)
    return [*consents, *related.values()]
