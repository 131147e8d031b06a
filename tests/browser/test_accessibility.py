"""WCAG 2.2 AA on the main pages, checked by axe-core in chromium, in English and Persian.

Each role signs in (with its language chosen) to a trial that a short simulation filled with screenings,
participants, forms, queries, serious events and preparations, opens the main pages of its work, and runs
the vendored axe-core (``tests/browser/axe/``) with the WCAG 2.0, 2.1 and 2.2 level A and AA rules on each.
A test fails listing every violation: the page, the rule, the element and what the rule asks for.
No rule is disabled (docs/accessibility.md says what axe cannot check and how the rest is checked)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial
from trialwright.domain.roles import Role
from trialwright.services.approvals import request_reset
from trialwright.services.simulation import ensure_users, simulate
from trialwright.services.trial import current_protocol
from trialwright.services.users import create_user, set_preferences

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "axe" / "axe.min.js"
AXE_SHA256 = "KTSJmUUM3yhJqOcLeRL8LahahJ2jnA0NU5T1HUqe2Vw="  # axe-core 4.14.1, from its sri-history.json
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
LANGUAGES = ("en", "fa")


@dataclass(frozen=True)
class Visit:
    """A page to check: opened at ``path``, then the first link in ``main`` matching each CSS selector of
    ``follow`` in turn (a participant, then one of its forms)."""

    path: str
    follow: tuple[str, ...] = ()

    def label(self) -> str:
        return " -> ".join((self.path, *self.follow))


SCREENING_LINK = "a[href^='/screening/']:not([href='/screening/new'])"
PARTICIPANT_LINK = "a[href^='/participants/']"
FORM_LINK = "a[href*='/visits/'][href*='/forms/']"
# The main pages of each role's work (the home page of every role is checked too).
PAGES: dict[Role, tuple[Visit, ...]] = {
    Role.STUDY_COORDINATOR: (
        Visit("/screening"),
        Visit("/screening/new"),
        Visit("/screening", (SCREENING_LINK,)),
        Visit("/participants"),
        Visit("/participants", (PARTICIPANT_LINK,)),
        Visit("/participants", (PARTICIPANT_LINK, FORM_LINK)),
        Visit("/queries"),
        Visit("/profile"),
        Visit("/data/matrix"),
    ),
    Role.INVESTIGATOR: (
        Visit("/safety"),
        Visit("/safety", ("a[href^='/adverse-events/']",)),
        Visit("/data-access"),
    ),
    Role.OUTCOME_ASSESSOR: (Visit("/participants"),),
    Role.UNBLINDED_PHARMACIST: (
        Visit("/pharmacy"),
        Visit("/pharmacy?state=done", ("a[href^='/pharmacy/']",)),
        Visit("/unblindings"),
    ),
    Role.UNBLINDED_STATISTICIAN: (
        Visit("/randomization"),
        Visit("/analysis"),
        Visit("/analysis/report.html"),
        Visit("/exports"),
    ),
    Role.BLINDED_STATISTICIAN: (Visit("/analysis"), Visit("/recruitment")),
    Role.MONITOR: (Visit("/data-management/readiness"), Visit("/admin/audit"), Visit("/work?list=forms_to_verify"),
                   Visit("/data/matrix?status=complete")),
    Role.DATA_MANAGER: (Visit("/data-management"), Visit("/queries")),
    Role.DSMB_MEMBER: (Visit("/dsmb"),),
    Role.ADMINISTRATOR: (
        Visit("/admin/users"),
        Visit("/admin/users/requests"),
        Visit("/admin/users/a11y-monitor/tokens"),
        Visit("/admin/audit"),
    ),
    Role.CODER: (Visit("/coding"),),
}


@pytest.fixture(scope="module")
def live_trial(tmp_path_factory: pytest.TempPathFactory) -> Trial:
    """The first trial after 12 simulated patients were screened (about half enrolled and followed up)."""
    trial = make_trial(f"sqlite:///{tmp_path_factory.mktemp('a11y') / 'trial.db'}")
    simulate(trial.engine, FIRST_PROTOCOL, 12, 1)
    return trial


@pytest.fixture(scope="module")
def accounts(live_trial: Trial) -> dict[Role, tuple[str, str]]:
    """One account per role at every site (the simulated patients are spread over the sites)."""
    made = ensure_users(live_trial.engine, current_protocol(live_trial.engine).protocol, prefix="a11y-")
    return {role: (user.username, password) for role, (user, password) in made.items()}


def _axe_source() -> str:
    source = AXE.read_bytes()
    digest = base64.b64encode(hashlib.sha256(source).digest()).decode()
    assert digest == AXE_SHA256, f"{AXE} is not the vendored axe-core 4.14.1 (tests/browser/axe/README.md)"
    return source.decode()


def violations(page: Any) -> list[str]:
    """Run axe-core on the page as it stands; one line per element of each violation."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the browser's debugging protocol: the page's Content-Security-Policy (script-src
        # 'self') rightly refuses an injected <script>, and the test keeps that policy as users get it.
        page.evaluate(_axe_source() + "\n;true")
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        WCAG_TAGS,
    )
    lines = []
    for v in result["violations"]:
        for node in v["nodes"]:
            how = (node.get("failureSummary") or "").strip().splitlines()
            target = " ".join(map(str, node["target"]))
            lines.append(
                f"{v['id']} ({v['impact']}) at {target}: {v['help']}" + (f" -- {how[-1].strip()}" if how else "")
            )
    return lines


