"""The REDCap-compatible API: PyCap, unmodified, and REDCapR's request bodies against a real server.

The app runs under uvicorn on a free port (PyCap posts with ``requests``); every client call below is what a
REDCap user writes. Values are checked against what was sent and against the form service's own reading, and
the arm against the allocation table: a blinded token never meets an arm in any content.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import uvicorn
import yaml
from fastapi.testclient import TestClient
from redcap import Project, RedcapError
from sqlalchemy import select
from typer.testing import CliRunner

from tests.spec.exports.test_tabular import arm_terms
from tests.spec.forms.conftest import TODAY, enrolled_ten_days_ago
from tests.spec.web.conftest import csrf_of, sign_in
from tests.spec.web.test_blinded_crawl import ARM_SECRETS, _leaks
from tests.trialfixtures import FIRST_PROTOCOL, Trial, first_protocol, make_trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services import audit
from trialwright.services.audit_trail import read_trail
from trialwright.services.forms import get_form, save_form
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.tokens import issue_token
from trialwright.settings import Settings
from trialwright.store.auth_tables import api_tokens
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.web.app import create_app

SHAPES = Path(__file__).parent / "redcapr"
HEX32 = re.compile(r"^[0-9A-F]{32}$")
BLINDED = (Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.MONITOR, Role.DATA_MANAGER, Role.ADMINISTRATOR)

# Baseline vitals as a REDCap client sends them: every value a string, yes/no as 1/0.
VITALS = {
    "vitals_assessed_at": f"{TODAY.isoformat()}T00:00+03:30", "vitals_resp_rate": "26", "vitals_spo2": "90",
    "vitals_on_oxygen": "1", "vitals_systolic_bp": "105", "vitals_pulse": "115", "vitals_consciousness": "alert",
    "vitals_temperature": "38.5", "vitals_fio2": "0.5",
}  # fmt: skip


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    yield t
    t.engine.dispose()


@pytest.fixture(scope="module")
def url(trial: Trial) -> Iterator[str]:
    """The REDCap API URL of the app served by uvicorn in a thread."""
    with served(trial) as address:
        yield address


@contextmanager
def served(trial: Trial) -> Iterator[str]:
    """The trial's app served by uvicorn on a free port in a thread, for as long as the block runs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(Settings(database_url=trial.url)), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/redcap/api/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def token(trial: Trial, role: Role) -> str:
    value, _ = issue_token(trial.engine, username(role), name="redcap", actor="test", redcap=True)
    return value


@pytest.fixture(scope="module")
def pid(trial: Trial) -> str:
    return enrolled_ten_days_ago(trial)


@pytest.fixture(scope="module")
def allocation_list(trial: Trial) -> None:
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)


@pytest.fixture(scope="module")
def randomized(trial: Trial, allocation_list: None) -> tuple[str, str]:
    """A participant randomized through the service, and their arm as the allocation table holds it."""
    participant = enrolled_ten_days_ago(trial)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), participant)
    return participant, _arm_of(trial, participant)


def _arm_of(trial: Trial, participant: str) -> str:
    with session_scope(trial.engine) as session:
        return str(
            session.execute(
                select(allocation_entries.c.arm).where(allocation_entries.c.participant_id == participant)
            ).scalar_one()
        )


def _post(url: str, **form: str) -> requests.Response:
    return requests.post(url, data=form, timeout=30)


