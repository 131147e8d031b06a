"""Sites anywhere: screening, consent, enrolment and withdrawal compare the SITE's local dates, on SQLite
and PostgreSQL, through the services, the REST API and the pages.

The first trial's site RAZ is moved to Sydney (UTC+10, +11 in summer) or to Pago Pago (UTC-11), the zones
where a site's date and the UTC date differ for half the day. Each expected date is the wall-clock date
the example starts from at the site.

| site's clock                  | sent as         | rule                               | decision                  |
|-------------------------------|-----------------|------------------------------------|---------------------------|
| Sydney, D 08:00               | UTC (D-1 ...Z)  | consent on or after screening on D | accepted                  |
| Sydney, D 08:00               | +11:00 / -08:00 | the same                           | accepted, the same instant |
| Sydney, D-1 23:30             | any offset      | the same                           | refused, the same words   |
| Sydney, D 08:00               | no offset       | the API                            | refused, naming the field |
| Pago Pago, enrolled D 20:00   | (D+1 07:00Z)    | withdrawal on D                    | accepted; on D-1 refused  |
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.spec.protocol.conftest import mutated_text
from tests.spec.web.conftest import sign_in
from tests.trialfixtures import Trial, make_trial, username, who
from trialwright.domain.calendars import to_jalali
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services import clock
from trialwright.services.screening import ScreeningError, enrol, record_consent, screen, withdraw
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app

TYPED = {k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}
SYDNEY, PAGO_PAGO = ZoneInfo("Australia/Sydney"), ZoneInfo("Pacific/Pago_Pago")


def _trial(database_url: str, folder: Path, zone: str) -> Trial:
    def move(document: Any) -> None:
        document["sites"][0]["timezone"] = zone

    path = folder / "moved.yaml"
    path.write_text(mutated_text(move), encoding="utf-8")
    return make_trial(database_url, load_protocol(path))


@pytest.fixture
def sydney(database_url: str, tmp_path: Path) -> Iterator[Trial]:
    t = _trial(database_url, tmp_path, "Australia/Sydney")
    yield t
    t.engine.dispose()


@pytest.fixture
def pago_pago(database_url: str, tmp_path: Path) -> Iterator[Trial]:
    t = _trial(database_url, tmp_path, "Pacific/Pago_Pago")
    yield t
    t.engine.dispose()


def _consent_body(at: str) -> dict[str, str]:
    return {"form_version": "1.0", "given_by": "participant", "obtained_by": "Dr Sim", "obtained_at": at}


def test_the_api_gives_the_same_answer_for_the_same_instant_whatever_its_offset(sydney: Trial) -> None:
    day = dt.datetime.now(SYDNEY).date() - dt.timedelta(days=3)  # D: the screening date at the site
    morning = dt.datetime.combine(day, dt.time(8, 0), tzinfo=SYDNEY)  # D 08:00 in Sydney = D-1 in UTC
    late = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(23, 30), tzinfo=SYDNEY)  # D-1 23:30
    assert morning.astimezone(dt.UTC).date() == day - dt.timedelta(days=1)
    token, _ = issue_token(sydney.engine, username(Role.STUDY_COORDINATOR), name="t", actor="test")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(Settings(database_url=sydney.url))) as client:

        def consent(at: str) -> Any:
            created = client.post("/api/v1/screenings", headers=headers,
                                  json={"site": "RAZ", "screened_on": day.isoformat(), "values": TYPED})  # fmt: skip
            assert created.status_code == 201, created.text
            answer = client.post(f"/api/v1/screenings/{created.json()['id']}/consents", headers=headers,
                                 json=_consent_body(at))  # fmt: skip
            return answer.status_code, answer.json()

        written = [
            morning.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),  # as UTC: the day before, in UTC
            morning.isoformat(),  # with the site's own offset
            morning.astimezone(dt.timezone(dt.timedelta(hours=-8))).isoformat(),  # with another
        ]
        answers = [consent(at) for at in written]
        assert [status for status, _ in answers] == [201, 201, 201]
        assert all(body["consented"] for _, body in answers)
        refusals = [consent(at) for at in (late.astimezone(dt.UTC).isoformat(), late.isoformat())]
        expected = [{"field": "obtained_at", "message": None,
                     "rule": f"obtained_at: {(day - dt.timedelta(days=1)).isoformat()} at the site is before the "
                             f"screening date {day.isoformat()}"}]  # fmt: skip
        assert [(status, body["errors"]) for status, body in refusals] == [(422, expected)] * 2
        status, body = consent(morning.replace(tzinfo=None).isoformat())  # no offset: refused, never guessed
        assert status == 422 and body["errors"][0]["field"] == "obtained_at"


def test_the_services_record_the_same_instant_and_the_page_shows_it_on_the_sites_clock(sydney: Trial) -> None:
    day = dt.datetime.now(SYDNEY).date() - dt.timedelta(days=3)
    morning = dt.datetime.combine(day, dt.time(8, 0), tzinfo=SYDNEY)
    coordinator = who(sydney, Role.STUDY_COORDINATOR)
    ids = []
    for at in (morning.astimezone(dt.UTC), morning, morning.astimezone(dt.timezone(dt.timedelta(hours=14)))):
        s = screen(sydney.engine, coordinator, site="RAZ", screened_on=day, values=TYPED)
        view = record_consent(sydney.engine, coordinator, s.id, form_version="1.0", given_by="participant",
                              obtained_by="Dr Sim", obtained_at=at)  # fmt: skip
        assert view.consents[0].obtained_at == morning  # one instant, however it was written
        ids.append(s.id)
    with pytest.raises(ScreeningError, match=r"^obtained_at: .* has no UTC offset"):
        record_consent(sydney.engine, coordinator, ids[0], form_version="1.0", given_by="participant",
                       obtained_by="Dr Sim", obtained_at=morning.replace(tzinfo=None))  # fmt: skip
    with TestClient(create_app(Settings(database_url=sydney.url)), follow_redirects=False) as client:
        page = sign_in(client, Role.STUDY_COORDINATOR).get(f"/screening/{ids[0]}").text
    # 08:00 on the site's clock with its zone's name (AEST in winter, AEDT in summer), not 21:00 or 22:00 UTC.
    # (the viewer's calendar preference is both: the Gregorian date, the Solar Hijri date, then the time)
    assert f"{day.isoformat()}, {to_jalali(day)} 08:00 {morning.tzname()}" in page


def test_a_withdrawal_is_compared_with_the_sites_date_of_enrolment(pago_pago: Trial) -> None:
    # Enrolled at 20:00 on D in Pago Pago (UTC-11): 07:00 on D+1 in UTC. A withdrawal on D is on the day of
    # enrolment at the site; one on D-1 is before it.
    day = dt.date(2024, 7, 10)
    enrolled_at = dt.datetime.combine(day, dt.time(20, 0), tzinfo=PAGO_PAGO)
    assert enrolled_at.astimezone(dt.UTC).date() == day + dt.timedelta(days=1)
    investigator = who(pago_pago, Role.INVESTIGATOR)
    participants = []
    with clock.simulated_time(enrolled_at):
        for _ in range(2):
            s = screen(pago_pago.engine, investigator, site="RAZ", screened_on=day, values=TYPED)
            record_consent(pago_pago.engine, investigator, s.id, form_version="1.0", given_by="participant",
                           obtained_by="Dr Sim", obtained_at=enrolled_at - dt.timedelta(minutes=30))  # fmt: skip
            participant = enrol(pago_pago.engine, investigator, s.id).participant
            assert participant is not None
            participants.append(participant.participant_id)
    later = dt.datetime.combine(day + dt.timedelta(days=5), dt.time(12, 0), tzinfo=PAGO_PAGO)
    with clock.simulated_time(later):
        with pytest.raises(ScreeningError, match=rf"withdrawn_on: 2024-07-09 is before enrolment on {day} at the site"):
            withdraw(pago_pago.engine, investigator, participants[0], scope="follow_up", cause="other",
                     reason="moved away", withdrawn_on=day - dt.timedelta(days=1))  # fmt: skip
        done = withdraw(pago_pago.engine, investigator, participants[0], scope="follow_up", cause="other",
                        reason="moved away", withdrawn_on=day)  # fmt: skip
        assert done.withdrawn_scopes == ("follow_up",)
        # Without a date, the withdrawal is on today at the site (D+5 there; D+5 or D+6 in UTC).
        with pytest.raises(ScreeningError, match=r"withdrawn_on: 2024-07-16 is in the future \(today is 2024-07-15"):
            withdraw(pago_pago.engine, investigator, participants[1], scope="follow_up", cause="other",
                     reason="moved away", withdrawn_on=day + dt.timedelta(days=6))  # fmt: skip
        today = withdraw(pago_pago.engine, investigator, participants[1], scope="follow_up", cause="other",
                         reason="moved away", withdrawn_on=None)  # fmt: skip
        assert today.withdrawn_scopes == ("follow_up",)
