"""Recruitment is counted by the database, and counts what the screening log says, patient by patient; on SQLite
and PostgreSQL.

The dashboard and the forecast read the funnel as ``GROUP BY`` counts (``services.recruitment_tally``): days x
sites rows, not one per patient. Here they are compared, as of every day that matters and today, as the study
coordinator and as the DSMB member (by arm), with the same numbers worked out in this file in plain Python from the
rows as stored (every screening, consent, participant and allocation, its instant put on the site's calendar with
``zoneinfo``). The trial: the first protocol with GOL moved to Los Angeles (UTC-7, UTC-8 from 2021-11-07 02:00)
beside RAZ in Tehran (UTC+4:30, UTC+3:30 from 2021-09-21 24:00, when 23:00-24:00 came twice). Times are each site's:

    patient | site | screened | screening          | consents                               | randomized
    A       | RAZ  | 06-10    | eligible           | participant 06-10 23:59:59.999999      | 06-11 00:00:00
    B       | RAZ  | 06-10    | eligible           | representative 06-10 00:00:00          | 06-10 23:59:59.999999
    C       | GOL  | 06-10    | eligible           | participant 06-10 23:30 (Tehran 06-11) | 06-11 00:00:00.5
    D       | GOL  | 06-12    | fails I1 (age 71)  |                                        | (not_eligible)
    E       | RAZ  | 06-12    | fails I1 and E1    |                                        | (no reason recorded)
    F       | RAZ  | 06-13    | eligible           | refused 06-13 10:00                    | (declined)
    G       | GOL  | 06-13    | P/F missing        |                                        |
    H       | RAZ  | 06-14    | eligible           | refused 06-14 10:00, 06-15 00:00:01    | 06-15 09:00, withdrawn
    I       | RAZ  | 09-21    | eligible           | participant 09-21 23:30 (the first)    | 09-21 23:30 (the second)
    J       | RAZ  | 09-21    | eligible           | participant 09-22 00:00:00             | 09-22 00:00:00.000001
    K       | GOL  | 11-06    | eligible           | participant 11-07 01:30 (the second)   | 11-07 23:59:59
    L       | GOL  | 11-07    | eligible, no consent yet |                                  |

A load reads as many rows whatever the number of patients screened on the same days (the second test): on the
code before the counting moved into the database it read every screening, consent, enrolment and allocation.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.spec.audit.test_by_arm_counts import _rows_from_allocations
from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import PASSWORD, Trial, make_trial, screener, who
from trialwright.analysis.forecast import SiteHistory, fit_poisson_gamma, forecast_completion
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services import clock
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.recruitment import DRAWS, SEED, forecast_of, load, recruitment_status, status_of
from trialwright.services.screening import enrol, record_consent, screen, set_non_enrolment, withdraw
from trialwright.services.trial import current_protocol
from trialwright.services.users import create_user, get_user
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.screening_tables import consents, participants, screenings

ZONES = {"RAZ": "Asia/Tehran", "GOL": "America/Los_Angeles"}
TEHRAN = ZoneInfo("Asia/Tehran")
TYPED = {k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}
TODAY = dt.datetime(2021, 11, 20, 12, tzinfo=TEHRAN)
AS_OF = [dt.date(2021, *md) for md in ((6, 9), (6, 10), (6, 11), (6, 12), (6, 13), (6, 14), (6, 15), (6, 16),
                                      (9, 20), (9, 21), (9, 22), (9, 23), (11, 6), (11, 7), (11, 8))]  # fmt: skip


def local(site: str, text: str, fold: int = 0) -> dt.datetime:
    """An instant on the site's clock (``fold=1``: the second of a time that came twice)."""
    return dt.datetime.fromisoformat(f"2021-{text}").replace(tzinfo=ZoneInfo(ZONES[site]), fold=fold)


def _zones(document: Any) -> None:
    for site in document["sites"]:
        site["timezone"] = ZONES[site["code"]]


