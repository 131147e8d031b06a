"""A locked trial's data cut-off is its lock: the same locked data analysed later gives the same follow-up, so no
outcome "not yet due" at the lock turns into "not recorded" (nor a stay's or a time to event's censoring moves)
because the analysis ran weeks after the lock. An open trial's cut-off is the moment of the analysis."""

from __future__ import annotations

import datetime as dt

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import PASSWORD, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services import analysis, clock
from trialwright.services.lock import lock_trial
from trialwright.services.randomization import generate_list, randomize


def _followed(trial: Trial, pid: str) -> int | None:
    data = analysis.analysis_data(trial.engine, who(trial, Role.BLINDED_STATISTICIAN))
    return next(s.followed_days for s in data.subjects if s.participant_id == pid)


def test_a_locked_trials_follow_up_ends_at_the_lock_whenever_it_is_analysed(trial: Trial, pid: str) -> None:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=2021)
    randomize(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid)
    later = clock.now() + dt.timedelta(days=90)
    open_now = _followed(trial, pid)
    with clock.simulated_time(later):
        assert _followed(trial, pid) == open_now + 90  # open: the cut-off is the analysis's own day
    lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "final analysis", password=PASSWORD)
    at_lock = _followed(trial, pid)
    assert at_lock == open_now
    with clock.simulated_time(later):
        assert _followed(trial, pid) == at_lock  # locked: the lock's day, not the analysis's


def _still_recruiting(doc: dict) -> None:  # type: ignore[type-arg]
    doc["trial"]["dates"]["expected_recruitment_end"] = "2099-01-01"


def test_a_locked_trials_recruitment_months_end_at_the_lock(database_url: str) -> None:
    """The recruitment rate (CONSORT's feasibility rates) counts each site's months to the cut-off while the
    expected end is still ahead: locked, to the lock, so it does not fall as the same data is analysed later."""
    trial = make_trial(database_url, load_protocol_text(mutated_text(_still_recruiting)))
    try:
        enrolled_ten_days_ago(trial)
        statistician = who(trial, Role.BLINDED_STATISTICIAN)
        lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "final analysis", password=PASSWORD)
        at_lock = analysis.analysis_data(trial.engine, statistician).screened.site_months
        with clock.simulated_time(clock.now() + dt.timedelta(days=90)):
            assert analysis.analysis_data(trial.engine, statistician).screened.site_months == at_lock
    finally:
        trial.engine.dispose()


def test_the_report_states_the_cut_off_of_a_locked_trial(trial: Trial, pid: str) -> None:
    """The report says the data cut-off beside the moment taken once they differ (English and Persian), so the
    "not yet due" and censoring words read against the lock, not against the analysis's own moment."""
    from trialwright.analysis.report import CUT_OFF, render_html
    from trialwright.web.report_words import report_words

    statistician = who(trial, Role.BLINDED_STATISTICIAN)
    open_report = analysis.run_analysis(trial.engine, statistician).report
    assert open_report.cut_off_at is None and 'data-testid="report-cut-off"' not in render_html(open_report, {})
    lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "final analysis", password=PASSWORD)
    with clock.simulated_time(clock.now() + dt.timedelta(days=30)):
        report = analysis.run_analysis(trial.engine, statistician).report
    assert report.cut_off_at is not None and report.cut_off_at < report.taken_at
    minute = report.cut_off_at[:16].replace("T", " ")
    assert f"data cut-off at the lock, {report.cut_off_at}" in report.summary()
    english = render_html(report, {})
    assert CUT_OFF in english and f"{minute} UTC" in english
    from trialwright.services.trial import current_protocol

    persian = render_html(report, {}, words=report_words(current_protocol(trial.engine).protocol, "fa"))
    assert 'data-testid="report-cut-off"' in persian and CUT_OFF not in persian
