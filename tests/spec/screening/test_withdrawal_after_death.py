"""A participant who has died is not withdrawn after their death, on both databases.

A death ends follow-up: a withdrawal dated after it would make CONSORT count the participant twice (a death and a
loss by withdrawal) and say they chose something they no longer could. A new user's walk recorded
``consent withdraw`` for a participant who had died months before and it was accepted. The death is read as the
records give it (``services.deaths.death_of``: a fatal adverse event's current report, the death record, a declared
vital-status field); a withdrawal on the day of death or before it stays accepted (consent withdrawn, then died).
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy import text, update

from tests.spec.forms.conftest import ENROLLED_AT, TODAY
from tests.spec.randomization.test_randomize_service import enrolled
from tests.spec.web.conftest import csrf_of, sign_in
from tests.spec.worklist.test_after_death import _event
from tests.trialfixtures import Trial, make_trial, username, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.screening import ScreeningError, withdraw
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import participants
from trialwright.web.app import create_app
from trialwright.web.i18n import catalog_path

ISOLATES = re.compile("[\u2066-\u2069]")

DIED_ON = TODAY - dt.timedelta(days=5)


@pytest.fixture(scope="module")
def died(module_database_url: str) -> Iterator[tuple[Trial, list[str]]]:
    t = make_trial(module_database_url)
    pids = [enrolled(t) for _ in range(4)]
    with session_scope(t.engine) as session:
        session.execute(update(participants).values(enrolled_at=ENROLLED_AT))
        for n, pid in enumerate(pids[:3]):
            _event(session, pid, f"AE-000{n + 1}", ["fatal"], DIED_ON)
    yield t, pids
    t.engine.dispose()


def _withdraw(trial: Trial, pid: str, on: dt.date) -> None:
    withdraw(trial.engine, who(trial, Role.INVESTIGATOR), pid, scope="follow_up", cause="withdrew_consent",
             reason="The family asked to stop follow-up", withdrawn_on=on)  # fmt: skip


def test_a_withdrawal_dated_after_the_death_is_refused_naming_the_death(died: tuple[Trial, list[str]]) -> None:
    trial, pids = died
    before = len(audit.entries(trial.engine, action_prefix="participant.withdrawn"))
    with pytest.raises(ScreeningError) as refused:
        _withdraw(trial, pids[0], DIED_ON + dt.timedelta(days=1))
    assert str(refused.value) == (
        f"withdrawn_on: {(DIED_ON + dt.timedelta(days=1)).isoformat()} is after {pids[0]}'s death on "
        f"{DIED_ON.isoformat()} (adverse event AE-0001); a participant who has died is not withdrawn"
    )
    with pytest.raises(ScreeningError, match=r"is after .* death on"):
        _withdraw(trial, pids[0], TODAY)  # today, the default
    assert len(audit.entries(trial.engine, action_prefix="participant.withdrawn")) == before  # nothing written


def test_a_withdrawal_on_the_day_of_death_or_before_is_accepted(died: tuple[Trial, list[str]]) -> None:
    trial, pids = died
    _withdraw(trial, pids[1], DIED_ON)
    _withdraw(trial, pids[2], DIED_ON - dt.timedelta(days=2))
    _withdraw(trial, pids[3], TODAY)  # alive
    withdrawn = {e.participant for e in audit.entries(trial.engine, action_prefix="participant.withdrawn")}
    assert withdrawn & set(pids[1:]) == {pids[1], pids[2], pids[3]}


def test_a_persian_page_says_the_refusal_in_persian(died: tuple[Trial, list[str]]) -> None:
    trial, pids = died
    with trial.engine.connect() as c:
        sid = c.execute(text("SELECT screening_id FROM participants WHERE participant_id = :p"),
                        {"p": pids[0]}).scalar()  # fmt: skip
    set_preferences(trial.engine, username(Role.INVESTIGATOR), language="fa", calendar="gregorian")
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.INVESTIGATOR)
        typed = {"scope": "follow_up", "cause": "withdrew_consent", "reason": "The family asked to stop"}
        shown = client.post(f"/screening/{sid}/withdrawal",
                            data={"csrf_token": csrf_of(client.get(f"/screening/{sid}").text), **typed})  # fmt: skip
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', shown.text))
        refused = client.post(f"/screening/{sid}/withdrawal", data={k: html.unescape(v) for k, v in hidden.items()})
    assert refused.status_code == 422
    words = ISOLATES.sub("", html.unescape(refused.text))
    with catalog_path("fa").open("rb") as handle:
        catalog = {m.id: m.string for m in read_po(handle, locale="fa") if m.id}
    rule = catalog["%(day)s is after %(participant)s's death on %(died)s (%(source)s); a participant who has died "
                   "is not withdrawn"]  # fmt: skip
    assert rule.split("%(died)s")[1].split("(%(source)s)")[1].strip() in words  # the rule's Persian ending
    assert "a participant who has died is not withdrawn" not in words
