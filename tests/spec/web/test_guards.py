"""Guards on what cannot be undone (both databases): randomizing, the database lock, an emergency unblinding and a
DSMB decision each show a confirmation page first, which changes nothing; only the confirmation's post acts, and
only on the facts the page showed (``web/confirm.py``). Randomizing past the protocol's target sample size is
allowed, and the confirmation says so. The pharmacist's list is by state, with who and when on the site's clock.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.spec.protocol.conftest import mutated_text
from tests.spec.web.conftest import confirm_of, csrf_of
from tests.spec.web.test_randomization_pages import ARM_NAMES, as_role, enrolled
from tests.trialfixtures import PASSWORD, Trial, make_trial, username, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services import audit, clock
from trialwright.services.forms import raise_query
from trialwright.services.lock import lock_state
from trialwright.services.randomization import (
    PreparationState,
    allocation_of,
    generate_list,
    page_preparation_queue,
    preparation_counts,
    prepare,
    randomize,
    what_to_prepare,
)
from trialwright.services.safety import DECISION_CODES, pause
from trialwright.settings import Settings
from trialwright.web.app import create_app

TEHRAN = ZoneInfo("Asia/Tehran")


def _ask(c: TestClient, path: str, form_page: str, **data: str):  # type: ignore[no-untyped-def]
    return c.post(path, data={"csrf_token": csrf_of(c.get(form_page).text), **data})


def _confirm(c: TestClient, path: str, asked: Any, **data: str):  # type: ignore[no-untyped-def]
    return c.post(path, data={"csrf_token": csrf_of(asked.text), "confirm": confirm_of(asked.text), **data})


def _randomized_count(trial: Trial) -> int:
    return len(audit.entries(trial.engine, action_prefix="participant.randomized"))


def test_randomizing_asks_first_and_the_first_post_changes_nothing(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=3)
    pid = enrolled(trial)
    path = f"/participants/{pid}/randomize"
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        asked = _ask(coord, path, f"/participants/{pid}")
        assert asked.status_code == 200
        assert f"Participant {pid} (site Razi hospital) is given the next concealed allocation" in asked.text
        assert "This cannot be undone" in asked.text and f'href="/participants/{pid}"' in asked.text  # cancel
        assert "number 1 of the protocol&#39;s target of 30" in asked.text  # nobody randomized yet; target 30
        assert 'data-testid="past-target"' not in asked.text
        assert not any(name in asked.text for name in ARM_NAMES) and "EXO" not in asked.text
        # Asking (and then cancelling, which only follows a link) changes nothing.
        assert allocation_of(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid) is None
        assert _randomized_count(trial) == 0
        assert "Not yet randomized." in coord.get(f"/participants/{pid}").text
        # A confirmation that does not match what the page now says is asked again, not acted on.
        stale = coord.post(path, data={"csrf_token": csrf_of(asked.text), "confirm": "0" * 20})
        assert stale.status_code == 409 and 'data-testid="changed"' in stale.text
        assert _randomized_count(trial) == 0
        done = _confirm(coord, path, asked)
        assert done.status_code == 303 and done.headers["location"] == f"/participants/{pid}"
        shown = coord.get(f"/participants/{pid}").text
        assert 'data-testid="randomization-number">1<' in shown and 'data-testid="arm"><em>masked' in shown
        # Randomized already: refused in words, before any confirmation.
        again = _ask(coord, path, f"/participants/{pid}")
        assert again.status_code == 422 and f"{pid} is randomized already" in again.text
    assert _randomized_count(trial) == 1


def _small_target(doc: Any) -> None:
    doc["sample_size"]["target"] = 2
    doc["sample_size"]["per_arm"] = {"EXO": 1, "PBO": 1}


def test_past_the_target_the_confirmation_says_so(database_url: str) -> None:
    trial = make_trial(database_url, load_protocol_text(mutated_text(_small_target)))
    app = create_app(Settings(database_url=trial.url))
    investigator = who(trial, Role.INVESTIGATOR)
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=3)
    randomize(trial.engine, investigator, enrolled(trial))
    pid = enrolled(trial)
    path = f"/participants/{pid}/randomize"
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        asked = _ask(coord, path, f"/participants/{pid}")
        assert asked.status_code == 200 and "number 2 of the protocol&#39;s target of 2" in asked.text
        assert 'data-testid="past-target"' not in asked.text  # the 2nd of 2 reaches the target
        randomize(trial.engine, investigator, enrolled(trial))  # meanwhile, at the same site, another: 2 of 2
        assert _randomized_count(trial) == 2
        late = _confirm(coord, path, asked)  # confirmed on a page that did not warn: asked again, with the warning
        assert late.status_code == 409 and 'data-testid="changed"' in late.text
        assert 'data-testid="past-target"' in late.text and "Past the target sample size." in late.text
        assert (
            "2 participants are randomized in the trial and the protocol&#39;s target is 2: this participant would "
            "be number 3." in late.text
        )
        assert "you may go on" in late.text  # the protocol sets no ceiling
        assert allocation_of(trial.engine, investigator, pid) is None
        done = _confirm(coord, path, late)
        assert done.status_code == 303
    allocation = allocation_of(trial.engine, investigator, pid)
    assert allocation is not None and allocation.number == 3 and _randomized_count(trial) == 3
    trial.engine.dispose()


def test_the_lock_asks_first_and_asks_again_when_a_blocker_appears(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    path = "/data-management/lock"
    with as_role(app, Role.DATA_MANAGER) as manager:
        asked = _ask(manager, path, "/data-management", action="lock", reason="final analysis")
        assert asked.status_code == 200 and "Confirm the database lock" in asked.text
        assert "The whole trial database is locked, at every site" in asked.text
        assert "Nothing blocks the lock." in asked.text and 'name="password"' not in asked.text
        assert 'value="final analysis"' in asked.text  # the reason is kept
        assert not lock_state(trial.engine).locked  # asking locks nothing
        pid = enrolled(trial)
        raise_query(trial.engine, who(trial, Role.MONITOR), pid, "Please confirm the screening age.")
        late = _confirm(manager, path, asked, action="lock", reason="final analysis")
        assert late.status_code == 409 and 'data-testid="changed"' in late.text
        assert 'data-testid="override"' in late.text and "Open blockers: 1" in late.text
        assert 'name="password"' in late.text and not lock_state(trial.engine).locked
        refused = _confirm(manager, path, late, action="lock", reason="final analysis")
        assert refused.status_code == 422 and "1 blocker (1 open query) blocks the lock" in refused.text
        assert not lock_state(trial.engine).locked
        done = _confirm(manager, path, late, action="lock", reason="final analysis", password=PASSWORD)
        assert done.status_code == 303 and lock_state(trial.engine).locked
        # Unlocking is not guarded: it undoes the lock, with a reason.
        unlocked = _ask(manager, path, "/data-management", action="unlock", reason="query answered")
        assert unlocked.status_code == 303 and not lock_state(trial.engine).locked


def test_unblinding_asks_first_and_reveals_nothing_until_confirmed(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=3)
    pid = enrolled(trial)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    path = f"/participants/{pid}/unblind"
    with as_role(app, Role.INVESTIGATOR) as inv:
        form = inv.get(path).text
        assert 'name="reason"' in form and 'name="password"' not in form  # the password is asked on confirming
        asked = _ask(inv, path, path, reason="suspected anaphylaxis")
        assert asked.status_code == 200 and "Confirm the emergency unblinding" in asked.text
        assert f"The arm of participant {pid} is shown to you, and to you alone" in asked.text
        assert "These roles are notified: Unblinded statistician, DSMB member" in asked.text  # the protocol's list
        assert "suspected anaphylaxis" in asked.text and 'name="password"' in asked.text
        assert not any(name in asked.text for name in ARM_NAMES)
        assert not audit.entries(trial.engine, action_prefix="participant.unblinded")
        assert 'data-testid="unblinded-flag"' not in inv.get(f"/participants/{pid}").text
        revealed = _confirm(inv, path, asked, reason="suspected anaphylaxis", password=PASSWORD)
        assert revealed.status_code == 200 and any(name in revealed.text for name in ARM_NAMES)
        assert 'data-testid="unblinded-flag"' in inv.get(f"/participants/{pid}").text


@pytest.mark.parametrize("decision", DECISION_CODES)  # every decision the DSMB can record: resume, pause, stop
def test_a_dsmb_decision_asks_first(app, trial: Trial, decision: str) -> None:  # type: ignore[no-untyped-def]
    with as_role(app, Role.DSMB_MEMBER) as dsmb:
        asked = _ask(dsmb, "/dsmb/decisions", "/dsmb", decision=decision, reason="interim review")
        assert asked.status_code == 200 and "Confirm the DSMB decision" in asked.text
        assert ('data-testid="final"' in asked.text) == (decision == "stop")  # only a stop is final
        assert not audit.entries(trial.engine, action_prefix="safety.decision") and not pause(trial.engine).active
        done = _confirm(dsmb, "/dsmb/decisions", asked, decision=decision, reason="interim review",
                        password=PASSWORD)  # fmt: skip
        assert done.status_code == 303
    (entry,) = audit.entries(trial.engine, action_prefix="safety.decision")
    assert entry.actor == username(Role.DSMB_MEMBER)
    assert json.loads(entry.new_value or "{}")["decision"] == decision
    state = pause(trial.engine)
    assert state.active == (decision != "resume") and state.stopped == (decision == "stop")


def _tehran_one_am_before(moment: dt.datetime) -> dt.datetime:
    """The last 01:00 on the Tehran clock before ``moment`` (UTC)."""
    local = moment.astimezone(TEHRAN)
    one = dt.datetime.combine(local.date(), dt.time(1), tzinfo=TEHRAN)
    return (one if one <= local else one - dt.timedelta(days=1)).astimezone(dt.UTC)


def _prepare(trial: Trial, code: str) -> None:
    pharmacist = who(trial, Role.UNBLINDED_PHARMACIST)
    values = {"product_lot": "L1", "volume_ml": 3, "particles": 5e10}
    declared = [a.id for a in what_to_prepare(trial.engine, pharmacist, code).attributes]
    prepare(trial.engine, pharmacist, code, {k: values[k] for k in declared})


def test_the_pharmacy_list_by_state_on_the_sites_clock(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=3)
    investigator, pharmacist = who(trial, Role.INVESTIGATOR), who(trial, Role.UNBLINDED_PHARMACIST)
    codes = [randomize(trial.engine, investigator, enrolled(trial)).preparation_code for _ in range(3)]
    # 01:00 in Tehran is 21:30 UTC the day before: a dose prepared at 00:30 Tehran time is today's there, one
    # prepared at 23:30 the evening before is not, although both fall on the same UTC day.
    now = _tehran_one_am_before(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    half_past_midnight, half_past_eleven = now - dt.timedelta(minutes=30), now - dt.timedelta(minutes=90)
    assert half_past_midnight.date() == half_past_eleven.date() == now.date()  # one UTC day
    for code, at in ((codes[0], half_past_midnight), (codes[1], half_past_eleven)):
        with clock.simulated_time(at):
            _prepare(trial, code)

    def listed(state: PreparationState) -> list[str]:
        with clock.simulated_time(now):
            return [q.preparation_code for q in page_preparation_queue(trial.engine, pharmacist, state=state).items]

    assert listed(PreparationState.TO_PREPARE) == [codes[2]]
    assert listed(PreparationState.PREPARED_TODAY) == [codes[0]]
    assert listed(PreparationState.DONE) == [codes[1]]
    assert listed(PreparationState.NOTHING_TO_PREPARE) == []
    with clock.simulated_time(now):
        counts = preparation_counts(trial.engine, pharmacist)
    assert counts == {PreparationState.TO_PREPARE: 1, PreparationState.PREPARED_TODAY: 1, PreparationState.DONE: 1,
                      PreparationState.NOTHING_TO_PREPARE: 0}  # fmt: skip
    # The page, on the real clock (a day or more after both preparations): waiting, then done on earlier days,
    # each with who and when on the site's clock, its zone named.
    with as_role(app, Role.UNBLINDED_PHARMACIST) as pharm:
        page = pharm.get("/pharmacy").text
        assert (
            'data-testid="tab-to_prepare" aria-current="page"' in page and 'data-testid="count-to_prepare">1<' in page
        )
        assert f'data-testid="code-{codes[2]}"' in page and f'data-testid="code-{codes[0]}"' not in page
        assert username(Role.INVESTIGATOR) in page and "+03:30" in page and "Razi hospital Asia/Tehran" in page
        assert 'data-testid="tab-nothing_to_prepare"' not in page  # every arm of this trial is prepared
        today = pharm.get("/pharmacy?state=prepared_today").text
        assert 'data-testid="count-prepared_today">0<' in today and "No dose prepared today." in today
        done = pharm.get("/pharmacy?state=done").text
        assert all(f'data-testid="code-{c}"' in done for c in codes[:2]) and f"code-{codes[2]}" not in done
        assert username(Role.UNBLINDED_PHARMACIST) in done  # who prepared
        # Latest preparation first: 00:30 Tehran time before 23:30 the evening before.
        assert done.index(f"code-{codes[0]}") < done.index(f"code-{codes[1]}")
        assert half_past_eleven.astimezone(TEHRAN).strftime("%H:%M +03:30") in done
        bad = pharm.get("/pharmacy?state=later")
        assert bad.status_code == 422 and "state: &#39;later&#39; is not one of to_prepare" in bad.text
