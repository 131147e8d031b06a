"""The first trial's protocol file holds every element of its registry record."""

from __future__ import annotations

import datetime as dt

import pytest

from trialwright.protocol import Protocol, load_protocol


@pytest.fixture(scope="module")
def p(first_protocol_path) -> Protocol:  # type: ignore[no-untyped-def]
    return load_protocol(first_protocol_path).protocol


def test_registration(p: Protocol) -> None:
    assert p.trial_id == "IRCT20190101042197N2"
    assert p.trial.registration.date == dt.date(2021, 4, 19)
    assert p.trial.registration.timing == "prospective"
    assert p.trial.registration.last_update == dt.date(2025, 8, 30)
    assert p.trial.registration.update_count == 1
    assert p.trial.recruitment_status.value == "complete"
    assert p.trial.dates.expected_recruitment_start == dt.date(2021, 5, 20)
    assert p.trial.dates.expected_recruitment_end == dt.date(2021, 9, 22)
    assert p.trial.dates.actual_recruitment_start is None
    assert p.trial.phase.value == "1"


def test_titles_and_design(p: Protocol) -> None:
    assert p.trial.titles.public == "Umbilical cord exosomes for reducing inflammation in COVID-19 ARDS"
    assert p.trial.titles.scientific.startswith("Randomized, double-blind, placebo-controlled")
    assert p.trial.titles.scientific.endswith("(Pilot study)")
    assert p.trial.design.placebo and p.trial.design.assignment == "parallel"
    assert [m.value for m in p.masking.masked] == ["participant", "investigator", "outcome_assessor"]


def test_ethics_condition_sponsor(p: Protocol) -> None:
    (ethics,) = p.trial.ethics_committees
    assert ethics.reference_number == "IR.AJUMS.REC.1399.954"
    assert ethics.approval_date == dt.date(2021, 3, 17)
    assert ethics.address.postal_code == "1579461357"
    assert [c.icd10 for c in p.trial.conditions] == ["J80"]
    assert p.trial.sponsors[0].organisation == "Danesh Bonyan Company: Tarmim Avaye Baran"
    assert p.trial.funding[0].proportion == 100 and p.trial.funding[0].sector == "private"


def test_contacts(p: Protocol) -> None:
    c = p.trial.contacts
    assert c.general.name == "Mehrdad Dargahi" and c.general.address.email == "Dargahi-m@ajums.ac.ir"
    assert c.scientific.name == "Alireza Shoaee Hassani" and c.scientific.address.email == "cell.therapy@yahoo.com"
    assert c.updating.name == "Mandana Pouladzadeh"


def test_sites(p: Protocol) -> None:
    assert p.site_codes == ["RAZ", "GOL"]
    assert p.site("RAZ").name == "Razi hospital" and p.site("RAZ").responsible_person == "Reza Khedri"
    assert p.site("GOL").address.postal_code == "613683568"
    assert {s.timezone for s in p.sites} == {"Asia/Tehran"}


def test_arms_and_sample_size(p: Protocol) -> None:
    assert [(a.code, a.role.value, a.ratio) for a in p.arms] == [
        ("EXO", "experimental", 1),
        ("PBO", "placebo_comparator", 1),
    ]
    exo = p.arm_by_code("EXO").intervention
    assert exo.route == "intravenous" and exo.volume is not None
    assert (exo.volume.min, exo.volume.max, exo.volume.unit) == (2, 5, "mL")
    assert p.sample_size.target == 30 and p.sample_size.per_arm == {"EXO": 15, "PBO": 15}


def test_nine_primary_outcomes_in_record_order(p: Protocol) -> None:
    assert [o.description for o in p.primary_outcomes] == [
        "Tumor necrosis factor alpha (TNF- α)",
        "CRP",
        "Serious Adverse Event (SAEs)",
        "IL-6",
        "CD3+, CD4+, CD8+ lymphocytes",
        "D-dimer",
        "PRIEST score",
        "Chest imaging",
        "Length of hospital stay",
    ]
    timepoints = [o.registry_timepoint for o in p.primary_outcomes]
    assert timepoints[0] == "Baseline to day 7" and timepoints[7] == "Changes on day 3"
    assert p.outcomes[2].method_of_measurement == "Recorded from medical records and direct observation"


def test_eligibility_covers_the_record(p: Protocol) -> None:
    inclusion = {c.id: c.rule for c in p.eligibility.inclusion}
    assert inclusion["I1"].between == (18, 65)
    assert inclusion["I3"].field == "pf_ratio" and inclusion["I3"].lt == 200
    assert len(p.eligibility.exclusion) == 15
    excluded = set().union(*(c.rule.fields() for c in p.eligibility.exclusion))
    for condition in (
        "malignancy",
        "pregnant",
        "hepatic_failure",
        "renal_failure",
        "lung_transplant",
        "bone_marrow_transplant",
        "dialysis",
        "active_epilepsy",
        "coagulopathy",
        "concurrent_trial",
        "trauma",
        "contagious_infection",
    ):
        assert condition in excluded


def test_randomization_and_visits(p: Protocol) -> None:
    assert p.randomization.method == "stratified_permuted_blocks"
    assert p.randomization.block_sizes == [2, 4]
    assert [v.id for v in p.visits] == ["baseline", "infusion", "day1", "day3", "day7", "discharge"]
    assert "labs" in p.visit("day7").forms and "chest_xray" in p.visit("day3").forms


def test_units_and_derivations(p: Protocol) -> None:
    crp = p.field("labs", "crp")
    assert crp.unit == "mg/L" and [(u.unit, u.factor) for u in crp.alternative_units] == [("mg/dL", 10)]
    assert p.field("blood_gas", "pf_ratio").derived is not None
    assert p.field("vitals", "priest_score").derived.name == "priest_score"  # type: ignore[union-attr]


def test_amendment_carries_the_reason_for_update(p: Protocol) -> None:
    (amendment,) = p.amendments
    assert amendment.number == 1 and amendment.version == p.version.number == "2.0"
    assert amendment.reason.startswith("During the implementation of this trial")
    assert amendment.reason.endswith("necessitated the present update of the IRCT record.")
    assert p.trial.sharing.ipd.shared and p.trial.sharing.access_delay_months == 6
