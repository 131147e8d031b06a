"""A form is saved in a trial that declares no record of death (both databases).

A new user's paediatric asthma walk (tests/data/walks/KIDS-ZAP.yaml: outpatients, no hospital stay, so no
``safety.death_record`` and no ``safety.vital_status``) could not save a single form by hand: every
``trialwright form save`` ended in a traceback, ``(sqlite3.OperationalError) no tables specified``. The one-save
look-ahead (``services/forms/read_ahead.py``) asked "does any form that can say a death exist?" as
``EXISTS (SELECT * WHERE 0 = 1)`` when the protocol names no such form, a SELECT without a table that SQLite and
PostgreSQL both refuse. The simulator's saves never met it, so the walk's simulated trial looked whole.

| protocol                                   | a coordinator saves the baseline vitals   |
|--------------------------------------------|-------------------------------------------|
| the first trial (a death record)           | saved                                     |
| the same, without death record or vital status (and its length-of-stay outcome, which needs one) | saved |
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import make_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services import forms as svc


def _no_record_of_death(document: Any) -> None:
    document["safety"].pop("death_record", None)
    document["safety"].pop("vital_status", None)
    document["outcomes"] = [o for o in document["outcomes"] if o["estimand"]["variable"]["kind"] != "duration"]


@pytest.mark.parametrize("record_of_death", [True, False], ids=["death record", "no death record"])
def test_a_form_is_saved_whatever_the_protocol_says_of_deaths(database_url: str, record_of_death: bool) -> None:
    text = mutated_text(lambda d: None if record_of_death else _no_record_of_death(d))
    loaded = load_protocol_text(text)
    assert (loaded.protocol.safety.death_record is not None) is record_of_death
    trial = make_trial(database_url, loaded)
    try:
        pid = enrolled_ten_days_ago(trial)
        view = svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "vitals", {"spo2": 90})
        assert view.values["spo2"].value == 90
        again = svc.get_form(trial.engine, who(trial, Role.MONITOR), pid, "baseline", "vitals")
        assert again is not None and again.values["spo2"].value == 90
    finally:
        trial.engine.dispose()