def build(url: str, folder: Path) -> Trial:
    """The trial of the module docstring."""
    path = folder / "TWO-ZONES.yaml"
    path.write_text(mutated_text(_zones), encoding="utf-8")
    trial = make_trial(url, load_protocol(path))
    create_user(trial.engine, username="investigator-gol", password=PASSWORD, role=Role.INVESTIGATOR,
                sites=["GOL"], full_name="GOL investigator", actor="test")  # fmt: skip
    coordinator = screener(trial.engine)
    randomizers = {"RAZ": who(trial, Role.INVESTIGATOR), "GOL": get_user(trial.engine, "investigator-gol")}
    with clock.simulated_time(local("RAZ", "05-30T10:00")):
        generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)

    def patient(site: str, screened: str, values: dict[str, Any] | None = None,
                consents_: tuple[tuple[str, str, str, int], ...] = (), randomized: tuple[str, int] | None = None,
                reason: str | None = None, withdrawn: bool = False) -> None:  # fmt: skip
        with clock.simulated_time(local(site, f"{screened}T08:00")):
            s = screen(trial.engine, coordinator, site=site, screened_on=dt.date.fromisoformat(f"2021-{screened}"),
                       values={k: v for k, v in {**TYPED, **(values or {})}.items() if v is not None})  # fmt: skip
        for when, by, decision, fold in consents_:
            instant = local(site, when, fold)
            rep = {"representative_name": "A. Relative", "representative_relationship": "spouse"} if (
                by == "representative") else {}  # fmt: skip
            with clock.simulated_time(instant):
                record_consent(trial.engine, coordinator, s.id, form_version="1.0", given_by=by, obtained_by="Dr K",
                               obtained_at=instant, decision=decision, **rep)  # fmt: skip
        if randomized is not None:
            with clock.simulated_time(local(site, *randomized)):
                participant = enrol(trial.engine, coordinator, s.id).participant
                assert participant is not None
                randomize(trial.engine, randomizers[site], participant.participant_id)
            if withdrawn:
                with clock.simulated_time(TODAY):
                    withdraw(trial.engine, randomizers[site], participant.participant_id, scope="follow_up",
                             cause="withdrew_consent", reason="moved away", withdrawn_on=None)  # fmt: skip
        if reason is not None:
            with clock.simulated_time(local(site, f"{screened}T16:00")):
                set_non_enrolment(trial.engine, coordinator, s.id, reason=reason)

    patient("RAZ", "06-10", consents_=(("06-10T23:59:59.999999", "participant", "consent", 0),),
            randomized=("06-11T00:00:00", 0))
    patient("RAZ", "06-10", consents_=(("06-10T00:00:00", "representative", "consent", 0),),
            randomized=("06-10T23:59:59.999999", 0))
    patient("GOL", "06-10", consents_=(("06-10T23:30:00", "participant", "consent", 0),),
            randomized=("06-11T00:00:00.500000", 0))
    patient("GOL", "06-12", {"age": 71}, reason="not_eligible")
    patient("RAZ", "06-12", {"age": 71, "malignancy": True})
    patient("RAZ", "06-13", consents_=(("06-13T10:00:00", "participant", "refuse", 0),), reason="declined")
    patient("GOL", "06-13", {"pao2_mmhg": None})
    patient("RAZ", "06-14", consents_=(("06-14T10:00:00", "participant", "refuse", 0),
                                       ("06-15T00:00:01", "participant", "consent", 0)),
            randomized=("06-15T09:00:00", 0), withdrawn=True)
    patient("RAZ", "09-21", consents_=(("09-21T23:30:00", "participant", "consent", 0),),
            randomized=("09-21T23:30:00", 1))
    patient("RAZ", "09-21", consents_=(("09-22T00:00:00", "participant", "consent", 0),),
            randomized=("09-22T00:00:00.000001", 0))
    patient("GOL", "11-06", consents_=(("11-07T01:30:00", "participant", "consent", 1),),
            randomized=("11-07T23:59:59", 0))
    patient("GOL", "11-07")
    return trial


@pytest.fixture(scope="module")
def trial(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trial]:
    """Built once per database; the tests that use it only read."""
    t = build(module_database_url, tmp_path_factory.mktemp("protocol"))
    yield t
    t.engine.dispose()


