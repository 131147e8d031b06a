"""Protocol texts on Persian pages (issue 24 item 2), both databases: the screening page says its fields, units
and choices in Persian (units isolated left to right); a screening that fails a criterion names it in Persian,
with its values as the words yes/no in Persian, never True/False, and numbers in Persian digits; a form page says
its visit, form, field labels and choices in Persian; the participant page its visits. What the server reads
back (an option's value, an input's value) stays the stored code."""

from __future__ import annotations

import datetime as dt

from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.spec.web.test_randomization_pages import as_role, enrolled
from tests.trialfixtures import Trial, screener, who
from trialwright.domain.roles import Role
from trialwright.services.screening import screen
from trialwright.services.users import set_preferences


def _persian(trial: Trial, role: Role) -> None:
    set_preferences(trial.engine, who(trial, role).username, language="fa")


def test_the_screening_page_in_persian(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    _persian(trial, Role.STUDY_COORDINATOR)
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get("/screening/new").text
    assert '<html lang="fa" dir="rtl">' in page
    assert "PCR مثبت SARS-CoV-2" in page and "حمایت تنفسی" in page  # field labels
    assert '<option value="high_flow_nasal">اکسیژن با جریان بالای بینی (HFNO)</option>' in page  # the code is read
    assert '<option value="male">مرد</option>' in page
    assert '(<bdi dir="ltr">mmHg</bdi>)' in page  # the unit isolated left to right
    assert "High-flow nasal oxygen" not in page and "high flow nasal" not in page


def test_a_failed_criterion_is_said_in_persian_with_persian_yes_and_digits(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    admin = screener(trial.engine)  # screening is a coordinator's (docs/roles.md)
    values = {k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}
    s = screen(trial.engine, admin, site="RAZ", screened_on=dt.datetime.now(dt.UTC).date(),
               values={**values, "malignancy": True, "age": 45})  # fmt: skip
    _persian(trial, Role.STUDY_COORDINATOR)
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(f"/screening/{s.id}").text
    failed = page.split('data-testid="failed-E1"', 1)[1].split("</li>", 1)[0]
    assert "بدخیمی" in failed and "Malignancy" not in failed  # the criterion, in Persian
    assert "= بله" in failed and "True" not in failed  # yes, in Persian words
    assert '<td>سن</td><td>۴۵ <bdi>سال</bdi></td>' in page  # Persian digits, the unit in Persian (the file's), isolated
    assert "True" not in page.split("<main", 1)[1] and "False" not in page.split("<main", 1)[1]


def test_a_form_and_the_visit_schedule_in_persian(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled(trial)
    _persian(trial, Role.STUDY_COORDINATOR)
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        schedule = coord.get(f"/participants/{pid}").text
        form = coord.get(f"/participants/{pid}/visits/baseline/forms/vitals").text
    assert "پایه (پیش از انفوزیون)" in schedule and "روز ۷" in schedule and "Day 7" not in schedule
    assert "<h1>علائم حیاتی و اکسیژن</h1>" in form and "پایه (پیش از انفوزیون)" in form
    assert ">کانولای بینی</option>" in form and 'value="nasal_cannula"' in form
    assert '<bdi dir="ltr">mmHg</bdi>' in form
