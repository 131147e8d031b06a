"""A simulated trial whose protocol seeks a child's assent records it with every representative's consent of a
participant of assent age (given, to the coordinator who takes the consent, on the latest assent form), through the
consent service's own rule: before, every such consent was refused and the simulation stopped half-way. On SQLite
and PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import FIRST_PROTOCOL, make_trial
from trialwright.protocol import load_protocol_text
from trialwright.services.simulation import simulate
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import consents


def _with_assent(document: Any) -> None:  # the first protocol's adults are all of this assent age
    document["eligibility"]["assent"] = {"from_age": 18, "unit": "years", "age_field": "age", "form_versions": ["A1"],
                                         "consent_age": 21}  # fmt: skip


def test_a_simulated_representatives_consent_carries_the_childs_assent(database_url: str, tmp_path: Path) -> None:
    text = mutated_text(_with_assent)
    path = tmp_path / "kids.yaml"
    path.write_text(text, encoding="utf-8")
    shutil.copy(FIRST_PROTOCOL.with_name(FIRST_PROTOCOL.stem + ".simulation.yaml"), tmp_path / "kids.simulation.yaml")
    trial = make_trial(database_url, load_protocol_text(text))
    try:
        summary = simulate(trial.engine, path, 16, seed=5)
        with session_scope(trial.engine) as session:
            rows = session.execute(select(consents.c.given_by, consents.c.assent, consents.c.assent_obtained_by,
                                          consents.c.assent_form_version)).all()  # fmt: skip
    finally:
        trial.engine.dispose()
    by_representative = [r for r in rows if r.given_by == "representative"]
    assert summary.by_representative == len(by_representative) > 0
    assert all((r.assent, r.assent_obtained_by, r.assent_form_version) == ("given", "Dr Sim", "A1")
               for r in by_representative)  # fmt: skip
    assert all(r.assent is None for r in rows if r.given_by == "participant")
