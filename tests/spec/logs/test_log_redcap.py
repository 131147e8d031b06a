"""Log entries and the REDCap-compatible API (both databases): the API does not carry the logs (no repeating
instruments), so a row of a repeating instrument is refused naming the rule and the logs, and nothing is saved:
log entries are added through the log service, with their audit trail, never through this API.

| row                                                               | answer                                       |
|-------------------------------------------------------------------|----------------------------------------------|
| redcap_repeat_instrument conmeds, redcap_repeat_instance 2        | refused: no repeating instruments; the logs  |
"""

from __future__ import annotations

import pytest

from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.logs import list_entries
from trialwright.services.redcap import RedcapError, import_records


def test_a_repeating_row_is_refused_naming_the_logs_and_nothing_is_saved(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    before = audit.count(trial.engine)
    row = {"participant_id": pid, "redcap_event_name": "baseline_arm_1", "redcap_repeat_instrument": "conmeds",
           "redcap_repeat_instance": "2", "conmeds_medication": "Enoxaparin"}
    with pytest.raises(RedcapError) as refused:
        import_records(trial.engine, coordinator, [row], overwrite=False, reason=None)
    message = str(refused.value)
    assert message.startswith("redcap_repeat_instrument: row 1: this project has no repeating instruments; ")
    assert "log entries (conmeds, medical_history) are not imported through the REDCap-compatible API" in message
    assert "nothing is saved" in message
    assert audit.count(trial.engine) == before
    assert list_entries(trial.engine, coordinator, pid, "conmeds") == ()