# --- the same numbers from the rows, in plain Python ---------------------------------------------------------------


def _eligible(decision: str, detail: dict[str, Any], consent_field: str | None) -> bool:
    only = {consent_field} if consent_field else set()
    if decision == "eligible":
        return True
    if decision == "not_eligible":
        return bool(only) and all(set(f["values"]) <= only for f in detail["failed"])
    return not detail["failed"] and set(detail["missing"]) <= only


def _quartiles(values: list[int]) -> tuple[float, float, float]:
    """Quartiles by linear interpolation between the sorted values (numpy's default, worked here by hand)."""
    v = sorted(values)

    def at(q: float) -> float:
        pos = q * (len(v) - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        return v[lo] + (v[hi] - v[lo]) * (pos - lo)

    return at(0.25), at(0.5), at(0.75)


def by_hand(trial: Trial, as_of: dt.date | None) -> dict[str, Any]:
    """The dashboard's numbers from every stored row: as of the end of ``as_of`` on the trial's clock (Tehran)."""
    protocol = current_protocol(trial.engine).protocol
    cf = protocol.eligibility.consent_field
    day = as_of or TODAY.date()
    # the moment as the service takes it: the end of the day on the trial's clock, or now (the clock's UTC instant)
    moment = min(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=TEHRAN), TODAY.astimezone(dt.UTC))
    with trial.engine.connect() as c:
        s_rows = c.execute(select(screenings)).all()
        c_rows = c.execute(select(consents).order_by(consents.c.id)).all()
        p_rows = c.execute(select(participants)).all()
        e_rows = c.execute(select(allocation_entries.c.participant_id, allocation_entries.c.randomized_at,
                                  allocation_entries.c.arm)).all()  # fmt: skip
    patients = []
    for s in s_rows:
        if s.screened_on > day:
            continue
        zone = ZoneInfo(ZONES[s.site])
        detail = json.loads(s.decision_detail)
        mine = [r for r in c_rows if r.screening_id == s.id and r.decision == "consent" and r.obtained_at <= moment]
        first = min(mine, key=lambda r: (r.obtained_at, r.id)) if mine else None
        enrolled = [r for r in p_rows if r.screening_id == s.id and r.enrolled_at <= moment]
        pid = enrolled[0].participant_id if enrolled else None
        entry = [r for r in e_rows if pid is not None and r.participant_id == pid and r.randomized_at is not None
                 and r.randomized_at <= moment]  # fmt: skip
        patients.append({
            "site": s.site, "screened_on": s.screened_on,
            "eligible": _eligible(s.decision, detail, cf),
            "failed": [(f["id"], f["text"]) for f in detail["failed"]
                       if not (cf and set(f["values"]) <= {cf})] if s.decision == "not_eligible" else [],
            "reason": s.non_enrolment_reason, "enrolled": pid is not None,
            "consented_on": first.obtained_at.astimezone(zone).date() if first else None,
            "consent_by": first.given_by if first else None,
            "randomized_on": entry[0].randomized_at.astimezone(zone).date() if entry else None,
            "arm": entry[0].arm if entry else None,
        })  # fmt: skip
    return {"day": day, "moment": moment, "patients": patients}


def _funnel(patients: list[dict[str, Any]]) -> tuple[int, int, int, int, int]:
    return (len(patients), sum(p["eligible"] for p in patients), sum(p["consented_on"] is not None for p in patients),
            sum(p["enrolled"] for p in patients), sum(p["randomized_on"] is not None for p in patients))  # fmt: skip


