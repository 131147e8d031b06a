"""Synthetic trials through the real services: the same seed gives the same trial on SQLite and
PostgreSQL, the audit trail of a simulated trial verifies, a planted effect shows in the stored data and
an absent one does not, and the CLI prints its summary."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.cli.main import app as cli
from trialwright.protocol import load_protocol
from trialwright.services import audit
from trialwright.services.simulation import SimulationError, parse_effects, simulate
from trialwright.services.trial import init_trial
from trialwright.store.data_tables import form_records, visit_records
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.safety_tables import adverse_events, ae_reports
from trialwright.store.screening_tables import participants, screenings


def _trial(url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    init_trial(engine, load_protocol(FIRST_PROTOCOL))
    return engine


def _fingerprint(engine) -> str:  # type: ignore[no-untyped-def]
    """Everything a simulation stores that a person would compare: screenings, participants, allocations,
    visits, form values and adverse events (ids and hashes of the store left out)."""
    with session_scope(engine) as session:
        rows = {
            "screenings": [(r.site, str(r.screened_on), r.decision, r.screening_values)
                           for r in session.execute(select(screenings).order_by(screenings.c.id))],
            "participants": [(r.participant_id, r.site, r.enrolled_at.isoformat())
                             for r in session.execute(select(participants).order_by(participants.c.participant_id))],
            "allocations": [(r.participant_id, r.arm, r.randomization_number, r.randomized_at.isoformat())
                            for r in session.execute(select(allocation_entries).where(
                                allocation_entries.c.participant_id.is_not(None))
                                .order_by(allocation_entries.c.randomization_number))],
            "forms": [(r.participant_id, r.visit_id, str(r.visit_date), r.form_id, r.state, r.form_values)
                      for r in session.execute(select(visit_records.c.participant_id, visit_records.c.visit_id,
                                                      visit_records.c.visit_date, form_records.c.form_id,
                                                      form_records.c.state, form_records.c.form_values)
                                               .join(form_records, visit_records.c.id == form_records.c.visit_record_id)
                                               .order_by(form_records.c.id))],
            "events": [(e.ae_number, e.participant_id, r.sequence, r.assessment)
                       for e, r in [(e, r) for e in session.execute(select(adverse_events)).all()
                                    for r in session.execute(select(ae_reports).where(ae_reports.c.event_id == e.id))]],
        }  # fmt: skip
    # Preparation codes come from the system's secure random source (they must not be guessable), so they
    # are the one thing that differs between two runs of the same seed.
    return re.sub(r"P-[0-9A-F]{6}", "P-code", json.dumps(rows, sort_keys=True, default=str))


def test_the_same_seed_gives_the_same_trial_on_both_databases(database_url: str, tmp_path: Path) -> None:
    here = _trial(database_url)
    reference = _trial(f"sqlite:///{tmp_path / 'reference.db'}")
    first = simulate(here, FIRST_PROTOCOL, 14, seed=21)
    second = simulate(reference, FIRST_PROTOCOL, 14, seed=21)
    assert first.screened == 14 and first.randomized >= 1 and first.forms_saved > 50
    assert (first.enrolled, first.randomized, first.forms_saved, first.adverse_events) == (
        second.enrolled, second.randomized, second.forms_saved, second.adverse_events)  # fmt: skip
    assert _fingerprint(here) == _fingerprint(reference)
    report = audit.verify(here)
    assert report.ok and report.count > 500
    other = _trial(f"sqlite:///{tmp_path / 'other.db'}")
    simulate(other, FIRST_PROTOCOL, 14, seed=22)
    assert _fingerprint(other) != _fingerprint(reference)  # a different seed, a different trial


def _day7(engine, field: str) -> dict[bool, list[float]]:  # type: ignore[no-untyped-def]
    """Day-7 values of a lab field per arm (True = the experimental arm)."""
    with session_scope(engine) as session:
        arms = dict(
            session.execute(
                select(allocation_entries.c.participant_id, allocation_entries.c.arm).where(
                    allocation_entries.c.participant_id.is_not(None)
                )
            )
            .tuples()
            .all()
        )
        rows = session.execute(
            select(visit_records.c.participant_id, form_records.c.form_values)
            .join(form_records, visit_records.c.id == form_records.c.visit_record_id)
            .where(visit_records.c.visit_id == "day7", form_records.c.form_id == "labs")
        ).all()  # fmt: skip
    out: dict[bool, list[float]] = {True: [], False: []}
    for pid, values in rows:
        stored = json.loads(values).get(field)
        if stored and stored.get("status") == "value":
            out[arms[pid] == "EXO"].append(float(stored["value"]))
    return out


def test_a_planted_effect_is_in_the_stored_data_and_an_absent_one_is_not(tmp_path: Path) -> None:
    planted, plain = _trial(f"sqlite:///{tmp_path / 'planted.db'}"), _trial(f"sqlite:///{tmp_path / 'plain.db'}")
    simulate(planted, FIRST_PROTOCOL, None, seed=5, enrolled=24, effects={"labs.il6": 500.0})
    simulate(plain, FIRST_PROTOCOL, None, seed=5, enrolled=24)
    with_effect, without = _day7(planted, "il6"), _day7(plain, "il6")
    assert min(len(v) for v in (*with_effect.values(), *without.values())) >= 5
    # IL-6 is log-normal(3.7, 0.9): mean about 60 pg/mL, SD about 70; +500 stands far above that noise.
    assert statistics.mean(with_effect[True]) - statistics.mean(with_effect[False]) > 300
    assert abs(statistics.mean(without[True]) - statistics.mean(without[False])) < 150
    # The same seed: the control arm's values are the same with and without the planted effect.
    assert sorted(with_effect[False]) == sorted(without[False])


def test_bad_requests_are_named() -> None:
    with pytest.raises(SimulationError, match=r"FORM\.FIELD=NUMBER"):
        parse_effects(["il6"])
    assert parse_effects(["labs.il6=-40"]) == {"labs.il6": -40.0}


def test_simulate_from_the_command_line(database_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(cli, ["simulate", "--protocol", str(FIRST_PROTOCOL), "--participants", "6", "--seed", "4",
                               "--database", database_url])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "Simulated trial" in done.output and "screened per second" in done.output
    verified = runner.invoke(cli, ["audit", "verify", "--database", database_url])
    assert verified.exit_code == 0 and "intact" in verified.output
    bad = runner.invoke(cli, ["simulate", "--protocol", str(FIRST_PROTOCOL), "--effect", "labs.nope=3",
                              "--database", database_url])  # fmt: skip
    assert bad.exit_code == 1 and "effect: 'labs.nope' is not a form.field of the protocol" in bad.output


SECOND_PROTOCOL = FIRST_PROTOCOL.with_name("EXAMPLE-CAP-3ARM.yaml")


def test_a_second_protocol_with_another_design_simulates_without_code_changes(database_url: str) -> None:
    from trialwright.services.safety import safety_tables
    from trialwright.services.users import get_user

    engine = make_engine(database_url)
    init_trial(engine, load_protocol(SECOND_PROTOCOL))
    summary = simulate(engine, SECOND_PROTOCOL, 30, seed=8)
    assert summary.randomized >= 9 and summary.forms_saved > 60
    with session_scope(engine) as session:
        arms = set(session.execute(select(allocation_entries.c.arm).where(
            allocation_entries.c.participant_id.is_not(None))).scalars())  # fmt: skip
        sites = set(session.execute(select(participants.c.site)).scalars())
    assert arms == {"LOW", "HIGH", "PBO"} and sites == {"NTH", "STH"}  # minimization across three arms
    assert audit.verify(engine).ok
    monitor = get_user(engine, "sim-monitor")
    assert monitor is not None
    # This protocol lets the blinded team see safety in unnamed groups.
    assert safety_tables(engine, monitor).groups == ("Group A", "Group B", "Group C")
