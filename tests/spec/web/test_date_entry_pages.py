"""Dates typed in the viewer's calendar on the pages (both databases): a person whose calendar is Solar Hijri
types visit dates, CRF dates and times and adverse event dates in Solar Hijri, with Persian digits; the
service stores Gregorian ISO dates and the pages show them back in Solar Hijri. A date that is not exactly one
date is refused with the field's label and the rule, and everything else typed stays on the page. A Gregorian
viewer keeps the browser's own date inputs. Times on pages about no one site are on the sites' clock, the zone
named."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.web.conftest import csrf_of
from tests.spec.web.test_randomization_pages import as_role, enrolled
from tests.trialfixtures import Trial, who
from trialwright.domain.calendars import to_jalali
from trialwright.domain.roles import Role
from trialwright.services import forms, safety
from trialwright.services.users import set_preferences

TEHRAN = ZoneInfo("Asia/Tehran")
PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def _calendar(trial: Trial, role: Role, calendar: str) -> None:
    set_preferences(trial.engine, who(trial, role).username, calendar=calendar)


def _value_of(html: str, name: str) -> str:
    match = re.search(rf'<input id="{name}" name="{name}"[^>]*value="([^"]*)"', html)
    assert match, f"no input {name}"
    return match.group(1)


def test_a_solar_hijri_visit_date_in_persian_digits_is_stored_as_iso(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled(trial)
    _calendar(trial, Role.STUDY_COORDINATOR, "jalali")
    today = dt.datetime.now(TEHRAN).date()
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(f"/participants/{pid}").text
        assert 'id="visit_date" name="visit_date" type="text"' in page and 'placeholder="1400/01/30"' in page
        # the schedule names each form by its name, never its id
        assert re.search(r'forms/demographics">[^<:]*Demographic[^<:]*: ', page)
        assert 'forms/demographics">demographics:' not in page
        token = csrf_of(page)
        typed = to_jalali(today).translate(PERSIAN)
        bad = coord.post(f"/participants/{pid}/visits", data={
            "csrf_token": token, "visit_id": "", "visit_date": "۱۴۰۰/۱۳/۰۱", "label": "fever review"})  # fmt: skip
        assert bad.status_code == 422
        assert "Date held: \u2066۱۴۰۰/۱۳/۰۱\u2069 is not a date in the Solar Hijri calendar" in bad.text
        assert _value_of(bad.text, "visit_date") == "۱۴۰۰/۱۳/۰۱" and _value_of(bad.text, "label") == "fever review"
        assert forms.participant_schedule(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid).unscheduled == ()
        saved = coord.post(f"/participants/{pid}/visits", data={
            "csrf_token": token, "visit_id": "", "visit_date": typed, "label": "fever review"})  # fmt: skip
        assert saved.status_code == 303
        unscheduled = forms.participant_schedule(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid).unscheduled
        assert [day for _, _, day in unscheduled] == [today]  # stored as the Gregorian date
        shown = coord.get(f"/participants/{pid}").text
        assert f"<td>{to_jalali(today)}</td>" in shown and f"<td>{today.isoformat()}</td>" not in shown


def test_a_crf_s_visit_date_and_date_time_typed_in_solar_hijri(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    _calendar(trial, Role.STUDY_COORDINATOR, "jalali")
    url = f"/participants/{pid}/visits/baseline/forms/labs"
    today = dt.datetime.now(TEHRAN).date()
    day = today - dt.timedelta(days=1)
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(url).text
        assert _value_of(page, "visit_date") == to_jalali(today)  # the default, in the viewer's calendar
        token = csrf_of(page)
        bad = coord.post(url, data={"csrf_token": token, "visit_date": "1402/12/30", "v-crp": "45",
                                    "v-sampled_at": f"{to_jalali(day)} 08:00"})  # fmt: skip
        assert bad.status_code == 422
        assert "Visit date: \u20661402/12/30\u2069 is not a date in the Solar Hijri calendar" in bad.text
        assert "1402 is not a leap year" in bad.text
        # everything typed stays: the refused date as typed, the other fields too
        assert _value_of(bad.text, "visit_date") == "1402/12/30" and 'value="45"' in bad.text
        assert forms.get_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "labs") is None
        typed = f"{to_jalali(day)} ۰۸:۰۰".translate(PERSIAN)
        saved = coord.post(url, data={"csrf_token": token, "visit_date": to_jalali(day).translate(PERSIAN),
                                      "v-crp": "45", "v-sampled_at": typed})  # fmt: skip
        assert saved.status_code == 303, saved.text
        view = forms.get_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "labs")
        assert view is not None
        sampled = dt.datetime.fromisoformat(str(view.values["sampled_at"].value))  # stored as ISO text, in UTC
        assert sampled == dt.datetime.combine(day, dt.time(8, 0), tzinfo=TEHRAN)  # 08:00 on the site's clock
        schedule = forms.participant_schedule(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid)
        assert [v.visit_date for v in schedule.visits if v.visit_id == "baseline"] == [day]
        shown = coord.get(url).text
        assert to_jalali(day) + " 08:00" in _value_of(shown, "v-sampled_at")


def test_a_solar_hijri_adverse_event_onset_and_a_refusal_that_keeps_the_report(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled(trial)
    _calendar(trial, Role.INVESTIGATOR, "jalali")
    aware = (dt.datetime.now(TEHRAN) - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    onset = aware.date()
    report = {"term": "Headache", "grade": "1", "serious": "no", "causality": "unlikely",
              "action_taken": "dose_not_changed", "outcome": "recovering"}  # fmt: skip
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(f"/participants/{pid}/adverse-events/new").text
        assert 'placeholder="1400/01/30 14:30"' in page and 'id="onset" name="onset" type="text"' in page
        token = csrf_of(page)
        bad = inv.post(f"/participants/{pid}/adverse-events", data={
            "csrf_token": token, **report, "onset": "1400/13/01", "narrative": "woke with it",
            "aware_at": f"{to_jalali(onset)} {aware:%H:%M}"})  # fmt: skip
        assert bad.status_code == 422
        assert ('data-testid="error-onset">Onset: \u20661400/13/01\u2069 is not a date in the Solar Hijri calendar (months 1-12;'  # noqa: E501
                in bad.text)  # fmt: skip
        assert _value_of(bad.text, "onset") == "1400/13/01" and 'value="Headache"' in bad.text
        assert "woke with it</textarea>" in bad.text and _value_of(bad.text, "aware_at").startswith(to_jalali(onset))
        assert not safety.list_events(trial.engine, who(trial, Role.INVESTIGATOR), participant_id=pid)
        saved = inv.post(f"/participants/{pid}/adverse-events", data={
            "csrf_token": token, **report, "onset": to_jalali(onset).translate(PERSIAN),
            "aware_at": f"{to_jalali(onset)} {aware:%H:%M}".translate(PERSIAN)})  # fmt: skip
        assert saved.status_code == 303, saved.text
        ae = saved.headers["location"].rsplit("/", 1)[1]
        event = safety.get_event(trial.engine, who(trial, Role.INVESTIGATOR), ae)
        assert event.current.onset == onset
        assert event.current.aware_at == aware.astimezone(dt.UTC)  # the site's clock, stored in UTC
        shown = inv.get(f"/adverse-events/{ae}").text
        assert _value_of(shown, "onset") == to_jalali(onset)  # the follow-up form, prefilled in Solar Hijri
        assert f"{to_jalali(onset)} {aware:%H:%M} +03:30 (Asia/Tehran)" in shown  # aware at, on the site's clock


def test_a_gregorian_viewer_keeps_the_browser_s_date_inputs(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled(trial)
    _calendar(trial, Role.INVESTIGATOR, "gregorian")
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(f"/participants/{pid}/adverse-events/new").text
        assert 'id="onset" name="onset" type="date"' in page
        assert 'id="aware_at" name="aware_at" type="datetime-local"' in page
        bad = inv.post(f"/participants/{pid}/adverse-events", data={
            "csrf_token": csrf_of(page), "term": "Headache", "onset": "1400-01-30"})  # fmt: skip
        assert "Onset: \u20661400-01-30\u2069 is not a Gregorian date" in bad.text  # never read as Solar Hijri
        screening = inv.get("/screening/new").text
        assert 'id="screened_on" name="screened_on" type="date"' in screening


def test_times_on_pages_about_no_one_site_are_on_the_sites_clock_with_the_zone_named(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    enrolled(trial)
    with as_role(app, Role.ADMINISTRATOR) as admin:
        page = admin.get("/admin/audit").text
        # Both of the trial's sites keep Tehran's clock: the audit trail's times are shown on it, named.
        assert "+03:30 (Asia/Tehran)" in page
        assert not re.search(r"\d\d:\d\d UTC", page)


def test_screening_and_consent_dates_typed_in_solar_hijri(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    from tests.spec.screening.test_screening_consent_enrolment import TYPED
    from tests.spec.screening.test_screening_edges import _form
    from trialwright.services.screening import get_screening

    _calendar(trial, Role.STUDY_COORDINATOR, "jalali")
    now = dt.datetime.now(TEHRAN).replace(second=0, microsecond=0)
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        form = coord.get("/screening/new").text
        assert _value_of(form, "screened_on") == to_jalali(now.date())  # today at the site, in Solar Hijri
        data = {**_form(TYPED), "site": "RAZ", "csrf_token": csrf_of(form)}
        bad = coord.post("/screening/new", data={**data, "screened_on": "30/09/1405"})
        assert bad.status_code == 422 and "Date of screening: \u206630/09/1405\u2069 is ambiguous: write the year first" in bad.text  # noqa: E501
        assert _value_of(bad.text, "screened_on") == "30/09/1405"
        assert '<option value="yes" selected>' in bad.text  # the screening values typed stay
        created = coord.post("/screening/new", data={**data, "screened_on": to_jalali(now.date()).translate(PERSIAN)})
        assert created.status_code == 303, created.text
        url = created.headers["location"]
        sid = int(url.rsplit("/", 1)[1])
        assert get_screening(trial.engine, who(trial, Role.STUDY_COORDINATOR), sid).screened_on == now.date()
        page = coord.get(url).text
        assert _value_of(page, "obtained_at") == ""  # no default: the moment of consent is typed, never assumed
        consent = {"form_version": "1.0", "given_by": "participant", "obtained_by": "Dr Khedri", "decision": "consent",
                   "csrf_token": csrf_of(page)}  # fmt: skip
        refused = coord.post(f"{url}/consent", data={**consent, "obtained_at": to_jalali(now.date())})
        assert "Date and time (site time): \u2066" + to_jalali(now.date()) + "\u2069 needs a time after the date" in refused.text  # noqa: E501
        typed = f"{to_jalali(now.date())} {now:%H:%M}".translate(PERSIAN)
        assert coord.post(f"{url}/consent", data={**consent, "obtained_at": typed}).status_code == 303
        (c,) = get_screening(trial.engine, who(trial, Role.STUDY_COORDINATOR), sid).consents
        assert c.obtained_at == now  # the site's clock
    with as_role(app, Role.DATA_MANAGER) as manager:
        _calendar(trial, Role.DATA_MANAGER, "jalali")
        refused = manager.get("/recruitment?as_of=1400/13/01")
        assert refused.status_code == 422
        assert "As of (a past date, to see the forecast as it was then): \u20661400/13/01\u2069 is not a date" in refused.text  # noqa: E501
        assert 'data-testid="as-of">As of ' + to_jalali(now.date()) in manager.get("/recruitment?as_of=").text
        as_of = manager.get("/recruitment?as_of=۱۴۰۰/۰۶/۳۱").text  # 2021-09-22
        assert 'data-testid="as-of">As of 1400/06/31' in as_of
