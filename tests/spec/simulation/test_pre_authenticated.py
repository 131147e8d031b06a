"""The simulator's pre-authenticated investigator (``services/forms/simulated.py``) is made only by
``pre_authenticate``, which checks the password through the real re-entry: a wrong password is refused, audited
and counted toward the lockout as any re-entry, another role is refused, and nothing else (a user, a password, a
hand-built object) signs in its place. People's signatures keep their password re-entry (``sign_forms``)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.spec.simulation.test_simulate import _trial
from trialwright.domain.roles import Role
from trialwright.services.errors import FormError
from trialwright.services.forms.simulated import PreAuthenticated, pre_authenticate, sign_as
from trialwright.services.simulation import ensure_users
from trialwright.services.trial import current_protocol
from trialwright.store.auth_tables import users
from trialwright.store.engine import session_scope
from trialwright.store.tables import audit_entries


def test_only_the_right_password_makes_a_pre_authenticated_investigator(database_url: str) -> None:
    engine = _trial(database_url)
    accounts = ensure_users(engine, current_protocol(engine).protocol)
    investigator, password = accounts[Role.INVESTIGATOR]
    monitor, monitor_password = accounts[Role.MONITOR]

    with pytest.raises(FormError, match="re-enter your own password"):
        pre_authenticate(engine, investigator, password + "x")
    with session_scope(engine) as session:
        failed = session.execute(select(audit_entries.c.actor, audit_entries.c.detail)
                                 .where(audit_entries.c.action == "user.reentry_failed")).all()  # fmt: skip
        attempts = session.execute(select(users.c.failed_attempts).where(users.c.username == investigator.username))
        assert attempts.scalar_one() == 1
    assert [(actor, json.loads(detail)["purpose"], json.loads(detail)["attempt"]) for actor, detail in failed] == [
        (investigator.username, "sign", 1)]  # fmt: skip

    with pytest.raises(FormError, match="only investigator sign forms"):
        pre_authenticate(engine, monitor, monitor_password)
    with pytest.raises(TypeError, match="made only by pre_authenticate"):
        PreAuthenticated(investigator, object())
    with pytest.raises(TypeError, match="a PreAuthenticated"):
        sign_as(engine, investigator, [("P-001", "day0", "vitals")])  # type: ignore[arg-type]

    signer = pre_authenticate(engine, investigator, password)
    assert signer.user.username == investigator.username
    with session_scope(engine) as session:  # the accepted re-entry reset the count, as a person's does
        attempts = session.execute(select(users.c.failed_attempts).where(users.c.username == investigator.username))
        assert attempts.scalar_one() == 0
    with pytest.raises(FormError, match="name at least one form"):
        sign_as(engine, signer, [])
    engine.dispose()
