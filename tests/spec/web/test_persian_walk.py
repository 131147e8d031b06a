"""What a Persian walk of the web app found (issue 24, the Persian findings), both databases:

- an unblinded reader's arm is said in the page's language (the protocol's ``translations`` of the arm): the
  pharmacist's preparation page, the unblinded investigator's participant page, the statistician's list; the
  page header's trial name is the protocol's Persian short title, on every page and before sign-in;
- numbers a person reads are in Persian digits: the work list's counts, the pharmacy's tab counts, a form's
  version, the protocol version on the home page;
- a form's description and the signature's meaning (protocol texts) are the protocol's Persian, and an adverse
  event's reporting rule (the app's words) is in Persian with its hours in Persian digits;
- a unit inside an ``<option>`` (the unit choice) and the soft-limit range the form's script warns with are
  isolated left to right by LRI (U+2066) ... PDI (U+2069), since no element can isolate them there; English
  pages carry no marks and their option values are the units as stored.

Expected texts are read from the protocol file itself (an independent YAML read), not from the code."""

from __future__ import annotations

import datetime as dt
import html
import re

import yaml
from fastapi.testclient import TestClient

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.web.test_randomization_pages import as_role
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.services import forms as forms_svc
from trialwright.services.randomization import emergency_unblind, generate_list, randomize
from trialwright.services.safety import report_event
from trialwright.services.users import set_preferences
from trialwright.web.security import LANG_COOKIE

RAW = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
ARMS = {a["code"]: (a["name"], a["translations"]["fa"]) for a in RAW["arms"]}
SHORT = RAW["trial"]["titles"]["short"], RAW["trial"]["titles"]["translations"]["fa"]["short"]
LRI, PDI = "\u2066", "\u2069"


def _persian(trial: Trial, *roles: Role) -> None:
    for role in roles:
        set_preferences(trial.engine, who(trial, role).username, language="fa")


def _randomized(trial: Trial) -> tuple[str, str]:
    """A randomized participant and their preparation code."""
    pid = enrolled_ten_days_ago(trial)
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    made = randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    return pid, made.preparation_code


def _latin_digits(html: str) -> list[str]:
    return re.findall(r"[0-9]+", html)


