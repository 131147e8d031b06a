"""A REDCap row's columns of an instrument its event does not have (walk 7).

A flat REDCap export (`content=record`, `type=flat`) has every instrument's columns on every event's row: the
baseline row carries the day-1 forms' columns, empty. Sent back (a round trip, PyCap's `import_records` of what
`export_records` gave), those empty cells are no data and are skipped, with `overwriteBehavior=overwrite` too; a
value in such a column (a value, a form status, a derived value, a checkbox tick) is refused naming the column, the
row and the event, with REDCap's error body and status 400, and nothing is saved. Walk 7 found both answered 500 (an
HTML page): the form service's own refusal ("labs is not collected at day1") reached the API unhandled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.spec.forms.conftest import TODAY, enrolled_ten_days_ago
from tests.spec.redcap.test_redcap_api import _post, served, token
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.services.forms import get_form


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    yield t
    t.engine.dispose()


@pytest.fixture(scope="module")
def url(trial: Trial) -> Iterator[str]:
    with served(trial) as address:
        yield address


# The first trial collects labs at baseline and day 3, demographics at baseline only; day 1 has vitals and blood gas.
DAY1 = {"vitals_assessed_at": f"{TODAY.isoformat()}T00:00+03:30", "vitals_pulse": "101"}


def _send(url: str, key: str, rows: list[dict[str, str]], **extra: str):  # type: ignore[no-untyped-def]
    return _post(url, token=key, content="record", format="json", returnFormat="json", data=json.dumps(rows),
                 **extra)  # fmt: skip


@pytest.mark.parametrize("overwrite", ["normal", "overwrite"])
def test_blank_columns_of_an_instrument_the_event_lacks_are_skipped(url: str, trial: Trial, overwrite: str) -> None:
    pid = enrolled_ten_days_ago(trial)
    key = token(trial, Role.STUDY_COORDINATOR)
    blanks = {"labs_crp": "", "labs_complete": "", "demographics_age_at_enrolment": "", "demographics_sex": ""}
    row = {"participant_id": pid, "redcap_event_name": "day1_arm_1", **DAY1, **blanks}
    answer = _send(url, key, [row], overwriteBehavior=overwrite)
    assert (answer.status_code, answer.json()) == (200, {"count": 1}), answer.text
    form = get_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "day1", "vitals")
    assert form is not None and form.values["pulse"].value == 101


@pytest.mark.parametrize(
    ("column", "value"),
    [("labs_crp", "12"), ("labs_complete", "0"), ("demographics_age_at_enrolment", "40"), ("demographics_sex", "male")],
)
def test_a_value_for_an_instrument_the_event_lacks_is_refused_by_name(
    url: str, trial: Trial, column: str, value: str
) -> None:
    pid = enrolled_ten_days_ago(trial)
    key = token(trial, Role.STUDY_COORDINATOR)
    form = column.rsplit("_complete", 1)[0] if column.endswith("_complete") else column.split("_", 1)[0]
    row = {"participant_id": pid, "redcap_event_name": "day1_arm_1", **DAY1, column: value}
    answer = _send(url, key, [row])
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"error": f"{column}: row 1: the instrument {form} is not in event day1_arm_1"}
    assert get_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "day1", "vitals") is None  # nothing saved
    as_csv = _post(url, token=key, content="record", format="csv",
                   data=f"participant_id,redcap_event_name,{column}\n{pid},day1_arm_1,{value}\n")  # fmt: skip
    assert (as_csv.status_code, as_csv.text) == (400, f"ERROR: {column}: row 1: the instrument {form} is not in event "
                                                      "day1_arm_1")  # fmt: skip
