"""Whether a participant a representative consented for can regain capacity is the protocol's to say (both
databases).

A paediatric trial (a parent consents for a child) offered "the participant has regained capacity to decide". The
protocol now declares ``eligibility.regained_capacity``:

| protocol                              | after a representative's consent                                   |
|---------------------------------------|--------------------------------------------------------------------|
| ``regained_capacity: true`` (adults)  | the decision is offered on the page and recorded                    |
| ``regained_capacity: false`` (children) | not offered; the service refuses it naming the protocol's rule   |
| no ``regained_capacity``              | offered, as a declared ``true`` (the documented default)            |
| a text stored before it existed       | reads as its engine did: offered                                    |
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.spec.forms.conftest import earlier_today
from tests.spec.protocol.conftest import mutated_text
from tests.spec.web.test_forms_keep_input import _lar_enrolled
from tests.spec.web.test_randomization_pages import as_role
from tests.trialfixtures import make_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services.screening import ScreeningError, record_consent
from trialwright.settings import Settings
from trialwright.web.app import create_app


def _children(document: Any) -> None:
    document["eligibility"]["regained_capacity"] = False


def _undeclared(document: Any) -> None:
    del document["eligibility"]["regained_capacity"]


def test_a_protocol_that_does_not_declare_it_offers_it() -> None:
    assert load_protocol_text(mutated_text(_undeclared)).protocol.eligibility.regained_capacity is True


def test_a_text_stored_before_it_existed_offers_it_as_before() -> None:
    assert load_protocol_text(mutated_text(_undeclared), stored=True).protocol.eligibility.regained_capacity is True


@pytest.mark.parametrize("regains", [True, False])
def test_offered_and_recorded_only_where_the_protocol_declares_it(database_url: str, regains: bool) -> None:
    text = mutated_text(lambda d: None if regains else _children(d))
    trial = make_trial(database_url, load_protocol_text(text))
    try:
        sid = _lar_enrolled(trial)
        app = create_app(Settings(database_url=trial.url, lockout_threshold=3))
        with as_role(app, Role.INVESTIGATOR) as inv:
            page = inv.get(f"/screening/{sid}").text
            assert ('data-testid="regained-form"' in page) is regains
            assert 'data-testid="withdrawal-form"' in page  # the page itself still offers the rest
        decide = {
            "form_version": "1.0", "given_by": "participant", "obtained_by": "Dr K", "kind": "regained_capacity",
            "decision": "continue", "obtained_at": earlier_today(5),
        }  # fmt: skip
        if regains:
            view = record_consent(trial.engine, who(trial, Role.INVESTIGATOR), sid, **decide)
            assert view.consents[-1].kind == "regained_capacity"
        else:
            with pytest.raises(ScreeningError, match=r"eligibility\.regained_capacity: false"):
                record_consent(trial.engine, who(trial, Role.INVESTIGATOR), sid, **decide)
    finally:
        trial.engine.dispose()