def test_a_redcap_token_is_32_uppercase_hex_characters_stored_only_as_a_hash(trial: Trial) -> None:
    value = token(trial, Role.STUDY_COORDINATOR)
    assert HEX32.match(value)
    with session_scope(trial.engine) as session:
        stored = [r.token_hash for r in session.execute(select(api_tokens.c.token_hash))]
    assert value not in stored and value.lower() not in stored and stored
    printed = CliRunner().invoke(cli, ["user", "token", username(Role.MONITOR), "--redcap", "--database", trial.url])
    assert printed.exit_code == 0, printed.output
    assert HEX32.match(printed.output.strip())
    # On the profile page: tick the box, and the token shown once has REDCap's shape.
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.INVESTIGATOR)
        csrf = csrf_of(client.get("/profile").text)
        page = client.post("/profile/tokens", data={"csrf_token": csrf, "name": "pycap", "redcap": "1"})
        shown = re.search(r'data-testid="new-token">([^<]+)<', page.text)
        assert shown and HEX32.match(shown.group(1))
        plain = client.post("/profile/tokens", data={"csrf_token": csrf, "name": "rest"})
        shown = re.search(r'data-testid="new-token">([^<]+)<', plain.text)
        assert shown and shown.group(1).startswith("tw_")
        # Through the REST API, as its own caller.
        made = client.post("/api/v1/tokens", json={"name": "r", "redcap": True},
                           headers={"Authorization": f"Bearer {value}"})  # fmt: skip
        assert made.status_code == 201 and HEX32.match(made.json()["token"])
    issued = audit.entries(trial.engine, action_prefix="api.token_issued")
    styles = [json.loads(e.new_value or "{}").get("style") for e in reversed(issued)]
    assert styles == ["redcap", "redcap", "redcap", "trialwright", "redcap"]


def test_pycap_reads_the_project_as_a_redcap_project(url: str, trial: Trial) -> None:
    project = Project(url, token(trial, Role.STUDY_COORDINATOR))
    protocol = first_protocol().protocol
    assert str(project.export_version()) == "14.7.0"
    info = project.export_project_info()
    assert info["project_title"] == protocol.trial.titles.scientific
    assert info["is_longitudinal"] == 1 and info["has_repeating_instruments_or_events"] == 0
    assert project.is_longitudinal and project.def_field == "participant_id"
    metadata = {row["field_name"]: row for row in project.export_metadata()}
    assert next(iter(metadata)) == "participant_id"
    # Field by field, as the protocol file declares them (protocols/IRCT20190101042197N2.yaml).
    spo2 = metadata["vitals_spo2"]
    assert (spo2["form_name"], spo2["field_type"], spo2["text_validation_type_or_show_slider_number"]) == (
        "vitals", "text", "integer",
    )  # fmt: skip
    assert (spo2["text_validation_min"], spo2["text_validation_max"], spo2["field_note"]) == ("50", "100", "%")
    assert spo2["required_field"] == "y"
    sex = metadata["demographics_sex"]
    assert (sex["field_type"], sex["select_choices_or_calculations"]) == ("radio", "female, Female | male, Male")
    assert metadata["vitals_on_oxygen"]["field_type"] == "yesno"
    assert metadata["vitals_assessed_at"]["text_validation_type_or_show_slider_number"] == "datetime_ymd"
    birth = metadata["demographics_birth_date"]
    assert (birth["text_validation_type_or_show_slider_number"], birth["identifier"]) == ("date_ymd", "y")
    assert [n for n, row in metadata.items() if row["identifier"] == "y"] == ["demographics_birth_date"]
    # A score REDCap cannot compute is a read-only number REDCap accepts on upload (a calc field's text must be an
    # expression it can parse), its note naming the derivation; every calc holds an expression.
    news2 = metadata["vitals_news2"]
    assert (news2["field_type"], news2["select_choices_or_calculations"]) == ("text", "")
    assert news2["text_validation_type_or_show_slider_number"] == "integer"
    assert news2["field_annotation"] == "@READONLY" and news2["field_note"] == "computed by trialwright: news2"
    assert not [n for n, row in metadata.items()
                if row["field_type"] == "calc" and "trialwright" in row["select_choices_or_calculations"]]  # fmt: skip
    every = {f"{form.id}_{f.id}" for form in protocol.forms for f in form.fields}
    assert set(metadata) == every | {"participant_id"}
    instruments = {i["instrument_name"]: i["instrument_label"] for i in project.export_instruments()}
    assert instruments == {form.id: form.name for form in protocol.forms}
    events = project.export_instrument_event_mappings()
    expected = [(f"{v.id}_arm_1", f) for v in protocol.visits for f in v.forms]
    assert [(e["unique_event_name"], e["form"]) for e in events] == expected
    assert [e["unique_event_name"] for e in project.export_events()] == [f"{v.id}_arm_1" for v in protocol.visits]
    names = project.export_field_names()
    multi = [(form.id, f) for form in protocol.forms for f in form.fields if f.type.value == "multi_choice"]
    for form_id, f in multi:  # a checkbox is one column per choice
        columns = [n["export_field_name"] for n in names if n["original_field_name"] == f"{form_id}_{f.id}"]
        assert columns == [f"{form_id}_{f.id}___{c.code}" for c in f.choices]
    assert project.export_arms() == [{"arm_num": 1, "name": "Arm 1"}]
    assert [u["username"] for u in project.export_users()] == [username(Role.STUDY_COORDINATOR)]