def sign_in(page: Any, base: str, username: str, password: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/sign-in")
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(f"{base}/")


def _check(page: Any, what: str, found: dict[str, list[str]]) -> None:
    assert page.locator("html").get_attribute("lang"), what
    where = urlsplit(page.url).path.strip("/").replace("/", "-") or "home"
    page.shot(f"{what.split()[0]}-{where}")
    problems = violations(page)
    if problems:
        found[what] = problems


def _report(found: dict[str, list[str]]) -> str:
    return "axe-core found WCAG 2.2 A/AA violations:\n" + "\n".join(
        f"  {where}: {line}" for where, lines in found.items() for line in lines
    )


@pytest.mark.parametrize("lang", LANGUAGES)
def test_sign_in_page_meets_wcag_22_aa(page, live_server: str, lang: str) -> None:  # type: ignore[no-untyped-def]
    page.context.add_cookies([{"name": "trialwright_lang", "value": lang, "url": live_server}])
    page.goto(f"{live_server}/sign-in")
    assert page.locator("html").get_attribute("lang") == lang
    found: dict[str, list[str]] = {}
    _check(page, f"{lang} /sign-in", found)
    assert not found, _report(found)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_main_pages_meet_wcag_22_aa(  # type: ignore[no-untyped-def]
    page, live_server: str, live_trial: Trial, accounts: dict[Role, tuple[str, str]], role: Role, lang: str
) -> None:
    username, password = accounts[role]
    set_preferences(live_trial.engine, username, language=lang)
    sign_in(page, live_server, username, password)
    assert page.locator("html").get_attribute("dir") == ("rtl" if lang == "fa" else "ltr")
    found: dict[str, list[str]] = {}
    _check(page, f"{lang} /", found)
    for visit in PAGES.get(role, ()):
        response = page.goto(f"{live_server}{visit.path}")
        assert response is not None and response.ok, (visit.path, response and response.status)
        for selector in visit.follow:
            links = page.locator(f"main {selector}")
            assert links.count() >= 1, f"{page.url}: no link {selector} to follow"
            links.first.click()
            page.wait_for_load_state()
        _check(page, f"{lang} {visit.label()}", found)
    assert not found, _report(found)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_set_password_page_meets_wcag_22_aa(  # type: ignore[no-untyped-def]
    page, live_server: str, live_trial: Trial, lang: str
) -> None:
    """The page a new account's holder opens from the link it was given (and the page of a spent link)."""
    name = f"a11y-newcomer-{lang}"
    create_user(live_trial.engine, username=name, password=PASSWORD, role=Role.DATA_MANAGER, actor="test")
    issued = request_reset(
        live_trial.engine, current_protocol(live_trial.engine).protocol, name, actor="test", reason="first sign-in"
    ).token
    assert issued is not None
    page.context.add_cookies([{"name": "trialwright_lang", "value": lang, "url": live_server}])
    found: dict[str, list[str]] = {}
    for path, status in ((issued.path, 200), ("/set-password?token=spent", 404)):
        response = page.goto(f"{live_server}{path}")
        assert response is not None and response.status == status, (path, response and response.status)
        _check(page, f"{lang} {path.split('?')[0]}", found)
    assert not found, _report(found)


def test_the_checker_finds_what_it_should(page, live_server: str) -> None:  # type: ignore[no-untyped-def]
    """axe-core runs, and on a page spoiled on purpose it names what is wrong (so a clean result means clean)."""
    page.goto(f"{live_server}/sign-in")
    assert violations(page) == []
    page.evaluate("""() => {
        const main = document.querySelector('main');
        main.insertAdjacentHTML('beforeend', '<input type="text" id="nolabel"><p style="color:#bbb">faint</p>');
        document.documentElement.removeAttribute('lang');
    }""")
    found = " ".join(violations(page))
    for rule in ("label", "color-contrast", "html-has-lang"):
        assert f"{rule} (" in found, (rule, found)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_phone_width_meets_wcag_22_aa(  # type: ignore[no-untyped-def]
    page, live_server: str, live_trial: Trial, accounts: dict[Role, tuple[str, str]], lang: str
) -> None:
    """At 360 px the navigation moves above the page and wide tables scroll in a box a keyboard can reach."""
    page.set_viewport_size({"width": 360, "height": 740})
    username, password = accounts[Role.STUDY_COORDINATOR]
    set_preferences(live_trial.engine, username, language=lang)
    sign_in(page, live_server, username, password)
    found: dict[str, list[str]] = {}
    _check(page, f"{lang}-phone /", found)
    for visit in PAGES[Role.STUDY_COORDINATOR][3:6]:  # participants, a participant, one of its forms
        page.goto(f"{live_server}{visit.path}")
        for selector in visit.follow:
            page.locator(f"main {selector}").first.click()
            page.wait_for_load_state()
        _check(page, f"{lang}-phone {visit.label()}", found)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, (page.url, overflow)
        assert page.locator("main .scroll[role=region][tabindex='0']").count() >= 1, f"{page.url}: no table scrolls"
    assert not found, _report(found)
