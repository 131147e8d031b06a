"""The lock page of a database locked over open blockers, read by a Persian data manager: its banner is the
catalog's Persian words (read from the catalog file by babel, independently), with the count and the UTC date in
Persian digits and the data manager's reason as typed; no English sentence is left in it. An English page keeps
the banner's English words. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import html
import re

from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from tests.spec.web.conftest import sign_in
from tests.trialfixtures import PASSWORD, Trial, username, who
from trialwright.domain.roles import Role
from trialwright.services import forms as svc
from trialwright.services.lock import lock_state
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app
from trialwright.web.i18n import catalog_path

with catalog_path("fa").open("rb") as _handle:
    FA = {m.id: m.string for m in read_po(_handle, locale="fa") if m.id}
#: three or more English words in a row
ENGLISH_RUN = re.compile(r"(?<![\w.-])[A-Za-z][a-z']+(?:[ ,;:()]+[A-Za-z][a-z']+){2,}")
PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
REASON = "پایان پیگیری"  # the data manager's own words, shown as typed


def _banner(page: str) -> str:
    found = re.search(r'data-testid="lock-banner">([^<]*)<', page)
    assert found is not None, "no lock banner on the page"
    return html.unescape(found[1])


def test_the_lock_banner_is_persian_on_a_persian_page(trial: Trial, pid: str) -> None:
    manager = who(trial, Role.DATA_MANAGER)
    svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "labs", {"crp": 40})  # a draft
    svc.lock_trial(trial.engine, manager, REASON, password=PASSWORD)  # over the open blockers
    state = lock_state(trial.engine)
    assert state.open_blockers and state.open_blockers > 1 and state.at is not None
    at = f"{state.at:%Y-%m-%d %H:%M}"
    app = create_app(Settings(database_url=trial.url))
    with TestClient(app, follow_redirects=False) as client:
        english = _banner(sign_in(client, Role.DATA_MANAGER).get("/data-management").text)
    assert english == f"Locked with {state.open_blockers} open blockers by {manager.username} on {at} UTC: {REASON}"
    set_preferences(trial.engine, username(Role.DATA_MANAGER), language="fa", calendar="jalali")
    with TestClient(app, follow_redirects=False) as client:
        persian = _banner(sign_in(client, Role.DATA_MANAGER).get("/data-management").text)
    assert ENGLISH_RUN.findall(persian) == []
    words = FA["Locked with %(n)s open blockers by %(user)s on %(at)s UTC: %(reason)s"]
    assert persian == words % {"n": str(state.open_blockers).translate(PERSIAN_DIGITS), "user": manager.username,
                               "at": at.translate(PERSIAN_DIGITS), "reason": REASON}  # fmt: skip
