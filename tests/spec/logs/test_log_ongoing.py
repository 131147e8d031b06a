"""An entry that is ongoing has no end date (both databases).

A log written to SDTM names the boolean field saying the medication or condition goes on (``logs[].sdtm.ongoing``,
--ENRTPT ONGOING) and the field holding its end date (the one filling CMENDTC or MHENDTC). Both at once would write
CMENDTC and CMENRTPT=ONGOING, and a MedicationStatement "active" with an end: the entry's save refuses it, naming
both fields and the rule, on every path.

| path                    | the entry                                     | decision                                  |
|-------------------------|-----------------------------------------------|-------------------------------------------|
| add (service, CLI, API) | stopped_on 5 days ago, ongoing yes            | refused: stopped_on, ongoing and the rule |
| add                     | stopped_on 5 days ago, ongoing no             | saved                                     |
| add                     | no stopped_on, ongoing yes                    | saved                                     |
| amend                   | ongoing yes -> stopped_on added, ongoing kept | refused, the entry unchanged              |
| amend                   | ongoing no -> ongoing yes, stopped_on kept    | refused                                   |
| amend                   | ongoing yes -> stopped_on added, ongoing no   | saved                                     |
| the page, in Persian    | stopped_on and ongoing yes                    | refused, both fields by label, rule in fa |
| ODM import              | a file whose entry has both                   | refused naming the entry, nothing written |

The rule is the domain's (``domain.logs.entry_problems``); its table for an MH log mapping MHENDTC is checked there
on a log built here.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from tests.spec.forms.conftest import TODAY
from tests.spec.logs.test_log_entries import HEPARIN
from tests.spec.logs.test_log_odm import _export, target  # noqa: F401 - the fixture, a second database
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import FIRST_PROTOCOL, Trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.forms import StoredValue
from trialwright.domain.logs import entry_problems
from trialwright.domain.roles import Role
from trialwright.protocol.logs import LogDef
from trialwright.services import audit
from trialwright.services.logs import LogError, add_entry, amend_entry, list_entries
from trialwright.services.odm_import import OdmImportError, import_odm
from trialwright.services.users import issue_token, set_preferences
from trialwright.settings import Settings
from trialwright.store.engine import session_scope
from trialwright.store.log_tables import log_entries
from trialwright.store.screening_tables import participants
from trialwright.web.app import create_app

STOPPED = (TODAY - dt.timedelta(days=5)).isoformat()
RULE = "an entry that is ongoing has no end date; clear the end date, or record that it is not ongoing"
REFUSED = f"stopped_on, ongoing: {RULE}"
RAW = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
CONMEDS = next(g for g in RAW["logs"] if g["id"] == "conmeds")


def test_the_first_protocol_maps_the_end_date_and_ongoing_read_independently() -> None:
    """The fields the refusal names are the ones the protocol file maps (read here with PyYAML)."""
    assert (CONMEDS["sdtm"]["variables"]["CMENDTC"], CONMEDS["sdtm"]["ongoing"]) == ("stopped_on", "ongoing")


def test_an_entry_added_ongoing_with_an_end_date_is_refused(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    with pytest.raises(LogError) as refused:
        add_entry(trial.engine, coordinator, pid, "conmeds", {**HEPARIN, "stopped_on": STOPPED, "ongoing": True})
    assert refused.value.problems == (REFUSED,)
    assert list_entries(trial.engine, coordinator, pid) == ()
    assert audit.entries(trial.engine, action_prefix="log.") == []
    stopped = add_entry(trial.engine, coordinator, pid, "conmeds", {**HEPARIN, "stopped_on": STOPPED, "ongoing": False})
    going = add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)  # ongoing yes, no end date
    assert (stopped.sequence, going.sequence) == (1, 2)


def test_an_amendment_that_would_make_an_entry_ongoing_with_an_end_date_is_refused(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)  # 1: ongoing, no end date
    add_entry(trial.engine, coordinator, pid, "conmeds", {**HEPARIN, "stopped_on": STOPPED, "ongoing": False})  # 2
    with pytest.raises(LogError) as ended:
        amend_entry(trial.engine, coordinator, pid, "conmeds", 1, {"stopped_on": STOPPED}, reason="stopped", version=1)
    with pytest.raises(LogError) as restarted:
        amend_entry(trial.engine, coordinator, pid, "conmeds", 2, {"ongoing": True}, reason="goes on", version=1)
    assert ended.value.problems == restarted.value.problems == (REFUSED,)
    assert [e.version for e in list_entries(trial.engine, coordinator, pid)] == [1, 1]
    done = amend_entry(trial.engine, coordinator, pid, "conmeds", 1, {"stopped_on": STOPPED, "ongoing": False},
                       reason="stopped", version=1)  # fmt: skip
    assert (done.values["stopped_on"].value, done.values["ongoing"].value, done.version) == (STOPPED, False, 2)
    cleared = amend_entry(trial.engine, coordinator, pid, "conmeds", 2, {"stopped_on": None, "ongoing": True},
                          reason="restarted", version=1)  # fmt: skip
    assert "stopped_on" not in cleared.values and cleared.values["ongoing"].value is True


def test_the_cli_and_the_api_refuse_it_as_other_log_refusals(trial: Trial, pid: str, tmp_path: Path) -> None:
    data = tmp_path / "entry.json"
    data.write_text(json.dumps({**HEPARIN, "stopped_on": STOPPED, "ongoing": True}), encoding="utf-8")
    db = ["--database", trial.url, "--as", username(Role.STUDY_COORDINATOR)]
    added = CliRunner().invoke(cli, ["log", "add", pid, "conmeds", "--data", str(data), *db])
    assert added.exit_code == 1 and REFUSED in " ".join(added.output.split()), added.output
    token, _ = issue_token(trial.engine, username(Role.STUDY_COORDINATOR), name="t", actor="test")
    with TestClient(create_app(Settings(database_url=trial.url))) as api:
        refused = api.post(f"/api/v1/participants/{pid}/logs/conmeds", headers={"Authorization": f"Bearer {token}"},
                           json={"values": {**HEPARIN, "stopped_on": STOPPED, "ongoing": True}})  # fmt: skip
    assert refused.status_code == 422, refused.text
    assert REFUSED in json.dumps(refused.json(), ensure_ascii=False)
    assert list_entries(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid) == ()


def test_the_page_says_it_in_persian_with_both_fields_by_their_labels(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    set_preferences(trial.engine, coordinator.username, language="fa", calendar="gregorian")
    labels = {f["id"]: f["translations"]["fa"] for f in CONMEDS["fields"]}
    typed = {"v-medication": "Enoxaparin", "v-indication": "thromboprophylaxis", "v-dose": "40", "v-dose_unit": "mg",
             "v-frequency": "QD", "v-route": "SUBCUTANEOUS", "v-started_on": HEPARIN["started_on"],
             "v-stopped_on": STOPPED, "v-ongoing": "yes"}  # fmt: skip
    page = f"/participants/{pid}"
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.STUDY_COORDINATOR)
        refused = client.post(f"{page}/logs/conmeds", data={"csrf_token": csrf_of(client.get(page).text), **typed})
    assert refused.status_code == 422
    errors = [re.sub("[\u2066-\u2069]", "", html.unescape(e))
              for e in re.findall(r'<p class="error" role="alert">(.*?)</p>', refused.text)]  # fmt: skip
    assert errors == [f"{labels['stopped_on']}, {labels['ongoing']}: موردی که ادامه‌دار است تاریخ پایان ندارد؛ "
                      "تاریخ پایان را پاک کنید، یا ثبت کنید که ادامه‌دار نیست"]  # fmt: skip


def test_an_odm_file_holding_such_an_entry_is_refused_and_nothing_is_written(
    trial: Trial,
    pid: str,
    tmp_path: Path,
    target: Trial,  # noqa: F811 - the fixture imported above
) -> None:
    add_entry(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "conmeds",
              {**HEPARIN, "stopped_on": STOPPED, "ongoing": False})  # fmt: skip
    with session_scope(trial.engine) as session:  # stored before the rule (or by SQL): the file carries it
        held = json.loads(session.execute(select(log_entries.c.entry_values)).scalar_one())
        held["ongoing"]["value"] = True
        session.execute(log_entries.update().values(entry_values=json.dumps(held, sort_keys=True)))
    path = _export(trial, tmp_path / "odm")
    with pytest.raises(OdmImportError) as refused:
        import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
    assert f"participant {pid}, log conmeds, entry 1: {REFUSED}" in str(refused.value)
    with session_scope(target.engine) as session:
        assert session.execute(select(participants)).first() is None
        assert session.execute(select(log_entries)).first() is None


def _mh_log(ongoing: str | None = "ongoing") -> LogDef:
    return LogDef.model_validate({
        "id": "history", "name": "History",
        "sdtm": {"domain": "MH", "variables": {"MHTERM": "condition", "MHENDTC": "resolved_on"},
                 **({"ongoing": ongoing, "ongoing_until": "END OF STUDY"} if ongoing else {})},
        "fields": [{"id": "condition", "label": "Condition", "type": "text"},
                   {"id": "resolved_on", "label": "Resolved", "type": "date", "required": False},
                   {"id": "ongoing", "label": "Ongoing", "type": "boolean"}],
    })  # fmt: skip


@pytest.mark.parametrize(
    ("resolved_on", "ongoing", "mapped", "problems"),
    [
        (StoredValue("2026-01-02"), StoredValue(True), True, ["resolved_on, ongoing: " + RULE]),
        (StoredValue("2026-01-02"), StoredValue(False), True, []),
        (None, StoredValue(True), True, []),
        (StoredValue(None, status="not_done", reason="unknown"), StoredValue(True), True, []),
        (StoredValue("2026-01-02"), StoredValue(True), False, []),  # no ongoing field mapped: no --ENRTPT written
    ],
)
def test_the_rule_on_a_medical_history_log(
    resolved_on: StoredValue | None, ongoing: StoredValue, mapped: bool, problems: list[str]
) -> None:
    values = {"condition": StoredValue("Asthma"), "ongoing": ongoing}
    if resolved_on is not None:
        values["resolved_on"] = resolved_on
    assert entry_problems(_mh_log("ongoing" if mapped else None), values) == problems
