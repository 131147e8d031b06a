"""A page that shows only the newest or the first rows of something says how many there are (both databases).

The home page and the unblinding log show the newest 20 notices to the viewer's role: past 20 they say "The
newest 20 of 25." Below 21 they say nothing more, because nothing is left out.
"""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from tests.spec.web.conftest import sign_in
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services.randomization import count_notifications_for, notifications_for
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import notifications


def _notify(trial: Trial, role: Role, n: int) -> None:
    with session_scope(trial.engine) as session:
        for i in range(n):
            session.execute(
                notifications.insert().values(
                    role=role.value, subject=f"Notice {i}", participant_id=None, created_at=dt.datetime.now(dt.UTC)
                )
            )


def test_the_notices_say_how_many_are_left_out(client: TestClient, trial: Trial) -> None:
    dsmb = who(trial, Role.DSMB_MEMBER)
    _notify(trial, Role.DSMB_MEMBER, 12)
    sign_in(client, Role.DSMB_MEMBER)
    assert count_notifications_for(trial.engine, dsmb) == 12 and len(notifications_for(trial.engine, dsmb)) == 12
    assert 'data-testid="notices-shown"' not in client.get("/").text
    _notify(trial, Role.DSMB_MEMBER, 13)
    assert count_notifications_for(trial.engine, dsmb) == 25 and len(notifications_for(trial.engine, dsmb)) == 20
    for path in ("/", "/unblindings"):
        assert "The newest 20 of 25." in client.get(path).text, path
    # Another role's notices are not counted.
    assert count_notifications_for(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN)) == 0
