"""Re-entered passwords count toward the account lockout (21 CFR 11.300(d)).

A wrong password re-entered to sign forms, unblind in an emergency, record a DSMB decision or decide a data
access request counts toward the same lockout as a wrong sign-in. Once locked, the re-entry is refused even
with the right password, the account's sessions end, and sign-in is refused too; all of it is audited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.trialfixtures import PASSWORD, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.forms import FormError, sign_forms
from trialwright.services.randomization import RandomizationError, emergency_unblind
from trialwright.services.safety import SafetyError, record_decision
from trialwright.services.screening import NotFound
from trialwright.services.sharing import SharingError, decide_request
from trialwright.services.users import AccessPolicy, AuthenticationFailed, authenticate, resolve_session, start_session

POLICY = AccessPolicy(lockout_threshold=3, lockout_minutes=15)
LOCKED = "too many wrong passwords; your account is locked"


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def _sign(t: Trial, password: str) -> Any:
    return sign_forms(t.engine, who(t, Role.INVESTIGATOR), [("RAZ-001", "baseline", "vitals")], password=password,
                      policy=POLICY)  # fmt: skip


def _unblind(t: Trial, password: str) -> Any:
    return emergency_unblind(t.engine, who(t, Role.INVESTIGATOR), "RAZ-001", reason="anaphylaxis",
                             password=password, policy=POLICY)  # fmt: skip


def _dsmb(t: Trial, password: str) -> Any:
    return record_decision(t.engine, who(t, Role.DSMB_MEMBER), "resume", "no concern", password, policy=POLICY)


def _data_access(t: Trial, password: str) -> Any:
    return decide_request(t.engine, who(t, Role.ADMINISTRATOR), "DAR-0001", approve=True, reason="fits the plan",
                          password=password, policy=POLICY)  # fmt: skip


# (what is signed, the call, its error, the account)
CASES: list[tuple[str, Callable[[Trial, str], Any], type[Exception], Role]] = [
    ("sign", _sign, FormError, Role.INVESTIGATOR),
    ("emergency unblinding", _unblind, RandomizationError, Role.INVESTIGATOR),
    ("DSMB decision", _dsmb, SafetyError, Role.DSMB_MEMBER),
    ("data access decision", _data_access, SharingError, Role.ADMINISTRATOR),
]


@pytest.mark.parametrize(("purpose", "call", "error", "role"), CASES, ids=[c[0] for c in CASES])
def test_wrong_reentries_lock_the_account(
    trial: Trial, purpose: str, call: Callable[[Trial, str], Any], error: type[Exception], role: Role
) -> None:
    name = who(trial, role).username
    token, _ = start_session(trial.engine, who(trial, role), POLICY)
    for attempt in (1, 2):
        with pytest.raises(error) as wrong:
            call(trial, f"wrong-{attempt}")
        assert LOCKED not in str(wrong.value)
    assert resolve_session(trial.engine, token, POLICY) is not None  # two failures: still signed in
    with pytest.raises(error, match=LOCKED):
        call(trial, "wrong-3")
    # Locked: the right password is refused too, the session has ended, and sign-in is refused.
    with pytest.raises(error, match=LOCKED):
        call(trial, PASSWORD)
    assert resolve_session(trial.engine, token, POLICY) is None
    with pytest.raises(AuthenticationFailed):
        authenticate(trial.engine, name, PASSWORD, POLICY)
    failed = audit.entries(trial.engine, action_prefix="user.reentry_failed")
    assert [e.actor for e in failed] == [name] * 3 and all(f'"purpose":"{purpose}"' in (e.detail or "") for e in failed)
    (locked,) = audit.entries(trial.engine, action_prefix="user.locked_out")
    assert locked.actor == name and '"sessions_ended":1' in (locked.detail or "")
    assert audit.entries(trial.engine, action_prefix="user.reentry_refused")
    assert PASSWORD not in str(audit.entries(trial.engine))


def test_sign_in_failures_and_reentry_failures_share_one_count(trial: Trial) -> None:
    name = who(trial, Role.INVESTIGATOR).username
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            authenticate(trial.engine, name, "not-it", POLICY)
    with pytest.raises(FormError, match=LOCKED):
        _sign(trial, "not-it-either")
    assert who(trial, Role.INVESTIGATOR).locked_until is not None


def test_a_right_reentry_resets_the_count(trial: Trial) -> None:
    for _ in range(2):
        with pytest.raises(FormError, match="re-enter your own password"):
            _sign(trial, "wrong")
    # The right password passes the check (there is no such participant, so the signing itself then fails).
    with pytest.raises(NotFound):
        _sign(trial, PASSWORD)
    for _ in range(2):
        with pytest.raises(FormError, match="re-enter your own password"):
            _sign(trial, "wrong")
    assert who(trial, Role.INVESTIGATOR).locked_until is None


def test_the_lockout_threshold_comes_from_the_policy(trial: Trial) -> None:
    strict = AccessPolicy(lockout_threshold=1, lockout_minutes=15)
    with pytest.raises(FormError, match=LOCKED):
        sign_forms(trial.engine, who(trial, Role.INVESTIGATOR), [("RAZ-001", "baseline", "vitals")], password="x",
                   policy=strict)  # fmt: skip
