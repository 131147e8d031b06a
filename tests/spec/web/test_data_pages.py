"""The form entry page with inline validation, the lifecycle buttons, the query inbox and the database
lock, as each role uses them (both databases)."""

from __future__ import annotations

import datetime as dt

import yaml

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.web.conftest import confirm_of, csrf_of
from tests.spec.web.test_randomization_pages import as_role, enrolled
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.users import set_preferences

LABS = "/participants/{pid}/visits/baseline/forms/labs"


def test_enter_labs_answer_the_query_verify_sign_and_lock(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)  # 00:00 today (site time): after the consent, never future
    url = LABS.format(pid=pid)
    today = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3, minutes=30)).date().isoformat()
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(url)
        assert page.status_code == 200 and "not started" in page.text
        token = csrf_of(page.text)
        bad = coord.post(url, data={"csrf_token": token, "v-crp": "900", "v-il6": "lots", "v-tnf_alpha": "12"})
        assert bad.status_code == 422
        # Each refusal on its field's row, naming the field by its label (issue 24: not "crp:").
        assert (
            'data-testid="error-crp">C-reactive protein: 900 mg/L is outside the accepted range 0-600 mg/L<'
            in bad.text
        )
        assert 'data-testid="error-il6">IL-6: must be a number' in bad.text
        assert ">crp:" not in bad.text and ">il6:" not in bad.text
        assert 'value="900"' in bad.text and 'value="12"' in bad.text  # what was typed is kept on the page
        assert coord.get(url).text.count("not started") >= 1  # and nothing was saved
        form = {"csrf_token": token, "v-sampled_at": f"{today}T00:00", "v-crp": "45", "u-crp": "mg/dL",
                "v-il6": "", "s-il6": "below_lloq", "v-tnf_alpha": "12"}  # fmt: skip
        form["v-il6"] = "1.5"
        saved = coord.post(url, data=form)
        assert saved.status_code == 303
        shown = coord.get(url).text
        assert (
            'data-testid="form-state">draft<' in shown
            and '<span class="badge query-open">open</span> C-reactive protein 450 mg/L is outside the expected range'
            in shown
        )
        # the query beside its field (the row marked), its text once on the page
        assert 'class=" has-query" data-testid="row-crp"' in shown and 'data-testid="field-query-crp"' in shown
        assert shown.count("C-reactive protein 450 mg/L is outside the expected range") == 1
        assert ">&lt; 1.5<" not in shown  # the entry field keeps the LLOQ as typed, not as text
        # A number typed in another unit is shown as stored, in the field's unit, with that unit chosen and what was
        # typed noted beside it: a number typed over it later is not read in mg/dL left chosen.
        assert 'id="v-crp" name="v-crp" inputmode="decimal" value="450"' in shown
        assert '<option value="mg/dL" selected>' not in shown
        assert 'data-testid="entered-crp">entered as 45 <bdi dir="ltr">mg/dL</bdi><' in shown
        participant = coord.get(f"/participants/{pid}").text
        assert "Laboratory: draft" in participant and "1 open queries" in participant
        inbox = coord.get("/queries").text
        assert inbox.count('data-testid="query-row"') == 1
        query_id = inbox.split('action="/queries/')[1].split("/")[0]
        answered = coord.post(
            f"/queries/{query_id}/answer",
            data={"csrf_token": token, "answer": "Confirmed: 45 mg/dL on the lab report", "back": url},
        )
        assert answered.status_code == 303 and answered.headers["location"] == url
        missing = coord.post(url + "/complete", data={"csrf_token": token})
        assert missing.status_code == 422 and "required; enter a value or record it as not done" in missing.text
    with as_role(app, Role.MONITOR) as monitor:
        assert monitor.get(url).status_code == 200
        closed = monitor.post(
            f"/queries/{query_id}/close", data={"csrf_token": csrf_of(monitor.get(url).text), "note": "agreed"}
        )
        assert closed.status_code == 303
        assert monitor.post(url, data={"csrf_token": csrf_of(monitor.get(url).text), "v-crp": "1"}).status_code == 403
    with as_role(app, Role.DATA_MANAGER) as manager:
        token = csrf_of(manager.get("/data-management").text)
        asked = manager.post("/data-management/lock", data={"csrf_token": token, "action": "lock", "reason": ""})
        assert asked.status_code == 200 and "Confirm the database lock" in asked.text  # nothing locked yet
        confirm = confirm_of(asked.text)
        assert (
            manager.post(
                "/data-management/lock", data={"csrf_token": token, "action": "lock", "reason": "", "confirm": confirm}
            ).status_code
            == 422
        )
        overridden = {"csrf_token": token, "action": "lock", "reason": "interim", "password": PASSWORD,
                      "confirm": confirm}  # fmt: skip
        assert manager.post("/data-management/lock", data=overridden).status_code == 303
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        refused = coord.post(url, data={"csrf_token": csrf_of(coord.get(url).text), "v-tnf_alpha": "13"})
        assert refused.status_code == 422 and "the database is locked" in refused.text
    with as_role(app, Role.DATA_MANAGER) as manager:
        token = csrf_of(manager.get("/data-management").text)
        manager.post("/data-management/lock", data={"csrf_token": token, "action": "unlock", "reason": "interim done"})
    assert [e.action for e in audit.entries(trial.engine, action_prefix="trial.lock")] == ["trial.locked"]
    assert audit.entries(trial.engine, action_prefix="query.closed")


