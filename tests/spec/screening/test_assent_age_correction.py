"""An age corrected after a consent was recorded, where the age decides whether a child's assent is sought, on both
databases.

The first protocol given ``eligibility.assent: {from_age: 18, unit: years, age_field: age, form_versions: [A1]}``:
a patient of 17 needs no assent, one of 18 or more does. The consent in force is the latest record (a decision
after regaining capacity aside).

| screened | consent in force (a representative's) | corrected to | consent again         | decision                   |
|----------|---------------------------------------|--------------|-----------------------|----------------------------|
| 17       | no assent                             | 19           | no                    | refused naming age, rule   |
| 17       | no assent                             | 19           | yes, assent given     | stands; 2 consent records  |
| 19       | assent given                          | 17           | no                    | refused (not sought)       |
| 19       | assent given                          | 20           | no                    | stands (still sought)      |
| 17       | none yet                              | 19           | no                    | stands (nothing recorded)  |
| 17       | no assent                             | 19 (the API) | the body's ``consent`` | refused, then stands      |
| 17       | no assent                             | 19 (the page) | the values form's  | refused, then stands       |
|          |                                       | (EN and FA)  | consent               |                            |

A refused correction changes nothing: the stored age, the decision and the consent records are as before.

The page's values form never ignores or defaults the consent recorded again (EN and FA):

| the values form                                             | page                                              |
|-------------------------------------------------------------|---------------------------------------------------|
| a correction that stands alone (19 -> 20), with re-consent  | 422 naming the inputs typed: tick the box or      |
| inputs typed but the box not ticked                         | clear them; what was typed kept                   |
| the box ticked, every input but who gave the consent        | 422: "Consent given by" is required (never        |
|                                                             | defaulted to the representative)                  |

Either refusal writes nothing: the screening's values, its consent records and its audit entries are as before.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.spec.forms.conftest import earlier_today
from tests.spec.screening.assent_fixtures import GIVEN, LAR
from tests.spec.screening.test_screening_consent_enrolment import TODAY, TYPED
from tests.spec.web.test_randomization_pages import as_role, post
from tests.trialfixtures import Trial, username, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.screening import ScreeningError, get_screening, record_consent, screen, update_screening
from trialwright.services.users import issue_token, set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app


def _screened(trial: Trial, age: int) -> int:
    values = {**TYPED, "age": age}
    return screen(trial.engine, who(trial, Role.STUDY_COORDINATOR), site="RAZ", screened_on=TODAY, values=values).id


def _consent(trial: Trial, sid: int, minutes: int, **assent: Any) -> None:
    record_consent(trial.engine, who(trial, Role.INVESTIGATOR), sid, **LAR, obtained_at=earlier_today(minutes),
                   **assent)  # fmt: skip


def _state(trial: Trial, sid: int) -> tuple[Any, str, int]:
    view = get_screening(trial.engine, who(trial, Role.INVESTIGATOR), sid)
    return view.values["age"], view.decision, len(view.consents)


def _correct(trial: Trial, sid: int, age: int, consent: dict[str, Any] | None = None) -> Any:
    return update_screening(trial.engine, who(trial, Role.INVESTIGATOR), sid, values={"age": age},
                            reason="typed wrong", consent=consent)  # fmt: skip


def test_an_age_corrected_into_the_assent_band_without_an_assent_is_refused(kids: Trial) -> None:
    sid = _screened(kids, 17)
    _consent(kids, sid, 30)
    before = _state(kids, sid)
    with pytest.raises(ScreeningError) as refused:
        _correct(kids, sid, 19)
    said = str(refused.value)
    assert said.startswith("age: corrected to 19, RAZ-S0001's consent record in force")
    assert "eligibility.assent" in said and "eligibility.assent.from_age" in said
    assert "record the consent again with the correction" in said
    assert _state(kids, sid) == before == (17, before[1], 1)


def test_the_correction_stands_with_the_consent_recorded_again_with_the_assent(kids: Trial) -> None:
    sid = _screened(kids, 17)
    _consent(kids, sid, 30)
    again = {**LAR, "obtained_at": earlier_today(10), "kind": "reconsent", **GIVEN,
             "assent_obtained_at": earlier_today(10)}  # fmt: skip
    view = _correct(kids, sid, 19, consent=again)
    assert view.values["age"] == 19
    assert [(c.kind, c.assent) for c in view.consents] == [("initial", None), ("reconsent", "given")]


def test_an_age_corrected_out_of_the_assent_band_with_an_assent_recorded_is_refused(kids: Trial) -> None:
    sid = _screened(kids, 19)
    _consent(kids, sid, 30, **GIVEN, assent_obtained_at=earlier_today(30))
    with pytest.raises(ScreeningError, match=r"^age: corrected to 17, .*\(eligibility\.assent: assent: sought from "
                                             r"18 years .*17 years at screening\)"):  # fmt: skip
        _correct(kids, sid, 17)
    assert _state(kids, sid)[0] == 19


def test_a_correction_that_leaves_the_assent_rule_met_stands(kids: Trial) -> None:
    sid = _screened(kids, 19)
    _consent(kids, sid, 30, **GIVEN, assent_obtained_at=earlier_today(30))
    assert _correct(kids, sid, 20).values["age"] == 20
    unconsented = _screened(kids, 17)
    assert _correct(kids, unconsented, 19).values["age"] == 19


def test_the_api_takes_the_consent_recorded_again_with_the_correction(kids: Trial) -> None:
    sid = _screened(kids, 17)
    _consent(kids, sid, 30)
    token, _ = issue_token(kids.engine, username(Role.INVESTIGATOR), name="t", actor="t")
    headers = {"Authorization": f"Bearer {token}"}
    app = create_app(Settings(database_url=kids.url))
    with TestClient(app) as client:
        url = f"/api/v1/screenings/{sid}/values"
        refused = client.post(url, headers=headers, json={"values": {"age": 19}, "reason": "typed wrong"})
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["rule"].startswith("age: corrected to 19")
        at = earlier_today(10).isoformat()
        consent = {**LAR, "obtained_at": at, "kind": "reconsent", **GIVEN, "assent_obtained_at": at}
        done = client.post(url, headers=headers, json={"values": {"age": 19}, "reason": "typed wrong",
                                                       "consent": consent})  # fmt: skip
        assert done.status_code == 200, done.text
    assert _state(kids, sid)[0] == 19 and _state(kids, sid)[2] == 2


def _site_time(at: dt.datetime) -> str:
    return at.astimezone(ZoneInfo("Asia/Tehran")).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize("language", ["en", "fa"])
def test_the_page_corrects_the_age_with_the_consent_recorded_again(kids: Trial, language: str) -> None:
    """The screening page: the values form, where the protocol declares assent and a consent is recorded, holds the
    consent recorded again (``with_consent`` and the consent form's inputs, prefixed ``again_``). A correction sent
    without it is refused as the service words it (in the page's language); with it, the correction stands and the
    re-consent with the child's assent is recorded after it."""
    sid = _screened(kids, 17)
    _consent(kids, sid, 30)
    set_preferences(kids.engine, username(Role.INVESTIGATOR), language=language, calendar="gregorian")
    at = _site_time(earlier_today(10))
    with as_role(create_app(Settings(database_url=kids.url, lockout_threshold=3)), Role.INVESTIGATOR) as inv:
        page = inv.get(f"/screening/{sid}").text
        assert 'data-testid="correction-consent"' in page and 'name="again_assent"' in page
        refused = post(inv, f"/screening/{sid}/values", f"/screening/{sid}", age="19", reason="typed wrong")
        assert refused.status_code == 422
        said = html.unescape(refused.text)
        if language == "fa":
            assert "دیگر با قاعدهٔ رضایت شرکت‌کننده سازگار نیست" in said and "no longer meets" not in said
        else:
            assert "corrected to 19, RAZ-S0001's consent record in force" in said
        assert 'value="typed wrong"' in refused.text  # the form keeps what was typed
        again = {f"again_{k}": v for k, v in {**LAR, "obtained_at": at, **GIVEN, "assent_obtained_at": at}.items()}
        done = post(inv, f"/screening/{sid}/values", f"/screening/{sid}", age="19", reason="typed wrong",
                    with_consent="1", **again)  # fmt: skip
        assert done.status_code == 303, html.unescape(done.text)[-3000:]
    view = get_screening(kids.engine, who(kids, Role.INVESTIGATOR), sid)
    assert view.values["age"] == 19
    assert [(c.kind, c.given_by, c.assent, c.assent_form_version) for c in view.consents] == [
        ("initial", "representative", None, None), ("reconsent", "representative", "given", "A1")]  # fmt: skip
    changed = audit.entries(kids.engine, action_prefix="screening.changed")
    assert any(json.loads(e.new_value or "{}").get("values", {}).get("age") == 19 for e in changed)


def _written(trial: Trial, sid: int) -> tuple[Any, ...]:
    """What a refusal must leave as it was: the screening's age and decision, its consent records, the screening
    and consent audit entries."""
    view = get_screening(trial.engine, who(trial, Role.INVESTIGATOR), sid)
    logged = [e.seq for prefix in ("screening.", "consent.")
              for e in audit.entries(trial.engine, action_prefix=prefix, limit=1000)]  # fmt: skip
    return view.values, view.decision, [(c.kind, c.assent) for c in view.consents], sorted(logged)


@pytest.mark.parametrize("language", ["en", "fa"])
def test_re_consent_inputs_typed_without_the_box_ticked_are_refused_not_ignored(kids: Trial, language: str) -> None:
    sid = _screened(kids, 19)
    _consent(kids, sid, 30, **GIVEN, assent_obtained_at=earlier_today(30))
    set_preferences(kids.engine, username(Role.INVESTIGATOR), language=language, calendar="gregorian")
    before = _written(kids, sid)
    with as_role(create_app(Settings(database_url=kids.url, lockout_threshold=3)), Role.INVESTIGATOR) as inv:
        refused = post(inv, f"/screening/{sid}/values", f"/screening/{sid}", age="20", reason="typed wrong",
                       again_representative_name="Maryam Ahmadi", again_obtained_by="Dr K")  # fmt: skip
        assert refused.status_code == 422, html.unescape(refused.text)[-2000:]
        said = html.unescape(refused.text)
        if language == "fa":
            assert "نام نمایندهٔ قانونی" in said and "رضایت گرفته‌شده توسط" in said
            assert "بدون زدن تیک ثبت دوبارهٔ رضایت همراه با اصلاح وارد شده است" in said and "without ticking" not in said
        else:
            assert ("Representative's name, Consent obtained by: typed without ticking the box to record the consent "
                    "again with the correction; tick it to record the consent again, or clear them") in said
        assert 'value="Maryam Ahmadi"' in refused.text and 'value="typed wrong"' in refused.text  # kept as typed
        assert 'data-testid="correction-consent" open' in refused.text  # shown where the inputs are
    assert _written(kids, sid) == before


@pytest.mark.parametrize("language", ["en", "fa"])
def test_the_consent_recorded_again_without_who_gave_it_is_refused_not_defaulted(kids: Trial, language: str) -> None:
    sid = _screened(kids, 17)
    _consent(kids, sid, 30)
    set_preferences(kids.engine, username(Role.INVESTIGATOR), language=language, calendar="gregorian")
    before = _written(kids, sid)
    at = _site_time(earlier_today(10))
    sent = {**LAR, "given_by": "", "obtained_at": at, **GIVEN, "assent_obtained_at": at}
    with as_role(create_app(Settings(database_url=kids.url, lockout_threshold=3)), Role.INVESTIGATOR) as inv:
        page = inv.get(f"/screening/{sid}").text
        assert '<select id="again_given_by" name="again_given_by"><option value=""></option>' in page  # none chosen
        refused = post(inv, f"/screening/{sid}/values", f"/screening/{sid}", age="19", reason="typed wrong",
                       with_consent="1", **{f"again_{k}": v for k, v in sent.items()})  # fmt: skip
        assert refused.status_code == 422, html.unescape(refused.text)[-2000:]
        said = html.unescape(refused.text)
        assert ("رضایت‌دهنده\u2069: لازم است" if language == "fa" else "Consent given by: is required") in said
        assert 'value="Maryam Ahmadi"' in refused.text  # kept as typed
    assert _written(kids, sid) == before
