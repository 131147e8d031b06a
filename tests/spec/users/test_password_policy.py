"""The password policy refuses common, personal and patterned passwords, for new accounts, resets and changes.

``Password1234`` passes a rule of "12 characters of two kinds"; it is among the most common passwords with
digits added, and is refused. So are passwords holding the username or the trial's registry id, and ones that
are mostly repeated or sequential characters.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.trialfixtures import PASSWORD, Trial, make_trial, username
from trialwright.domain.passwords import common_passwords, password_problem
from trialwright.domain.roles import Role
from trialwright.services.users import UserError, change_password, create_user, generate_password, reset_password


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    yield t
    t.engine.dispose()


REFUSED = [
    ("Password1234", "is a common password"),
    ("P@ssw0rd!2024", "is a common password"),
    ("Qwertyuiop12!", "is a common password"),
    ("Summer2024!!", "is a common password"),
    ("Nurse-Jackie-7", "must not contain the username"),  # the account below is nurse-jackie
    ("jackie-NURSE-99", None),  # accepted: holds neither the username (nurse-jackie-2) nor a common password
    ("x-IRCT20190101042197N2", "must not contain the trial's name or id"),
    ("Aaaaaaaaaaaa-1", "is mostly repeated or sequential"),
    ("Abcdefghijk-12", "is mostly repeated or sequential"),
    ("short-1A", "must be at least 12 characters"),
    ("onlylowercaseletters", "must mix at least two"),
]


@pytest.mark.parametrize(("password", "problem"), REFUSED, ids=[p for p, _ in REFUSED])
def test_new_accounts_meet_the_policy(trial: Trial, password: str, problem: str | None) -> None:
    name = "nurse-jackie-2" if problem is None else "nurse-jackie"
    if problem is None:
        assert create_user(trial.engine, username=name, password=password, role=Role.MONITOR, sites=["RAZ"],
                           actor="test").username == name  # fmt: skip
        return
    with pytest.raises(UserError, match=f"password: {problem}"):
        create_user(trial.engine, username=name, password=password, role=Role.MONITOR, sites=["RAZ"], actor="test")


def test_resets_and_changes_meet_the_policy(trial: Trial) -> None:
    monitor = username(Role.MONITOR)
    with pytest.raises(UserError, match="is a common password"):
        reset_password(trial.engine, monitor, "Password1234", actor="test")
    with pytest.raises(UserError, match="must not contain the username"):
        change_password(trial.engine, monitor, PASSWORD, "My-monitor-pass-9")
    change_password(trial.engine, monitor, PASSWORD, "Velvet-lantern-83")
    change_password(trial.engine, monitor, "Velvet-lantern-83", PASSWORD)


def test_the_shipped_list_and_the_generator() -> None:
    common = common_passwords()
    assert len(common) == 10_000 and {"password", "qwerty", "iloveyou", "dragon"} <= common
    assert all(password_problem(generate_password(), username="study-coordinator") is None for _ in range(2000))
    assert password_problem("Correct-horse-7") is None  # the tests' password: two words and a digit


def test_a_generated_password_the_policy_would_refuse_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A random draw can, rarely, be refused by the policy (a run of sequential characters, the username, the trial's
    name): the generator draws again rather than hand out a password its own account creation then refuses (a
    simulated account once failed with "is mostly repeated or sequential characters")."""
    draws = iter(["abcdefghijklmnopqrst", "xdm-coordinatorxxxxx", "Xcorona-trialxq9Zk7w", "q8Zr-T2mW_k4vLp9sXe3"])
    monkeypatch.setattr("trialwright.services.users.secrets.token_urlsafe", lambda _n: next(draws))
    password = generate_password("dm-coordinator", names=("CORONA-TRIAL",))
    assert password.startswith("q8Zr-T2mW_k4vLp9sXe3")
    assert password_problem(password, username="dm-coordinator", names=("CORONA-TRIAL",)) is None
