"""Recruitment through the service, on both databases: the dashboard's counts on a small trial built by hand
(every number below is counted from the table), per-arm numbers only for the unblinded readers, the forecast
checked by hand and on a simulated trial, what-if scenarios, the registry text, and bad input named.

The hand-built trial (Tehran dates in June 2021; RAZ and GOL):

    patient | site | screened | eligibility           | consent                   | randomized | not enrolled because
    P1      | RAZ  | 06-01    | eligible              | participant, 06-01        | 06-01      |
    P2      | RAZ  | 06-03    | eligible              | representative, 06-04     | 06-05      |
    P3      | GOL  | 06-10    | eligible              | participant, 06-14        | 06-14      |
    P4      | RAZ  | 06-12    | fails I1 (age 71)     |                           |            | not_eligible
    P5      | GOL  | 06-15    | eligible, then refuses | refused 06-15            |            | declined
    P6      | RAZ  | 06-20    | eligible, awaits consent |                        |            | (not recorded)
    P7      | RAZ  | 06-21    | fails I1 and E1       |                           |            | not_eligible
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from scipy import stats

from tests.conftest import fresh_database
from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, screener, who
from trialwright.domain.masking import UNBLINDED_ROLES
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services import clock
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.recruitment import (
    BY_ARM,
    READERS,
    NewSitePlan,
    RecruitmentError,
    parse_scenario,
    recruitment_forecast,
    recruitment_status,
    registry_update_text,
)
from trialwright.services.screening import enrol, record_consent, screen, set_non_enrolment
from trialwright.services.simulation import simulate
from trialwright.services.users import create_user, get_user

TEHRAN = ZoneInfo("Asia/Tehran")
TYPED = {k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}
ARMS = load_protocol(FIRST_PROTOCOL).protocol.arms
ARM_WORDS = [a.code for a in ARMS] + [a.name for a in ARMS]
JUNE_30 = dt.date(2021, 6, 30)


def at(day: str, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(f"2021-{day}"), dt.time(hour), tzinfo=TEHRAN)


def hand_built(url: str, protocol: Path = FIRST_PROTOCOL) -> Trial:
    """The trial of the module docstring."""
    trial = make_trial(url, load_protocol(protocol))
    create_user(trial.engine, username="investigator-gol", password=PASSWORD, role=Role.INVESTIGATOR,
                sites=["GOL"], full_name="GOL investigator", actor="test")  # fmt: skip
    admin = screener(trial.engine)  # screening is a coordinator's (docs/roles.md)
    randomizers = {"RAZ": who(trial, Role.INVESTIGATOR), "GOL": get_user(trial.engine, "investigator-gol")}
    with clock.simulated_time(at("05-30")):
        generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=7)

    def patient(site: str, screened: str, values: dict[str, object] | None = None, consent: tuple[str, str,
                str] | None = None, randomized: str | None = None, reason: str | None = None) -> None:  # fmt: skip
        with clock.simulated_time(at(screened)):
            s = screen(trial.engine, admin, site=site, screened_on=at(screened).date(),
                       values={**TYPED, **(values or {})})  # fmt: skip
        if consent is not None:
            day, by, decision = consent
            rep = (
                {"representative_name": "A. Relative", "representative_relationship": "spouse"}
                if by == "representative"
                else {}
            )
            with clock.simulated_time(at(day, 11)):
                record_consent(trial.engine, admin, s.id, form_version="1.0", given_by=by, obtained_by="Dr K",
                               obtained_at=at(day, 11), decision=decision, **rep)  # fmt: skip
        if randomized is not None:
            with clock.simulated_time(at(randomized, 12)):
                participant = enrol(trial.engine, admin, s.id).participant
                assert participant is not None
                randomize(trial.engine, randomizers[site], participant.participant_id)
        if reason is not None:
            with clock.simulated_time(at(screened, 16)):
                set_non_enrolment(trial.engine, admin, s.id, reason=reason)

    patient("RAZ", "06-01", consent=("06-01", "participant", "consent"), randomized="06-01")
    patient("RAZ", "06-03", consent=("06-04", "representative", "consent"), randomized="06-05")
    patient("GOL", "06-10", consent=("06-14", "participant", "consent"), randomized="06-14")
    patient("RAZ", "06-12", {"age": 71}, reason="not_eligible")
    patient("GOL", "06-15", consent=("06-15", "participant", "refuse"), reason="declined")
    patient("RAZ", "06-20")
    patient("RAZ", "06-21", {"age": 71, "malignancy": True}, reason="not_eligible")
    return trial


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    """Built once per database; the tests that use it only read."""
    t = hand_built(module_database_url)
    yield t
    t.engine.dispose()


def test_the_funnel_counted_by_hand(trial: Trial) -> None:
    s = recruitment_status(trial.engine, who(trial, Role.STUDY_COORDINATOR), as_of=JUNE_30)
    t = s.totals
    # screened 7; eligible P1 P2 P3 P5 (refused: only consent failed) P6 (awaits consent); consented P1-P3
    assert (t.screened, t.eligible, t.consented, t.enrolled, t.randomized) == (7, 5, 3, 3, 3)
    raz, gol = s.sites
    assert (raz.site, raz.first_screened) == ("RAZ", dt.date(2021, 6, 1))
    assert (raz.counts.screened, raz.counts.eligible, raz.counts.consented, raz.counts.randomized) == (5, 3, 2, 2)
    assert (gol.counts.screened, gol.counts.eligible, gol.counts.consented, gol.counts.randomized) == (2, 2, 1, 1)
    assert [(r.code, r.count) for r in s.screen_failures] == [("I1", 2), ("E1", 1)]
    assert [(r.code, r.count) for r in s.non_enrolment] == [("not_eligible", 2), ("declined", 1), ("not_recorded", 1)]
    assert (s.consent_by_participant, s.consent_by_representative) == (2, 1)
    # days from screening to randomization: 0, 2, 4
    w = s.days_to_randomization
    assert (w.n, w.median, w.q1, w.q3) == (3, 2.0, 1.0, 3.0)
    assert (s.target, s.reached_on, s.last_randomized) == (30, None, dt.date(2021, 6, 14))
    # weekly points from the first screening (06-01): 06-07, 06-14, 06-21, 06-28 and the as-of date
    assert s.period == "week"
    assert [(p.on.isoformat()[5:], p.screened, p.eligible, p.consented, p.randomized) for p in s.series] == [
        ("06-07", 2, 2, 2, 2), ("06-14", 4, 3, 3, 3), ("06-21", 7, 5, 3, 3), ("06-28", 7, 5, 3, 3),
        ("06-30", 7, 5, 3, 3),
    ]  # fmt: skip


def test_as_of_an_earlier_day_counts_only_what_had_happened(trial: Trial) -> None:
    t = recruitment_status(trial.engine, who(trial, Role.MONITOR), as_of=dt.date(2021, 6, 10)).totals
    assert (t.screened, t.eligible, t.consented, t.enrolled, t.randomized) == (3, 3, 2, 2, 2)  # P3 consents 06-14


@pytest.mark.parametrize("role", READERS, ids=[r.value for r in READERS])
def test_arms_only_for_the_unblinded_readers(trial: Trial, role: Role) -> None:
    s = recruitment_status(trial.engine, who(trial, role), as_of=JUNE_30)
    text = json.dumps(s.as_dict()) + json.dumps(
        recruitment_forecast(trial.engine, who(trial, role), as_of=JUNE_30).as_dict()
    )
    text += registry_update_text(trial.engine, who(trial, role), as_of=JUNE_30)
    if role in UNBLINDED_ROLES:
        assert role in BY_ARM and s.arms is not None
        assert {a.code: a.target for a in s.arms} == {"EXO": 15, "PBO": 15}
        assert sum(a.randomized for a in s.arms) == 3 and all(len(a.series) == len(s.series) for a in s.arms)
    else:
        assert role not in BY_ARM and s.arms is None and s.as_dict()["arms"] is None
        assert [w for w in ARM_WORDS if w in text] == []


def test_only_the_trial_team_reads_recruitment(trial: Trial) -> None:
    for role in (Role.OUTCOME_ASSESSOR, Role.UNBLINDED_PHARMACIST):
        with pytest.raises(RecruitmentError, match="role: only the trial team"):
            recruitment_status(trial.engine, who(trial, role))
        with pytest.raises(RecruitmentError, match="role: "):
            recruitment_forecast(trial.engine, who(trial, role))


def test_the_forecast_by_hand(trial: Trial) -> None:
    """As of 2021-06-30 (end of day, Tehran): RAZ 2 randomized in 30 days open (from 06-01), GOL 1 in 21 (from
    06-10). The sites differ no more than Poisson noise (sum[(k - r tau)^2 - k] < 0 at r = 3/51), so the model
    pools them: each recruits 3/51 a day, together 6/51, and the time to 27 more is Gamma(27, rate 6/51)."""
    f = recruitment_forecast(trial.engine, who(trial, Role.BLINDED_STATISTICIAN), as_of=JUNE_30)
    assert (f.state, f.randomized, f.remaining, f.model, f.method) == (
        "forecast",
        3,
        27,
        "pooled-poisson",
        "closed-form",
    )
    assert [(s.site, s.randomized, s.days_open) for s in f.sites] == [("RAZ", 2, 30.0), ("GOL", 1, 21.0)]
    assert f.mean_rate_per_month == pytest.approx(3 / 51 * 365.25 / 12, rel=1e-9)
    time = stats.gamma(27, scale=51 / 6)
    start = dt.datetime(2021, 7, 1, tzinfo=TEHRAN) - dt.timedelta(microseconds=1)  # the end of 06-30
    assert f.median_days == pytest.approx(time.median(), rel=1e-3)
    assert f.median_date == (start + dt.timedelta(days=time.median())).date()
    i80 = f.interval(0.8)
    assert i80 is not None and i80.lower == (start + dt.timedelta(days=time.ppf(0.1))).date()
    # planned end 2021-09-22: its end is 84 days after the forecast's moment
    assert f.probability_by_planned_end == pytest.approx(time.cdf(84), abs=1e-4)
    assert any("under-cover" in w for w in f.warnings) and any("pools all sites" in w for w in f.warnings)
    assert f.actual == ((dt.date(2021, 6, 1), 1), (dt.date(2021, 6, 5), 2), (dt.date(2021, 6, 14), 3))
    assert f.predicted[0].on == JUNE_30 and f.predicted[0].mean == pytest.approx(3)


def test_target_reached(database_url: str, tmp_path: Path) -> None:
    """The same trial with a target of 2: reached on 06-05, the day of the second randomization."""
    small = tmp_path / "small.yaml"
    text = FIRST_PROTOCOL.read_text(encoding="utf-8")
    text = text.replace("target: 30", "target: 2").replace("per_arm: {EXO: 15, PBO: 15}", "per_arm: {EXO: 1, PBO: 1}")
    small.write_text(text, encoding="utf-8")
    trial = hand_built(database_url, small)
    investigator = who(trial, Role.INVESTIGATOR)
    f = recruitment_forecast(trial.engine, investigator, as_of=JUNE_30)
    assert (f.state, f.reached_on, f.remaining, f.median_date, f.predicted) == (
        "reached",
        dt.date(2021, 6, 5),
        0,
        None,
        (),
    )
    assert f.message.startswith("The target of 2 was reached on 2021-06-05, 1400/03/15")
    assert recruitment_status(trial.engine, investigator, as_of=JUNE_30).reached_on == dt.date(2021, 6, 5)
    assert "The target was reached on 2021-06-05, 1400/03/15." in registry_update_text(trial.engine, investigator)
    trial.engine.dispose()


def test_no_recruits_yet(database_url: str) -> None:
    trial = make_trial(database_url)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    f = recruitment_forecast(trial.engine, coordinator)
    assert (f.state, f.randomized, f.median_date, f.probability_by_planned_end) == ("no_recruits", 0, None, None)
    assert "no recruitment rate to fit" in f.message
    s = recruitment_status(trial.engine, coordinator)
    assert s.totals.screened == 0 and s.series[-1].randomized == 0 and s.non_enrolment == ()
    assert "0 participants randomized against a target of 30" in registry_update_text(trial.engine, coordinator)
    trial.engine.dispose()


def test_bad_input_names_the_field_and_the_rule(trial: Trial) -> None:
    with pytest.raises(RecruitmentError) as bad:
        parse_scenario(new_site_rate="-2", new_site_opens="2021-13-40", end_date="soon")
    fields = [f for f, _ in bad.value.problems]
    assert fields == ["new_site_opens", "end_date", "new_site_rate"]
    assert "new_site_rate: must be a number > 0" in str(bad.value)
    with pytest.raises(RecruitmentError, match=r"new_site_opens: is required with new_site_rate"):
        parse_scenario(new_site_rate="3")
    with pytest.raises(RecruitmentError, match=r"new_site_rate: is required with new_site_opens"):
        parse_scenario(new_site_opens="2030-01-01")
    assert parse_scenario(new_site_rate=" 2.5 ", new_site_opens="1400/05/01").new_sites == (
        NewSitePlan(2.5, dt.date(2021, 7, 23)),
    )
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    with pytest.raises(RecruitmentError, match=r"new_site_opens: is in the past \(today is 2021-06-30\)"):
        recruitment_forecast(trial.engine, coordinator, as_of=JUNE_30, new_sites=[NewSitePlan(2, dt.date(2021, 6, 1))])
    with pytest.raises(RecruitmentError, match=r"new_site_rate: must be a number > 0"):
        recruitment_forecast(trial.engine, coordinator, as_of=JUNE_30, new_sites=[NewSitePlan(0, dt.date(2021, 8, 1))])
    with pytest.raises(RecruitmentError, match=r"end_date: must be after today \(2021-06-30\)"):
        recruitment_forecast(trial.engine, coordinator, as_of=JUNE_30, end_date=dt.date(2021, 6, 30))
    with pytest.raises(RecruitmentError, match=r"as_of: is after today"):
        recruitment_status(trial.engine, coordinator, as_of=clock.now().date() + dt.timedelta(days=2))


def test_the_registry_text_gives_actual_versus_target_with_the_reasons(trial: Trial) -> None:
    text = registry_update_text(trial.engine, who(trial, Role.DATA_MANAGER), as_of=JUNE_30)
    assert text.startswith("Recruitment as of 2021-06-30, 1400/04/09: 3 participants randomized against a target "
                           "of 30 (10%), at 2 sites (RAZ 2, GOL 1).")  # fmt: skip
    assert (
        "7 patients were screened, 5 met the eligibility criteria, 3 consented (1 through a legally authorised" in text
    )
    assert ("most frequent first: not eligible 2 (criteria not met: Age 18 to 65 years 2, Malignancy 1); declined 1; "
            "not recorded 1.") in text  # fmt: skip
    assert "the probability of reaching it by the planned end of recruitment, 2021-09-22, 1400/06/31, is 0%." in text


# ---------------------------------------------------------------------------------------------------------------
# A simulated trial: the forecast mid-recruitment, and what-if scenarios
# ---------------------------------------------------------------------------------------------------------------

MID = dt.date(2021, 6, 20)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def simulated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trial]:
    """40 patients screened over May-September 2021 (the protocol's simulation file), through the services."""
    reason = request.getfixturevalue("postgres_available") if request.param == "postgresql" else None
    with fresh_database(request.param, tmp_path_factory.mktemp("simulated"), reason) as url:
        t = make_trial(url)
        simulate(t.engine, FIRST_PROTOCOL, 40, seed=11)
        yield t
        t.engine.dispose()


def test_a_forecast_mid_recruitment_is_ordered_and_a_probability(simulated: Trial) -> None:
    coordinator = who(simulated, Role.STUDY_COORDINATOR)
    s = recruitment_status(simulated.engine, coordinator, as_of=MID)
    f = recruitment_forecast(simulated.engine, coordinator, as_of=MID)
    assert f.state == "forecast" and 0 < f.randomized == s.totals.randomized < f.target
    i80, i95 = f.interval(0.8), f.interval(0.95)
    assert i80 is not None and i95 is not None
    assert i95.lower <= i80.lower <= f.median_date <= i80.upper <= i95.upper  # type: ignore[operator]
    assert i95.lower >= MID  # type: ignore[operator]
    assert f.probability_by_planned_end is not None and 0.0 <= f.probability_by_planned_end <= 1.0
    assert [p.on for p in f.predicted] == sorted(p.on for p in f.predicted)
    assert all(p.lo95 <= p.lo80 <= p.mean <= p.hi80 <= p.hi95 for p in f.predicted[1:])
    assert sum(site.randomized for site in f.sites) == f.randomized


def test_what_if_a_new_site_and_a_later_end(simulated: Trial) -> None:
    """A busy new site from 07-01 brings the date forward; a later end date can only be more likely."""
    coordinator = who(simulated, Role.STUDY_COORDINATOR)
    plain = recruitment_forecast(simulated.engine, coordinator, as_of=MID)
    later = dt.date(2021, 12, 31)
    busy = recruitment_forecast(simulated.engine, coordinator, as_of=MID, end_date=later,
                                new_sites=[NewSitePlan(30.0, dt.date(2021, 7, 1))])  # fmt: skip
    assert busy.method == "monte-carlo" and busy.new_sites == (NewSitePlan(30.0, dt.date(2021, 7, 1)),)
    assert busy.median_date is not None and plain.median_date is not None and busy.median_date < plain.median_date
    assert busy.probability_by_end_date is not None and busy.probability_by_planned_end is not None
    assert busy.probability_by_end_date >= busy.probability_by_planned_end >= plain.probability_by_planned_end
    assert any("assumed rates" in w for w in busy.warnings)
    again = recruitment_forecast(simulated.engine, coordinator, as_of=MID, end_date=later,
                                 new_sites=[NewSitePlan(30.0, dt.date(2021, 7, 1))])  # fmt: skip
    assert again == busy  # a fixed seed: the same question gets the same answer