def test_pycap_imports_records_through_the_form_service_and_exports_them(url: str, trial: Trial, pid: str) -> None:
    coordinator = Project(url, token(trial, Role.STUDY_COORDINATOR))
    row = {"participant_id": pid, "redcap_event_name": "baseline_arm_1", **VITALS}
    assert coordinator.import_records([row]) == {"count": 1}
    # The form service reads what was saved: canonical values, and the scores it derived.
    form = get_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "vitals")
    assert form is not None and form.state.value == "draft"
    assert (form.values["spo2"].value, form.values["on_oxygen"].value, form.values["temperature"].value) == (
        90, True, 38.5,
    )  # fmt: skip
    assert form.values["news2"].value == 12  # the worked example of tests/spec/forms/test_forms_api.py
    entered = audit.entries(trial.engine, action_prefix="form.value_entered", participant=pid)
    assert {e.field for e in entered} >= {"spo2", "pulse", "temperature"}
    assert all(e.actor == username(Role.STUDY_COORDINATOR) for e in entered)

    (exported,) = coordinator.export_records(records=[pid], events=["baseline_arm_1"], forms=["vitals"])
    plain = {k for k in VITALS if k != "vitals_assessed_at"}
    assert {k: exported[k] for k in plain} == {k: VITALS[k] for k in plain}
    # A date and time comes back as the same instant, in UTC, with its offset (never an offset-less local time).
    assert exported["vitals_assessed_at"].endswith("+00:00")
    assert dt.datetime.fromisoformat(exported["vitals_assessed_at"]) == dt.datetime.fromisoformat(
        VITALS["vitals_assessed_at"]
    )
    assert exported["vitals_news2"] == "12" and exported["vitals_complete"] == "0"
    assert exported["redcap_event_name"] == "baseline_arm_1" and exported["participant_id"] == pid
    table = list(csv.DictReader(io.StringIO(coordinator.export_records(format_type="csv", records=[pid]))))
    assert [(r["participant_id"], r["redcap_event_name"], r["vitals_spo2"]) for r in table] == [
        (pid, "baseline_arm_1", "90")
    ]
    frame = coordinator.export_records(format_type="df", records=[pid])  # pandas, indexed by record and event
    assert frame.loc[(pid, "baseline_arm_1"), "vitals_spo2"] == 90
    only = coordinator.export_records(records=[pid], fields=["vitals_spo2"], export_data_access_groups=True)
    assert only == [{"participant_id": pid, "redcap_event_name": "baseline_arm_1", "redcap_data_access_group": "raz",
                     "vitals_spo2": "90", "vitals_complete": "0"}]  # fmt: skip
    eav = coordinator.export_records(record_type="eav", records=[pid], fields=["vitals_pulse"])
    assert {"record": pid, "redcap_event_name": "baseline_arm_1", "field_name": "vitals_pulse", "value": "115"} in eav
    labels = coordinator.export_records(records=[pid], fields=["vitals_on_oxygen"], raw_or_label="label")
    assert labels[0]["vitals_on_oxygen"] == "Yes"
    # The site's monitor reads it too.
    assert Project(url, token(trial, Role.MONITOR)).export_records(records=[pid])[0]["vitals_spo2"] == "90"


