"""The simulator holds a visit an amendment added only where the schedule says it is due: its window not closed when
the amendment took effect (``domain.visits.added_after_window``), and never on a day before the amendment's date
(SQLite and PostgreSQL; walk 4, F3: 46 week-2 calls held before the amendment that created them).

The trial: walk2 version 1.0 (``walk2.v1.yaml``), then amended by ``walk2.yaml`` (amendment 1, dated 2026-07-01,
adds ``day14``: window 12 to 16 days after randomization); the simulation file recruits from 2026-02-01 for 180
days, so participants are randomized on both sides of the amendment:

| day14's window (randomization + 12 to + 16)   | the simulated trial                                        |
|-----------------------------------------------|------------------------------------------------------------|
| closed before 2026-07-01                      | no day14 (not due)                                          |
| open on 2026-07-01 or later                   | day14 held (unless missed, or the participant left or died) |
| any                                           | no day14 dated before 2026-07-01; no refusal met            |
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from sqlalchemy import select

from tests.spec.lock.test_visits_added_by_an_amendment import WALKS
from trialwright.protocol import load_protocol
from trialwright.services import clock
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.store.data_tables import visit_records
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.randomization_tables import allocation_entries

AMENDED = dt.date(2026, 7, 1)


def test_the_simulator_holds_an_added_visit_only_where_the_schedule_says_it_is_due(
    database_url: str, tmp_path: Path
) -> None:
    for name in ("walk2.yaml", "walk2.simulation.yaml"):
        shutil.copy(WALKS / name, tmp_path / name)
    engine = make_engine(database_url)
    try:
        with clock.simulated_time(dt.datetime(2026, 1, 15, tzinfo=dt.UTC)):
            init_trial(engine, load_protocol(WALKS / "walk2.v1.yaml"))
        with clock.simulated_time(dt.datetime(2026, 1, 20, tzinfo=dt.UTC)):
            assert init_trial(engine, load_protocol(tmp_path / "walk2.yaml")).status == "upgraded"
        summary = simulate(engine, tmp_path / "walk2.yaml", 40, seed=3)
        with session_scope(engine) as session:
            randomized = {
                r.participant_id: r.randomized_at
                for r in session.execute(
                    select(allocation_entries.c.participant_id, allocation_entries.c.randomized_at).where(
                        allocation_entries.c.participant_id.is_not(None)
                    )
                )
            }
            held = {
                r.participant_id: r.visit_date
                for r in session.execute(
                    select(visit_records.c.participant_id, visit_records.c.visit_date).where(
                        visit_records.c.visit_id == "day14", visit_records.c.visit_date.is_not(None)
                    )
                )
            }
    finally:
        engine.dispose()
    assert not summary.refusals, summary.refusals
    # The window's last day from the UTC date of randomization, a day's margin either side for the sites' zones.
    last = {pid: at.date() + dt.timedelta(days=16) for pid, at in randomized.items()}
    closed = {pid for pid, day in last.items() if day < AMENDED - dt.timedelta(days=1)}
    open_then = {pid for pid, day in last.items() if day > AMENDED}
    assert closed and open_then  # participants on both sides of the amendment
    assert not set(held) & closed  # before the fix: held for them, months before the amendment
    assert all(day >= AMENDED for day in held.values()), sorted(held.items())
    assert len(set(held) & open_then) >= len(open_then) // 2  # held where due (some missed, left or died)
