"""The simulator reads what the protocol declares, never the first trial's names: the visit that ends the hospital
stay is the death record's visit, the event a visit counts from is whichever event visit dates it, and the field
staff copy the preparation code into is the analysis plan's ``treatment.code_field``.

The first trial's file is rewritten with other names for the three (``discharge`` -> ``end_of_stay``,
``infusion`` -> ``dosing``, ``administration.preparation_code`` -> ``pack_code``) and simulated on SQLite and
PostgreSQL. Before this was so, a stay ending at a visit not named ``discharge`` ended on the day of randomization
(the stay drawn was counted backwards from it, before the participant was enrolled), and a code field not named
``preparation_code`` was filled with placeholder text, so no one was analysed as treated with their arm.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.conftest import FIRST_PROTOCOL
from tests.spec.protocol.conftest import mutated_text
from trialwright.protocol import load_protocol
from trialwright.services.simulation import (
    SimulationError,
    _causality_codes,
    _death,
    _expected,
    load_plan,
    simulate,
)
from trialwright.services.trial import init_trial
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.screening_tables import participants


def _renamed(document: Any) -> None:
    for visit in document["visits"]:
        visit["id"] = {"discharge": "end_of_stay", "infusion": "dosing"}.get(visit["id"], visit["id"])
        if visit["reference"] == "infusion":
            visit["reference"] = "dosing"
    document["safety"]["death_record"]["visit"] = "end_of_stay"
    plan = document["analysis_plan"]
    plan["treatment"]["visit"], plan["treatment"]["code_field"] = "dosing", "pack_code"
    administration = next(f for f in document["forms"] if f["id"] == "administration")
    next(f for f in administration["fields"] if f["id"] == "preparation_code")["id"] = "pack_code"


def _write(folder: Path) -> Path:
    path = folder / "RENAMED.yaml"
    path.write_text(mutated_text(_renamed, FIRST_PROTOCOL), encoding="utf-8")
    plan = FIRST_PROTOCOL.with_name(FIRST_PROTOCOL.stem + ".simulation.yaml").read_text(encoding="utf-8")
    path.with_name("RENAMED.simulation.yaml").write_text(plan, encoding="utf-8")
    return path


def test_the_simulator_uses_the_declared_stay_visit_reference_event_and_code_field(
    database_url: str, tmp_path: Path
) -> None:
    path = _write(tmp_path)
    loaded = load_protocol(path)
    engine = make_engine(database_url)
    init_trial(engine, loaded)
    summary = simulate(engine, path, None, seed=5, enrolled=8)
    assert summary.randomized == 8
    # Nothing was refused (no visit is attempted after a participant's withdrawal).
    assert summary.refusals == {}, summary.refusals
    zones = {s.code: ZoneInfo(s.timezone) for s in loaded.protocol.sites}
    with session_scope(engine) as session:
        site = dict(session.execute(select(participants.c.participant_id, participants.c.site)).all())
        allocated = {
            r.participant_id: r
            for r in session.execute(select(allocation_entries).where(allocation_entries.c.participant_id.is_not(None)))
        }
        forms = session.execute(
            select(visit_records.c.participant_id, visit_records.c.visit_id, visit_records.c.visit_date,
                   form_records.c.form_id, form_records.c.form_values)
            .join(form_records, form_records.c.visit_record_id == visit_records.c.id)
        ).all()  # fmt: skip
    stays, codes, baselines = 0, 0, 0
    for pid, visit, held_on, form, raw in forms:
        values = json.loads(raw)
        randomized = allocated[pid].randomized_at.astimezone(zones[site[pid]]).date()
        if form == "hospital_course" and (values.get("status") or {}).get("value") == "discharged":
            # The simulation file draws stays of 2 to 60 days, counted from the dosing day.
            assert visit == "end_of_stay" and held_on - randomized >= dt.timedelta(days=2), (pid, held_on)
            assert values["ended_on"]["value"] == held_on.isoformat()
            stays += 1
        if form == "administration":
            assert values["pack_code"]["value"] == allocated[pid].preparation_code
            codes += 1
        if visit == "baseline":
            baselines += 1
    assert stays >= 6 and codes >= 6 and baselines >= 8 * 5


def test_a_misspelt_simulation_key_is_refused_not_ignored(tmp_path: Path) -> None:
    plan = tmp_path / "t.simulation.yaml"
    plan.write_text("recruitment: {}\nscreening: {}\nfields: {}\ndeaths: 0.1\nadverse_events: {rates: 0.2}\n")
    with pytest.raises(SimulationError, match=r"unknown key deaths \(known: adverse_events, consent, death"):
        load_plan(plan)
    plan.write_text("recruitment: {}\nscreening: {}\nfields: {}\nadverse_events: {rates: 0.2}\n")
    known = r"\(known: action_taken, causality, expected, late, rate"
    with pytest.raises(SimulationError, match=rf"adverse_events: unknown key rates {known}"):
        load_plan(plan)


def test_a_simulated_death_is_reported_as_its_cause_never_as_death() -> None:
    """Death is the fatal adverse event's outcome: the plan names the event (the cause) as its term."""
    assert _death({"death": {"rate": 0.1, "term": "Respiratory failure"}})[:2] == (0.1, "Respiratory failure")
    assert _death({"death": 0})[0] == 0 and _death({})[0] == 0
    for plan in ({"death": 0.1}, {"death": {"rate": 0.1}}, {"death": {"rate": 0.1, "term": "Death (stroke)"}}):
        with pytest.raises(SimulationError, match="the cause of death"):
            _death(plan)