def test_a_change_of_a_saved_value_needs_a_reason(url: str, trial: Trial, pid: str) -> None:
    coordinator_token = token(trial, Role.STUDY_COORDINATOR)
    coordinator = Project(url, coordinator_token)
    coordinator.import_records([{"participant_id": pid, "redcap_event_name": "day3_arm_1", "vitals_pulse": "100"}])
    changed = {"participant_id": pid, "redcap_event_name": "day3_arm_1", "vitals_pulse": "96"}
    with pytest.raises(RedcapError) as refused:
        coordinator.import_records([changed])
    error = refused.value.args[0]["error"]
    assert "vitals_pulse" in error and "reason for change" in error, error
    form = get_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "day3", "vitals")
    assert form is not None and form.values["pulse"].value == 100  # nothing changed
    # PyCap's import_records has no reason: the reason is this endpoint's extra form parameter.
    sent = _post(url, token=coordinator_token, content="record", format="json", returnFormat="json",
                 data=json.dumps([changed]), reason="re-counted")  # fmt: skip
    assert sent.status_code == 200 and sent.json() == {"count": 1}
    (entry,) = audit.entries(trial.engine, action_prefix="form.value_changed", participant=pid)
    old, new = (json.loads(v or "{}")["value"] for v in (entry.old_value, entry.new_value))
    assert (entry.field, old, new, entry.reason) == ("pulse", 100, 96, "re-counted")
    # The same value again is no change and needs no reason.
    assert coordinator.import_records([changed]) == {"count": 1}


def test_refusals_answer_as_redcap_does(url: str, trial: Trial, pid: str) -> None:
    coordinator_token = token(trial, Role.STUDY_COORDINATOR)
    coordinator = Project(url, coordinator_token)
    bad = {"participant_id": pid, "redcap_event_name": "day1_arm_1", "vitals_spo2": "101", "vitals_pulse": "x"}
    answer = _post(url, token=coordinator_token, content="record", format="json", data=json.dumps([bad]))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert "vitals_spo2: 101 % is outside the accepted range 50-100 %" in error
    assert "vitals_pulse: must be a number, not 'x'" in error
    assert get_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "day1", "vitals") is None
    moved = {"participant_id": pid, "redcap_event_name": "day1_arm_1", "redcap_data_access_group": "other"}
    with pytest.raises(RedcapError, match=r"redcap_data_access_group: row 1: .* is not at site other"):
        coordinator.import_records([{**moved, "vitals_spo2": "95"}])
    with pytest.raises(RedcapError, match="not a field of this project"):
        coordinator.import_records([{"participant_id": pid, "redcap_event_name": "day1_arm_1", "spo2": "95"}])
    unknown = _post(url, token="0" * 32, content="version")
    assert unknown.status_code == 401 and "error" in unknown.json()
    monitor = _post(url, token=token(trial, Role.MONITOR), content="record", format="json", data=json.dumps([bad]))
    assert monitor.status_code == 403 and "role" in monitor.json()["error"]
    (denied,) = audit.entries(trial.engine, action_prefix="access.denied", actor=username(Role.MONITOR))
    assert json.loads(denied.detail or "{}")["what"] == "content=record"
    odd = _post(url, token=coordinator_token, content="record", format="json", filterLogic="sum([vitals_spo2]) > 90")
    assert odd.status_code == 400 and odd.json()["error"] == "filterLogic: the function sum() is not supported"
    as_csv = _post(url, token=coordinator_token, content="surveyLink", format="csv")
    assert as_csv.status_code == 400 and as_csv.text.startswith("ERROR: content: surveyLink is not supported")


