"""A visit an amendment added cannot be held before that amendment took effect (``amendments[].date``): the forms
service refuses the visit date, naming the visit, the date, the amendment and the rule (SQLite and PostgreSQL;
walk 4, F3: the simulator held week-2 calls months before the amendment that created them).

The trial: walk2 (``tests/data/walks/walk2.v1.yaml``, version 1.0), amended by ``walk2.yaml``: amendment 1, dated
2026-07-01, adds ``day14`` (window 12 to 16 days after randomization). A participant randomized on 2026-06-15 has
its day-14 window from 2026-06-27 to 2026-07-01: due (open on the amendment's day), but only from 2026-07-01.

| how                             | day14 held on | answer                                                        |
|---------------------------------|---------------|---------------------------------------------------------------|
| ``record_visit``                | 2026-06-28    | refused: before amendment 1.1, which took effect 2026-07-01    |
| ``save_form`` with a visit date | 2026-06-30    | refused, the same words; nothing stored                        |
| ``record_visit``                | 2026-07-01    | held (the amendment's own day, the window's last)              |
| ``save_form`` at ``day30``      | 2026-07-10    | held (a visit of the first version: no amendment concerns it) |
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.spec.lock.test_visits_added_by_an_amendment import WALKS, _account, _randomized_on
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services import clock
from trialwright.services.forms import FormError, participant_schedule, record_visit, save_form
from trialwright.services.randomization import generate_list
from trialwright.services.trial import init_trial
from trialwright.store.engine import make_engine

RULE = "a visit an amendment adds is held only from its amendment's date"


def test_a_visit_is_not_held_before_the_amendment_that_added_it_took_effect(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with clock.simulated_time(dt.datetime(2026, 2, 1, tzinfo=dt.UTC)):
            init_trial(engine, load_protocol(WALKS / "walk2.v1.yaml"))
            coordinator = _account(engine, Role.STUDY_COORDINATOR)
            generate_list(engine, _account(engine, Role.UNBLINDED_STATISTICIAN), seed=7)
        pid = _randomized_on(engine, coordinator, "2026-06-15")
        with clock.simulated_time(dt.datetime(2026, 7, 1, 6, 0, tzinfo=dt.UTC)):
            assert init_trial(engine, load_protocol(WALKS / "walk2.yaml")).status == "upgraded"
        with clock.simulated_time(dt.datetime(2026, 7, 20, 9, 0, tzinfo=dt.UTC)):
            with pytest.raises(FormError) as refused:
                record_visit(engine, coordinator, pid, "day14", dt.date(2026, 6, 28))
            assert str(refused.value) == (
                f"visit_date: day14 on 2026-06-28 is before amendment 1.1, which added the visit, took effect on "
                f"2026-07-01: {RULE}"
            )
            with pytest.raises(FormError, match=f"day14 on 2026-06-30 is before amendment 1.1.*{RULE}"):
                save_form(engine, coordinator, pid, "day14", "function", {"barthel": 60},
                          visit_date=dt.date(2026, 6, 30))  # fmt: skip
            schedule = {v.visit_id: v for v in participant_schedule(engine, coordinator, pid).visits}
            assert schedule["day14"].visit_date is None  # nothing stored by either refusal
            record_visit(engine, coordinator, pid, "day14", dt.date(2026, 7, 1))
            save_form(engine, coordinator, pid, "day30", "function", {"barthel": 70}, visit_date=dt.date(2026, 7, 10))
            schedule = {v.visit_id: v for v in participant_schedule(engine, coordinator, pid).visits}
        assert schedule["day14"].visit_date == dt.date(2026, 7, 1)
        assert schedule["day30"].visit_date == dt.date(2026, 7, 10)
    finally:
        engine.dispose()
