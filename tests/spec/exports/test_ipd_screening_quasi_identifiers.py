"""A screening field as an IPD quasi-identifier (walk 5, F8).

``deidentification.quasi_identifiers`` names ``form.field``, ``screening.field``, ``age`` or ``site``, a
screening field as ``demographics`` and Table 1 read it (``protocol.sources``): the screening record's value. The
package shares what it checks:

* a screening quasi-identifier is kept in participants.csv as ``screening_<field>`` (its codes in the data
  dictionary), and the k-anonymity check groups by it;
* the one that is ``age_field`` (the age at screening) is banded there as ``age``, and grouped by its band: the
  check is over the values the package holds, never over an exact age it does not.

Checked against the screening values read from the database with SQL, banded here by hand (width 50, 90+ above
89) and grouped here with ``Counter``. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports.ipd import IpdExporter
from trialwright.protocol import load_protocol_text
from trialwright.services.exports import run_export
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
#: The age and sex at screening as the quasi-identifiers; the form's age at enrolment removed, its sex kept.
SCREENING = (
    RULES.replace("age_field: demographics.age_at_enrolment", "age_field: screening.age")
    .replace("[demographics.birth_date]", "[demographics.birth_date, demographics.age_at_enrolment]")
    .replace("[demographics.sex, age]", "[screening.sex, screening.age]")
    .replace("age_band_width: 20", "age_band_width: 50")
    .replace("k: 3", "k: 2")
)


def _band(age: float) -> str:
    """Width 50 from 0, one open band above 89 (the rules above), written out by hand."""
    if age > 89:
        return "90+"
    return "0-49" if age < 50 else "50-89"


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    assert RULES in FIRST
    t = make_trial(module_database_url, load_protocol_text(FIRST.replace(RULES, SCREENING)))
    simulate(t.engine, FIRST_PROTOCOL, 24, seed=5)  # both sexes in both bands, each of at least k=2
    yield t
    t.engine.dispose()


def _shared(trial: Trial) -> list[tuple[str, str]]:
    """(sex, age band) at screening of each participant the package shares (randomized, no withdrawal of data use)."""
    with trial.engine.connect() as c:
        rows = c.execute(text(
            "SELECT s.screening_values FROM participants p JOIN screenings s ON s.id = p.screening_id "
            "JOIN allocation_entries a ON a.participant_id = p.participant_id "
            "WHERE a.randomization_number IS NOT NULL AND NOT EXISTS (SELECT 1 FROM withdrawals w "
            "WHERE w.participant_id = p.participant_id AND w.scope = 'data_use')"
        )).all()  # fmt: skip
    return [(str(v.get("sex", "missing")), _band(v["age"])) for v in (json.loads(values) for (values,) in rows)]


def test_the_check_groups_by_the_screening_sex_and_the_age_band(trial: Trial) -> None:
    people = _shared(trial)
    assert len(people) >= 8
    counts = Counter(people)
    assert len(counts) == 4  # both sexes in both bands
    check = check_kanonymity(trial.engine, who(trial, Role.DATA_MANAGER))
    assert check.quasi_identifiers == ("screening.sex", "screening.age")
    combo, smallest = min(counts.items(), key=lambda kv: (kv[1], kv[0]))
    assert (check.participants, check.groups, check.smallest) == (len(people), len(counts), smallest)
    assert dict(check.smallest_group) == {"screening.sex": combo[0], "screening.age": combo[1]}
    assert check.passes and smallest >= 2  # k=2


def test_the_package_keeps_the_sex_and_bands_the_age(trial: Trial, tmp_path: Path) -> None:
    people = _shared(trial)
    run_export(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), "ipd", tmp_path / "ipd", with_arms=False,
               exporter=IpdExporter())  # fmt: skip
    folder = tmp_path / "ipd"
    shared = list(csv.DictReader((folder / "participants.csv").open(encoding="utf-8")))
    assert Counter((row["screening_sex"], row["age"]) for row in shared) == Counter(people)
    # Nothing else of the screening record, and no arm: the package was asked without arms.
    assert set(shared[0]) == {"ipd_id", "consent_by", "randomized_day", "withdrawal", "age", "screening_sex"}
    rows = csv.DictReader((folder / "data_dictionary.csv").open(encoding="utf-8"))
    dictionary = {(r["file"], r["variable"]): (r["label"], r["codes"]) for r in rows}
    sex = ("Sex at screening (screening.sex)", "female=Female; male=Male")
    assert dictionary["participants.csv", "screening_sex"] == sex
    readme = (folder / "README.txt").read_text(encoding="utf-8")
    assert f"k-anonymity over screening.sex, screening.age: {len(Counter(people))} groups" in readme