def test_randomize_through_the_api_answers_no_arm_to_a_blinded_caller(
    url: str, trial: Trial, allocation_list: None
) -> None:
    participant = enrolled_ten_days_ago(trial)
    # PyCap (2.7) has no method for REDCap 14's randomize API: the same form-encoded POST, sent with requests.
    answer = _post(url, token=token(trial, Role.INVESTIGATOR), content="record", action="randomize",
                   record=participant, randomization_id="1", returnAlt="true", format="json")  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    arm = _arm_of(trial, participant)  # it was randomized: the allocation table holds an arm
    assert body["record"] == participant and "target_value" not in body and "target_field" not in body
    assert arm not in answer.text and body["target_alt_value"]
    (entry,) = audit.entries(trial.engine, action_prefix="participant.randomized", participant=participant)
    assert entry.actor == username(Role.INVESTIGATOR)
    again = _post(url, token=token(trial, Role.INVESTIGATOR), content="record", action="randomize",
                  record=participant, randomization_id="1", format="json")  # fmt: skip
    assert again.status_code == 400 and arm not in again.text
    monitor = _post(url, token=token(trial, Role.MONITOR), content="record", action="randomize",
                    record=participant, randomization_id="1", format="json")  # fmt: skip
    assert monitor.status_code == 403


def test_randomize_answers_the_arm_to_a_caller_who_may_see_it(database_url: str, tmp_path: Path) -> None:
    # The first trial made open label (its placebo declared an open-label comparator): investigators see the arms.
    text = FIRST_PROTOCOL.read_text(encoding="utf-8")
    start, end = text.index("masking:\n"), text.index("\neligibility:")
    masking = ("masking:\n  blinding: open\n  description: Open label.\n  identical_appearance: false\n"
               "  open_label_comparator: an open-label variant of the first trial, for this spec\n")  # fmt: skip
    # (the registry record's blinding made open label too: protocol check refuses a record and a masking that differ)
    opened = text[:start] + masking + text[end:]
    (tmp_path / "open.yaml").write_text(opened.replace("\n    blinding: double\n", "\n    blinding: open\n", 1),
                                        encoding="utf-8")  # fmt: skip
    trial = make_trial(database_url, load_protocol(tmp_path / "open.yaml"))
    try:
        participant = enrolled_ten_days_ago(trial)
        generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=5)
        with served(trial) as url:
            answer = _post(url, token=token(trial, Role.INVESTIGATOR), content="record", action="randomize",
                           record=participant, randomization_id="1", returnAlt="true", format="json")  # fmt: skip
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["record"], body["target_field"]) == (participant, "randomization_arm")
        assert body["target_value"] == _arm_of(trial, participant) and body["target_alt_value"]
    finally:
        trial.engine.dispose()


def test_a_blinded_token_never_sees_an_arm(url: str, trial: Trial, randomized: tuple[str, str]) -> None:
    participant, arm = randomized
    # Every arm's code, name, intervention name and description (not only the randomized participant's arm): a
    # blinded caller must not learn the arms' identities from the project either.
    secrets = sorted(set(arm_terms(with_interventions=True)) | set(ARM_SECRETS))
    assert arm in secrets and len(secrets) == 8  # two arms: code, name, intervention, description each
    contents = ["version", "project", "metadata", "instrument", "event", "formEventMapping", "exportFieldNames",
                "arm", "user", "log", "record"]  # fmt: skip
    for role in BLINDED:
        value = token(trial, role)
        for content in contents:
            for fmt in ("json", "csv", "xml"):
                for kind in ("flat", "eav"):
                    answer = _post(url, token=value, content=content, format=fmt, type=kind)
                    assert answer.status_code in (200, 403), answer.text
                    leaked = _leaks(answer.text, secrets)
                    assert not leaked, f"{role.value} {content} {fmt} {kind}: {leaked}"
    # The log is the audit trail as the audit page shows it to the caller: the same entries, the same masking.
    manager = who(trial, Role.DATA_MANAGER)
    log = Project(url, token(trial, Role.DATA_MANAGER)).export_logging(record=participant)
    trail = [e for e in reversed(read_trail(trial.engine, manager, participant=participant, limit=1000))]
    assert [(r["action"], r["username"]) for r in log] == [(e.action, e.actor) for e in trail]
    assert "participant.randomized" in {r["action"] for r in log}


