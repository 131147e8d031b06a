"""A signed form on its page (both databases): the monitor can still source-verify it, and whoever can change it is
told first that a change removes the investigator's signature and the monitor's verification (English, Persian).

| form                      | page for the coordinator                          | page for the monitor             |
|---------------------------|---------------------------------------------------|----------------------------------|
| complete                  | no warning                                        | "Source data verified" offered   |
| signed                    | warns: the signature goes                         | "Source data verified" offered   |
| signed, then verified     | warns: the signature and the verification go      | not offered; signed, verified by |
| changed with a reason     | complete again, no warning                        | offered again                    |
"""

from __future__ import annotations

import datetime as dt

from tests.spec.web.conftest import csrf_of
from tests.spec.web.test_randomization_pages import as_role, enrolled
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.services.users import set_preferences

VERIFY_BUTTON = '/verify"'
SIGNATURE_FA = "این فرم را پژوهشگر امضا کرده است: تغییر هر مقدار، امضای پژوهشگر را حذف می‌کند"
VERIFICATION_FA = "این فرم را پایشگر با منبع تطبیق داده است: تغییر هر مقدار، تطبیق پایشگر را حذف می‌کند"


def test_a_signed_form_is_verified_and_its_page_warns_before_a_change(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled(trial)
    url = f"/participants/{pid}/visits/baseline/forms/performance"
    today = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3, minutes=30)).date().isoformat()
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        token = csrf_of(coord.get(url).text)
        assert coord.post(url, data={"csrf_token": token, "v-assessed_on": today, "v-status": "2"}).status_code == 303
        assert coord.post(url + "/complete", data={"csrf_token": token}).status_code == 303
        assert 'data-testid="voids-warning"' not in coord.get(url).text
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(url).text
        assert inv.post(url + "/sign", data={"csrf_token": csrf_of(page), "password": PASSWORD}).status_code == 303
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(url).text
        assert (
            'data-testid="voids-signature">This form is signed by the investigator: changing a value removes '
            "the investigator&#39;s signature" in page
        )
        assert 'data-testid="voids-verification"' not in page
    with as_role(app, Role.MONITOR) as monitor:
        page = monitor.get(url).text
        assert f'action="{url}{VERIFY_BUTTON}' in page  # offered after the signature
        assert monitor.post(url + "/verify", data={"csrf_token": csrf_of(page)}).status_code == 303
        page = monitor.get(url).text
        assert 'data-testid="form-state">signed<' in page and "verified by monitor" in page
        assert f'action="{url}{VERIFY_BUTTON}' not in page
    set_preferences(trial.engine, who(trial, Role.STUDY_COORDINATOR).username, language="fa")
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(url).text
        assert SIGNATURE_FA in page and VERIFICATION_FA in page
        changed = coord.post(url, data={"csrf_token": csrf_of(page), "v-assessed_on": today, "v-status": "3",
                                        "reason": "source says 3"})  # fmt: skip
        assert changed.status_code == 303, changed.text
        page = coord.get(url).text
        assert 'data-testid="voids-warning"' not in page and 'data-testid="form-state">' in page
