"""A log or a log field dropped by a later protocol version (both databases): the entries already stored are kept
and said, never left out unsaid, as a form's field dropped by a later version is kept and named.

| where                                   | what it says                                                          |
|-----------------------------------------|-----------------------------------------------------------------------|
| the amendment (``trialwright init``)    | a note per dropped log and field, with how many entries hold it        |
| the participant page                    | the dropped field's values beside the entry; the dropped log's entries |
| the tabular export's README.txt         | the same notes                                                        |
| the SDTM export's README.txt            | the same notes (not in CM or MH)                                      |

Here version 3.0 drops the ``medical_history`` log and the ``indication`` field of ``conmeds`` (and its CMINDC).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.spec.logs.test_log_entries import HEPARIN
from tests.spec.protocol.conftest import mutated_text
from tests.spec.web.conftest import sign_in
from tests.trialfixtures import Trial, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services.exports import run_export
from trialwright.services.logs import add_entry
from trialwright.services.trial import init_trial
from trialwright.settings import Settings
from trialwright.web.app import create_app

DROPPED_LOG = ("logs/medical_history: the protocol no longer declares this log; 1 stored entry holds it (kept in the "
               "database and the audit trail)")  # fmt: skip
DROPPED_FIELD = ("logs/conmeds: the protocol no longer declares field indication; 2 stored entries hold a value for "
                 "it (kept in the database and the audit trail)")  # fmt: skip


def _drop(doc: Any) -> None:
    doc["version"] = {"number": "3.0", "date": "2026-11-01"}
    doc["amendments"].append({"number": 2, "date": "2026-11-01", "version": "3.0",
                              "reason": "Medical history and indications are no longer collected."})  # fmt: skip
    doc["logs"] = [log for log in doc["logs"] if log["id"] != "medical_history"]
    (conmeds,) = doc["logs"]
    conmeds["fields"] = [f for f in conmeds["fields"] if f["id"] != "indication"]
    del conmeds["sdtm"]["variables"]["CMINDC"]


def _stored_then_dropped(trial: Trial, pid: str) -> tuple[str, ...]:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)  # indication: thromboprophylaxis
    add_entry(trial.engine, coordinator, pid, "conmeds", {**HEPARIN, "medication": "Heparin", "indication": "DVT"})
    add_entry(trial.engine, coordinator, pid, "conmeds", {k: v for k, v in HEPARIN.items() if k != "indication"})
    add_entry(trial.engine, coordinator, pid, "medical_history", {"condition": "Type 2 diabetes", "ongoing": True})
    return init_trial(trial.engine, load_protocol_text(mutated_text(_drop))).notes


def test_the_amendment_lists_the_entries_of_a_dropped_log_and_field(trial: Trial, pid: str, tmp_path: Path) -> None:
    assert _stored_then_dropped(trial, pid) == (DROPPED_FIELD, DROPPED_LOG)
    amended = tmp_path / "amended.yaml"
    amended.write_text(mutated_text(_drop), encoding="utf-8")
    again = CliRunner().invoke(cli, ["init", "--protocol", str(amended), "--database", trial.url])
    assert again.exit_code == 0, again.output  # unchanged: nothing new to say
    assert "Note:" not in again.output


def test_the_participant_page_shows_them(trial: Trial, pid: str) -> None:
    _stored_then_dropped(trial, pid)
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.MONITOR)
        html = client.get(f"/participants/{pid}").text
    assert "Fields no longer declared" in html
    for sequence, said in ((1, "indication: thromboprophylaxis"), (2, "indication: DVT"), (3, "")):
        cell = html[html.index(f'data-testid="undeclared-conmeds-{sequence}">') :]
        assert cell[cell.index(">") + 1 : cell.index("</td>")] == said
    assert "Log entries the protocol no longer declares" in html
    row = html[html.index('data-testid="undeclared-medical_history-1">') :]
    assert row[row.index(">") + 1 : row.index("</li>")] == "#1 (active): condition: Type 2 diabetes; ongoing: yes"


def test_the_exports_list_them(trial: Trial, pid: str, tmp_path: Path) -> None:
    _stored_then_dropped(trial, pid)
    manager = who(trial, Role.DATA_MANAGER)
    run_export(trial.engine, manager, "csv", tmp_path / "csv")
    readme = (tmp_path / "csv" / "README.txt").read_text(encoding="utf-8")
    assert f"  - {DROPPED_FIELD}" in readme and f"  - {DROPPED_LOG}" in readme
    assert not (tmp_path / "csv" / "logs" / "medical_history.csv").exists()
    run_export(trial.engine, manager, "sdtm", tmp_path / "sdtm")
    readme = (tmp_path / "sdtm" / "README.txt").read_text(encoding="utf-8")
    assert f"{DROPPED_LOG}; not in CM or MH" in readme and f"{DROPPED_FIELD}; not in CM or MH" in readme


def test_the_casebook_names_queries_on_them_by_id(trial: Trial, pid: str) -> None:
    """A query left open on an entry of a dropped log (and on a dropped field) still reaches the investigator's
    casebook, named by its log's and field's ids: the page never fails for what the protocol no longer declares."""
    from trialwright.services.forms import raise_query

    monitor = who(trial, Role.MONITOR)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    add_entry(trial.engine, coordinator, pid, "conmeds", HEPARIN)
    add_entry(trial.engine, coordinator, pid, "medical_history", {"condition": "Type 2 diabetes", "ongoing": True})
    raise_query(trial.engine, monitor, pid, "Since when?", log_id="medical_history", sequence=1, field_id="condition")
    raise_query(trial.engine, monitor, pid, "Why?", log_id="conmeds", sequence=1, field_id="indication")
    init_trial(trial.engine, load_protocol_text(mutated_text(_drop)))
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.INVESTIGATOR)
        page = client.get(f"/data/casebook/{pid}")
    assert page.status_code == 200, page.text[:500]
    assert "medical_history #1 · condition: Since when?" in page.text
    assert "Concomitant medications #1 · indication: Why?" in page.text