def test_an_unblinded_readers_arm_is_said_in_persian(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid, code = _randomized(trial)
    _persian(trial, Role.UNBLINDED_PHARMACIST, Role.INVESTIGATOR, Role.UNBLINDED_STATISTICIAN)
    with as_role(app, Role.UNBLINDED_PHARMACIST) as pharm:
        prepare = pharm.get(f"/pharmacy/{code}").text
    arm = prepare.split('data-testid="prepare-arm">', 1)[1].split("<", 1)[0]
    assert arm in {fa for _, fa in ARMS.values()}, arm  # not the English name
    revealed = emergency_unblind(trial.engine, who(trial, Role.INVESTIGATOR), pid, reason="x", password=PASSWORD)
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(f"/participants/{pid}").text
    english, persian = ARMS[revealed.arm]
    assert f'data-testid="arm">{persian}<' in page and english not in page
    with as_role(app, Role.UNBLINDED_STATISTICIAN) as stat:
        listing = stat.get("/randomization").text
    assert all(f"{fa} ({c})" in listing for c, (_, fa) in ARMS.items())


def test_the_header_says_the_trial_in_persian(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    english, persian = SHORT
    _persian(trial, Role.STUDY_COORDINATOR)
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        home = coord.get("/").text
    assert f'<a href="/">{persian}</a>' in home and english not in home
    with as_role(app, Role.MONITOR) as monitor:  # English stays English
        assert f'<a href="/">{english}</a>' in monitor.get("/").text
    with TestClient(app) as anonymous:  # before sign-in, the language cookie's
        anonymous.cookies.set(LANG_COOKIE, "fa")
        assert f'<a href="/">{persian}</a>' in anonymous.get("/sign-in").text


def test_counts_and_versions_in_persian_digits(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    _randomized(trial)
    _persian(trial, Role.UNBLINDED_PHARMACIST, Role.STUDY_COORDINATOR)
    with as_role(app, Role.UNBLINDED_PHARMACIST) as pharm:
        home = pharm.get("/").text
        pharmacy = pharm.get("/pharmacy").text
    assert 'data-testid="count-to-prepare">' in home
    assert "<strong>۱</strong>" in home.split('data-testid="count-to-prepare">', 1)[1].split("</a>", 1)[0]
    assert 'data-testid="count-to_prepare">۱<' in pharmacy and 'data-testid="count-done">۰<' in pharmacy
    version = str(RAW["version"]["number"])
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        trial_facts = coord.get("/").text
        total = trial_facts.split('data-testid="work-total">', 1)[1].split("<", 1)[0]
    assert total and not _latin_digits(total)
    # Persian digits, and the Persian decimal separator (U+066B) for its point
    persian_version = version.replace(".", "\u066b").translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    assert f"<dd>{persian_version} (" in trial_facts and f"<dd>{version} (" not in trial_facts


def test_units_in_options_and_the_typing_warning_are_isolated_left_to_right(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    _persian(trial, Role.STUDY_COORDINATOR)
    temperature = next(f for f in next(x for x in RAW["forms"] if x["id"] == "vitals")["fields"]
                       if f["id"] == "temperature")  # fmt: skip
    unit, other = temperature["unit"], temperature["alternative_units"][0]["unit"]
    low, high = temperature["soft_limits"]["min"], temperature["soft_limits"]["max"]
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        form = coord.get(f"/participants/{pid}/visits/baseline/forms/vitals").text
    assert f'<option value="">{LRI}{unit}{PDI}</option>' in form
    assert f'<option value="{other}"' in form and f">{LRI}{other}{PDI}</option>" in form  # the value as stored
    soft = re.search(r'id="v-temperature"[^>]*data-soft-range="([^"]*)"', form)
    assert soft is not None
    fa = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
    assert soft.group(1) == f"{LRI}{f'{low:g}-{high:g}'.translate(fa)} {unit}{PDI}"
    with as_role(app, Role.INVESTIGATOR) as inv:  # an English page: no marks
        english = inv.get(f"/participants/{pid}/visits/baseline/forms/vitals").text
    assert f'<option value="">{unit}</option>' in english and LRI not in english
    assert f'data-soft-range="{low:g}-{high:g} {unit}"' in english


def test_a_forms_description_the_signatures_meaning_and_a_reporting_rule_in_persian(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    performance = next(f for f in RAW["forms"] if f["id"] == "performance")
    pid = enrolled_ten_days_ago(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    rated = {"assessed_on": today, "status": "1"}
    forms_svc.save_form(trial.engine, coordinator, pid, "baseline", "performance", rated)
    forms_svc.complete_form(trial.engine, coordinator, pid, "baseline", "performance")
    aware = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    event = report_event(trial.engine, coordinator, pid, {
        "term": "Pneumothorax", "onset": (aware - dt.timedelta(days=1)).date().isoformat(), "grade": 3,
        "serious": True, "seriousness_criteria": ["hospitalisation"], "causality": "unlikely",
        "action_taken": "not_applicable", "outcome": "recovering", "aware_at": aware.isoformat(),
    })  # fmt: skip
    _persian(trial, Role.INVESTIGATOR)
    with as_role(app, Role.INVESTIGATOR) as inv:
        form = html.unescape(inv.get(f"/participants/{pid}/visits/baseline/forms/performance").text)
        safety = inv.get(f"/adverse-events/{event.ae_number}").text
    description = performance["description_translations"]["fa"]
    assert f'data-testid="form-description">{description}<' in form and performance["description"] not in form
    meaning = " ".join(RAW["signature_meaning_translations"]["fa"].split())
    assert f'data-testid="meaning">{meaning}<' in form and RAW["signature_meaning"] not in form
    hours = str(RAW["safety"]["deadlines"]["sae_to_sponsor_hours"])
    rule = safety.split('data-testid="rule-sae_to_sponsor">', 1)[1].split("<", 1)[0]
    assert hours.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")) in rule and hours not in rule
    assert "sponsor" not in rule and re.search(r"[\u0600-\u06FF]", rule)
