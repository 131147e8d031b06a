"""The lock pages' blockers and the sites in the reader's words (issue 24, items 2 and 4), both databases:

- the database lock page and the lock confirmation list their first blockers as the lock readiness page does:
  the participant, the site by its name, where the blocker is (visit, form and field names) and what blocks it, in
  the reader's language; never the service's English text;
- a coherence breach's rule (a form's time before the consent) is said in the reader's language, its moments in
  the reader's calendar and digits, its field by its label;
- the pages that name a participant's or a person's site (the readiness report, the participants list, the
  participant and screening pages, the casebook, the status matrix, the query inbox, the users list, the profile)
  say the site's name in the reader's language, never its code alone.

Names and labels are read from the protocol file (an independent YAML read), dates computed with jdatetime."""

from __future__ import annotations

import datetime as dt
import html
import re
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from tests.spec.forms.conftest import NOW, TODAY, enrolled_ten_days_ago
from tests.spec.web.test_persian_pages import RAW, _jalali, _persian
from tests.spec.web.test_randomization_pages import as_role, post
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import forms as forms_svc
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import consents, participants
from trialwright.web.app import create_app
from trialwright.web.routes import lock as lock_routes

FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
TEHRAN = ZoneInfo("Asia/Tehran")
RAZ = next(s for s in RAW["sites"] if s["code"] == "RAZ")
VITALS = next(f for f in RAW["forms"] if f["id"] == "vitals")
ASSESSED = next(f for f in VITALS["fields"] if f["id"] == "assessed_at")
INFUSION = next(v for v in RAW["visits"] if v["id"] == "infusion")
ISOLATES = re.compile("[\u2066-\u2069]")
#: The English rules of ``services.readiness`` and ``domain.coherence`` a Persian page must not show.
ENGLISH = ("the lock policy needs", "not started", "neither done", "is before the consent", "built-in rule",
           "nothing is recorded", "draft;")  # fmt: skip


def _text(fragment: str) -> str:
    return ISOLATES.sub("", html.unescape(re.sub(r"<[^>]*>", "", fragment))).strip()


def _first_blockers(page: str) -> list[str]:
    listed = page.split('data-testid="first-blockers"', 1)[1].split("</ul>", 1)[0]
    return [_text(li) for li in re.findall(r"<li[^>]*>(.*?)</li>", listed, re.S)]