def _check_status(status: Any, hand: dict[str, Any], by_arm: bool) -> None:
    patients = hand["patients"]
    t = status.totals
    assert (t.screened, t.eligible, t.consented, t.enrolled, t.randomized) == _funnel(patients)
    for site in status.sites:
        mine = [p for p in patients if p["site"] == site.site]
        c = site.counts
        assert (c.screened, c.eligible, c.consented, c.enrolled, c.randomized) == _funnel(mine), site.site
        assert site.first_screened == min((p["screened_on"] for p in mine), default=None)
    assert status.series[-1].on == hand["day"]
    for point in status.series:
        on = point.on
        assert (point.screened, point.eligible, point.consented, point.randomized) == (
            sum(p["screened_on"] <= on for p in patients),
            sum(p["eligible"] and p["screened_on"] <= on for p in patients),
            sum(p["consented_on"] is not None and p["consented_on"] <= on for p in patients),
            sum(p["randomized_on"] is not None and p["randomized_on"] <= on for p in patients),
        ), on
    failures = Counter(f for p in patients for f in p["failed"])
    assert {(r.code, r.label): r.count for r in status.screen_failures} == dict(failures)
    reasons = Counter(p["reason"] or "not_recorded" for p in patients if not p["enrolled"])
    assert {r.code: r.count for r in status.non_enrolment} == dict(reasons)
    assert status.consent_by_participant == sum(p["consent_by"] == "participant" for p in patients)
    assert status.consent_by_representative == sum(p["consent_by"] == "representative" for p in patients)
    waits = [(p["randomized_on"] - p["screened_on"]).days for p in patients if p["randomized_on"] is not None]
    w = status.days_to_randomization
    assert w.n == len(waits)
    if waits:
        assert (w.q1, w.median, w.q3) == pytest.approx(_quartiles(waits))
    randomized_on = sorted(p["randomized_on"] for p in patients if p["randomized_on"] is not None)
    assert status.last_randomized == (randomized_on[-1] if randomized_on else None)
    assert status.reached_on is None  # 8 of 30
    if not by_arm:
        assert status.arms is None
        return
    assert status.arms is not None
    for arm in status.arms:
        mine = [p for p in patients if p["arm"] == arm.code and p["randomized_on"] is not None]
        assert arm.randomized == len(mine)
        assert list(arm.series) == [sum(p["randomized_on"] <= point.on for p in mine) for point in status.series]


def _check_forecast(forecast: Any, hand: dict[str, Any], trial: Trial) -> None:
    protocol = current_protocol(trial.engine).protocol
    patients = hand["patients"]
    days = sorted(p["randomized_on"] for p in patients if p["randomized_on"] is not None)
    actual = [(d, sum(x <= d for x in days)) for d in sorted(set(days))]
    assert list(forecast.actual) == actual
    assert (forecast.randomized, forecast.remaining) == (len(days), 30 - len(days))
    histories = []
    for site in protocol.sites:
        mine = [p for p in patients if p["site"] == site.code]
        opened = min((p["screened_on"] for p in mine), default=protocol.trial.dates.expected_recruitment_start)
        start = dt.datetime.combine(opened, dt.time(), tzinfo=ZoneInfo(site.timezone))
        open_days = max((hand["moment"] - start).total_seconds() / 86400.0, 0.0)
        recruited = sum(p["randomized_on"] is not None for p in mine)
        histories.append(SiteHistory(site.code, recruited, max(open_days, 1.0) if recruited else open_days))
    if not days:
        assert forecast.state == "no_recruits"
        assert [(r.site, r.randomized, r.days_open) for r in forecast.sites] == [
            (h.site, h.recruited, pytest.approx(h.days_open)) for h in histories]  # fmt: skip
        return
    assert forecast.state == "forecast"
    assert [(r.site, r.randomized, r.days_open) for r in forecast.sites] == [
        (h.site, h.recruited, pytest.approx(h.days_open)) for h in histories]  # fmt: skip
    fit = fit_poisson_gamma(histories)
    expected = forecast_completion(fit, histories, 30 - len(days), n_simulations=DRAWS, seed=SEED)
    assert forecast.median_days == pytest.approx(expected.median_days)


