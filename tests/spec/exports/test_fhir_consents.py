"""A FHIR Consent for each consent record of a participant (both databases), not only the one they were enrolled on.

The trial of the ODM consents spec (``test_odm_consents``: consent form versions 1.0 and 2.0), through the services:

| participant | consent records, by id                                | its Consents (status, provision, performer)  |
|-------------|-------------------------------------------------------|----------------------------------------------|
| RAZ-001     | a representative consents on 1.0                      | inactive (replaced), permit, RelatedPerson   |
|             | the participant, having regained capacity, continues  | active, permit, Patient                      |
| RAZ-002     | the participant consents on 1.0                       | inactive (replaced), permit, Patient         |
|             | the participant re-consents on 2.0                    | active, permit, Patient                      |
| (RAZ-S0003) | refuses at screening: never enrolled, no bundle       |                                              |
| RAZ-003     | a representative consents on 1.0                      | inactive (withdrawn), permit, RelatedPerson  |
|             | the participant, having regained capacity, withdraws  | inactive, deny, Patient                      |

Each Consent's dateTime and provision start are when it was obtained, its sourceAttachment names the consent form
version; the Consent each participant was enrolled on keeps the id it had when it was the only one. Every resource
validates with the R4B models and every reference resolves inside its bundle; the RelatedPerson carries no name.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.spec.exports.test_fhir import _references
from tests.spec.exports.test_odm_consents import _consents, _two_versions
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.fhir import FhirExporter, FhirSample
from trialwright.services.exports import export_source

KEY = b"a key the data manager keeps, 32b"

#: participant -> each Consent in id order: (status, provision type, performer kind, form version).
EXPECTED = {
    "RAZ-001": [("inactive", "permit", "RelatedPerson", "1.0"), ("active", "permit", "Patient", "1.0")],
    "RAZ-002": [("inactive", "permit", "Patient", "1.0"), ("active", "permit", "Patient", "2.0")],
    "RAZ-003": [("inactive", "permit", "RelatedPerson", "1.0"), ("inactive", "deny", "Patient", "1.0")],
}


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url, _two_versions())
    yield t
    t.engine.dispose()


def _entries(path: Path) -> list[dict[str, Any]]:
    return [e["resource"] for e in json.loads(path.read_text(encoding="utf-8"))["entry"]]


def test_each_consent_record_is_a_consent_by_whoever_gave_it(trial: Trial, tmp_path: Path) -> None:
    _consents(trial)
    source = export_source(trial.engine, who(trial, Role.DATA_MANAGER))
    obtained = {}  # participant -> the obtained times of their records, by id
    for c in source.consents():
        if c.participant_id is not None:
            # FHIR instants are written to the second
            obtained.setdefault(c.participant_id, []).append(c.obtained_at.replace(microsecond=0))
    exporter = FhirExporter(key=KEY, sample=FhirSample(first=0, rate=1))  # every resource validated
    exporter.write(source, tmp_path)
    assert exporter.validated["Consent"] == 6
    assert sorted(p.name for p in (tmp_path / "participants").iterdir()) == [f"{p}.json" for p in EXPECTED]
    for pid, expected in EXPECTED.items():
        resources = _entries(tmp_path / "participants" / f"{pid}.json")
        inside = {f"{r['resourceType']}/{r['id']}" for r in resources}
        assert len(inside) == len(resources) and not {x for r in resources for x in _references(r)} - inside, pid
        [patient] = [r for r in resources if r["resourceType"] == "Patient"]
        related = [r for r in resources if r["resourceType"] == "RelatedPerson"]
        by_representative = any(kind == "RelatedPerson" for _, _, kind, _ in expected)
        assert [set(r) for r in related] == [{"resourceType", "id", "patient", "relationship"}] * by_representative
        assert all(r["patient"] == {"reference": f"Patient/{patient['id']}"} for r in related)  # no name above
        consents = [r for r in resources if r["resourceType"] == "Consent"]
        seen = []
        for consent, at in zip(consents, obtained[pid], strict=True):
            [performer] = consent["performer"]
            kind, ident = performer["reference"].split("/")
            assert ident == (patient["id"] if kind == "Patient" else related[0]["id"])
            assert consent["patient"] == {"reference": f"Patient/{patient['id']}"}
            assert dt.datetime.fromisoformat(consent["dateTime"]) == at
            assert dt.datetime.fromisoformat(consent["provision"]["period"]["start"]) == at
            version = consent["sourceAttachment"]["title"].removeprefix("Consent form version ")
            seen.append((consent["status"], consent["provision"]["type"], kind, version))
        assert seen == expected, pid
        assert consents[0]["id"] == exporter.pseudonym("consent", pid)  # the enrolling one keeps its id
