"""The log entries on the participant page take the form pages' inputs (``templates/data/_inputs.html``, read back by
``web/field_inputs.py``), on both databases:

| field (added to ``conmeds`` here)              | input                              | stored                         |
|------------------------------------------------|------------------------------------|--------------------------------|
| ``last_dose_at``, datetime                     | date and time on the site's clock  | the UTC moment (Tehran -03:30) |
| ``weight``, kg, with g as an alternative unit  | a value and its unit               | 70.5 kg, entered 70500 g       |
| ``indication``, not_done_allowed               | "not done" and the reason          | not_done with the reason       |
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.spec.forms.conftest import TEHRAN, TODAY, enrolled_ten_days_ago
from tests.spec.logs.test_log_entries import STARTED
from tests.spec.protocol.conftest import mutated_text
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services.logs import list_entries
from trialwright.settings import Settings
from trialwright.web.app import create_app


def _inputs(doc: Any) -> None:
    (conmeds,) = [log for log in doc["logs"] if log["id"] == "conmeds"]
    indication = next(f for f in conmeds["fields"] if f["id"] == "indication")
    indication["not_done_allowed"] = True
    conmeds["fields"] += [
        {"id": "last_dose_at", "label": "Last dose", "type": "datetime", "required": False,
         "may_precede_enrolment": True, "translations": {"fa": "آخرین نوبت"}},
        {"id": "weight", "label": "Weight", "type": "decimal", "unit": "kg", "required": False,
         "alternative_units": [{"unit": "g", "factor": 0.001}], "translations": {"fa": "وزن"}},
    ]  # fmt: skip


@pytest.fixture
def trial(database_url: str) -> Any:
    t = make_trial(database_url, load_protocol_text(mutated_text(_inputs)))
    yield t
    t.engine.dispose()


def test_date_times_units_and_not_done_on_the_log_page(trial: Trial) -> None:
    pid = enrolled_ten_days_ago(trial)
    page = f"/participants/{pid}"
    yesterday = TODAY - dt.timedelta(days=1)
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.STUDY_COORDINATOR)
        html = client.get(page).text
        add = html[html.index('action="/participants/' + pid + '/logs/conmeds"') :]
        for name in ("v-last_dose_at", "v-weight", "u-weight", "s-indication", "r-indication"):
            assert f'name="{name}"' in add, name
        assert '<option value="g"' in add and '<option value="not_done"' in add
        fields = {"csrf_token": csrf_of(html), "v-medication": "Enoxaparin", "v-route": "SUBCUTANEOUS",
                  "v-started_on": STARTED, "v-ongoing": "yes", "v-last_dose_at": f"{yesterday.isoformat()}T08:00",
                  "v-weight": "70500", "u-weight": "g", "s-indication": "not_done",
                  "r-indication": "not in the chart"}  # fmt: skip
        added = client.post(f"{page}/logs/conmeds", data=fields)
        assert added.status_code == 303, added.text
        html = client.get(page).text
        amend = html[html.index(f'action="/participants/{pid}/logs/conmeds/1"') :]
        assert 'id="amend-conmeds-1-r-indication" name="r-indication" value="not in the chart"' in amend
    (entry,) = list_entries(trial.engine, who(trial, Role.MONITOR), pid, "conmeds")
    moment = dt.datetime.combine(yesterday, dt.time(8, 0), TEHRAN).astimezone(dt.UTC)
    assert dt.datetime.fromisoformat(str(entry.values["last_dose_at"].value)) == moment
    weight = entry.values["weight"]
    # the canonical value, and what was typed in the unit chosen (as a form keeps it)
    assert (weight.value, weight.entered, weight.unit) == (pytest.approx(70500 * 0.001), "70500", "g")
    indication = entry.values["indication"]
    assert (indication.status, indication.reason, indication.value) == ("not_done", "not in the chart", None)
