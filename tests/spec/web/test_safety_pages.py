"""The safety pages as each role uses them (both databases): report an adverse event with inline errors,
follow it up, record its submission; the team's masked safety page; the DSMB's page by arm and its
decision on the pause."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from tests.spec.web.conftest import confirm_of, csrf_of
from tests.spec.web.test_randomization_pages import as_role, enrolled
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.randomization import generate_list, randomize

TEHRAN = ZoneInfo("Asia/Tehran")


def _randomized(trial: Trial) -> str:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=5)
    pid = enrolled(trial)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    return pid


def test_report_follow_up_and_submit_an_sae_then_the_dsmb_resumes(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = _randomized(trial)
    now = dt.datetime.now(TEHRAN)
    with as_role(app, Role.INVESTIGATOR) as inv:
        participant = inv.get(f"/participants/{pid}").text
        assert "No adverse events reported." in participant and "/adverse-events/new" in participant
        new = inv.get(f"/participants/{pid}/adverse-events/new")
        token = csrf_of(new.text)
        bad = inv.post(f"/participants/{pid}/adverse-events", data={
            "csrf_token": token, "term": "Anaphylaxis", "onset": now.date().isoformat(), "end": "2020-01-01",
            "grade": "4", "serious": "yes", "causality": "probable", "action_taken": "infusion_stopped",
            "outcome": "recovering", "aware_at": now.strftime("%Y-%m-%dT%H:%M"),
        })  # fmt: skip
        assert bad.status_code == 422
        # Each refusal says the input by the label the page shows for it, not its id.
        needs = "Seriousness criteria (ICH E2A): a serious adverse event needs at least one ICH E2A criterion"
        assert f'data-testid="error-seriousness_criteria">{needs}' in bad.text
        assert 'data-testid="error-end">End (empty while ongoing): 2020-01-01 is before the onset' in bad.text
        assert 'value="Anaphylaxis"' in bad.text  # what was typed is kept
        good = inv.post(f"/participants/{pid}/adverse-events", data={
            "csrf_token": token, "term": "Anaphylaxis", "onset": now.date().isoformat(), "grade": "4",
            "serious": "yes", "seriousness_criteria": "life_threatening", "causality": "probable",
            "action_taken": "infusion_stopped", "outcome": "recovering", "aware_at": now.strftime("%Y-%m-%dT%H:%M"),
        })  # fmt: skip
        assert good.status_code == 303 and good.headers["location"] == "/adverse-events/AE-0001"
        page = inv.get("/adverse-events/AE-0001").text
        assert 'data-testid="susar"' in page and 'data-testid="deadline-state-sae_to_sponsor">pending' in page
        assert 'data-testid="deadline-susar_complete"' in page  # life-threatening: 7 + 8 days
        assert "IRST" in page or "+03:30" in page  # due times on the site's clock
        sent = inv.post("/adverse-events/AE-0001/submissions", data={
            "csrf_token": token, "kind": "sae_to_sponsor", "submitted_at": now.strftime("%Y-%m-%dT%H:%M"),
        })  # fmt: skip
        assert sent.status_code == 303
        assert 'data-testid="deadline-state-sae_to_sponsor">met' in inv.get("/adverse-events/AE-0001").text
        followed = inv.post("/adverse-events/AE-0001/follow-ups", data={
            "csrf_token": token, "term": "Anaphylaxis", "onset": now.date().isoformat(), "grade": "4",
            "serious": "yes", "seriousness_criteria": "life_threatening", "causality": "probable",
            "action_taken": "infusion_stopped", "outcome": "recovered", "end": now.date().isoformat(),
            "aware_at": now.strftime("%Y-%m-%dT%H:%M"), "reason": "resolved after adrenaline",
        })  # fmt: skip
        assert followed.status_code == 303
        assert 'data-testid="report-1"' in inv.get("/adverse-events/AE-0001").text
        safety = inv.get("/safety").text
        assert "All randomized participants, pooled" in safety and 'data-testid="event-AE-0001"' in safety
        assert "Randomization is paused" in safety  # a related SAE pauses the trial
        assert "EXO" not in safety and "Placebo" not in safety
        listing = inv.get("/safety/listing.csv")
        assert listing.headers["content-type"].startswith("text/csv") and "arm" not in listing.text.split("\n")[0]
        assert inv.get("/dsmb").status_code == 403
        other = enrolled(trial)
        refused = inv.post(f"/participants/{other}/randomize", data={"csrf_token": token})
        assert refused.status_code == 422 and "paused by the protocol&#39;s safety rule" in refused.text
    assert audit.entries(trial.engine, action_prefix="safety.listing_exported")
    with as_role(app, Role.DSMB_MEMBER) as dsmb:
        page = dsmb.get("/dsmb").text
        assert "Randomized participants by arm" in page and "hUCMSC-Exos + standard care" in page
        assert 'data-testid="listing"' in page
        token = csrf_of(page)
        asked = dsmb.post("/dsmb/decisions", data={"csrf_token": token, "decision": "resume", "reason": "ok"})
        assert asked.status_code == 200 and "Randomization reopens at every site" in asked.text
        confirm = confirm_of(asked.text)
        wrong = dsmb.post("/dsmb/decisions", data={"csrf_token": token, "decision": "resume", "reason": "ok",
                                                   "password": "nope", "confirm": confirm})  # fmt: skip
        assert wrong.status_code == 422 and "password" in wrong.text
        done = dsmb.post("/dsmb/decisions", data={"csrf_token": token, "decision": "resume", "confirm": confirm,
                                                  "reason": "reviewed by arm", "password": PASSWORD})  # fmt: skip
        assert done.status_code == 303
        assert "Randomization is open." in dsmb.get("/dsmb").text
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        home = coord.get("/").text
        assert "DSMB decision on the safety pause: resume" in home


def test_an_overdue_report_is_on_the_home_and_safety_pages(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    from trialwright.services.safety import report_event

    pid = _randomized(trial)
    aware = dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)
    report_event(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, {
        "term": "Pneumothorax", "onset": aware.astimezone(TEHRAN).date().isoformat(), "grade": 3, "serious": True,
        "seriousness_criteria": ["hospitalisation"], "causality": "unlikely", "action_taken": "not_applicable",
        "outcome": "recovering", "aware_at": aware.isoformat(),
    })  # fmt: skip
    for role in (Role.INVESTIGATOR, Role.MONITOR, Role.DATA_MANAGER):
        with as_role(app, role) as client:
            assert 'data-testid="overdue"' in client.get("/").text
            assert 'data-testid="overdue"' in client.get("/safety").text
    with as_role(app, Role.OUTCOME_ASSESSOR) as assessor:
        assert assessor.get("/safety").status_code == 403
        assert "Adverse events" not in assessor.get(f"/participants/{pid}").text


def test_the_safety_and_export_pages_offer_only_links_that_open(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    """Every link on the safety list, an event's page and the exports page opens for the person it is shown to
    (a blinded statistician, the DSMB and an unblinded statistician were shown participant and data-access links
    that answered 403); participant ids stay shown as text."""
    import re

    pid = _randomized(trial)
    now = dt.datetime.now(TEHRAN)
    with as_role(app, Role.INVESTIGATOR) as inv:
        token = csrf_of(inv.get(f"/participants/{pid}/adverse-events/new").text)
        made = inv.post(f"/participants/{pid}/adverse-events", data={
            "csrf_token": token, "term": "Anaphylaxis", "onset": now.date().isoformat(), "grade": "2",
            "serious": "no", "causality": "probable", "action_taken": "dose_not_changed", "outcome": "recovering",
            "aware_at": now.strftime("%Y-%m-%dT%H:%M"),
        })  # fmt: skip
        assert made.status_code == 303, made.text
    roles = (Role.BLINDED_STATISTICIAN, Role.UNBLINDED_STATISTICIAN, Role.DSMB_MEMBER, Role.INVESTIGATOR,
             Role.DATA_MANAGER)  # fmt: skip
    for role in roles:
        with as_role(app, role) as viewer:
            for path in ("/safety", "/adverse-events/AE-0001", "/exports"):
                shown = viewer.get(path)
                if shown.status_code != 200:
                    continue
                assert pid in shown.text or path == "/exports", (role, path)
                links = set(re.findall(r'href="(/[^"#?]*)', shown.text)) - {"/sign-out"}
                refused = [link for link in links if viewer.get(link).status_code == 403]
                assert not refused, (role, path, refused)