@pytest.mark.parametrize("as_of", [*AS_OF, None], ids=[*(d.isoformat() for d in AS_OF), "today"])
def test_the_dashboard_and_the_forecast_count_what_the_rows_say(trial: Trial, as_of: dt.date | None) -> None:
    hand = by_hand(trial, as_of)
    with clock.simulated_time(TODAY):
        coordinator = load(trial.engine, who(trial, Role.STUDY_COORDINATOR), as_of=as_of)
        dsmb = load(trial.engine, who(trial, Role.DSMB_MEMBER), as_of=as_of)
    _check_status(status_of(coordinator), hand, by_arm=False)
    _check_status(status_of(dsmb), hand, by_arm=True)
    with clock.simulated_time(TODAY):
        _check_forecast(forecast_of(coordinator), hand, trial)
    assert forecast_of(coordinator) == forecast_of(dsmb)  # the forecast names no arm: the same for every reader


def test_the_trial_puts_its_instants_on_the_days_the_table_says(trial: Trial) -> None:
    """The table's midnights, as the rows say them (so the comparison above is over the days that matter)."""
    patients = by_hand(trial, None)["patients"]
    on = sorted((p["site"], p["screened_on"].isoformat(), p["consented_on"], p["randomized_on"]) for p in patients
                if p["randomized_on"] is not None)  # fmt: skip
    d = dt.date.fromisoformat
    assert on == [
        ("GOL", "2021-06-10", d("2021-06-10"), d("2021-06-11")),
        ("GOL", "2021-11-06", d("2021-11-07"), d("2021-11-07")),
        ("RAZ", "2021-06-10", d("2021-06-10"), d("2021-06-10")),
        ("RAZ", "2021-06-10", d("2021-06-10"), d("2021-06-11")),
        ("RAZ", "2021-06-14", d("2021-06-15"), d("2021-06-15")),
        ("RAZ", "2021-09-21", d("2021-09-21"), d("2021-09-21")),
        ("RAZ", "2021-09-21", d("2021-09-22"), d("2021-09-22")),
    ]


# --- what a load reads -----------------------------------------------------------------------------------------------


def _screen_day(trial: Trial, n: int) -> None:
    """``n`` patients at RAZ on 2021-06-10, each consented, enrolled and randomized that day."""
    coordinator, investigator = screener(trial.engine), who(trial, Role.INVESTIGATOR)
    for i in range(n):
        at = dt.datetime(2021, 6, 10, 9, i, tzinfo=TEHRAN)
        with clock.simulated_time(at):
            s = screen(trial.engine, coordinator, site="RAZ", screened_on=at.date(), values=TYPED)
            record_consent(trial.engine, coordinator, s.id, form_version="1.0", given_by="participant",
                           obtained_by="Dr K", obtained_at=at, decision="consent")  # fmt: skip
            participant = enrol(trial.engine, coordinator, s.id).participant
            assert participant is not None
            randomize(trial.engine, investigator, participant.participant_id)
        with clock.simulated_time(at + dt.timedelta(minutes=30)):
            screen(trial.engine, coordinator, site="RAZ", screened_on=at.date(), values={**TYPED, "age": 71})


def test_a_load_reads_as_many_rows_whatever_the_number_screened(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    trial = make_trial(database_url)
    with clock.simulated_time(dt.datetime(2021, 6, 1, 10, tzinfo=TEHRAN)):
        generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=3)
    coordinator = who(trial, Role.STUDY_COORDINATOR)

    def page() -> Any:  # what the page reads: one load, its status and its forecast
        with clock.simulated_time(dt.datetime(2021, 6, 20, 10, tzinfo=TEHRAN)):
            loaded = load(trial.engine, coordinator)
            return status_of(loaded), forecast_of(loaded)

    def rows() -> tuple[int, Any]:
        # every row any SELECT fetched into Python ("" is in every statement)
        return _rows_from_allocations(monkeypatch, page, reading="")

    _screen_day(trial, 2)
    few, (small, _) = rows()
    _screen_day(trial, 6)
    many, (large, forecast) = rows()
    assert (small.totals.screened, large.totals.screened, forecast.randomized) == (4, 16, 8)
    assert few == many, (few, many)  # rows of counts by site and day, not one per patient
    with clock.simulated_time(dt.datetime(2021, 6, 20, 10, tzinfo=TEHRAN)):
        assert recruitment_status(trial.engine, coordinator) == large
    trial.engine.dispose()
