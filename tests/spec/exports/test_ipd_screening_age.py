"""The IPD bands the age wherever demographics.age's source lives, and its README says only what is true.

A new user's walk: ``deidentification.age_field: screening.age`` (the age at screening, a source demographics.age
accepts) was refused, so the package held no age at all; its README still said "Ages: in bands of 10 years" and
"k-anonymity over nothing: 1 groups". Now:

* a screening field's age is read from the screening record and shared banded, as ``age`` in participants.csv
  (the screening record's other values are not shared), in the unit demographics.age declares; the k-anonymity
  check groups by the same bands;
* the README names where the banded age is, and says nothing of ages when the package holds none;
* with no quasi-identifier (a version stored before ``protocol check`` refused that) the check says plainly that
  nothing was assessed, and the package is refused, never issued as if it had passed.

The bands are checked against the screening values read from the database with SQL and banded here by hand
(width 20, 90+ above 89), never by the exporter's own function. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.ipd import IpdError, IpdExporter
from trialwright.protocol import load_protocol_text
from trialwright.services.exports import ExportError, export_source, run_export
from trialwright.services.sharing import check_kanonymity
from trialwright.services.simulation import simulate

FIRST = FIRST_PROTOCOL.read_text(encoding="utf-8")
RULES = """deidentification:
  identifiers: [demographics.birth_date]
  dates: study_days
  age_field: demographics.age_at_enrolment
  age_band_width: 20
  age_top: 89
  keep_site: false
  quasi_identifiers: [demographics.sex, age]
  k: 3