def test_an_expected_event_the_protocol_does_not_declare_is_refused() -> None:
    protocol = load_protocol(FIRST_PROTOCOL).protocol
    assert [code for code, _ in _expected(protocol, {"expected": {"infusion_related_reaction": {"rate": 0.1}}})] == [
        "infusion_related_reaction"]  # fmt: skip
    with pytest.raises(SimulationError, match="'nausea' is not an expected event of the protocol"):
        _expected(protocol, {"expected": {"nausea": {"rate": 0.1}}})


def _own_scale(document: Any) -> None:
    document.pop("languages", None)  # English only: the scale added here carries no Persian
    document["safety"]["causality_scale"] = "Two-category (trial's own)"
    document["safety"]["causality"] = [
        {"code": "related", "label": "Related", "related": True},
        {"code": "not_related", "label": "Not related", "related": False},
    ]


def test_simulated_events_use_the_protocols_causality_scale(database_url: str, tmp_path: Path) -> None:
    """A trial with its own two-category causality scale: every simulated adverse event is reported with its codes
    (the simulator once wrote WHO-UMC's 'possible' and 'unlikely', and every event was refused)."""
    path = tmp_path / "OWNSCALE.yaml"
    path.write_text(mutated_text(_own_scale, FIRST_PROTOCOL), encoding="utf-8")
    plan = FIRST_PROTOCOL.with_name(FIRST_PROTOCOL.stem + ".simulation.yaml").read_text(encoding="utf-8")
    plan = plan.replace("causality: {related: possible, unrelated: unlikely}", "causality: {}")
    path.with_name("OWNSCALE.simulation.yaml").write_text(plan, encoding="utf-8")
    engine = make_engine(database_url)
    init_trial(engine, load_protocol(path))
    summary = simulate(engine, path, None, seed=5, enrolled=12)
    assert summary.adverse_events > 0
    assert not [rule for rule in summary.refusals if "causality" in rule], summary.refusals
    protocol = load_protocol(path).protocol
    assert _causality_codes({}, protocol) == ("related", "not_related")
    with pytest.raises(SimulationError, match=r"causality.related: 'possible' is not on the protocol's causality"):
        _causality_codes({"adverse_events": {"causality": {"related": "possible"}}}, protocol)
    with pytest.raises(SimulationError, match=r"causality.unrelated: 'related' counts as related"):
        _causality_codes({"adverse_events": {"causality": {"unrelated": "related"}}}, protocol)
    engine.dispose()
