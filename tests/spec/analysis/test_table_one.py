"""Table 1's numbers: the mean (SD), median [quartiles] of each number field in the baseline table at the field's
declared decimals plus one (an integer field: one decimal), as CONSORT tables usually do, rounded half away from
zero after the value is taken to 12 significant digits (docs/analysis.md, "Table 1").

A simulated trial on SQLite and PostgreSQL: each cell of the blinded (pooled) Table 1 equals the description of
the baseline values read straight from the tables for every randomized participant (whatever the form's state),
computed with Python's ``statistics`` (mean, sample SD, median, inclusive quartiles) and rounded by that rule.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy import select

from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.analysis.results import fixed
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.protocol.forms import FieldType
from trialwright.services.analysis import run_analysis
from trialwright.services.simulation import simulate
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import allocation_entries

PROTOCOL = load_protocol(FIRST_PROTOCOL).protocol
PLAN = PROTOCOL.analysis_plan
assert PLAN is not None


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 24, seed=3)
    yield t
    t.engine.dispose()


def rounded(x: float | None, places: int) -> str:
    """The documented rule, written again: 12 significant digits, then half away from zero at ``places``."""
    if x is None:
        return "NA"
    value = Decimal(f"{x:.12g}").quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = f"{value:f}"
    return text[1:] if text.startswith("-") and value == 0 else text


def _baseline_values(trial: Trial, ref: str) -> list[float]:
    """Every randomized participant's baseline value of ``ref``, read from the tables: a value or derived value as
    stored, a value below the limit of quantification as the limit over the square root of 2 (the first
    protocol's below_limit rule), nothing for not done."""
    form_id, _, field_id = ref.partition(".")
    with session_scope(trial.engine) as session:
        allocated = select(allocation_entries.c.participant_id).where(allocation_entries.c.participant_id.is_not(None))
        randomized = set(session.execute(allocated).scalars())
        rows = session.execute(
            select(visit_records.c.participant_id, form_records.c.form_values)
            .join(form_records, form_records.c.visit_record_id == visit_records.c.id)
            .where(form_records.c.form_id == form_id, visit_records.c.visit_id == PLAN.baseline_visit)
        ).all()
    values = []
    for pid, raw in rows:
        stored = (json.loads(raw) if isinstance(raw, str) else raw).get(field_id)
        if pid not in randomized or not stored:
            continue
        status = stored.get("status", "value")
        assert status != "above_uloq", (ref, stored)  # no rule of this protocol's plan is used here
        if status in {"value", "derived"} and stored.get("value") is not None:
            values.append(float(stored["value"]))
        elif status == "below_lloq":
            values.append(float(stored["limit"]) / math.sqrt(2))
    return values


def test_the_documented_rule_on_worked_numbers() -> None:
    """Half away from zero at the places asked; a float just under a tie is the tie; no -0; NA when undefined."""
    assert [fixed(2.25, 1), fixed(-2.25, 1), fixed(2.2499999999999996, 1), fixed(0.1 + 0.2, 1)] == [
        "2.3", "-2.3", "2.3", "0.3"]  # fmt: skip
    assert [fixed(54.0, 1), fixed(7, 3), fixed(-0.04, 1), fixed(None, 2), fixed(math.nan, 2)] == [
        "54.0", "7.000", "0.0", "NA", "NA"]  # fmt: skip


def test_large_values_keep_every_digit_a_double_holds() -> None:
    """A value with many integer digits keeps the digits its places need (never cut to 12 significant digits, which
    printed 1234567890120.00 for 1234567890123.45), and one past a double's 17 digits is shown without a failure."""
    assert fixed(1234567890123.45, 2) == "1234567890123.45"
    assert fixed(-98765432101.25, 1) == "-98765432101.3"  # the tie, half away from zero, at 13 digits
    assert fixed(1e30, 3) == "1000000000000000000000000000000.000"
    assert fixed(1.7976931348623157e308, 1).startswith("17976931348623157") and fixed(5e-324, 3) == "0.000"


def test_each_number_in_table_one_is_at_the_field_s_decimals_plus_one(trial: Trial) -> None:
    report = run_analysis(trial.engine, who(trial, Role.BLINDED_STATISTICIAN)).report
    (group,) = report.groups
    cells = {row.variable: row.cells[group] for row in report.table_one}
    checked = []
    for ref in PLAN.baseline_table:
        form_id, _, field_id = ref.partition(".")
        f = PROTOCOL.form(form_id).field(field_id)
        if f.type not in {FieldType.INTEGER, FieldType.DECIMAL}:
            continue
        places = (f.decimals or 0) + 1
        values = _baseline_values(trial, ref)
        assert len(values) > 10, ref
        q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
        assert math.isclose(median, statistics.median(values))
        mean, sd = statistics.fmean(values), statistics.stdev(values)
        expected = (f"{rounded(mean, places)} ({rounded(sd, places)}); median {rounded(median, places)} "
                    f"[{rounded(q1, places)}, {rounded(q3, places)}]; n={len(values)}")  # fmt: skip
        assert cells[ref] == expected, (ref, places)
        checked.append((ref, places))
    # Fields of 0, 1 and 2 declared decimals and integer fields (age, NEWS2) among those checked.
    assert {p for _, p in checked} == {1, 2, 3} and len(checked) >= 9, checked
