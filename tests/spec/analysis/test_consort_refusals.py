"""CONSORT counts a consent refusal as declined, never as a screen failure (found by a new user's walk).

A patient who meets every criterion and refuses consent fails the protocol's consent criterion (the refusal sets
the consent field), so the screening's decision reads not eligible; the diagram counts by the rule the recruitment
report uses (``eligible_apart_from_consent``): eligible apart from consent, so assessed, eligible and declined, not
"not meeting eligibility criteria". Counted here by hand from what the services were asked to do. Both databases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from tests.spec.randomization.test_randomize_service import TYPED
from tests.trialfixtures import Trial, make_trial, screener
from trialwright.services.analysis import _screened
from trialwright.services.screening import enrol, record_consent, screen
from trialwright.services.trial import current_protocol
from trialwright.store.engine import session_scope


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def test_a_consent_refusal_is_declined_and_eligible_not_a_screen_failure(trial: Trial) -> None:
    e, admin = trial.engine, screener(trial.engine)  # screening is a coordinator's (docs/roles.md)
    now = dt.datetime.now(dt.UTC)
    refusing = screen(e, admin, site="RAZ", screened_on=now.date(), values=TYPED)
    record_consent(e, admin, refusing.id, form_version="1.0", given_by="participant", obtained_by="Dr K",
                   obtained_at=now - dt.timedelta(minutes=5), decision="refuse")  # fmt: skip
    consenting = screen(e, admin, site="RAZ", screened_on=now.date(), values=TYPED)
    record_consent(e, admin, consenting.id, form_version="1.0", given_by="participant", obtained_by="Dr K",
                   obtained_at=now - dt.timedelta(minutes=5))  # fmt: skip
    enrol(e, admin, consenting.id)
    too_young = screen(e, admin, site="RAZ", screened_on=now.date(), values={**TYPED, "age": 12})
    assert too_young.decision == "not_eligible"
    with session_scope(e) as session:
        counted = _screened(session, current_protocol(e).protocol, now)
    assert (counted.assessed, counted.eligible, counted.not_eligible, counted.declined) == (3, 2, 1, 1)
    assert dict(counted.other_reasons) == {"Enrolled, not randomized": 1}
