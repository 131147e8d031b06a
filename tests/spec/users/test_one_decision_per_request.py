"""A request under the two-person rule is decided once: approved or rejected, never both.

Two approvers may open the same pending request at the same moment, one to approve it and the other to reject
it (or the requester to withdraw it). Whichever decision is recorded first stands; the other is refused, naming
the decision already taken, and changes nothing: no account is made after a rejection, no rejection is
recorded over an approval, and the audit trail holds exactly one decision. The same holds one after the other.

Runs on SQLite and PostgreSQL (on PostgreSQL both decisions read the request as pending before either writes).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, username
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services import approvals, audit, credentials
from trialwright.services.users import UserError, UserView, get_user
from trialwright.store.approval_tables import account_requests
from trialwright.store.engine import read_scope

PROTOCOL = load_protocol(FIRST_PROTOCOL).protocol


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    change = approvals.request_create(
        t.engine, PROTOCOL, actor=username(Role.ADMINISTRATOR), username="admin2", role="administrator"
    )
    assert change.token is not None  # setting up: the only administrator adds a second one at once
    credentials.set_password(t.engine, change.token.token, PASSWORD)
    yield t
    t.engine.dispose()


def _user(trial: Trial, name: str) -> UserView:
    user = get_user(trial.engine, name)
    assert user is not None
    return user


def _request(trial: Trial) -> int:
    change = approvals.request_create(
        trial.engine, PROTOCOL, actor=username(Role.ADMINISTRATOR), username="stat2", role="unblinded_statistician"
    )
    assert change.pending is not None
    return change.pending.id


def _state(trial: Trial, request_id: int) -> tuple[str, str]:
    with read_scope(trial.engine) as session:
        row = session.execute(select(account_requests).where(account_requests.c.id == request_id)).one()
        return row.state, row.decided_by


def _decisions(trial: Trial) -> list[str]:
    return [
        e.action for e in audit.entries(trial.engine, action_prefix="user.request_") if e.action != "user.request_made"
    ]


def test_a_request_is_approved_once_and_then_neither_approved_nor_rejected_again(trial: Trial) -> None:
    request_id = _request(trial)
    approvals.approve(trial.engine, PROTOCOL, request_id, _user(trial, "admin2"))
    with pytest.raises(UserError, match=f"request {request_id} was already approved by admin2"):
        approvals.approve(trial.engine, PROTOCOL, request_id, _user(trial, "admin2"))
    with pytest.raises(UserError, match=f"request {request_id} was already approved by admin2"):
        approvals.reject(trial.engine, PROTOCOL, request_id, _user(trial, "admin2"), reason="second thoughts")
    assert _state(trial, request_id) == ("approved", "admin2")
    assert _decisions(trial) == ["user.request_approved"]


def test_a_rejected_request_is_never_approved(trial: Trial) -> None:
    request_id = _request(trial)
    approvals.reject(trial.engine, PROTOCOL, request_id, _user(trial, "admin2"), reason="not needed")
    with pytest.raises(UserError, match=f"request {request_id} was already rejected by admin2"):
        approvals.approve(trial.engine, PROTOCOL, request_id, _user(trial, "admin2"))
    assert _state(trial, request_id) == ("rejected", "admin2")
    assert get_user(trial.engine, "stat2") is None
    assert _decisions(trial) == ["user.request_rejected"]


def test_an_approval_and_a_withdrawal_at_the_same_moment_make_one_decision(
    trial: Trial, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = _request(trial)
    if backend == "postgresql":
        # Both read the request as pending before either records its decision. (SQLite: every write transaction
        # begins IMMEDIATE, so the second cannot read before the first commits: there is nothing to interleave.)
        both_read = threading.Barrier(2, timeout=20)
        read_pending = approvals._pending

        def pending_then_wait(session: Any, rid: int) -> Any:
            row = read_pending(session, rid)
            both_read.wait()
            return row

        monkeypatch.setattr(approvals, "_pending", pending_then_wait)
    admin2, requester = _user(trial, "admin2"), _user(trial, username(Role.ADMINISTRATOR))
    outcomes: dict[str, BaseException | None] = {}

    def decide(name: str, call: Callable[[], object]) -> None:
        try:
            call()
            outcomes[name] = None
        except BaseException as exc:  # collected and asserted below
            outcomes[name] = exc

    threads = [
        threading.Thread(target=decide, args=("approved", lambda: approvals.approve(
            trial.engine, PROTOCOL, request_id, admin2))),
        threading.Thread(target=decide, args=("rejected", lambda: approvals.reject(
            trial.engine, PROTOCOL, request_id, requester, reason="withdrawn"))),
    ]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(outcomes) == {"approved", "rejected"}
    assert sorted(error is None for error in outcomes.values()) == [False, True], f"not exactly one won: {outcomes}"
    [won] = [name for name, error in outcomes.items() if error is None]
    [(lost, refusal)] = [(name, error) for name, error in outcomes.items() if error is not None]
    assert isinstance(refusal, UserError), refusal
    state, decided_by = _state(trial, request_id)
    assert state == won
    assert str(refusal) == f"request: request {request_id} was already {won} by {decided_by}"
    assert _decisions(trial) == [f"user.request_{won}"]
    assert (get_user(trial.engine, "stat2") is not None) == (won == "approved")
    assert lost != won