@pytest.mark.parametrize("shape", sorted(p.stem for p in SHAPES.glob("*.txt")))
def test_redcapr_request_bodies_get_valid_answers(url: str, trial: Trial, pid: str, shape: str) -> None:
    role = Role.STUDY_COORDINATOR if shape != "redcap_log_read" else Role.DATA_MANAGER
    if shape.startswith("redcap_read_oneshot"):  # a record to read, whatever ran before on this worker
        Project(url, token(trial, Role.STUDY_COORDINATOR)).import_records(
            [{"participant_id": pid, "redcap_event_name": "day1_arm_1", "vitals_spo2": "93"}]
        )
    body = (SHAPES / f"{shape}.txt").read_text().replace("TOKEN", token(trial, role)).replace("PARTICIPANT", pid)
    answer = requests.post(url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    assert answer.status_code == 200, answer.text
    if shape == "redcap_version":
        assert answer.text == "14.7.0"
    elif shape == "redcap_metadata_read":
        assert {r["form_name"] for r in answer.json()} == {"vitals"}
    else:
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert rows or shape == "redcap_users_export", answer.text
        if shape == "redcap_write_oneshot":
            assert rows == [{"id": pid}]
            form = get_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "day1", "vitals")
            assert form is not None and form.values["spo2"].value == 93
        if shape == "redcap_read_oneshot":
            assert {r["participant_id"] for r in rows} == {pid}


def test_a_short_csv_row_is_refused_not_read_as_blanks(url: str, trial: Trial, pid: str) -> None:
    # csv.DictReader gives a short row's missing cells as None; read as blanks, overwriteBehavior=overwrite would
    # clear the saved values of the columns the row left out.
    coordinator_token = token(trial, Role.STUDY_COORDINATOR)
    Project(url, coordinator_token).import_records(
        [{"participant_id": pid, "redcap_event_name": "day7_arm_1", "vitals_spo2": "93", "vitals_pulse": "88"}]
    )
    header = "participant_id,redcap_event_name,vitals_spo2,vitals_pulse\n"
    short = header + f"{pid},day7_arm_1,93,88\n{pid},day7_arm_1,93\n"
    answer = _post(url, token=coordinator_token, content="record", format="csv", data=short,
                   overwriteBehavior="overwrite", reason="re-measured")  # fmt: skip
    assert answer.status_code == 400
    assert answer.text == (
        "ERROR: data: CSV row 2 after the header has 3 cells for the header's 4 columns; every row needs a cell for "
        "every column (an empty cell for a blank)"
    )
    form = get_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "day7", "vitals")
    assert form is not None and (form.values["spo2"].value, form.values["pulse"].value) == (93, 88)
    # An empty cell is a blank, sent on purpose: with overwrite it clears the value (and needs the reason).
    blank = header + f"{pid},day7_arm_1,93,\n"
    cleared = _post(url, token=coordinator_token, content="record", format="csv", data=blank,
                    overwriteBehavior="overwrite", reason="re-measured")  # fmt: skip
    assert cleared.status_code == 200, cleared.text
    form = get_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "day7", "vitals")
    assert form is not None and form.values["spo2"].value == 93 and "pulse" not in form.values