def test_a_complete_form_is_verified_signed_and_locked_on_the_page(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled(trial)
    url = f"/participants/{pid}/visits/baseline/forms/performance"
    today = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3, minutes=30)).date().isoformat()
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        token = csrf_of(coord.get(url).text)
        assert coord.post(url, data={"csrf_token": token, "v-assessed_on": today, "v-status": "2"}).status_code == 303
        assert coord.post(url + "/complete", data={"csrf_token": token}).status_code == 303
        no_reason = coord.post(url, data={"csrf_token": token, "v-assessed_on": today, "v-status": "3"})
        assert no_reason.status_code == 422 and "a change needs a reason for change" in no_reason.text
    with as_role(app, Role.MONITOR) as monitor:
        assert monitor.post(url + "/verify", data={"csrf_token": csrf_of(monitor.get(url).text)}).status_code == 303
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(url).text
        assert 'data-testid="meaning">I confirm that I have reviewed' in page
        wrong = inv.post(url + "/sign", data={"csrf_token": csrf_of(page), "password": "nope"})
        assert wrong.status_code == 422 and "Your password: re-enter your own password to sign" in wrong.text
        assert inv.post(url + "/sign", data={"csrf_token": csrf_of(page), "password": PASSWORD}).status_code == 303
        assert 'data-testid="form-state">signed<' in inv.get(url).text
    with as_role(app, Role.DATA_MANAGER) as manager:
        token = csrf_of(manager.get(url).text)
        assert manager.post(url + "/lock", data={"csrf_token": token}).status_code == 303
        assert 'data-testid="form-state">locked<' in manager.get(url).text
        assert manager.post(url + "/unlock", data={"csrf_token": token, "reason": "query"}).status_code == 303
        assert 'data-testid="form-state">signed<' in manager.get(url).text


def test_the_matrix_site_filter_says_site_names_in_the_viewer_s_language(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    """The status matrix's site filter offers each of the viewer's sites by its name, as the protocol file
    gives it (read here straight from the YAML), translated for a Persian reader; it still sends the code."""
    sites = yaml.safe_load(FIRST_PROTOCOL.read_text("utf-8"))["sites"]
    assert len(sites) >= 2
    set_preferences(trial.engine, "data-manager", language="en", calendar="gregorian")
    with as_role(app, Role.DATA_MANAGER) as manager:  # every site
        english = manager.get("/data/matrix").text
        for s in sites:
            assert f'<option value="{s["code"]}">{s["name"]}</option>' in english
        set_preferences(trial.engine, "data-manager", language="fa", calendar="gregorian")
        persian = manager.get("/data/matrix?site=" + sites[0]["code"]).text
        first = sites[0]
        assert f'<option value="{first["code"]}" selected>{first["translations"]["fa"]}</option>' in persian


def test_the_history_link_is_offered_only_to_those_it_opens_for(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    """A form's "history" link leads to the audit trail: offered to the roles that may read it (it opens), not
    to the others (it would answer 403)."""
    pid = enrolled(trial)
    url = f"/participants/{pid}/visits/baseline/forms/performance"
    today = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3, minutes=30)).date().isoformat()
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        assert coord.post(url, data={"csrf_token": csrf_of(coord.get(url).text), "v-assessed_on": today,
                                     "v-status": "2"}).status_code == 303  # fmt: skip
    history = f'href="/admin/audit?participant={pid}"'
    for role in (Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.OUTCOME_ASSESSOR, Role.MONITOR, Role.DATA_MANAGER):
        with as_role(app, role) as viewer:
            offered = history in viewer.get(url).text
            opens = viewer.get(f"/admin/audit?participant={pid}").status_code == 200
            assert offered == opens, (role, offered, opens)
            assert offered == (role in {Role.MONITOR, Role.DATA_MANAGER}), role