def _blocked(trial: Trial) -> tuple[str, dt.datetime, dt.datetime]:
    """A participant whose infusion vitals (a draft) were recorded before the consent as later corrected."""
    pid = enrolled_ten_days_ago(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    infused = TODAY - dt.timedelta(days=7)
    forms_svc.record_visit(trial.engine, coordinator, pid, "infusion", infused)
    assessed = dt.datetime.combine(infused, dt.time(8, 0), TEHRAN)
    forms_svc.save_form(trial.engine, coordinator, pid, "infusion", "vitals",
                        {"assessed_at": assessed.isoformat(), "spo2": 95})  # fmt: skip
    consented = (NOW - dt.timedelta(days=5)).replace(second=0, microsecond=0)
    with session_scope(trial.engine) as session:  # a consent time corrected later, after data were stored
        screening = select(participants.c.screening_id).where(participants.c.participant_id == pid)
        session.execute(update(consents).where(consents.c.screening_id == screening.scalar_subquery())
                        .values(obtained_at=consented))  # fmt: skip
    return pid, assessed, consented.astimezone(TEHRAN)


def _moment(at: dt.datetime) -> str:
    return f"{_jalali(at.date())} {at:%H:%M}".translate(FA)


def test_the_lock_pages_say_their_first_blockers_and_a_coherence_rule_in_persian(
    trial: Trial, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock_routes, "LISTED", 100)  # every blocker listed, the coherence breach (listed last) too
    pid, assessed, consented = _blocked(trial)
    _persian(trial, Role.DATA_MANAGER)
    app = create_app(Settings(database_url=trial.url))
    with as_role(app, Role.DATA_MANAGER) as manager:
        lock_page = manager.get("/data-management").text
        confirm = post(manager, "/data-management/lock", "/data-management", action="lock", reason="final")
        readiness = manager.get("/data-management/readiness").text
    assert confirm.status_code == 200
    label = f"{ASSESSED['translations']['fa']} ({VITALS['translations']['fa']})"
    breach = (f"{label}: {_moment(assessed)} پیش از رضایت ({_moment(consented)}) است؛ "
              "پیش از رضایت شرکت‌کننده چیزی درباره‌ی او ثبت نمی‌شود (قاعده‌ی داخلی)")  # fmt: skip
    vitals_draft = (f"{pid} · {RAZ['translations']['fa']} · {INFUSION['translations']['fa']} · "
                    f"{VITALS['translations']['fa']}: "
                    "پیش‌نویس است؛ سیاست قفل، وضعیت «امضاشده» را لازم دارد")  # fmt: skip
    for page in (lock_page, confirm.text):
        shown = _first_blockers(page)
        assert vitals_draft in shown, shown
        assert any(b.endswith(breach) for b in shown), (shown[-1], breach)
        assert not any(e in " ".join(shown) for e in ENGLISH), shown
        assert not re.search(r"\bRAZ\b(?!-)", " ".join(shown))  # the site by its name (the participant id keeps it)
    details = [_text(d) for d in re.findall(r'data-testid="blocker-detail">(.*?)</td>', readiness, re.S)]
    assert breach in details, details


def test_the_lock_page_says_its_first_blockers_in_english_words(trial: Trial, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock_routes, "LISTED", 100)
    pid, assessed, consented = _blocked(trial)
    set_preferences(trial.engine, who(trial, Role.DATA_MANAGER).username, language="en", calendar="gregorian")
    with as_role(create_app(Settings(database_url=trial.url)), Role.DATA_MANAGER) as manager:
        shown = _first_blockers(manager.get("/data-management").text)
    draft = f"{pid} · {RAZ['name']} · {INFUSION['name']} · {VITALS['name']}: draft; the lock policy needs signed"
    assert draft in shown
    label = f"{ASSESSED['label']} ({VITALS['name']})"
    breach = (f"{label}: {assessed:%Y-%m-%d %H:%M} is before the consent ({consented:%Y-%m-%d %H:%M}); "
              "nothing is recorded about a participant before they consent (built-in rule)")  # fmt: skip
    assert any(b.endswith(breach) for b in shown), (shown[-1], breach)


def test_the_pages_name_a_site_in_the_readers_language(trial: Trial) -> None:
    pid, _, _ = _blocked(trial)
    forms_svc.raise_query(trial.engine, who(trial, Role.MONITOR), pid, "please check SpO2", visit_id="infusion",
                          form_id="vitals", field_id="spo2")  # fmt: skip
    roles = (Role.DATA_MANAGER, Role.INVESTIGATOR, Role.ADMINISTRATOR)
    app = create_app(Settings(database_url=trial.url))
    for lang, name in (("en", RAZ["name"]), ("fa", RAZ["translations"]["fa"])):
        if lang == "fa":
            _persian(trial, *roles)
        pages: dict[str, str] = {}
        with as_role(app, Role.DATA_MANAGER) as manager:
            for path in ("/data-management/readiness", "/data/matrix", "/queries"):
                pages[path] = manager.get(path).text
        with as_role(app, Role.INVESTIGATOR) as investigator:
            for path in ("/participants", f"/participants/{pid}", f"/data/casebook/{pid}", "/profile"):
                pages[path] = investigator.get(path).text
        with as_role(app, Role.ADMINISTRATOR) as admin:
            pages["/admin/users"] = admin.get("/admin/users").text
        for path, page in pages.items():
            assert name in _text(page), (lang, path)
        readiness = pages["/data-management/readiness"]
        assert f'<option value="RAZ" >{name}</option>' in readiness  # the filter says the name and sends the code
        assert f"<tr><td>{name}</td>" in readiness and "<td>RAZ</td>" not in readiness
        assert f"({name})" in pages["/data/matrix"] and "(RAZ)" not in pages["/data/matrix"]
        assert f"({name})" in pages["/queries"] and "(RAZ)" not in pages["/queries"]
        assert f"<td>{name}</td>" in pages["/participants"] and "<td>RAZ</td>" not in pages["/participants"]
