"""A simulated death and the death record's form, read the way the analysis reads them (on SQLite and PostgreSQL).

The trial: ``tests/data/simulation/WOUND-2.yaml`` (a fictional trial a new user wrote from the docs alone): an
end-of-follow-up visit holding the death record's form (``follow_up_end``: status, ``ended_on``, cause) and a
``healing`` form whose ``healed_on`` is the primary, a time to event with death competing, read at that visit.

| the protocol / simulation file                              | what the simulated trial holds                     |
|-------------------------------------------------------------|----------------------------------------------------|
| an optional date on the death record's form, neither its     | left blank: never the admission date (which the    |
| end nor an admission date (``healed_on`` moved there)        | save refused as "before enrolment")                |
| the same date required, nothing in ``fields`` to fill it     | refused by the file's check, before any database   |
| ``fields: {follow_up_end.status: {choice: {...}}}``          | each living participant's status drawn so          |
| death competing with ``healing.healed_on`` read at the death | each death: ``healing`` saved that day with no     |
| record's visit                                               | date, a competing death in the analysis            |
| the same read at another visit, with deaths drawn            | refused by the file's check (deaths listed, the    |
|                                                              | arms' comparisons refused)                         |
| the consent field in ``screening.eligible``                  | refused naming file and path: no database, no key  |

The competing deaths are counted from the stored rows (the day of death in the death record, the ``healing`` form
saved on that day at that visit with no date), not from the analysis's own code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from sqlalchemy import select
from typer.testing import CliRunner

from trialwright.analysis.engine import analyse
from trialwright.cli.main import app as cli
from trialwright.protocol import load_protocol
from trialwright.services.analysis import analysis_data
from trialwright.services.simulation import SimulationError, check_plan, simulate, simulation_file_for
from trialwright.services.trial import init_trial
from trialwright.services.users import get_user
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import make_engine, session_scope

DATA = Path(__file__).parents[2] / "data" / "simulation"
PROTOCOL = DATA / "WOUND-2.yaml"
Change = Callable[[dict[str, Any]], Any]


def _files(tmp_path: Path, protocol: Change | None = None, plan: Change | None = None) -> Path:
    """The trial's protocol and simulation file in ``tmp_path``, each changed as given."""
    yaml = YAML(typ="safe")
    doc = yaml.load(PROTOCOL.read_text(encoding="utf-8"))
    settings = yaml.load(simulation_file_for(PROTOCOL).read_text(encoding="utf-8"))
    if protocol is not None:
        protocol(doc)
    if plan is not None:
        plan(settings)
    path = tmp_path / "TRIAL.yaml"
    with path.open("w", encoding="utf-8") as out:
        YAML().dump(doc, out)
    with simulation_file_for(path).open("w", encoding="utf-8") as out:
        YAML().dump(settings, out)
    return path


def _form(doc: dict[str, Any], form_id: str) -> dict[str, Any]:
    return next(f for f in doc["forms"] if f["id"] == form_id)


def _healed_on_on_the_end_form(required: bool) -> Change:
    """``healed_on`` on the death record's form (as the walk first wrote it), the ``healing`` form gone."""

    def change(doc: dict[str, Any]) -> None:
        healed = dict(_form(doc, "healing")["fields"][0], required=required)
        _form(doc, "follow_up_end")["fields"].insert(1, healed)
        doc["forms"] = [f for f in doc["forms"] if f["id"] != "healing"]
        for v in doc["visits"]:
            v["forms"] = [f for f in v["forms"] if f != "healing"]
        doc["outcomes"][0]["estimand"]["variable"]["fields"] = ["follow_up_end.healed_on"]

    return change


def _rows(engine: Any) -> list[Any]:
    with session_scope(engine) as session:
        return list(session.execute(
            select(visit_records.c.participant_id, visit_records.c.visit_id, visit_records.c.visit_date,
                   form_records.c.form_id, form_records.c.form_values)
            .join(visit_records, visit_records.c.id == form_records.c.visit_record_id)).all())  # fmt: skip


def _simulated(database_url: str, path: Path, participants: int, seed: int) -> tuple[Any, Any]:
    engine = make_engine(database_url)
    init_trial(engine, load_protocol(path))
    return engine, simulate(engine, path, participants, seed=seed)


