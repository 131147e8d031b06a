"""Every consent and assent refusal in the page's language: on a Persian page in Persian, on an English one in English
(both databases for the refusals the services raise).

The first protocol given ``eligibility.assent: {from_age: 18, unit: years, age_field: age, form_versions: [A1],
consent_age: 21}``. Each refusal below is raised by the service or rule that owns it (never typed here), then said
as the screening page says it (``web.wording.say`` with the page's words). On a Persian page it holds no English
sentence (no two Latin words in a row): what stays in Latin is a protocol key (``eligibility.assent.from_age``,
``kind: reconsent``), a screening or participant number, a form version, a date or a number. On an English page the
rule is said as the service words it.

| refusal                                          | raised by                                                  |
|--------------------------------------------------|------------------------------------------------------------|
| assent details without an assent                 | ``assent_problem``                                         |
| an assent where the protocol declares none       | ``assent_problem``                                         |
| the age not recorded (assent; age of consent)    | ``assent_problem``, ``own_consent_problem``                |
| an assent below ``from_age``                     | ``assent_problem``                                         |
| an assent with a participant's own consent       | ``assent_problem``                                         |
| no assent at ``from_age`` or older               | ``assent_problem``                                         |
| not sought without a reason; details when not sought; a reason when given | ``assent_problem``                |
| no one who sought it; no time; an unknown assent form; a form where none is declared | ``assent_problem``     |
| a participant's own consent below ``consent_age`` | ``own_consent_problem``                                   |
| who gave it, kind, decision, form version (unknown, not yet in use), before the screening, regained capacity     |
|                                                  | ``consent_problem``                                        |
| the assent sought before the screening date; a consent in the future; no one who obtained it | ``record_consent`` |
| an age correction that breaks the assent rule; one that makes the own consent not allowed | ``update_screening`` |
| an initial consent after enrolment (re-consent)  | ``record_consent``                                         |
| enrolment on a dissent; on an own consent no longer allowed; without a consent | ``enrol``                    |
| the dissent decision: the role, the decision, the reason, none open | ``record_dissent_decision``             |

And through the page: a representative's consent without the assent a 19-year-old needs, posted on a Persian page,
is refused in Persian (the rule's Persian words are on the page, its English ones are not).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import update

from tests.spec.forms.conftest import earlier_today
from tests.spec.protocol.conftest import mutated_text
from tests.spec.screening.assent_fixtures import GIVEN, LAR, kids_protocol, with_assent
from tests.spec.screening.test_screening_consent_enrolment import TODAY, TYPED
from tests.spec.web.test_randomization_pages import as_role, post
from tests.trialfixtures import Trial, first_protocol, who
from trialwright.domain.assent import assent_problem, own_consent_problem
from trialwright.domain.roles import Role
from trialwright.protocol import Protocol, load_protocol_text
from trialwright.services.screening import (
    ScreeningError,
    enrol,
    record_consent,
    screen,
    update_screening,
)
from trialwright.services.screening.common import NotFound
from trialwright.services.screening.consent import consent_problem
from trialwright.services.screening.dissent import record_dissent_decision
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import screenings
from trialwright.web.app import create_app
from trialwright.web.i18n import catalog_path
from trialwright.web.routes.screening import INPUTS
from trialwright.web.wording import page_words, say

ISOLATES = re.compile("[\u2066-\u2069]")
#: What may stay in Latin on a Persian page: a protocol key (with its value), a number, a version, a screening.
KEYS = re.compile(r"\(?[a-z_]+(?:\.[a-z_]+)+(?:: \w+)?\)?|kind: reconsent|\(assent\)")
ENGLISH = re.compile(r"[A-Za-z]{2,}(?:[\s,;:]+[A-Za-z]{2,})+")


def _kids() -> Protocol:
    return kids_protocol().protocol


def _english_in(said: str) -> list[str]:
    return ENGLISH.findall(KEYS.sub(" ", ISOLATES.sub("", said)))


NONE = {"assent": None, "assent_obtained_by": None, "assent_obtained_at": None, "assent_form_version": None,
        "assent_not_sought_reason": None}  # fmt: skip
AT = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


def _assent(rule_of: Protocol | None = None, age: Any = 19, **sent: Any) -> str | None:
    rule = (rule_of or _kids()).eligibility.assent
    record = {"given_by": "representative", "kind": "initial", "decision": "consent", **NONE, **sent}
    return assent_problem(rule, age=age, age_unit="years", **record)


def _own(age: Any) -> str | None:
    return own_consent_problem(_kids().eligibility.assent, age=age, age_unit="years", given_by="participant",
                               days_since=0)  # fmt: skip


def _kids_with(regained: bool = True, **rule: Any) -> Protocol:
    def amend(document: Any) -> None:
        with_assent(document, **rule)
        document["eligibility"]["regained_capacity"] = regained

    return load_protocol_text(mutated_text(amend)).protocol


def _consent(protocol: Protocol | None = None, **changed: Any) -> str | None:
    protocol = protocol or _kids()
    record = {"site": "RAZ", "screened_on": AT.date(), "form_version": "1.0", "given_by": "participant",
              "obtained_at": AT, "representative_name": None, "representative_relationship": None,
              "kind": "initial", "decision": "consent", "earlier_given_by": [], **changed}  # fmt: skip
    return consent_problem(protocol, **record)


#: Each refusal the rules word, as (what it is, the refusal): raised by the domain's and the consent service's rules.
RULE_REFUSALS: list[tuple[str, Callable[[], str | None]]] = [
    ("details without an assent", lambda: _assent(assent_obtained_by="Dr K")),
    ("no assent declared", lambda: _assent(first_protocol().protocol, assent="given")),
    ("age not recorded (assent)", lambda: _assent(age=None)),
    ("assent below from_age", lambda: _assent(age=17, **GIVEN, assent_obtained_at=AT)),
    ("assent with an own consent", lambda: _assent(given_by="participant", **GIVEN, assent_obtained_at=AT)),
    ("no assent at from_age", lambda: _assent()),
    ("not sought, no reason", lambda: _assent(assent="not_sought")),
    ("not sought, with details", lambda: _assent(assent="not_sought", assent_not_sought_reason="r",
                                                 assent_obtained_by="Dr K")),
    ("given, with a reason", lambda: _assent(**GIVEN, assent_obtained_at=AT, assent_not_sought_reason="r")),
    ("given, no one", lambda: _assent(assent="given", assent_obtained_at=AT, assent_form_version="A1")),
    ("given, no time", lambda: _assent(**GIVEN)),
    ("unknown assent form", lambda: _assent(**{**GIVEN, "assent_form_version": "A9"}, assent_obtained_at=AT)),
    ("age not recorded (consent age)", lambda: _own(None)),
    ("own consent below consent_age", lambda: _own(10)),
    ("given_by", lambda: _consent(given_by="parent")),
    ("kind", lambda: _consent(kind="later")),
    ("decision", lambda: _consent(decision="continue")),
    ("regained capacity by a representative", lambda: _consent(kind="regained_capacity", decision="continue",
                                                               given_by="representative", representative_name="M",
                                                               representative_relationship="m")),
    ("no assent form declared", lambda: _assent(_kids_with(form_versions=[]), **GIVEN, assent_obtained_at=AT)),
    ("unknown form version", lambda: _consent(form_version="9.9")),
    ("form version not yet in use", lambda: _consent(obtained_at=dt.datetime(2021, 3, 1, 12, tzinfo=dt.UTC),
                                                     screened_on=dt.date(2021, 3, 1))),
    ("no regained capacity declared", lambda: _consent(_kids_with(regained=False), kind="regained_capacity",
                                                       decision="continue")),
    ("consent before the screening", lambda: _consent(screened_on=AT.date() + dt.timedelta(days=1))),
    ("regained capacity without a representative", lambda: _consent(kind="regained_capacity", decision="continue")),
]  # fmt: skip


@pytest.mark.parametrize(("what", "refusal"), RULE_REFUSALS, ids=[w for w, _ in RULE_REFUSALS])
def test_each_rule_is_said_in_the_page_language(what: str, refusal: Callable[[], str | None]) -> None:
    message = refusal()
    assert message is not None, what
    _said_in_both(_kids(), message)


def _said_in_both(protocol: Protocol, message: str) -> None:
    (persian,) = say([message], page_words(protocol, "fa", *INPUTS), "fa")
    assert _english_in(persian) == [], (message, persian)
    assert re.search("[\u0600-\u06ff]", persian.partition(": ")[2]), persian  # the rule itself, not only the label
    (english,) = say([message], page_words(protocol, "en", *INPUTS), "en")
    assert not re.search("[\u0600-\u06ff]", english)
    assert message.partition(": ")[2].split(" (")[0].split("; ")[0][-25:] in english, (message, english)


def _raised(call: Callable[[], object]) -> str:
    with pytest.raises((ScreeningError, NotFound)) as refused:
        call()
    return str(refused.value)


def test_each_refusal_the_services_raise_is_said_in_the_page_language(kids: Trial) -> None:
    coordinator, investigator = who(kids, Role.STUDY_COORDINATOR), who(kids, Role.INVESTIGATOR)
    engine = kids.engine

    def screened(age: int) -> int:
        return screen(engine, coordinator, site="RAZ", screened_on=TODAY, values={**TYPED, "age": age}).id

    def correct(sid: int, age: int) -> None:
        update_screening(engine, investigator, sid, values={"age": age}, reason="typed wrong")

    young, own, dissent, enrolled, grown = screened(17), screened(25), screened(19), screened(25), screened(25)
    record_consent(engine, investigator, young, **LAR, obtained_at=earlier_today(30))
    own_consent = {**LAR, "given_by": "participant", "representative_name": None, "representative_relationship": None}
    record_consent(engine, investigator, own, **own_consent, obtained_at=earlier_today(30))
    record_consent(engine, investigator, dissent, **LAR, obtained_at=earlier_today(30), assent="dissent",
                   assent_obtained_by="Dr K", assent_obtained_at=earlier_today(30), assent_form_version="A1")
    record_consent(engine, investigator, enrolled, **own_consent, obtained_at=earlier_today(30))
    enrol(engine, coordinator, enrolled)
    record_consent(engine, investigator, grown, **own_consent, obtained_at=earlier_today(30))
    with session_scope(engine) as session:  # the age as an amendment's rule reads it now: below the age of consent
        session.execute(update(screenings).where(screenings.c.id == grown)
                        .values(screening_values=json.dumps({**TYPED, "age": 10, "informed_consent": True})))
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    refusals = [
        _raised(lambda: correct(young, 19)),  # the assent rule, broken by the correction
        _raised(lambda: correct(own, 10)),  # the participant's own consent, no longer allowed
        _raised(lambda: record_consent(engine, investigator, enrolled, **own_consent, obtained_at=earlier_today(5))),
        _raised(lambda: enrol(engine, coordinator, dissent)),
        _raised(lambda: enrol(engine, coordinator, grown)),
        _raised(lambda: enrol(engine, coordinator, screened(45))),  # no consent recorded
        _raised(lambda: record_consent(engine, investigator, dissent, **LAR, obtained_at=earlier_today(5), **GIVEN,
                                       assent_obtained_at=yesterday)),
        _raised(lambda: record_consent(engine, investigator, dissent, **LAR,
                                       obtained_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))),
        _raised(lambda: record_consent(engine, investigator, dissent, **{**LAR, "obtained_by": " "},
                                       obtained_at=earlier_today(5))),
        _raised(lambda: record_dissent_decision(engine, coordinator, "RAZ-001", decision="continue", reason="r")),
        _raised(lambda: record_dissent_decision(engine, investigator, "RAZ-001", decision="stay", reason="r")),
        _raised(lambda: record_dissent_decision(engine, investigator, "RAZ-001", decision="continue", reason=" ")),
        _raised(lambda: record_dissent_decision(engine, investigator, "RAZ-001", decision="continue", reason="r")),
    ]
    heads = [r.partition(": ")[0] for r in refusals]
    assert heads == ["age", "age", "kind", "assent", "consent", "eligibility", "assent_obtained_at", "obtained_at",
                     "obtained_by", "role", "decision", "reason", "participant"], refusals  # fmt: skip
    for refusal in refusals:
        _said_in_both(_kids(), refusal)


def test_a_persian_page_shows_the_assent_refusal_in_persian(kids: Trial) -> None:
    sid = screen(kids.engine, who(kids, Role.STUDY_COORDINATOR), site="RAZ", screened_on=TODAY,
                 values={**TYPED, "age": 19}).id  # fmt: skip
    set_preferences(kids.engine, "investigator", language="fa", calendar="gregorian")
    with as_role(create_app(Settings(database_url=kids.url, lockout_threshold=3)), Role.INVESTIGATOR) as inv:
        at = earlier_today(30).astimezone(dt.timezone(dt.timedelta(hours=3, minutes=30))).strftime("%Y-%m-%dT%H:%M")
        refused = post(inv, f"/screening/{sid}/consent", f"/screening/{sid}", kind="initial", obtained_at=at,
                       decision="consent", **LAR)  # fmt: skip
    assert refused.status_code == 422
    words = ISOLATES.sub("", html.unescape(refused.text))
    with catalog_path("fa").open("rb") as handle:
        catalog = {m.id: m.string for m in read_po(handle, locale="fa") if m.id}
    rule = catalog["the participant is %(least)s %(unit)s or older (eligibility.assent.from_age); record their assent "
                   "(given or dissent) or why it was not sought"]  # fmt: skip
    assert rule.split("(eligibility.assent.from_age)")[1].strip() in words
    assert "record their assent" not in words and "or older" not in words
