"""A visit an amendment added is due only where its window was still open when the amendment took effect (SQLite
and PostgreSQL; walk2 finding F4).

The trial: walk2 (``tests/data/walks/walk2.v1.yaml``, version 1.0), amended by ``walk2.yaml``: amendment 1, dated
2026-07-01, produces version 1.1 and adds ``day14`` (14 days after randomization, window 12 to 16 days). Four
participants are randomized under version 1.0, the amendment is loaded, and the trial is read on 2026-08-10, none of
them having held or missed ``day14``:

| randomized  | day14's window          | on 2026-08-10 (the amendment took effect 2026-07-01)                |
|-------------|-------------------------|---------------------------------------------------------------------|
| 2026-03-02  | 2026-03-14 - 2026-03-18 | not due: added by protocol version 1.1 after the window closed      |
| 2026-06-14  | 2026-06-26 - 2026-06-30 | not due: the window's last day was the day before the amendment     |
| 2026-06-15  | 2026-06-27 - 2026-07-01 | overdue: the window still open on the amendment's day (its last day) |
| 2026-06-25  | 2026-07-07 - 2026-07-11 | overdue: the window opened after the amendment                      |

The same answer from every place that says a visit is due: the participant's schedule (and its page), the lock
readiness (a blocker for the overdue, a listed "not due" with the amendment for the others, on its page in English
and Persian) and the work list of overdue visits. Before the rule every one of them was overdue everywhere (the
walk counted 145 such blockers).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.spec.web.conftest import sign_in
from tests.trialfixtures import PASSWORD
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services import clock
from trialwright.services.forms import participant_schedule
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.readiness import BlockerKind, lock_readiness
from trialwright.services.screening import enrol, record_consent, screen
from trialwright.services.trial import init_trial
from trialwright.services.users import UserView, create_user, get_user
from trialwright.services.worklist import WorkKind, work_page
from trialwright.settings import Settings
from trialwright.store.engine import make_engine
from trialwright.web.app import create_app

WALKS = Path(__file__).parents[2] / "data" / "walks"
ELIGIBLE = {"age": 78, "sex": "female", "surgery_done": True, "walked_before": True, "pathological": False}
RANDOMIZED = {"long_before": "2026-03-02", "day_before": "2026-06-14", "on_the_day": "2026-06-15",
              "after": "2026-06-25"}  # fmt: skip
NOW = dt.datetime(2026, 8, 10, 9, 0, tzinfo=dt.UTC)


def _account(engine: Engine, role: Role, language: str = "en") -> UserView:
    """The trial's account of ``role`` (at both sites where the role works at sites) reading pages in ``language``."""
    name = role.value.replace("_", "-") + ("" if language == "en" else f"-{language}")
    sites = ["LON", "TEH"] if role.site_scoped else []
    create_user(engine, username=name, password=PASSWORD, role=role, sites=sites, full_name=name, actor="test",
                language=language)  # fmt: skip
    user = get_user(engine, name)
    assert user is not None
    return user


def _randomized_on(engine: Engine, coordinator: UserView, day: str) -> str:
    """A participant screened, consented, enrolled and randomized at Imam Hospital (Tehran) at 10:00 that day."""
    at = dt.datetime.fromisoformat(f"{day}T10:00:00+03:30")
    with clock.simulated_time(at):
        s = screen(engine, coordinator, site="TEH", screened_on=at.date(), values=ELIGIBLE)
        record_consent(engine, coordinator, s.id, form_version="1.0", given_by="participant", obtained_by="Dr K",
                       obtained_at=at)  # fmt: skip
        participant = enrol(engine, coordinator, s.id).participant
        assert participant is not None
        randomize(engine, coordinator, participant.participant_id)
    return participant.participant_id


def test_an_added_visit_is_due_only_where_its_window_was_open_when_the_amendment_took_effect(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        with clock.simulated_time(dt.datetime(2026, 2, 1, tzinfo=dt.UTC)):
            init_trial(engine, load_protocol(WALKS / "walk2.v1.yaml"))
            coordinator, manager = _account(engine, Role.STUDY_COORDINATOR), _account(engine, Role.DATA_MANAGER)
            _account(engine, Role.DATA_MANAGER, "fa")
            generate_list(engine, _account(engine, Role.UNBLINDED_STATISTICIAN), seed=7)
        made = {name: _randomized_on(engine, coordinator, day) for name, day in RANDOMIZED.items()}
        with clock.simulated_time(dt.datetime(2026, 7, 1, 6, 0, tzinfo=dt.UTC)):
            assert init_trial(engine, load_protocol(WALKS / "walk2.yaml")).status == "upgraded"
        with clock.simulated_time(NOW):
            day14 = {name: next(v for v in participant_schedule(engine, coordinator, pid).visits
                                if v.visit_id == "day14") for name, pid in made.items()}  # fmt: skip
            report = lock_readiness(engine, manager)
            overdue = work_page(engine, coordinator, WorkKind.VISITS_OVERDUE, limit=100)
        # The pages (today's real clock: every window here has long closed, so each visit reads the same).
        with TestClient(create_app(Settings(database_url=database_url)), follow_redirects=False) as client:
            page = sign_in(client, manager.username).get("/data-management/readiness").text
            schedule_page = client.get(f"/participants/{made['long_before']}").text
        with TestClient(create_app(Settings(database_url=database_url)), follow_redirects=False) as client:
            persian = sign_in(client, "data-manager-fa").get("/data-management/readiness").text
    finally:
        engine.dispose()
    # The participant's schedule: not due, naming the amendment, where the window closed before 2026-07-01.
    # Before the rule: all four overdue.
    assert {name: v.status.value for name, v in day14.items()} == {
        "long_before": "not_due", "day_before": "not_due", "on_the_day": "overdue", "after": "overdue",
    }  # fmt: skip
    added = day14["long_before"].added_by
    assert added is not None and (added.version, added.effective) == ("1.1", dt.date(2026, 7, 1))
    # The lock readiness: a blocker for the overdue only; the others listed as not due, with the amendment.
    blocking = {b.participant_id for b in report.blockers if b.kind is BlockerKind.VISIT and b.visit == "day14"}
    assert blocking == {made["on_the_day"], made["after"]}
    listed = {v.participant_id: v for v in report.not_due}
    assert set(listed) == {made["long_before"], made["day_before"]}
    assert listed[made["day_before"]].text() == (
        f"{made['day_before']} visit day14: not due: added by protocol version 1.1 (effective 2026-07-01) after the "
        "window closed on 2026-06-30"
    )
    assert "Not due: 2 visits an amendment added after the window closed." in report.summary()
    # The work list of overdue visits: the same two.
    assert {i.participant_id for i in overdue.items if i.visit_id == "day14"} == {made["on_the_day"], made["after"]}
    # The pages say it: the readiness page lists the two not due with the amendment, the participant page too.
    listed_on_page = page.split('data-testid="readiness-not-due"')[1].split("</section>")[0]
    assert listed_on_page.count('data-testid="not-due"') == 2
    assert made["long_before"] in listed_on_page and made["on_the_day"] not in listed_on_page
    assert "not due: added by protocol version 1.1 (effective" in listed_on_page
    assert "not due: added by protocol version 1.1 after the window closed" in schedule_page
    assert "سررسید نیست: نسخهٔ" in persian.split('data-testid="readiness-not-due"')[1]
    # The visits of version 1.0 are owed by all four as before (none held): the rule touches added visits only.
    assert {i.participant_id for i in overdue.items if i.visit_id == "day7"} == set(made.values())