def test_an_optional_date_on_the_death_record_form_is_left_blank_and_the_status_drawn_as_declared(
    database_url: str, tmp_path: Path
) -> None:
    drawn = {"follow_up_end.status": {"choice": {"healed": 1, "not_healed": 1}}}
    path = _files(tmp_path, _healed_on_on_the_end_form(required=False), lambda plan: plan["fields"].update(drawn))
    engine, summary = _simulated(database_url, path, 40, seed=3)
    try:
        rows = _rows(engine)
    finally:
        engine.dispose()
    assert summary.refused == 0, summary.refusals  # before: healed_on written as the admission date, refused
    ends = [json.loads(r.form_values) for r in rows if r.form_id == "follow_up_end"]
    assert ends and all("healed_on" not in values for values in ends)
    statuses = [values["status"]["value"] for values in ends if "status" in values]
    alive = [s for s in statuses if s != "died"]
    assert set(alive) == {"healed", "not_healed"}, statuses  # drawn among the alive codes, not always the first


def test_a_required_date_on_the_death_record_form_is_refused_before_any_database(tmp_path: Path) -> None:
    path = _files(tmp_path, _healed_on_on_the_end_form(required=True))
    said = r"TRIAL\.simulation\.yaml: fields\.follow_up_end\.healed_on: a required date of the death record's form "
    with pytest.raises(SimulationError, match=said + r"\(follow_up_end\), which the simulator cannot fill"):
        check_plan(path)


def test_each_simulated_death_is_a_competing_death_of_the_time_to_event(database_url: str, tmp_path: Path) -> None:
    path = _files(tmp_path, plan=lambda plan: plan.update(death={"rate": 0.3, "term": "Myocardial infarction"}))
    engine, summary = _simulated(database_url, path, 40, seed=3)
    try:
        rows = _rows(engine)
        actor = get_user(engine, "sim-unblinded-statistician")
        assert actor is not None
        data = analysis_data(engine, actor, unblinded=False)
        protocol = load_protocol(path).protocol
    finally:
        engine.dispose()
    report = analyse(protocol, data, software_version="spec", unblinded=False)
    # Independently, from the rows: the day each participant died (the death record's status and end date at the
    # end-of-follow-up visit), and whether the healing form was saved at that visit on that day with no date.
    ends = [(r.participant_id, json.loads(r.form_values)) for r in rows if r.form_id == "follow_up_end"]
    died_on = {pid: v["ended_on"]["value"] for pid, v in ends if v.get("status", {}).get("value") == "died"}
    blank_that_day = {r.participant_id for r in rows if r.form_id == "healing" and r.visit_id == "end_of_follow_up"
                      and r.participant_id in died_on and str(r.visit_date) == died_on[r.participant_id]
                      and "healed_on" not in json.loads(r.form_values)}  # fmt: skip
    assert summary.deaths == len(died_on) > 0
    assert blank_that_day == set(died_on)  # before: healed_on = the day of death, the death counted as the event
    outcome = next(o for o in report.outcomes if o.outcome_id == "healing")
    curves = outcome.extra["event_incidence"]
    assert sum(c["died"] for c in curves.values() if c is not None) == len(died_on)
    assert all(c is not None for c in curves.values())  # no death left unknown: the comparisons are made


def test_death_competing_read_at_another_visit_is_refused_with_deaths(tmp_path: Path) -> None:
    def elsewhere(doc: dict[str, Any]) -> None:
        doc["outcomes"][0]["estimand"]["variable"]["at"] = "week16"
        next(v for v in doc["visits"] if v["id"] == "week16")["forms"].append("healing")

    path = _files(tmp_path, elsewhere)
    with pytest.raises(SimulationError, match=r"TRIAL\.simulation\.yaml: death: outcome healing: a time to event "
                       r"\(healing\.healed_on at week16\) with death competing"):  # fmt: skip
        check_plan(path)
    _files(tmp_path, elsewhere, lambda plan: plan.update(death=0))
    check_plan(path)  # without deaths nothing competes


def test_the_consent_field_in_the_file_is_refused_before_any_database_or_key(tmp_path: Path) -> None:
    path = _files(tmp_path, plan=lambda plan: plan["screening"]["eligible"].update(informed_consent=True))
    database = tmp_path / "walk.db"
    done = CliRunner().invoke(cli, ["simulate", "--protocol", str(path), "--participants", "3",
                                    "--database", f"sqlite:///{database}"])  # fmt: skip
    said = " ".join(done.output.split())
    assert done.exit_code == 1, said
    assert (f"simulation file: {simulation_file_for(path)}: screening.eligible.informed_consent: is set from the "
            "consent record, not typed in") in said  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["TRIAL.simulation.yaml", "TRIAL.yaml"]  # no db, no key
