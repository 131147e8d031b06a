"""Refusals said in the page's language, by label, isolated so that they do not scramble (both databases).

A walk of the Persian pages found internal ids and English rules ("list: no allocation list yet; ...",
"label: say why the unscheduled visit took place", "password: re-enter your own password to sign", a choice's
codes, the representative's rule, "(changed: وزن)" scrambled) and dates quoted as converted:

| typed / refused                                   | expected on the page                                      |
|---------------------------------------------------|-----------------------------------------------------------|
| ``2026-12-01`` under Solar Hijri (en page)        | quotes ``2026-12-01`` as typed, not 1405/09/10             |
| ``30/01/1400`` under "both"                       | the examples 1400/01/30 or 2021-04-19, each as written     |
| a Solar Hijri day 1400/13/01 (fa page)            | the label isolated, the rule in Persian, Persian digits     |
| the placeholder under "both" (fa page)            | each example date isolated left to right                   |
| unscheduled visit without a reason (fa)           | the input's label and the rule in Persian, no ``label:``    |
| no allocation list (fa)                           | no Randomize button; the page says why, in Persian          |
| sign with a wrong password (fa)                   | "Your password" and the rule in Persian                      |
| causality missing on an AE report (fa)            | the choices by their Persian labels, not their codes        |
| a representative's consent without a name (fa)    | the rule in Persian                                          |
| a signed form changed without a reason (fa)       | the field's label isolated inside the Persian rule           |
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from tests.spec.web.conftest import csrf_of
from tests.spec.web.test_randomization_pages import as_role, enrolled
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services.users import set_preferences

TEHRAN = ZoneInfo("Asia/Tehran")
LRI, FSI, PDI = "\u2066", "\u2068", "\u2069"


def _prefs(trial: Trial, role: Role, language: str, calendar: str) -> None:
    set_preferences(trial.engine, who(trial, role).username, language=language, calendar=calendar)


def test_a_refused_date_quotes_what_was_typed(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled(trial)
    _prefs(trial, Role.STUDY_COORDINATOR, "en", "jalali")
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        token = csrf_of(coord.get(f"/participants/{pid}").text)
        bad = coord.post(f"/participants/{pid}/visits", data={
            "csrf_token": token, "visit_id": "", "visit_date": "2026-12-01", "label": "fever review"})  # fmt: skip
        assert bad.status_code == 422
        assert f"Date held: {LRI}2026-12-01{PDI} is not a Solar Hijri date: the year must be 1200-1599" in bad.text
        assert "1405/09/10" not in bad.text  # nor in the input: what was typed is kept as typed
    _prefs(trial, Role.STUDY_COORDINATOR, "en", "both")
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        token = csrf_of(coord.get(f"/participants/{pid}").text)
        bad = coord.post(f"/participants/{pid}/visits", data={
            "csrf_token": token, "visit_id": "", "visit_date": "30/01/1400", "label": "fever review"})  # fmt: skip
        assert bad.status_code == 422
        assert (f"Date held: {LRI}30/01/1400{PDI} is ambiguous: write the year first, as 4 digits, e.g. "
                f"{LRI}1400/01/30{PDI} or {LRI}2021-04-19{PDI}</p>") in bad.text  # fmt: skip


def test_a_refused_date_and_the_placeholder_on_a_persian_page(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled(trial)
    _prefs(trial, Role.STUDY_COORDINATOR, "fa", "both")
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(f"/participants/{pid}").text
        assert f'placeholder="{LRI}1400/01/30{PDI} یا {LRI}2021-04-19{PDI}"' in page
        bad = coord.post(f"/participants/{pid}/visits", data={
            "csrf_token": csrf_of(page), "visit_id": "", "visit_date": "1400/13/01", "label": "x"})  # fmt: skip
        assert bad.status_code == 422
        assert f"{PDI}: {LRI}1400/13/01{PDI} در تقویم هجری شمسی تاریخی نیست (ماه‌های ۱ تا ۱۲" in bad.text
        assert "is not a date" not in bad.text


def test_site_refusals_by_label_and_in_persian(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled(trial)
    for role in (Role.STUDY_COORDINATOR, Role.INVESTIGATOR):
        _prefs(trial, role, "fa", "gregorian")
    today = dt.datetime.now(TEHRAN).date().isoformat()
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(f"/participants/{pid}").text
        bad = coord.post(f"/participants/{pid}/visits", data={
            "csrf_token": csrf_of(page), "visit_id": "", "visit_date": today, "label": ""})  # fmt: skip
        assert bad.status_code == 422
        assert "بنویسید این ویزیت برنامه‌ریزی‌نشده چرا انجام شد" in bad.text and "label:" not in bad.text
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(f"/participants/{pid}").text
        assert f'action="/participants/{pid}/randomize"' not in page  # no list: not offered
        assert 'data-testid="no-list">هنوز فهرست تخصیص ساخته نشده است' in page
        refused = inv.post(f"/participants/{pid}/randomize", data={"csrf_token": csrf_of(page)})
        assert "list:" not in refused.text and "no allocation list" not in refused.text
        url = f"/participants/{pid}/visits/baseline/forms/performance"
        wrong = inv.post(url + "/sign", data={"csrf_token": csrf_of(inv.get(url).text), "password": "nope"})
        assert "password:" not in wrong.text and "re-enter" not in wrong.text


def test_a_choice_s_codes_by_their_labels_and_the_representative_rule_in_persian(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    from tests.spec.web.test_safety_pages import _randomized

    pid = _randomized(trial)
    _prefs(trial, Role.INVESTIGATOR, "fa", "gregorian")
    now = dt.datetime.now(TEHRAN)
    with as_role(app, Role.INVESTIGATOR) as inv:
        token = csrf_of(inv.get(f"/participants/{pid}/adverse-events/new").text)
        bad = inv.post(f"/participants/{pid}/adverse-events", data={
            "csrf_token": token, "term": "Rash", "onset": now.date().isoformat(), "grade": "1", "serious": "no",
            "action_taken": "dose_not_changed", "outcome": "recovering", "aware_at": now.strftime("%Y-%m-%dT%H:%M"),
        })  # fmt: skip
        assert bad.status_code == 422
        assert f"لازم است؛ یکی از این‌ها را انتخاب کنید: {FSI}قطعی{PDI}، {FSI}محتمل{PDI}" in bad.text
        assert "one of certain" not in bad.text and "is required" not in bad.text


def test_the_representative_rule_and_the_reason_for_change_in_persian() -> None:
    from tests.trialfixtures import first_protocol
    from trialwright.web.wording import CONSENT_INPUTS, CRF_INPUTS, page_words, say

    (lar,) = say(["representative_name: needed when a legally authorised representative consents"],
                 page_words(None, "fa", CONSENT_INPUTS), "fa")  # fmt: skip
    assert lar == f"{FSI}نام نمایندهٔ قانونی{PDI}: وقتی نمایندهٔ قانونی رضایت می‌دهد، لازم است", lar
    protocol = first_protocol().protocol
    words = page_words(protocol, "fa", CRF_INPUTS, form_id="vitals")
    (reason,) = say(["reason: the form is signed; a change needs a reason for change (changed: pulse, spo2)"],
                    words, "fa")  # fmt: skip
    pulse, spo2 = words("pulse"), words("spo2")
    assert pulse and spo2 and pulse != "pulse"
    assert reason.endswith(f"(تغییر کرده: {FSI}{pulse}{PDI}، {FSI}{spo2}{PDI})"), reason
    # the same message on an English page: unchanged, by label
    (english,) = say(["reason: the form is signed; a change needs a reason for change (changed: pulse)"],
                     page_words(protocol, "en", CRF_INPUTS, form_id="vitals"), "en")  # fmt: skip
    assert english.startswith("Reason for change: the form is signed; a change needs a reason for change (changed: ")