def _with_checkbox(path: Path) -> Path:
    """The first trial's protocol with a checkbox on the vitals form (``vitals_signs``: choices a, b and c)."""
    data = yaml.safe_load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    vitals = next(f for f in data["forms"] if f["id"] == "vitals")
    vitals["fields"].append({
        "id": "signs", "label": "Signs", "translations": {"fa": "Signs"}, "type": "multi_choice", "required": False,
        "choices": [{"code": c, "label": c.upper(), "translations": {"fa": c.upper()}} for c in ("a", "b", "c")],
    })  # fmt: skip
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_a_checkbox_column_not_sent_keeps_its_stored_state(database_url: str, tmp_path: Path) -> None:
    # REDCap leaves a column not sent unchanged: sending signs___b alone ticks b and keeps a and c as they were.
    trial = make_trial(database_url, load_protocol(_with_checkbox(tmp_path / "checkbox.yaml")))
    try:
        pid = enrolled_ten_days_ago(trial)
        coordinator = who(trial, Role.STUDY_COORDINATOR)

        def signs() -> list[str] | None:
            form = get_form(trial.engine, coordinator, pid, "baseline", "vitals")
            assert form is not None
            return form.values["signs"].value

        where = {"participant_id": pid, "redcap_event_name": "baseline_arm_1"}
        with served(trial) as url:
            value = token(trial, Role.STUDY_COORDINATOR)

            def send(reason: str | None = None, **columns: str) -> requests.Response:
                extra = {"reason": reason} if reason else {}
                rows = json.dumps([{**where, **columns}])
                return _post(url, token=value, content="record", format="json", data=rows, **extra)

            first = send(**VITALS, vitals_signs___a="1", vitals_signs___b="0", vitals_signs___c="1")
            assert first.status_code == 200, first.text
            assert signs() == ["a", "c"]
            ticked = send("b seen", vitals_signs___b="1")
            assert ticked.status_code == 200, ticked.text
            assert signs() == ["a", "b", "c"]  # not ["b"]: a and c were not sent, so they stay ticked
            unticked = send("a gone", vitals_signs___a="0")
            assert unticked.status_code == 200, unticked.text
            assert signs() == ["b", "c"]
            assert send(vitals_signs___c="").status_code == 200  # a blank, normal overwrite: nothing changes
            assert signs() == ["b", "c"]
            (exported,) = Project(url, value).export_records(records=[pid], events=["baseline_arm_1"], forms=["vitals"])
            assert [exported[f"vitals_signs___{c}"] for c in "abc"] == ["0", "1", "1"]
            # Two rows of one import: the second keeps what the first sent, as REDCap applies them in turn.
            rows = json.dumps([{**where, "vitals_signs___a": "1"}, {**where, "vitals_signs___c": "0"}])
            both = _post(url, token=value, content="record", format="json", data=rows, reason="re-examined")
            assert both.status_code == 200, both.text
            assert signs() == ["a", "b"]
            # Saved as not done, a checkbox has no ticks to keep: some columns alone are refused, every column is not.
            save_form(trial.engine, coordinator, pid, "baseline", "vitals", {"signs": {"not_done": "not examined"}},
                      reason="not examined")  # fmt: skip
            partial = send("seen after all", vitals_signs___b="1")
            assert partial.status_code == 400
            assert partial.json()["error"] == (
                "vitals_signs: row 1: is saved as not done, so the columns not sent have no state to keep; send every "
                "column of the checkbox (vitals_signs___a, vitals_signs___b, vitals_signs___c)"
            )
            whole = send("seen after all", vitals_signs___a="0", vitals_signs___b="1", vitals_signs___c="0")
            assert whole.status_code == 200, whole.text
            assert signs() == ["b"]
        changed = audit.entries(trial.engine, action_prefix="form.value_changed", participant=pid)
        assert [(e.field, e.reason) for e in reversed(changed)][:2] == [("signs", "b seen"), ("signs", "a gone")]
    finally:
        trial.engine.dispose()
