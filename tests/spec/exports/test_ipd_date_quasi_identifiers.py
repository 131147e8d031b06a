"""A date as an IPD quasi-identifier: the k-anonymity check groups by the date the package holds.

The package never holds a stored date: with ``dates: study_days`` it holds the study day (days from randomization,
day 0), with ``dates: shift`` the date moved by the participant's secret shift. A date quasi-identifier (here the
screening record's ``screening.pcr_date``, kept in participants.csv as ``screening_pcr_date``, and the form field
``demographics.enrolled_on``, in forms/demographics.csv as ``enrolled_on``) is grouped by exactly that:

| dates      | what the check groups by                        | here, at k = 2                                      |
|------------|-------------------------------------------------|-----------------------------------------------------|
| (stored)   | never the dates as recorded                     | nearly one person a date: smallest group 1, refused |
| study_days | the study days written                          | the package is issued                               |
| shift      | the shifted dates the package draws and writes  | refused, naming a shifted date                      |

With ``shift`` the dates a package holds exist only once it draws its shifts: the check alone (``access check``, no
data written) refuses to report a k it cannot know, and the package checks the dates it is about to write.

Checked against the written files, read back here with ``csv`` and grouped with ``Counter``; the stored dates read
with SQL. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.exports import ipd
from trialwright.exports.ipd import IpdExporter
from trialwright.protocol import load_protocol_text
from trialwright.services.exports import run_export
from trialwright.services.sharing import SharingError, check_kanonymity
from trialwright.services.simulation import simulate

FIRST = FIRST_PROTOCOL.read_text(encoding="utf-8")
RULES = "  quasi_identifiers: [demographics.sex, age]\n  k: 3\n"
DATES = "  quasi_identifiers: [screening.pcr_date, demographics.enrolled_on]\n  k: 2\n"
QUASI = ("screening.pcr_date", "demographics.enrolled_on")
SHIFT_DAYS = 30


def _trial(url: str, rules: str) -> Trial:
    assert RULES in FIRST and "  dates: study_days\n" in FIRST
    t = make_trial(url, load_protocol_text(FIRST.replace(RULES, rules)))
    simulate(t.engine, FIRST_PROTOCOL, 24, seed=5)
    return t


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = _trial(module_database_url, DATES)
    yield t
    t.engine.dispose()


def _stored(trial: Trial) -> dict[str, tuple[str, str]]:
    """Per participant the package shares, the stored (PCR date, enrolment date): the screening record's value and
    the demographics form's, as the database holds them."""
    with trial.engine.connect() as c:
        rows = c.execute(text(
            "SELECT p.participant_id, s.screening_values FROM participants p "
            "JOIN screenings s ON s.id = p.screening_id "
            "JOIN allocation_entries a ON a.participant_id = p.participant_id "
            "WHERE a.randomization_number IS NOT NULL AND NOT EXISTS (SELECT 1 FROM withdrawals w "
            "WHERE w.participant_id = p.participant_id AND w.scope = 'data_use')"
        )).all()  # fmt: skip
        forms = dict(c.execute(text(
            "SELECT participant_id, form_values FROM form_records WHERE form_id = 'demographics'"
        )).all())  # fmt: skip
    out = {}
    for pid, values in rows:
        demographics = json.loads(forms[pid]) if pid in forms else {}
        enrolled = (demographics.get("enrolled_on") or {}).get("value")
        out[pid] = (json.loads(values)["pcr_date"], enrolled)
    return out


def _written(folder: Path) -> list[tuple[str, str]]:
    """Per participant in the package, (screening_pcr_date, enrolled_on) as its files hold them ("missing" when a
    cell is empty, as the check counts it)."""
    people = {r["ipd_id"]: r["screening_pcr_date"] for r in csv.DictReader((folder / "participants.csv").open())}
    enrolled = {r["ipd_id"]: r["enrolled_on"] for r in csv.DictReader((folder / "forms/demographics.csv").open())}
    return [(pcr or "missing", enrolled.get(i) or "missing") for i, pcr in people.items()]


def _smallest(counts: Counter[tuple[str, str]]) -> tuple[tuple[str, str], int]:
    return min(counts.items(), key=lambda kv: (kv[1], kv[0]))


def test_the_check_groups_by_the_study_days_the_package_holds(trial: Trial, tmp_path: Path) -> None:
    stored = Counter(_stored(trial).values())
    assert _smallest(stored)[1] == 1  # the stored dates single people out: a check over them refuses at k = 2
    run_export(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), "ipd", tmp_path / "ipd", with_arms=False,
               exporter=IpdExporter())  # fmt: skip
    shared = Counter(_written(tmp_path / "ipd"))
    assert sum(shared.values()) == sum(stored.values()) >= 8
    assert all(re.fullmatch(r"-?\d+", v) for combo in shared for v in combo), shared  # study days, no date
    combo, smallest = _smallest(shared)
    expected = {"quasi_identifiers": list(QUASI), "k": 2, "participants": sum(shared.values()),
                "groups": len(shared), "smallest": smallest, "smallest_group": dict(zip(QUASI, combo, strict=True)),
                "passes": smallest >= 2}  # fmt: skip
    report = json.loads((tmp_path / "ipd" / "deidentification.json").read_text(encoding="utf-8"))["kanonymity"]
    assert report == expected and report["passes"]
    alone = check_kanonymity(trial.engine, who(trial, Role.DATA_MANAGER))  # the check alone: the same groups
    assert (alone.participants, alone.groups, alone.smallest, dict(alone.smallest_group), alone.passes) == (
        expected["participants"], expected["groups"], smallest, expected["smallest_group"], True)


def _shifted(url: str) -> Trial:
    """The same rules with ``dates: shift`` (up to 30 days either way)."""
    return make_trial(url, load_protocol_text(
        FIRST.replace(RULES, DATES).replace("  dates: study_days\n", f"  dates: shift\n  shift_days: {SHIFT_DAYS}\n")
    ))  # fmt: skip


def test_the_check_alone_refuses_a_k_over_shifted_dates_no_package_has_drawn(database_url: str) -> None:
    t = _shifted(database_url)
    with pytest.raises(SharingError, match=r"deidentification\.quasi_identifiers: screening\.pcr_date, "
                       r"demographics\.enrolled_on are dates, and with dates: shift"):  # fmt: skip
        check_kanonymity(t.engine, who(t, Role.DATA_MANAGER))
    t.engine.dispose()


def test_the_package_checks_the_shifted_dates_it_would_write(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every shift drawn as +30 days (the largest): the package is refused naming the smallest group of the shifted
    dates, computed here from the stored ones (the stored dates' own smallest group is 30 days earlier)."""
    t = _shifted(database_url)
    simulate(t.engine, FIRST_PROTOCOL, 24, seed=5)
    monkeypatch.setattr(ipd.secrets, "randbelow", lambda n: n - 1)  # a draw in [0, 2 * 30]: minus 30 is +30
    later = dt.timedelta(days=SHIFT_DAYS)
    shifted = Counter(tuple(str(dt.date.fromisoformat(v) + later) for v in combo) for combo in _stored(t).values())
    (pcr, enrolled), smallest = _smallest(shifted)
    with pytest.raises(ipd.IpdError) as refused:
        run_export(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), "ipd", tmp_path / "ipd", with_arms=False,
                   exporter=IpdExporter())  # fmt: skip
    assert (f"{len(shifted)} groups of {sum(shifted.values())} participants; smallest group {smallest} "
            f"(screening.pcr_date={pcr}, demographics.enrolled_on={enrolled}); k=2 FAILS") in str(refused.value)
    t.engine.dispose()
