"""Table 1 describes a screening field as it describes a form field (walk 5, F8).

``analysis_plan.baseline_table`` names ``form.field`` or ``screening.field``, as ``demographics`` does
(``protocol.sources``): a screening field's value is the participant's screening record's, a derived one (the P/F
ratio) computed from its inputs as the screening page shows it. Its row has the field's label and unit; a number
field's cell is its mean (SD), median [quartiles] at its declared decimals plus one (an integer: one decimal; a
typed decimal, which declares none, at three significant digits), a choice or yes/no field's one row per answer.

The cells are checked against the screening values read from the database with SQL and described here with
Python's ``statistics`` (the P/F ratio computed here from PaO2 and FiO2), for the blinded statistician (one pooled
group: no arm is revealed) and the unblinded one (by arm, the arm read from the allocation table). On SQLite and
PostgreSQL.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

import pytest
from sqlalchemy import text

from tests.significant import three_significant
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import LoadedProtocol, load_protocol_text
from trialwright.services.analysis import run_analysis
from trialwright.services.forms import lock_trial, unlock_trial
from trialwright.services.simulation import simulate

FIRST = FIRST_PROTOCOL.read_text(encoding="utf-8")
TABLE = "  baseline_table:\n    - demographics.age_at_enrolment\n"
SCREENING = ["screening.age", "screening.sex", "screening.pf_ratio", "screening.pcr_positive"]
WITH_SCREENING = "  baseline_table:\n" + "".join(f"    - {r}\n" for r in SCREENING) + TABLE[17:]


@cache
def loaded() -> LoadedProtocol:
    return load_protocol_text(FIRST.replace(TABLE, WITH_SCREENING))


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    assert TABLE in FIRST
    t = make_trial(module_database_url, loaded())
    simulate(t.engine, FIRST_PROTOCOL, 24, seed=3)
    yield t
    t.engine.dispose()


def _screened(trial: Trial) -> dict[str, tuple[str, dict[str, object]]]:
    """Every randomized participant: (arm code, the screening record's values as stored)."""
    with trial.engine.connect() as c:
        rows = c.execute(text(
            "SELECT a.participant_id, a.arm, s.screening_values FROM allocation_entries a "
            "JOIN participants p ON p.participant_id = a.participant_id JOIN screenings s ON s.id = p.screening_id"
        )).all()  # fmt: skip
    return {pid: (arm, json.loads(values)) for pid, arm, values in rows}


def _at(x: float, places: int) -> str:
    return f"{Decimal(f'{x:.12g}').quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"


def _numbers(values: list[float], places: int | None) -> str:
    """mean (SD); median [q1, q3]; n=, at ``places`` (None: three significant digits)."""
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    shown = [statistics.fmean(values), statistics.stdev(values), median, q1, q3]
    m, sd, med, lo, hi = (_at(x, places) if places is not None else three_significant(x) for x in shown)
    return f"{m} ({sd}); median {med} [{lo}, {hi}]; n={len(values)}"


def _pf(values: dict[str, object]) -> float:
    """PaO2 / FiO2 (Berlin definition), rounded half away from zero to the protocol's one decimal."""
    ratio = float(values["pao2_mmhg"]) / float(values["fio2"])  # type: ignore[arg-type]
    return float(Decimal(repr(ratio)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _expected(people: list[dict[str, object]]) -> dict[str, str]:
    """The screening rows' cells for one group, from its members' stored screening values."""
    ages = [float(v["age"]) for v in people]  # type: ignore[arg-type]
    sexes = [v.get("sex") for v in people]
    known = [s for s in sexes if s is not None]
    pcr = [v["pcr_positive"] for v in people if v.get("pcr_positive") is not None]
    out = {
        "screening.age": _numbers(ages, 1),
        "screening.pf_ratio": _numbers([_pf(v) for v in people], 2),
        "screening.sex": "",
        "screening.pcr_positive": "",
        "screening.pcr_positive=True": f"{pcr.count(True)} ({100 * pcr.count(True) / len(pcr):.0f}%)",
    }
    for code in ("female", "male"):
        out[f"screening.sex={code}"] = f"{known.count(code)} ({100 * known.count(code) / len(known):.0f}%)"
    return out


def test_a_screening_field_has_its_row_in_the_blinded_pooled_table(trial: Trial) -> None:
    screened = _screened(trial)
    assert len(screened) >= 10
    report = run_analysis(trial.engine, who(trial, Role.BLINDED_STATISTICIAN)).report
    assert report.groups == ("All participants",)  # pooled: no arm named, none hinted
    rows = {row.variable: row for row in report.table_one}
    expected = _expected([values for _, values in screened.values()])
    assert {ref: rows[ref].cells["All participants"] for ref in expected} == expected
    labels = {ref: rows[ref].label for ref in ("screening.age", "screening.pf_ratio", "screening.sex=female")}
    assert labels == {"screening.age": "Age (years)", "screening.pf_ratio": "PaO2/FiO2 ratio (mmHg)",
                      "screening.sex=female": "  Female"}  # fmt: skip
    # The screening rows come first, in the plan's order, before the form's.
    order = [row.variable for row in report.table_one if "=" not in row.variable]
    assert order[:6] == ["n", *SCREENING, "demographics.age_at_enrolment"]


def test_a_screening_field_is_described_by_arm_for_the_unblinded(trial: Trial) -> None:
    screened = _screened(trial)
    manager = who(trial, Role.DATA_MANAGER)
    lock_trial(trial.engine, manager, "final analysis", password=PASSWORD)  # the unblinded analysis follows the lock
    try:
        report = run_analysis(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), unblinded=True).report
    finally:
        unlock_trial(trial.engine, manager, "the other specs of this module go on")
    names = {a.code: a.name for a in loaded().protocol.arms}
    by_arm: dict[str, list[dict[str, object]]] = {}
    for arm, values in screened.values():
        by_arm.setdefault(names[arm], []).append(values)
    assert set(report.groups) == set(by_arm) and all(len(v) >= 3 for v in by_arm.values())
    rows = {row.variable: row for row in report.table_one}
    for group, people in by_arm.items():
        expected = _expected(people)
        assert {ref: rows[ref].cells[group] for ref in expected} == expected, group
