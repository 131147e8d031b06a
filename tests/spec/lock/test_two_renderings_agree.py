"""The lock's two renderings of one set of facts agree (``services/lock.py``), on SQLite and PostgreSQL: ``_frozen``
(Python, which ``require_unlocked`` raises from) and ``frozen_expression`` (SQL, read by the randomization's one
decision statement) refuse a change of a participant in exactly the same cases, for any lock rows:

| the rows (newest last)                                       | a change of the participant                    |
|--------------------------------------------------------------|------------------------------------------------|
| the database lock's latest row locked                        | refused, whoever the participant               |
| the latest soft-lock row of the participant locked           | refused                                        |
| the latest soft-lock row of the participant's site locked    | refused                                        |
| every latest row lifted (an unlock after a lock), or no row  | free                                           |

Hypothesis draws the rows (database locks and lifts, site and participant soft locks and lifts, on the trial's
participants, sites and names of neither) and asks both for every participant, known or not.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.orm import Session

from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import Trial
from trialwright.services.lock import _frozen, frozen_expression
from trialwright.store.data_tables import soft_locks, trial_locks

AT = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
SITES = ["RAZ", "GOL", "NOSUCH"]
UNKNOWN = "RAZ-999"  # a participant id no participant has


def _agree(trial: Trial, pids: list[str]) -> None:
    """Every participant (and a stranger), known site or none: both renderings give the same answer."""
    site_of = dict(zip(pids, ["RAZ", "RAZ", "GOL"], strict=True))
    targets = st.sampled_from([*pids, UNKNOWN, *SITES])
    soft = st.tuples(st.sampled_from(["site", "participant"]), targets, st.booleans())

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(database=st.lists(st.booleans(), max_size=3), softs=st.lists(soft, max_size=8))
    def check(database: list[bool], softs: list[tuple[str, str, bool]]) -> None:
        with Session(trial.engine) as session:
            try:
                session.execute(delete(trial_locks))
                session.execute(delete(soft_locks))
                for locked in database:
                    session.execute(insert(trial_locks).values(locked=locked, at=AT, by="dm", reason="drawn"))
                for scope, target, locked in softs:
                    session.execute(insert(soft_locks).values(scope=scope, target=target, locked=locked, at=AT,
                                                              by="dm", reason="drawn"))  # fmt: skip
                expression = select(frozen_expression(bindparam("pid")))
                for pid in [*pids, UNKNOWN]:
                    in_sql = bool(session.execute(expression, {"pid": pid}).scalar())
                    expected = _independent(database, softs, pid, site_of.get(pid))
                    assert in_sql is expected, (pid, database, softs)
                    assert (_frozen(session, pid, None) is not None) is expected, (pid, database, softs)
                    if pid in site_of:  # the caller names the site it knows
                        assert (_frozen(session, pid, site_of[pid]) is not None) is expected
            finally:
                session.rollback()

    check()


def _independent(database: list[bool], softs: list[tuple[str, str, bool]], pid: str, site: str | None) -> bool:
    """The rule read from the drawn rows here: the latest of each of the three targets decides."""
    latest = {}
    for scope, target, locked in softs:
        latest[(scope, target)] = locked
    return bool(database and database[-1]) or latest.get(("participant", pid), False) or (
        site is not None and latest.get(("site", site), False)
    )


def test_the_python_and_sql_renderings_of_the_lock_agree(trial: Trial) -> None:
    pids = [enrolled(trial, "RAZ"), enrolled(trial, "RAZ"), enrolled(trial, "GOL")]
    _agree(trial, pids)