"""
#: The age at screening banded; the form's age at enrolment removed (shared exactly it would undo the bands).
SCREENING_AGE = RULES.replace("age_field: demographics.age_at_enrolment", "age_field: screening.age").replace(
    "identifiers: [demographics.birth_date]", "identifiers: [demographics.birth_date, demographics.age_at_enrolment]"
).replace("quasi_identifiers: [demographics.sex, age]", "quasi_identifiers: [age]").replace("k: 3", "k: 2")


def _band(age: float) -> str:
    """Width 20 from 0, one open band above 89 (the rules above), written out by hand."""
    if age > 89:
        return "90+"
    for low, high in ((0, 19), (20, 39), (40, 59), (60, 79), (80, 89)):
        if low <= age < high + 1:
            return f"{low}-{high}"
    raise AssertionError(age)


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    assert RULES in FIRST
    t = make_trial(module_database_url, load_protocol_text(FIRST.replace(RULES, SCREENING_AGE)))
    simulate(t.engine, FIRST_PROTOCOL, 26, seed=7)  # three age bands, each of at least k=2
    yield t
    t.engine.dispose()


def _screening_ages(trial: Trial) -> list[float]:
    """The age at screening of each participant the package shares (randomized, no withdrawal of data use)."""
    with trial.engine.connect() as c:
        rows = c.execute(text(
            "SELECT s.screening_values FROM participants p JOIN screenings s ON s.id = p.screening_id "
            "JOIN allocation_entries a ON a.participant_id = p.participant_id "
            "WHERE a.randomization_number IS NOT NULL AND NOT EXISTS (SELECT 1 FROM withdrawals w "
            "WHERE w.participant_id = p.participant_id AND w.scope = 'data_use')"
        )).all()  # fmt: skip
    return [json.loads(values)["age"] for (values,) in rows]


def test_a_screening_age_is_shared_in_bands_beside_the_participant(trial: Trial, tmp_path: Path) -> None:
    ages = _screening_ages(trial)
    assert len(ages) >= 8 and all(isinstance(a, int | float) for a in ages)  # the simulated trial's randomized
    run_export(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), "ipd", tmp_path / "ipd", with_arms=True,
               exporter=IpdExporter())  # fmt: skip
    folder = tmp_path / "ipd"
    shared = list(csv.DictReader((folder / "participants.csv").open(encoding="utf-8")))
    assert len(shared) == len(ages)
    assert Counter(row["age"] for row in shared) == Counter(_band(a) for a in ages)
    # No exact age anywhere: the form's age at enrolment is removed, no other screening value is shared.
    demographics = list(csv.DictReader((folder / "forms" / "demographics.csv").open(encoding="utf-8")))
    assert demographics and "age_at_enrolment" not in demographics[0]
    assert set(shared[0]) == {"ipd_id", "arm", "consent_by", "randomized_day", "withdrawal", "age"}
    rows = csv.DictReader((folder / "data_dictionary.csv").open(encoding="utf-8"))
    dictionary = {(r["file"], r["variable"]): r["label"] for r in rows}
    assert dictionary["participants.csv", "age"] == (
        "Age at screening (screening.age); banded by 20 years, 90+ above 89"
    )
    readme = (folder / "README.txt").read_text(encoding="utf-8")
    # Bands from 0; the band from 80 holds 80-89 only (walk 5: the README said "bands of 20 years" alone).
    said = "Ages (participants.csv, age): in bands of 20 years from 0 (0-19, 20-39, ...; the band from 80 ends at 89)"
    assert f"{said}; above 89 as 90+" in readme, readme
    # The k-anonymity check groups by the same bands.
    counts = Counter(_band(a) for a in ages)
    report = json.loads((folder / "deidentification.json").read_text(encoding="utf-8"))["kanonymity"]
    expected = (len(counts), min(counts.values()), len(ages), True)
    assert (report["groups"], report["smallest"], report["participants"], report["passes"]) == expected
    assert min(counts.values()) >= 2  # k=2: the package was issued because every band holds two people or more
    assert f"k-anonymity over age: {len(counts)} groups of {len(ages)} participants" in readme


def test_a_package_without_an_age_says_nothing_of_ages(database_url: str, tmp_path: Path) -> None:
    """The walk's trial: the age only at screening, no age_field; the package holds no age and its README has no
    age sentence. (A form's age field left unbanded is refused by ``protocol check``, and by the export for a
    version stored before that rule: tests/spec/protocol/test_deidentification_rules.py.)"""
    rules = RULES.replace("  age_field: demographics.age_at_enrolment\n  age_band_width: 20\n  age_top: 89\n", "")
    rules = rules.replace("[demographics.sex, age]", "[demographics.sex]").replace("k: 3", "k: 2")
    demographics = "age: {from: [demographics.age_at_enrolment, screening.age], unit: years}"
    assert demographics in FIRST and rules != RULES
    protocol = FIRST.replace(RULES, rules).replace(demographics, "age: {from: [screening.age], unit: years}")
    t = make_trial(database_url, load_protocol_text(protocol))
    try:
        simulate(t.engine, FIRST_PROTOCOL, 10, seed=5)
        run_export(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), "ipd", tmp_path / "a", with_arms=True,
                   exporter=IpdExporter())  # fmt: skip
    finally:
        t.engine.dispose()
    readme = (tmp_path / "a" / "README.txt").read_text(encoding="utf-8")
    assert "Dates: study days from randomization (day 0)" in readme  # the README's facts are there
    assert not re.search(r"\bages?\b", readme, re.IGNORECASE), readme
    assert "in bands of" not in readme


def test_without_quasi_identifiers_nothing_is_assessed_and_no_package_is_issued(
    database_url: str, tmp_path: Path
) -> None:
    """``protocol check`` refuses a deidentification without quasi-identifiers (tests/spec/protocol/
    test_deidentification_rules.py); a version stored before that rule keeps loading, its check says plainly that
    nothing was assessed (never "passes" over one group of everybody), and its package is refused, naming the rule,
    by the export and by the IPD writer itself."""
    rules = RULES.replace("  quasi_identifiers: [demographics.sex, age]\n", "")
    t = make_trial(database_url, load_protocol_text(FIRST.replace(RULES, rules), stored=True))
    try:
        simulate(t.engine, FIRST_PROTOCOL, 6, seed=5)
        check = check_kanonymity(t.engine, who(t, Role.DATA_MANAGER))
        assert not check.passes and check.quasi_identifiers == ()
        assert check.summary() == (
            "k-anonymity not assessed: the protocol declares no quasi-identifiers "
            "(deidentification.quasi_identifiers), so nothing was checked against k=3"
        )
        statistician = who(t, Role.UNBLINDED_STATISTICIAN)
        with pytest.raises(ExportError, match=r"deidentification\.quasi_identifiers: none declared: the IPD is issued "
                                              r"only when its k-anonymity check passes"):
            run_export(t.engine, statistician, "ipd", tmp_path / "b", with_arms=True, exporter=IpdExporter())
        source = export_source(t.engine, statistician, with_arms=True)
        with source.snapshot(), pytest.raises(IpdError, match=r"deidentification\.quasi_identifiers: none "
                                                               r"declared, so k-anonymity cannot be assessed"):
            IpdExporter().write(source, tmp_path / "c")
    finally:
        t.engine.dispose()
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
