"""Every criterion of the first trial at its boundaries, screened through the service and stored, on
SQLite and PostgreSQL (the same table as the eligibility engine's spec)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.spec.eligibility.test_first_trial_criteria import CASES, ELIGIBLE
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD
from trialwright.domain.eligibility import Decision
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services.screening import get_screening, record_consent, screen
from trialwright.services.trial import init_trial
from trialwright.services.users import UserView, create_user
from trialwright.store.engine import make_engine


@pytest.fixture(scope="module")
def coordinator(module_database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(module_database_url)
    init_trial(engine, load_protocol(FIRST_PROTOCOL))
    user = create_user(
        engine, username="coordinator", password=PASSWORD, role=Role.STUDY_COORDINATOR, sites=["RAZ"], actor="test"
    )
    yield engine, user
    engine.dispose()


@pytest.mark.parametrize(("case", "changes", "decision", "failed"), CASES, ids=[c[0] for c in CASES])
def test_each_criterion_at_its_boundary(
    coordinator: tuple[Any, UserView], case: str, changes: dict[str, Any], decision: Decision, failed: list[str]
) -> None:
    engine, user = coordinator
    values = {**ELIGIBLE, **changes}
    consented = values.pop("informed_consent")
    stored = screen(engine, user, site="RAZ", screened_on=dt.datetime.now(dt.UTC).date(), values=values)
    # Consent is read from the consent record: a consent or a refusal decides criterion I6.
    stored = record_consent(
        engine,
        user,
        stored.id,
        form_version="1.0",
        given_by="participant",
        obtained_by="Dr K",
        obtained_at=dt.datetime.now(dt.UTC),
        decision="consent" if consented else "refuse",
    )
    assert stored.decision is decision
    assert [f["id"] for f in stored.failed] == failed
    again = get_screening(engine, user, stored.id)
    assert again.decision is stored.decision and again.values == stored.values
