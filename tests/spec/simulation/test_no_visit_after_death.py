"""The simulator records no visit after a participant's death, not even as missed (SQLite and PostgreSQL; walk 6
F8: a participant who died on day 11 had the day-14 visit recorded as missed, "Simulated: not possible that day", so
SDTM SV had a visit not done after the death and the trial's count of missed visits included it).

The trial: ``tests/data/simulation/WALK2.yaml`` (visits on days 0, 7, 14 and 30 from the randomization, the death
record at day 30) with half the follow-up visits drawn as missed and deaths at 0.3, as its simulation file says.

| a participant who dies on day N                                   | the simulated trial                          |
|-------------------------------------------------------------------|----------------------------------------------|
| a visit drawn as missed whose day is N or later (not the death's) | no record at all: not done, died             |
| a visit drawn as missed whose day is before N                     | recorded as missed, as for anyone            |
| the count of missed visits the simulator reports                  | the visits recorded as missed, no more       |
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from trialwright.protocol import load_protocol
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import make_engine, session_scope

PROTOCOL = Path(__file__).parents[2] / "data" / "simulation" / "WALK2.yaml"
DAYS = {"baseline": 0, "day7": 7, "day14": 14, "day30": 30}  # each visit's day from the randomization (the file's)


def _day(value: Any) -> dt.date:
    """A stored date as a date (a string on SQLite, a date on PostgreSQL)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def test_a_visit_due_on_or_after_the_death_is_not_recorded_as_missed(database_url: str, tmp_path: Path) -> None:
    protocol = tmp_path / "WALK2.yaml"
    protocol.write_text(PROTOCOL.read_text(encoding="utf-8"), encoding="utf-8")
    plan = PROTOCOL.with_name("WALK2.simulation.yaml").read_text(encoding="utf-8")
    missing = plan.replace("visits: {missed: 0, out_of_window: 0}", "visits: {missed: 0.5, out_of_window: 0}")
    assert missing != plan
    (tmp_path / "WALK2.simulation.yaml").write_text(missing, encoding="utf-8")
    engine = make_engine(database_url)
    try:
        init_trial(engine, load_protocol(protocol))
        summary = simulate(engine, protocol, 40, seed=5)
        with session_scope(engine) as session:
            visits = list(session.execute(select(visit_records.c.participant_id, visit_records.c.visit_id,
                                                 visit_records.c.visit_date, visit_records.c.missed_reason)).all())
            followups = list(session.execute(
                select(visit_records.c.participant_id, form_records.c.form_values)
                .join(visit_records, visit_records.c.id == form_records.c.visit_record_id)
                .where(form_records.c.form_id == "followup")).all())  # fmt: skip
    finally:
        engine.dispose()
    died = {r.participant_id: dt.date.fromisoformat(v["end_date"]["value"])
            for r in followups if (v := json.loads(r.form_values)).get("status", {}).get("value") == "died"}
    randomized = {r.participant_id: _day(r.visit_date) for r in visits if r.visit_id == "baseline"}
    missed = [(r.participant_id, r.visit_id) for r in visits if r.missed_reason]
    due_after = sorted((pid, visit) for pid, visit in missed
                       if pid in died and randomized[pid] + dt.timedelta(days=DAYS[visit]) >= died[pid])
    assert summary.deaths == len(died) > 0
    # Before the fix: each such visit recorded as missed ("Simulated: not possible that day").
    assert due_after == []
    # Missed visits are still recorded, the dead's before the death among them, and counted as recorded.
    assert any(pid in died for pid, _ in missed) and any(pid not in died for pid, _ in missed)
    assert summary.visits_missed == len(missed)
