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
name and relationship); the participant's own decision has the Patient as performer.

The child's assent recorded with a representative's consent (protocol ``eligibility.assent``) is a Consent of its own
right after it, as R4 records each person's consent statement (R4 has no assent element; R5's ``decision`` is R4's
``provision.type``): the Patient as performer, category ``Assent of a minor ...``, ``dateTime`` and the provision's
period start when it was sought, ``sourceReference`` the representative's Consent it goes with, the assent form
version in ``policyRule``'s text; ``given``: ``active`` (``inactive`` with its consent), provision ``permit``;
``dissent``: ``rejected``, provision ``deny``. An assent not sought is the child's statement never made: no Consent
(the reason is in the ODM and tabular exports)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from trialwright.exports.base import ConsentRecord, ParticipantRecord
from trialwright.exports.fhir_check import FhirExportError
from trialwright.exports.fhir_observations import TERMINOLOGY, concept, instant

__all__ = ["ASSENT_CATEGORY", "consent_resources"]

#: A consent decision -> (its Consent's status, its provision's type); a consent's status may become inactive.
_DECISIONS = {"consent": ("active", "permit"), "continue": ("active", "permit"), "refuse": ("rejected", "deny"),
              "withdraw": ("inactive", "deny")}  # fmt: skip
#: The child's assent -> (its Consent's status, its provision's type): a dissent is the child's refusal.
_ASSENTS = {"given": ("active", "permit"), "dissent": ("rejected", "deny")}
#: The category of the Consent that records a child's assent.
ASSENT_CATEGORY = "Assent of a minor to take part in the trial (beside a representative's consent)"
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
    #: The child's assent recorded with it (``eligibility.assent``): given, dissent, not_sought or None, when, and
    #: on which assent form.
    assent: tuple[str | None, dt.datetime | None, str | None] = (None, None, None)


_NO_ASSENT: tuple[str | None, dt.datetime | None, str | None] = (None, None, None)


def _rows(p: ParticipantRecord, records: Sequence[ConsentRecord]) -> list[_Row]:
    if records:
        return [
            _Row(r.id, r.kind, r.decision, r.given_by, (r.representative_name, r.representative_relationship),
                 r.form_version, r.obtained_at, (r.assent, r.assent_obtained_at, r.assent_form_version))
            for r in sorted(records, key=lambda r: r.id)
        ]  # fmt: skip
    if p.consented_at is None:
        return []
    details = p.consent
    representative = (details.representative_name, details.representative_relationship) if details else (None, None)
    assent = (details.assent, details.assent_obtained_at, details.assent_form_version) if details else _NO_ASSENT
    return [_Row(p.consent_id, details.kind if details else "initial", "consent", p.consent_given_by, representative,
                 details.form_version if details else None, p.consented_at, assent)]  # fmt: skip


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
        assent = _assent(row, consent, where, policy)
        if assent is not None:
            assent["id"] = pseudonym("assent", pid if enrolling else f"{pid}|{row.id}")
            consents.append(_ordered_assent(assent))
    return [*consents, *related.values()]


def _assent(row: _Row, consent: dict[str, Any], where: str, policy: str) -> dict[str, Any] | None:
    """The child's assent given or withheld with ``consent`` (a representative's) as a Consent of its own; None where
    none was sought or it was not sought (no statement of the child's to record)."""
    answer, at, form_version = row.assent
    if answer is None or answer == "not_sought":
        return None
    if answer not in _ASSENTS or at is None:
        raise FhirExportError(f"{where}: assent {answer!r} without the time it was sought is not known")
    status, provision = _ASSENTS[answer]
    if status == "active" and consent["status"] == "inactive":  # it goes with the consent it was given beside
        status = "inactive"
    rule = policy if form_version is None else f"{policy}, assent form version {form_version}"
    return {
        "resourceType": "Consent",
        "status": status,
        "scope": consent["scope"],
        "category": [{"text": ASSENT_CATEGORY}],
        "patient": consent["patient"],
        "dateTime": instant(at),
        "performer": [{"reference": consent["patient"]["reference"]}],
        "organization": consent["organization"],
        "sourceReference": {"reference": f"Consent/{consent['id']}"},
        "policyRule": {"text": rule},
        "provision": {"type": provision, "period": {"start": instant(at)}},
    }


def _ordered_assent(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": resource["resourceType"], "id": resource["id"],
            **{k: v for k, v in resource.items() if k not in {"resourceType", "id"}}}  # fmt: skip
