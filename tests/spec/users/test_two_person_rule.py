"""The two-person rule: no single person puts anyone into an unblinded, DSMB or approving account.

The trial (one account per role, one administrator) declares no ``masking.account_approvers``, so the engine
default holds: a second *administrator* approves. Each test states who asks, who approves, and what follows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import yaml
from sqlalchemy import select

from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, username, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services import approvals, audit, clock, credentials
from trialwright.services.users import (
    AccessPolicy,
    AuthenticationFailed,
    UserError,
    authenticate,
    disable_user,
    get_user,
)
from trialwright.store.randomization_tables import notifications

PROTOCOL = load_protocol(FIRST_PROTOCOL).protocol
POLICY = AccessPolicy()
NEW_PASSWORD = "Chosen-by-holder-9"


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def _second_admin(trial: Trial) -> None:
    """Setting up: the only administrator adds a second one at once (fewer than two approvers exist)."""
    change = approvals.request_create(
        trial.engine, PROTOCOL, actor=username(Role.ADMINISTRATOR), username="admin2", role="administrator"
    )
    assert change.pending is None and change.token is not None
    credentials.set_password(trial.engine, change.token.token, PASSWORD)


def _signs_in(trial: Trial, name: str, password: str) -> bool:
    try:
        authenticate(trial.engine, name, password, POLICY)
    except AuthenticationFailed:
        return False
    return True


def test_default_approvers_are_administrators() -> None:
    raw = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    assert "account_approvers" not in raw["masking"]  # the engine default applies
    assert PROTOCOL.masking.account_approvers == ["administrator"]


@pytest.mark.parametrize("role", ["unblinded_statistician", "unblinded_pharmacist", "dsmb_member"])
def test_a_single_administrator_only_requests_an_unblinded_or_dsmb_account(trial: Trial, role: str) -> None:
    sites = ["RAZ"] if role == "unblinded_pharmacist" else []
    change = approvals.request_create(
        trial.engine, PROTOCOL, actor="administrator", username="newcomer", role=role, sites=sites, reason="new hire"
    )
    assert change.pending is not None and change.token is None
    assert get_user(trial.engine, "newcomer") is None
    [made] = audit.entries(trial.engine, action_prefix="user.request_made")
    assert made.actor == "administrator" and made.reason == "new hire" and "newcomer" in (made.new_value or "")
    assert [r.username for r in approvals.pending_requests(trial.engine)] == ["newcomer"]


def test_a_second_administrator_approves_and_the_account_exists_only_then(trial: Trial) -> None:
    _second_admin(trial)
    change = approvals.request_create(
        trial.engine, PROTOCOL, actor="administrator", username="stat2", role="unblinded_statistician"
    )
    assert change.pending is not None
    admin2 = get_user(trial.engine, "admin2")
    assert admin2 is not None
    done = approvals.approve(trial.engine, PROTOCOL, change.pending.id, admin2, reason="checked with the sponsor")
    assert done.token is not None and get_user(trial.engine, "stat2") is not None
    assert approvals.pending_requests(trial.engine) == []
    [approved] = audit.entries(trial.engine, action_prefix="user.request_approved")
    assert approved.actor == "admin2" and approved.reason == "checked with the sponsor"
    assert "administrator" in (approved.detail or "")  # the requester, named beside the approver
    [created] = [e for e in audit.entries(trial.engine, action_prefix="user.created") if "stat2" in (e.new_value or "")]
    assert created.actor == "admin2"
    # the account cannot sign in until its holder sets a password with the token
    assert not _signs_in(trial, "stat2", NEW_PASSWORD)
    assert credentials.set_password(trial.engine, done.token.token, NEW_PASSWORD) == "stat2"
    assert _signs_in(trial, "stat2", NEW_PASSWORD)


def test_nobody_approves_their_own_request(trial: Trial) -> None:
    _second_admin(trial)
    change = approvals.request_create(trial.engine, PROTOCOL, actor="admin2", username="dsmb2", role="dsmb_member")
    assert change.pending is not None
    with pytest.raises(UserError, match="two-person rule: a second person approves; you made this request"):
        approvals.approve(trial.engine, PROTOCOL, change.pending.id, _user("admin2", trial))
    # a label (the command line's default actor cli:NAME, or any typed name) is nobody: it cannot make a request
    for label in ("cli:admin2", "nobody-at-all"):
        with pytest.raises(UserError, match="a request is made by a person's own active account"):
            approvals.request_create(trial.engine, PROTOCOL, actor=label, username="dsmb3", role="dsmb_member")
    assert get_user(trial.engine, "dsmb2") is None and get_user(trial.engine, "dsmb3") is None


def _user(name: str, trial: Trial):  # type: ignore[no-untyped-def]
    user = get_user(trial.engine, name)
    assert user is not None
    return user


@pytest.mark.parametrize("role", [Role.DATA_MANAGER, Role.UNBLINDED_STATISTICIAN, Role.DSMB_MEMBER, Role.MONITOR])
def test_only_a_declared_approving_role_approves(trial: Trial, role: Role) -> None:
    change = approvals.request_create(
        trial.engine, PROTOCOL, actor="administrator", username="stat2", role="unblinded_statistician"
    )
    assert change.pending is not None
    with pytest.raises(UserError, match=r"approvers hold the role administrator \(masking.account_approvers\)"):
        approvals.approve(trial.engine, PROTOCOL, change.pending.id, who(trial, role))


def test_a_protocol_may_declare_other_approvers(trial: Trial) -> None:
    declared = PROTOCOL.model_copy(
        update={"masking": PROTOCOL.masking.model_copy(update={"account_approvers": ["data_manager"]})}
    )
    change = approvals.request_create(
        trial.engine, declared, actor="administrator", username="stat2", role="unblinded_statistician"
    )
    assert change.pending is not None
    approvals.approve(trial.engine, declared, change.pending.id, who(trial, Role.DATA_MANAGER))
    assert get_user(trial.engine, "stat2") is not None


def test_a_single_administrator_cannot_reset_an_unblinded_password(trial: Trial) -> None:
    statistician = username(Role.UNBLINDED_STATISTICIAN)
    change = approvals.request_reset(trial.engine, PROTOCOL, statistician, actor="administrator")
    assert change.pending is not None and change.token is None
    assert _signs_in(trial, statistician, PASSWORD)  # nothing changed yet
    _second_admin(trial)
    done = approvals.approve(trial.engine, PROTOCOL, change.pending.id, _user("admin2", trial))
    assert done.token is not None
    assert not _signs_in(trial, statistician, PASSWORD)  # the old password no longer works


def test_nobody_approves_a_request_about_their_own_account(trial: Trial) -> None:
    _second_admin(trial)
    change = approvals.request_reset(trial.engine, PROTOCOL, "admin2", actor="administrator")
    assert change.pending is not None  # an approving account is guarded too
    with pytest.raises(UserError, match="two-person rule: nobody approves a request about their own account"):
        approvals.approve(trial.engine, PROTOCOL, change.pending.id, _user("admin2", trial))


def test_a_single_administrator_cannot_re_enable_a_dsmb_member(trial: Trial) -> None:
    member = username(Role.DSMB_MEMBER)
    disable_user(trial.engine, member, actor="administrator")
    change = approvals.enable(trial.engine, PROTOCOL, member, actor="administrator")
    assert change.pending is not None and not _user(member, trial).active
    _second_admin(trial)
    approvals.approve(trial.engine, PROTOCOL, change.pending.id, _user("admin2", trial))
    assert _user(member, trial).active and _signs_in(trial, member, PASSWORD)


def test_an_unguarded_account_is_enabled_at_once(trial: Trial) -> None:
    monitor = username(Role.MONITOR)
    disable_user(trial.engine, monitor, actor="administrator")
    change = approvals.enable(trial.engine, PROTOCOL, monitor, actor="administrator")
    assert change.pending is None and _user(monitor, trial).active


def test_once_two_approvers_exist_a_third_is_only_requested(trial: Trial) -> None:
    _second_admin(trial)
    change = approvals.request_create(
        trial.engine, PROTOCOL, actor="administrator", username="admin3", role="administrator"
    )
    assert change.pending is not None and get_user(trial.engine, "admin3") is None


def test_approval_notifies_the_unblinded_roles_and_the_sponsor_contact(trial: Trial) -> None:
    _second_admin(trial)
    change = approvals.request_create(
        trial.engine, PROTOCOL, actor="administrator", username="stat2", role="unblinded_statistician"
    )
    assert change.pending is not None
    approvals.approve(trial.engine, PROTOCOL, change.pending.id, _user("admin2", trial))
    with trial.engine.connect() as c:
        rows = c.execute(select(notifications.c.role, notifications.c.subject)).all()
    told = {role for role, subject in rows if "stat2" in subject and "approved by admin2" in subject}
    assert told == {"unblinded_statistician", "unblinded_pharmacist", "dsmb_member", "sponsor"}
    raw = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    sponsor_email = raw["trial"]["sponsors"][0]["address"]["email"]
    [(_, notice)] = approvals.sponsor_notices(trial.engine)
    assert sponsor_email in notice and "stat2" in notice


def test_a_rejection_is_audited_and_needs_a_reason(trial: Trial) -> None:
    _second_admin(trial)
    change = approvals.request_create(
        trial.engine, PROTOCOL, actor="administrator", username="stat2", role="unblinded_statistician"
    )
    assert change.pending is not None
    with pytest.raises(UserError, match="reason"):
        approvals.reject(trial.engine, PROTOCOL, change.pending.id, _user("admin2", trial), reason=" ")
    approvals.reject(
        trial.engine, PROTOCOL, change.pending.id, _user("admin2", trial), reason="not on the delegation log"
    )
    [rejected] = audit.entries(trial.engine, action_prefix="user.request_rejected")
    assert rejected.actor == "admin2" and rejected.reason == "not on the delegation log"
    with pytest.raises(UserError, match="already rejected"):
        approvals.approve(trial.engine, PROTOCOL, change.pending.id, _user("admin2", trial))


def test_a_set_password_token_works_once(trial: Trial) -> None:
    change = approvals.request_reset(trial.engine, PROTOCOL, username(Role.MONITOR), actor="administrator")
    assert change.token is not None
    credentials.set_password(trial.engine, change.token.token, NEW_PASSWORD)
    with pytest.raises(UserError, match=credentials.TOKEN_REFUSED):
        credentials.set_password(trial.engine, change.token.token, "Another-choice-8")
    assert _signs_in(trial, username(Role.MONITOR), NEW_PASSWORD)


def test_a_set_password_token_expires(trial: Trial) -> None:
    change = approvals.request_reset(trial.engine, PROTOCOL, username(Role.MONITOR), actor="administrator")
    assert change.token is not None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=72, minutes=1)
    with clock.simulated_time(later), pytest.raises(UserError, match=credentials.TOKEN_REFUSED):
        credentials.set_password(trial.engine, change.token.token, NEW_PASSWORD)
    assert not _signs_in(trial, username(Role.MONITOR), NEW_PASSWORD)


def test_a_newer_token_retires_the_older(trial: Trial) -> None:
    first = approvals.request_reset(trial.engine, PROTOCOL, username(Role.MONITOR), actor="administrator")
    second = approvals.request_reset(trial.engine, PROTOCOL, username(Role.MONITOR), actor="administrator")
    assert first.token is not None and second.token is not None
    with pytest.raises(UserError, match=credentials.TOKEN_REFUSED):
        credentials.set_password(trial.engine, first.token.token, NEW_PASSWORD)
    credentials.set_password(trial.engine, second.token.token, NEW_PASSWORD)


def test_the_token_is_stored_only_as_a_digest(trial: Trial) -> None:
    from trialwright.store.approval_tables import set_password_tokens

    change = approvals.request_reset(trial.engine, PROTOCOL, username(Role.MONITOR), actor="administrator")
    assert change.token is not None
    with trial.engine.connect() as c:
        stored = c.execute(select(set_password_tokens.c.token_hash)).scalars().all()
    assert stored and change.token.token not in stored
    assert all(change.token.token not in (e.new_value or "") + (e.detail or "") for e in audit.entries(trial.engine))


def test_disabling_the_second_administrator_does_not_reopen_setting_up(trial: Trial) -> None:
    _second_admin(trial)
    disable_user(trial.engine, "admin2", actor="administrator")
    change = approvals.request_create(
        trial.engine, PROTOCOL, actor="administrator", username="admin3", role="administrator"
    )
    assert change.pending is not None and get_user(trial.engine, "admin3") is None


def test_protocol_check_refuses_an_unknown_approving_role() -> None:
    from trialwright.protocol.masking_checks import masking

    wrong = PROTOCOL.model_copy(
        update={"masking": PROTOCOL.masking.model_copy(update={"account_approvers": ["sponsor_person"]})}
    )
    found = dict(masking(wrong))
    assert "masking.account_approvers[0]" in found and "sponsor_person" in found["masking.account_approvers[0]"]
    assert not [line for line, _ in masking(PROTOCOL) if "account_approvers" in line]
