"""Forms that keep their input and warn early (issue 24 item 5), through the pages, on both databases:

- the consent form keeps every typed value on a refusal; the regained-capacity decision and the withdrawal are
  on the web, confirmed first, and recorded through the services (audited);
- Consent and Enrol are offered only when allowed: never for a patient ineligible for another reason, Enrol only
  once eligible and consented;
- the screening form by criteria, each with its words; "none of these apply" answers the exclusions' empty
  yes/no questions "no" (and nothing an inclusion criterion reads);
- the CRF asks one reason for change, only once a saved value changes, and refuses its absence naming the field;
  the soft limits are on the inputs for the warning while typing; dates in a query's text are in the viewer's
  calendar.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update

from tests.spec.forms.conftest import earlier_today, enrolled_ten_days_ago
from tests.spec.screening.test_screening_consent_enrolment import TODAY, TYPED
from tests.spec.web.conftest import confirm_of, csrf_of
from tests.spec.web.test_randomization_pages import as_role
from tests.trialfixtures import Trial, who
from trialwright.domain.calendars import to_jalali
from trialwright.domain.roles import Role
from trialwright.services import audit, forms
from trialwright.services.screening import enrol, get_screening, record_consent, screen
from trialwright.services.users import set_preferences
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import screenings

TEHRAN = ZoneInfo("Asia/Tehran")


def _form(values: dict[str, Any]) -> dict[str, str]:
    return {k: ("yes" if v is True else "no" if v is False else str(v)) for k, v in values.items()}


def _value_of(html: str, input_id: str) -> str:
    match = re.search(rf'<input id="{input_id}" name="[^"]+"[^>]*value="([^"]*)"', html)
    assert match, f"no input {input_id}"
    return match.group(1)


def _screened(trial: Trial, **changes: Any) -> int:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    return screen(trial.engine, coordinator, site="RAZ", screened_on=TODAY, values={**TYPED, **changes}).id


def _lar_enrolled(trial: Trial) -> int:
    """A patient consented by a representative, then enrolled; its screening id."""
    sid = _screened(trial)
    record_consent(
        trial.engine,
        who(trial, Role.INVESTIGATOR),
        sid,
        form_version="1.0",
        given_by="representative",
        representative_name="Maryam Ahmadi",
        representative_relationship="daughter",
        obtained_by="Dr K",
        obtained_at=earlier_today(30),
    )
    enrol(trial.engine, who(trial, Role.STUDY_COORDINATOR), sid)
    return sid


def test_a_refused_consent_keeps_every_typed_value(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    sid = _screened(trial)
    when = (dt.datetime.now(TEHRAN) - dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M")
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(f"/screening/{sid}").text
        typed = {
            "form_version": "1.0",
            "given_by": "representative",
            "representative_name": "Maryam Ahmadi",
            "representative_relationship": "",
            "witness": "Nurse Karimi",
            "obtained_by": "Dr Khedri",
            "obtained_at": when,
            "decision": "consent",
            "kind": "initial",
        }
        bad = inv.post(f"/screening/{sid}/consent", data={**typed, "csrf_token": csrf_of(page)})
        assert bad.status_code == 422
        assert "Relationship to the patient: needed when a representative consents" in bad.text
        for name in ("representative_name", "witness", "obtained_by", "obtained_at"):
            assert _value_of(bad.text, name) == typed[name], name
        assert '<option value="representative" selected>' in bad.text
        assert get_screening(trial.engine, who(trial, Role.INVESTIGATOR), sid).consents == ()


def test_consent_and_enrol_are_offered_only_when_allowed(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    too_old = _screened(trial, age=70)  # I1: age 18 to 65
    awaiting = _screened(trial)
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        ineligible = coord.get(f"/screening/{too_old}").text
        assert 'data-testid="decision">not eligible' in ineligible
        assert f'action="/screening/{too_old}/consent"' not in ineligible
        assert f'action="/screening/{too_old}/enrol"' not in ineligible
        assert 'data-testid="no-consent"' in ineligible and 'data-testid="no-enrol"' in ineligible
        # incomplete only for want of consent: consent is asked, enrolment not yet
        page = coord.get(f"/screening/{awaiting}").text
        assert f'action="/screening/{awaiting}/consent"' in page and f'action="/screening/{awaiting}/enrol"' not in page
        record_consent(
            trial.engine,
            who(trial, Role.INVESTIGATOR),
            awaiting,
            form_version="1.0",
            given_by="participant",
            obtained_by="Dr K",
            obtained_at=dt.datetime.now(dt.UTC),
        )
        assert f'action="/screening/{awaiting}/enrol"' in coord.get(f"/screening/{awaiting}").text
    with as_role(app, Role.MONITOR) as monitor:  # reads the log, writes nothing: no form is offered
        shown = monitor.get(f"/screening/{awaiting}").text
        assert "/consent" not in shown and "/enrol" not in shown and "/values" not in shown


def test_the_regained_capacity_decision_to_withdraw_is_confirmed_and_withdraws_every_scope(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    sid = _lar_enrolled(trial)
    when = (dt.datetime.now(TEHRAN) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(f"/screening/{sid}").text
        assert 'data-testid="regained-form"' in page
        data = {
            "kind": "regained_capacity",
            "form_version": "1.0",
            "decision": "withdraw",
            "obtained_by": "Dr K",
            "obtained_at": when,
            "witness": "",
            "csrf_token": csrf_of(page),
        }
        asked = inv.post(f"/screening/{sid}/consent", data=data)
        assert asked.status_code == 200 and 'data-testid="confirm"' in asked.text
        assert get_screening(trial.engine, who(trial, Role.INVESTIGATOR), sid).consents[-1].kind == "initial"
        done = inv.post(f"/screening/{sid}/consent", data={**data, "confirm": confirm_of(asked.text)})
        assert done.status_code == 303
    s = get_screening(trial.engine, who(trial, Role.INVESTIGATOR), sid)
    assert s.consents[-1].kind == "regained_capacity" and s.consents[-1].decision == "withdraw"
    assert s.participant is not None
    assert sorted(s.participant.withdrawn_scopes) == ["data_use", "follow_up", "intervention"]
    actions = [e.action for e in audit.entries(trial.engine, action_prefix="", limit=50)]
    assert actions.count("participant.withdrawn") == 3 and "consent.withdraw" in actions


def test_a_withdrawal_on_the_web_is_confirmed_and_kept_as_typed_when_refused(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    sid = _lar_enrolled(trial)
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(f"/screening/{sid}").text
        assert 'data-testid="withdrawal-form"' in page
        future = (dt.datetime.now(TEHRAN).date() + dt.timedelta(days=3)).isoformat()
        data = {
            "scope": "follow_up",
            "cause": "withdrew_consent",
            "reason": "moved abroad",
            "withdrawn_on": future,
            "csrf_token": csrf_of(page),
        }
        asked = coord.post(f"/screening/{sid}/withdrawal", data=data)
        assert asked.status_code == 200 and 'data-testid="scope">follow up<' in asked.text
        refused = coord.post(f"/screening/{sid}/withdrawal", data={**data, "confirm": confirm_of(asked.text)})
        assert refused.status_code == 422 and "is in the future" in refused.text
        assert _value_of(refused.text, "w-reason") == "moved abroad"
        assert _value_of(refused.text, "w-withdrawn_on") == future  # as typed
        data["withdrawn_on"] = ""
        asked = coord.post(f"/screening/{sid}/withdrawal", data=data)
        done = coord.post(f"/screening/{sid}/withdrawal", data={**data, "confirm": confirm_of(asked.text)})
        assert done.status_code == 303
        shown = coord.get(f"/screening/{sid}").text
        assert '<option value="follow_up"' not in shown  # no longer offered
        assert "withdrawn: follow up</span>" in shown and "follow_up</span>" not in shown  # in words, not the code
        listed = coord.get("/participants").text
        assert "withdrawn: follow up</span>" in listed and "follow_up</span>" not in listed
    s = get_screening(trial.engine, who(trial, Role.STUDY_COORDINATOR), sid)
    assert s.participant is not None and s.participant.withdrawn_scopes == ("follow_up",)
    (entry,) = audit.entries(trial.engine, action_prefix="participant.withdrawn", limit=5)
    assert entry.reason == "moved abroad" and entry.actor == who(trial, Role.STUDY_COORDINATOR).username


def test_the_screening_form_by_criteria_and_none_of_these_apply(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    inclusion = {
        k: v
        for k, v in TYPED.items()
        if k
        in {
            "age",
            "pcr_positive",
            "pcr_date",
            "pao2_mmhg",
            "fio2",
            "on_oxygen",
            "spo2_on_oxygen",
            "bilateral_infiltrates",
            "respiratory_support",
            "peep_cmh2o",
            "sex",
        }
    }
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get("/screening/new").text
        # grouped: the inclusion criteria, then the exclusion ones, each with its words
        assert page.index('data-testid="group-inclusion"') < page.index('data-testid="group-exclusion"')
        assert "<strong>I3</strong> Moderate-to-severe ARDS (PaO2/FiO2 &lt; 200)" in page
        assert "<strong>E12</strong> Active epilepsy" in page
        i3 = page[page.index('data-testid="criterion-I3"') : page.index('data-testid="criterion-I4"')]
        assert 'name="pao2_mmhg"' in i3 and 'name="fio2"' in i3 and 'data-derived="pf_ratio"' in i3
        assert 'data-testid="none-apply"' in page
        created = coord.post(
            "/screening/new",
            data={
                **_form(inclusion),
                "site": "RAZ",
                "exclusions_none_apply": "yes",
                "screened_on": TODAY.isoformat(),
                "csrf_token": csrf_of(page),
            },
        )
        assert created.status_code == 303
    sid = int(created.headers["location"].rsplit("/", 1)[1])
    s = get_screening(trial.engine, who(trial, Role.STUDY_COORDINATOR), sid)
    exclusion_only = [
        "malignancy",
        "pregnant",
        "hepatic_failure",
        "renal_failure",
        "lung_transplant",
        "lung_surgery",
        "bone_marrow_transplant",
        "autoimmune_disease",
        "metabolic_disease",
        "dialysis",
        "contagious_infection",
        "active_epilepsy",
        "coagulopathy",
        "trauma",
        "concurrent_trial",
    ]
    # answered no, but for pregnancy, which does not apply to this man (applies_if: sex = female): left empty
    assert inclusion["sex"] == "male"
    assert {name: s.values.get(name) for name in exclusion_only} == dict.fromkeys(exclusion_only, False) | {
        "pregnant": None}
    assert s.missing == ("informed_consent",) and not s.failed  # the inclusion's answers are untouched


def test_the_reason_box_is_asked_only_when_a_saved_value_changes(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    url = f"/participants/{pid}/visits/baseline/forms/performance"
    today = dt.datetime.now(TEHRAN).date().isoformat()
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        draft = coord.get(url).text
        assert 'data-testid="reason-box"' not in draft and 'name="reason"' not in draft
        assert 'aria-label="Reason"' not in draft  # no second reason column
        token = csrf_of(draft)
        assert coord.post(url, data={"csrf_token": token, "v-assessed_on": today, "v-status": "2"}).status_code == 303
        assert 'name="reason"' not in coord.get(url).text  # still a draft: corrected without a reason
        assert coord.post(url + "/complete", data={"csrf_token": token}).status_code == 303
        complete = coord.get(url).text
        assert 'data-testid="reason-box"' in complete and "data-until-changed" in complete
        refused = coord.post(url, data={"csrf_token": token, "v-assessed_on": today, "v-status": "3"})
        assert refused.status_code == 422
        box = refused.text[refused.text.index('data-testid="reason-box"') :]
        assert "a change needs a reason for change (changed: Performance status)" in box[: box.index("</div>")]
        assert '<option value="3" selected>' in refused.text  # what was typed stays
        assert "data-until-changed" not in refused.text  # the box is shown at once when it was refused
        saved = coord.post(
            url, data={"csrf_token": token, "v-assessed_on": today, "v-status": "3", "reason": "transcription"}
        )
        assert saved.status_code == 303
    stored = forms.get_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "performance")
    assert stored is not None and stored.values["status"].value == "3"


def test_soft_limits_are_on_the_inputs_and_a_query_s_dates_in_the_viewer_s_calendar(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    url = f"/participants/{pid}/visits/baseline/forms/labs"
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    forms.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 45})
    forms.raise_query(
        trial.engine,
        who(trial, Role.MONITOR),
        pid,
        "Sampled on 2021-04-19? Please check.",
        visit_id="baseline",
        form_id="labs",
        field_id="crp",
    )
    set_preferences(trial.engine, coordinator.username, calendar="jalali")
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(url).text
    # the protocol's soft limits of C-reactive protein (0-400 mg/L), and the factor of mg/dL (x 10)
    assert 'data-soft-min="0.0" data-soft-max="400.0" data-soft-range="0-400 mg/L"' in page
    assert '<option value="mg/dL" data-factor="10.0" data-offset="0.0"' in page
    assert '<script src="/static/forms.js"></script>' in page
    note = page[page.index('data-testid="field-query-crp"') :]
    assert "Sampled on 1400/01/30? Please check." in note[: note.index("</p>")]  # 2021-04-19 in Solar Hijri
    assert "2021-04-19" not in page


def test_the_future_date_refusal_says_the_date_in_the_viewer_s_calendar(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    set_preferences(trial.engine, coordinator.username, calendar="jalali")
    url = f"/participants/{pid}/visits/baseline/forms/performance"
    tomorrow = dt.datetime.now(TEHRAN).date() + dt.timedelta(days=1)
    typed = to_jalali(tomorrow)
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(url).text
        refused = coord.post(url, data={"csrf_token": csrf_of(page), "v-assessed_on": typed, "v-status": "2"})
    assert refused.status_code == 422
    assert f"Date of assessment: {typed} is in the future" in refused.text
    assert tomorrow.isoformat() not in refused.text
    assert _value_of(refused.text, "v-assessed_on") == typed  # as typed


def test_the_audit_page_shows_the_consent_time_on_the_site_s_clock(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    sid = _screened(trial)
    at = dt.datetime(2026, 1, 10, 6, 15, tzinfo=dt.UTC)  # 09:45 in Tehran (UTC+03:30)
    with_date = dt.date(2026, 1, 10)
    with session_scope(trial.engine) as session:  # screened before the consent
        session.execute(update(screenings).where(screenings.c.id == sid).values(screened_on=with_date))
    record_consent(
        trial.engine,
        who(trial, Role.INVESTIGATOR),
        sid,
        form_version="1.0",
        given_by="participant",
        obtained_by="Dr K",
        obtained_at=at,
    )
    set_preferences(trial.engine, who(trial, Role.ADMINISTRATOR).username, calendar="gregorian")
    with as_role(app, Role.ADMINISTRATOR) as admin:
        page = admin.get("/admin/audit?action=consent").text
    assert "2026-01-10 09:45 +03:30 (Asia/Tehran)" in page
    assert at.isoformat() not in page


def _first_protocol_file() -> dict[str, Any]:
    import yaml

    from tests.trialfixtures import FIRST_PROTOCOL

    return dict(yaml.safe_load(FIRST_PROTOCOL.read_text("utf-8")))


def test_the_screening_page_shows_the_derived_ratio_the_decision_read(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    """The saved screening shows its derived P/F ratio (PaO2 / FiO2, computed here by hand) in its values and in a
    failed criterion's values, to the protocol's decimals (1 place in the first trial's file), never a dash nor 13
    decimals."""
    sid = _screened(trial, pao2_mmhg=97, fio2=0.21)  # 97 / 0.21 = 461.904761...: I3 (P/F < 200) fails
    places = next(f for f in _first_protocol_file()["eligibility"]["screening_fields"] if f["id"] == "pf_ratio")
    expected = f"{97 / 0.21:.{places['decimals']}f}"
    assert expected == "461.9"
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(f"/screening/{sid}").text
    failed = page[page.index('data-testid="failed-I3"') :]
    assert f"= {expected}" in failed[: failed.index("</li>")] and "461.9047" not in page
    assert page.count(f'data-testid="derived-pf_ratio">{expected}<') == 1  # the form to correct values
    assert f"<td>{expected} <bdi" in page or f"<td>{expected}" in page  # the values table


def test_the_screening_reason_box_waits_for_a_saved_value_to_change(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    """As on a CRF: the screening's reason box is asked for only once a saved value changes. The page marks it
    to wait (``data-until-changed``; ``screening.js`` hides it until then, ``tests/browser`` checks that) and
    names the fields that hold a saved value; a change of one without a reason is refused by the server, and the
    box is then shown at once."""
    sid = _screened(trial, age=None)  # the age left empty: typing it later changes no saved value
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(f"/screening/{sid}").text
        box = page[page.rindex("<div", 0, page.index('data-testid="reason-box"')) :]
        box = box[: box.index(">")]
        assert "data-until-changed" in box
        saved = re.search(r'data-saved-fields="([^"]*)"', box)
        assert saved and set(saved.group(1).split()) == {k for k, v in TYPED.items() if k != "age" and v is not None}
        assert '<script src="/static/screening.js"></script>' in page
        token = csrf_of(page)
        refused = coord.post(f"/screening/{sid}/values", data={"csrf_token": token, "spo2_on_oxygen": "91"})
        assert refused.status_code == 422 and "needs a reason" in refused.text
        shown = refused.text[refused.text.rindex("<div", 0, refused.text.index('data-testid="reason-box"')) :]
        assert "data-until-changed" not in shown[: shown.index(">")]  # refused: the box is shown at once
        assert coord.post(f"/screening/{sid}/values", data={"csrf_token": token, "age": "50"}).status_code == 303
    assert get_screening(trial.engine, who(trial, Role.STUDY_COORDINATOR), sid).values["age"] == 50
