"""A simulated death fills only the death record's form at the visit held on the day of death (SQLite and PostgreSQL).

The trial: ``tests/data/simulation/WALK2.yaml`` (walk2, a new user's hip-fracture trial): the death record's visit is
``day30``, which also holds the Barthel score (``function``, the ANCOVA's outcome ``barthel30``) and the date first
walked (``mobility``, a time to event with death competing). Its simulation file draws deaths at a high rate (0.3) and
no withdrawal or missed visit, so every participant who lives has a day-30 score.

| a participant who dies on day N (N before day 30)            | the simulated trial                                |
|--------------------------------------------------------------|----------------------------------------------------|
| the death record's visit, held on the day of death           | the death record's form (``followup``) only: the   |
|                                                              | status, date and cause of death                    |
| ``function`` due at that visit                               | not saved: no "day-30" Barthel score for the dead  |
| ``mobility`` (death competing with walking, read there)      | saved with every field blank: a competing death    |
| any visit after the day of death                             | not held                                           |
| the ANCOVA of the day-30 Barthel score                       | lists each death as not analysed: died, no score   |

Before the fix the simulator filled every form of that visit: a participant who died on day 7 had a day-30 Barthel
score, which the ANCOVA used (walk2 finding F1). The deaths are read from the stored rows (the death record's status
and date), not from the simulator's own counts.

Another visit on the day of death: the same protocol simulated with every stay lasting 7 days, so each death falls
on the day of the ``day7`` visit and two visits are held that day.

| a participant who dies on day 7 (the ``day7`` visit's day)   | the simulated trial                                |
|--------------------------------------------------------------|----------------------------------------------------|
| the death record's visit (``day30``), held on the day of death | the death record's form, ``mobility`` blank       |
| the ``day7`` visit, the same day                             | no form saved: no Barthel score of the death day   |
| a participant who lives                                      | ``day7`` saved with its score, as before           |

Before that fix a visit other than the death record's held on the day of death was filled with drawn values (the
day-7 Barthel score of each death here).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from trialwright.analysis.engine import analyse
from trialwright.protocol import load_protocol
from trialwright.services.analysis import analysis_data
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.services.users import get_user
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import make_engine, session_scope

PROTOCOL = Path(__file__).parents[2] / "data" / "simulation" / "WALK2.yaml"


@pytest.fixture(scope="module")
def simulated(module_database_url: str) -> tuple[Any, list[Any], Any]:
    """The trial simulated (30 screened, seed 5), its form rows and the blinded analysis of its outcomes: once per
    database, read by both specs."""
    engine = make_engine(module_database_url)
    try:
        init_trial(engine, load_protocol(PROTOCOL))
        summary = simulate(engine, PROTOCOL, 30, seed=5)
        with session_scope(engine) as session:
            rows = list(session.execute(
                select(visit_records.c.participant_id, visit_records.c.visit_id, visit_records.c.visit_date,
                       form_records.c.form_id, form_records.c.form_values)
                .join(visit_records, visit_records.c.id == form_records.c.visit_record_id)).all())  # fmt: skip
        actor = get_user(engine, "sim-unblinded-statistician")
        assert actor is not None
        data = analysis_data(engine, actor, unblinded=False)
    finally:
        engine.dispose()
    report = analyse(load_protocol(PROTOCOL).protocol, data, software_version="spec", unblinded=False)
    return summary, rows, report


def _deaths(rows: list[Any]) -> dict[str, dt.date]:
    """Each participant the death record says died, and the day of death it records."""
    records = [(r.participant_id, json.loads(r.form_values)) for r in rows if r.form_id == "followup"]
    return {pid: dt.date.fromisoformat(v["end_date"]["value"]) for pid, v in records
            if v.get("status", {}).get("value") == "died"}  # fmt: skip


def test_a_dead_participant_has_no_values_but_the_death_record_at_or_after_the_death(
    simulated: tuple[Any, list[Any], Any],
) -> None:
    summary, rows, _ = simulated
    died = _deaths(rows)
    assert summary.deaths == len(died) > 0
    death_visits = {r.participant_id: r.visit_date for r in rows
                    if r.form_id == "followup" and r.participant_id in died}  # fmt: skip
    assert all(_day(death_visits[pid]) == day for pid, day in died.items())  # the visit is held on the day of death
    after = [(r.participant_id, r.visit_id, r.form_id, json.loads(r.form_values)) for r in rows
             if r.participant_id in died and r.form_id != "followup"
             and (r.visit_id == "day30" or _day(r.visit_date) > died[r.participant_id])]  # fmt: skip
    # Before the fix: each death's day-30 Barthel score (and the fall) drawn on the day of death.
    assert [(pid, visit, form) for pid, visit, form, values in after if values] == []
    # The one other form of the death's visit saved: the date first walked, blank (a competing death), nothing else.
    saved = sorted((pid, visit, form) for pid, visit, form, _ in after)
    assert saved == [(pid, "day30", "mobility") for pid in sorted(died)]


def test_the_analysis_of_the_day_30_score_lists_each_death_as_not_analysed(
    simulated: tuple[Any, list[Any], Any],
) -> None:
    summary, rows, report = simulated
    died = _deaths(rows)
    barthel = next(o for o in report.outcomes if o.outcome_id == "barthel30")
    listed = {x.participant_id: x for x in barthel.excluded}
    assert set(listed) == set(died)  # before: none listed, the deaths' "day-30" scores analysed
    assert all(x.cause == "died" and x.reason.startswith("no function.barthel at day30 (died on day ")
               for x in listed.values())  # fmt: skip
    assert sum(barthel.analysed.values()) == summary.randomized - len(died)
    # The time to walking, death competing: every death is still a competing death (its form saved blank that day).
    walk = next(o for o in report.outcomes if o.outcome_id == "walk")
    curves = walk.extra["event_incidence"]
    assert sum(c["died"] for c in curves.values() if c is not None) == len(died)


def _day(value: Any) -> dt.date:
    """A stored visit date as a date (a string on SQLite, a date on PostgreSQL)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def test_another_visit_on_the_day_of_death_saves_no_form(database_url: str, tmp_path: Path) -> None:
    protocol = tmp_path / "WALK2.yaml"
    protocol.write_text(PROTOCOL.read_text(encoding="utf-8"), encoding="utf-8")
    plan = PROTOCOL.with_name("WALK2.simulation.yaml").read_text(encoding="utf-8")
    seven_days = plan.replace("length_of_stay: {uniform: [3, 28], round: 0}", "length_of_stay: {uniform: [7, 7]}")
    assert seven_days != plan  # every stay 7 days: each death on the day of the day-7 visit
    (tmp_path / "WALK2.simulation.yaml").write_text(seven_days, encoding="utf-8")
    engine = make_engine(database_url)
    try:
        init_trial(engine, load_protocol(protocol))
        summary = simulate(engine, protocol, 30, seed=5)
        with session_scope(engine) as session:
            rows = list(session.execute(
                select(visit_records.c.participant_id, visit_records.c.visit_id, visit_records.c.visit_date,
                       form_records.c.form_id, form_records.c.form_values)
                .join(visit_records, visit_records.c.id == form_records.c.visit_record_id)).all())  # fmt: skip
    finally:
        engine.dispose()
    died = _deaths(rows)
    assert summary.deaths == len(died) > 0
    randomized_on = {r.participant_id: _day(r.visit_date) for r in rows if r.visit_id == "baseline"}
    # Each death on the day the day-7 visit falls: seven days after the baseline, held on the day of randomization.
    assert all(day == randomized_on[pid] + dt.timedelta(days=7) for pid, day in died.items())
    on_or_after = sorted((r.participant_id, r.visit_id, r.form_id) for r in rows
                         if r.participant_id in died and _day(r.visit_date) >= died[r.participant_id])  # fmt: skip
    # Before the fix: each death's day-7 Barthel score too, drawn on the day of death.
    assert on_or_after == sorted((pid, "day30", form) for pid in died for form in ("followup", "mobility"))
    # Those who live keep their day-7 score.
    day7 = {r.participant_id: json.loads(r.form_values) for r in rows if r.visit_id == "day7"}
    assert set(day7) == set(randomized_on) - set(died)
    assert all(values["barthel"]["value"] is not None for values in day7.values())
