"""The data access register's rules, each refused naming the field and the rule, in English and in Persian:

* a request's written reasons are at least 20 characters (the refusal says how many it has);
* a publication is not dated before the trial's first randomization (on its site's calendar) nor after the
  sites' today (from 20:30 UTC it is already tomorrow in Tehran); recording one reads which protocol the trial runs
  under once (the sites' calendars and the access window's delay both come from it);
* ``access decide`` reads the password as every password-taking command does: from TRIALWRIGHT_PASSWORD when
  no prompt can be answered, or standard input with ``--password-stdin``.

On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, update
from typer.testing import CliRunner

from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import PASSWORD, Trial, make_trial, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.sharing import SharingError, access_window_opens, record_publication, record_request
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.web.wording import page_words, say

TEHRAN = ZoneInfo("Asia/Tehran")
CITATION = "Khedri R, et al. Exosomes in ARDS: a pilot trial. Trials. 2026;27:101."
#: The first randomization: 21:00 UTC on 31 January 2026, which is 00:30 on 1 February in Tehran (UTC+03:30).
FIRST_RANDOMIZED_AT = dt.datetime(2026, 1, 31, 21, 0, tzinfo=dt.UTC)
FIRST_RANDOMIZED_ON = dt.date(2026, 2, 1)
RULE = "a trial's primary publication cannot precede its first randomization"
FSI, PDI = "\u2068", "\u2069"


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def _randomized(trial: Trial) -> None:
    """One participant randomized at ``FIRST_RANDOMIZED_AT``."""
    participant = enrolled(trial)
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=7)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), participant)
    with session_scope(trial.engine) as session:
        session.execute(update(allocation_entries).where(allocation_entries.c.participant_id == participant)
                        .values(randomized_at=FIRST_RANDOMIZED_AT))  # fmt: skip


def _persian(message: str) -> str:
    return say([message], page_words(None, "fa"), "fa")[0]


def _request(trial: Trial, reasons: str) -> str:
    return record_request(trial.engine, who(trial, Role.DATA_MANAGER), requester="A. Researcher", organisation="Uni",
                          email="a@uni.org", purpose="IPD meta-analysis", reasons=reasons,
                          received_on=dt.date(2026, 1, 5)).number  # fmt: skip


@pytest.mark.parametrize(("reasons", "has"), [("pooling", 7), ("  " + "x" * 19 + "  ", 19)])
def test_the_written_reasons_are_at_least_20_characters(trial: Trial, reasons: str, has: int) -> None:
    assert len(reasons.strip()) == has  # counted without the surrounding spaces
    with pytest.raises(SharingError) as refused:
        _request(trial, reasons)
    assert str(refused.value) == (
        "reasons: the written request must give the reasons for needing the data, in at least 20 characters "
        f"(it has {has})"
    )
    assert _persian(str(refused.value)) == (
        f"{FSI}reasons{PDI}: درخواست کتبی باید دلیل‌های نیاز به داده‌ها را در دست‌کم {FSI}20{PDI} نویسه بیان کند "
        f"({FSI}{has}{PDI} نویسه دارد)"
    )
    assert _request(trial, "x" * 20) == "DAR-0001"  # twenty are enough


def test_a_publication_before_the_first_randomization_is_refused(trial: Trial) -> None:
    manager = who(trial, Role.DATA_MANAGER)
    with pytest.raises(SharingError) as refused:
        record_publication(trial.engine, manager, CITATION, dt.date(2026, 3, 1))
    assert str(refused.value) == f"published_on: no participant is randomized yet; {RULE}"
    _randomized(trial)
    assert FIRST_RANDOMIZED_AT.astimezone(TEHRAN).date() == FIRST_RANDOMIZED_ON  # its date at the site
    for day in (dt.date(2025, 11, 1), dt.date(2026, 1, 31)):  # 31 January is the randomization's date in UTC only
        with pytest.raises(SharingError) as refused:
            record_publication(trial.engine, manager, CITATION, day)
        assert str(refused.value) == (
            f"published_on: {day} is before the first randomization on 2026-02-01 at the site; {RULE}"
        )
        assert access_window_opens(trial.engine) is None  # nothing recorded, no window opened
    assert _persian(str(refused.value)) == (
        f"{FSI}published_on{PDI}: {FSI}2026-01-31{PDI} پیش از نخستین تصادفی‌سازی در {FSI}2026-02-01{PDI} "
        "(به وقت مرکز) است؛ انتشار اصلی نتایج یک کارآزمایی نمی‌تواند پیش از نخستین تصادفی‌سازی آن باشد"
    )
    # Published the day of the first randomization at the site: recorded, the window opens six months later.
    assert record_publication(trial.engine, manager, CITATION, FIRST_RANDOMIZED_ON) == dt.date(2026, 8, 1)


def test_a_publication_is_not_dated_after_the_sites_today(trial: Trial) -> None:
    _randomized(trial)
    manager = who(trial, Role.DATA_MANAGER)
    today = dt.datetime.now(dt.UTC).astimezone(TEHRAN).date()  # from 20:30 UTC, UTC's tomorrow
    tomorrow = today + dt.timedelta(days=1)
    with pytest.raises(SharingError) as refused:
        record_publication(trial.engine, manager, CITATION, tomorrow)
    assert str(refused.value) == f"published_on: {tomorrow} is in the future (today is {today} at the site)"
    assert _persian(str(refused.value)) == (
        f"{FSI}published_on{PDI}: {FSI}{tomorrow}{PDI} در آینده است (امروز به وقت مرکز {FSI}{today}{PDI} است)"
    )
    record_publication(trial.engine, manager, CITATION, today)  # the sites' today is accepted, whatever UTC says


def test_recording_a_publication_reads_the_trials_protocol_once(trial: Trial) -> None:
    """The sites' today, the sites' calendars for the first randomization and the access window's delay all come from
    the protocol the trial runs under: ``record_publication`` looks it up once (the statement that reads the trial's
    current protocol version), not once for each."""
    _randomized(trial)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(trial.engine, "before_cursor_execute", seen)
    try:
        opens = record_publication(trial.engine, who(trial, Role.DATA_MANAGER), CITATION, FIRST_RANDOMIZED_ON)
    finally:
        event.remove(trial.engine, "before_cursor_execute", seen)
    assert opens == dt.date(2026, 8, 1)  # six months (the plan's delay) after the publication
    lookups = [s for s in statements if "current_protocol_version_id" in s]
    assert len(lookups) == 1, lookups


def test_access_decide_reads_the_password_from_trialwright_password(trial: Trial) -> None:
    number = _request(trial, "An individual participant data meta-analysis of pilot trials.")
    runner = CliRunner()
    args = ["access", "decide", number, "--as", "administrator", "--approve", "--reason", "Meets the plan",
            "--database", trial.url]  # fmt: skip
    wrong = runner.invoke(cli, args, env={"TRIALWRIGHT_PASSWORD": "not the password"})
    assert wrong.exit_code == 4, wrong.output  # the wrong password is refused, not prompted for again
    assert "password: re-enter your own password to sign the decision" in re.sub(r"\s+", " ", wrong.output)
    out = runner.invoke(cli, args, env={"TRIALWRIGHT_PASSWORD": PASSWORD})  # no terminal, no input
    assert out.exit_code == 0, out.output
    assert "Password" not in out.output and f"{number}: approved by administrator" in out.output
