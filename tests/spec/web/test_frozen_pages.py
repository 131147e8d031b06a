"""A locked trial, or a soft-locked participant or site, is said on the pages that change data, and those pages
offer no change the save would refuse (a walk found Save, Sign and "Record a visit as missed" offered on a locked
database, refused only after the click): the form page, the casebook, the participant page and the home page."""

from __future__ import annotations

import re

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.forms.test_casebook import READY
from tests.spec.web.test_randomization_pages import as_role
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.services import forms
from trialwright.services.lock import soft_lock
from trialwright.services.users import set_preferences

FORM = "/participants/{pid}/visits/baseline/forms/vitals"


def _complete_vitals(trial: Trial) -> str:
    pid = enrolled_ten_days_ago(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    forms.save_form(trial.engine, coordinator, pid, "baseline", "vitals", READY["vitals"])
    forms.complete_form(trial.engine, coordinator, pid, "baseline", "vitals")
    return pid


def test_a_locked_database_offers_no_change_and_says_why(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = _complete_vitals(trial)
    with as_role(app, Role.INVESTIGATOR) as inv:
        open_page = inv.get(FORM.format(pid=pid)).text
        assert 'data-testid="frozen"' not in open_page and 'name="v-spo2"' in open_page
        assert f'action="{FORM.format(pid=pid)}/sign"' in open_page
    forms.lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "final analysis", password=PASSWORD)
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(FORM.format(pid=pid)).text
        assert 'data-testid="frozen"' in page and "the database is locked" in page
        assert 'name="v-spo2"' not in page  # no input
        assert f'action="{FORM.format(pid=pid)}/sign"' not in page  # no Sign
        book = inv.get(f"/data/casebook/{pid}").text
        assert 'data-testid="frozen"' in book and 'data-testid="casebook-form"' not in book
        participant = inv.get(f"/participants/{pid}").text
        assert 'data-testid="frozen"' in participant and f'action="/participants/{pid}/visits"' not in participant
        home = inv.get("/").text
        assert 'data-testid="frozen"' in home and "the database is locked" in home
    set_preferences(trial.engine, who(trial, Role.INVESTIGATOR).username, language="fa")
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(FORM.format(pid=pid)).text
        assert "اکنون هیچ داده‌ای را نمی‌توان تغییر داد" in page and "پایگاه داده قفل است" in page
        assert "the database is locked" not in page
        (notice,) = re.findall(r'data-testid="frozen">([^<]*)<', page)
        assert "trial" not in notice and "کارآزمایی" in notice  # the head in words (a walk found "trial" in English)
        assert not re.search(r"[0-9]", notice), notice  # the date and the time in Persian digits


def test_a_soft_locked_participant_s_pages_offer_no_change_and_others_do(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = _complete_vitals(trial)
    other = _complete_vitals(trial)
    soft_lock(trial.engine, who(trial, Role.DATA_MANAGER), "interim analysis", participant_id=pid)
    with as_role(app, Role.MONITOR) as monitor:
        page = monitor.get(FORM.format(pid=pid)).text
        assert 'data-testid="frozen"' in page and f"{pid} is soft-locked" in page and "interim analysis" in page
        assert f'action="{FORM.format(pid=pid)}/verify"' not in page
        free = monitor.get(FORM.format(pid=other)).text
        assert 'data-testid="frozen"' not in free and f'action="{FORM.format(pid=other)}/verify"' in free
        assert 'data-testid="frozen"' not in monitor.get("/").text  # the trial itself is open
