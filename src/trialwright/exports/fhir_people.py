"""The people of a FHIR export: the principal investigators the protocol names, as a Practitioner and a
PractitionerRole each.

FHIR R4 has no code for a principal investigator: ``PractitionerRole.code`` is bound (example strength) to
``practitioner-role``, whose nearest code is ``researcher``, and R4's ResearchStudy names its investigator only by
the element ``principalInvestigator``. FHIR R5 added the code system ``http://hl7.org/fhir/research-study-party-role``
(for ``ResearchStudy.associatedParty.role``), whose ``primary-investigator`` is "an investigator who is responsible
for all aspects of the conduct of a study"; an example binding takes any code, so each investigator's
PractitionerRole carries that coding, without a display (R5 and its later builds word it differently), and the
text "Principal investigator". Only what the protocol declares is written: a name, a degree as a qualification,
an address and phone or e-mail. A centre's responsible person (the registry's word) is not taken for its
investigator.
"""

from __future__ import annotations

from typing import Any

from trialwright.protocol.registry import Address, Investigator

__all__ = ["PARTY_ROLE_SYSTEM", "address", "investigator_resources"]

PARTY_ROLE_SYSTEM = "http://hl7.org/fhir/research-study-party-role"
_PRINCIPAL = {
    "coding": [{"system": PARTY_ROLE_SYSTEM, "code": "primary-investigator"}],
    "text": "Principal investigator",
}


def address(where: Address) -> dict[str, Any] | None:
    """A FHIR Address of the declared parts (in the specification's element order), or None when none is."""
    shape = {
        "line": [where.street] if where.street else None,
        "city": where.city,
        "state": where.province,
        "postalCode": where.postal_code,
        "country": where.country,
    }
    shape = {k: v for k, v in shape.items() if v}
    return shape or None


def telecom(where: Address) -> list[dict[str, str]]:
    """The declared phone and e-mail as ContactPoints."""
    pairs = (("phone", where.phone), ("email", where.email))
    return [{"system": kind, "value": value} for kind, value in pairs if value]


def investigator_resources(
    person: Investigator, ident: str, organization: str | None = None, location: str | None = None
) -> list[dict[str, Any]]:
    """The investigator as ``Practitioner/<ident>`` and ``PractitionerRole/<ident>`` coded principal investigator,
    at the centre's Organization and Location when given (the references are the caller's, inside its bundle)."""
    practitioner: dict[str, Any] = {"resourceType": "Practitioner", "id": ident, "name": [{"text": person.name}]}
    contact = telecom(person.address)
    if contact:
        practitioner["telecom"] = contact
    where = address(person.address)
    if where:
        practitioner["address"] = [where]
    if person.degree:
        practitioner["qualification"] = [{"code": {"text": person.degree}}]
    role: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": ident,
        "practitioner": {"reference": f"Practitioner/{ident}", "display": person.name},
    }
    if organization:
        role["organization"] = {"reference": f"Organization/{organization}"}
    role["code"] = [_PRINCIPAL]
    if location:
        role["location"] = [{"reference": f"Location/{location}"}]
    return [practitioner, role]
