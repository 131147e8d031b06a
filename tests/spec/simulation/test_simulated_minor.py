"""A simulated representative of a participant below the age of consent is a parent, not a spouse, and a minor is
never simulated consenting for themselves (the consent service refuses it: ``eligibility.assent.consent_age``). On
SQLite and PostgreSQL.

The first protocol is given ``eligibility.assent: {from_age: 18, unit: years, age_field: age, consent_age: 50}`` so
that its simulated adults (ages drawn around 52) fall both sides of the age of consent:

| simulated patient          | consent                                                            |
|----------------------------|--------------------------------------------------------------------|
| age below 50               | always a representative's, relationship ``parent``, with assent    |
| age 50 or more             | the participant's own or (as drawn) a representative's, ``spouse`` |
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import FIRST_PROTOCOL, make_trial
from trialwright.protocol import load_protocol_text
from trialwright.services.simulation import simulate
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import consents, screenings


def _with_assent(document: Any) -> None:
    document["eligibility"]["assent"] = {"from_age": 18, "unit": "years", "age_field": "age", "form_versions": ["A1"],
                                         "consent_age": 50}  # fmt: skip


def test_a_minors_simulated_representative_is_a_parent(database_url: str, tmp_path: Path) -> None:
    text = mutated_text(_with_assent)
    path = tmp_path / "kids.yaml"
    path.write_text(text, encoding="utf-8")
    shutil.copy(FIRST_PROTOCOL.with_name(FIRST_PROTOCOL.stem + ".simulation.yaml"), tmp_path / "kids.simulation.yaml")
    trial = make_trial(database_url, load_protocol_text(text))
    try:
        simulate(trial.engine, path, 24, seed=5)
        with session_scope(trial.engine) as session:
            rows = session.execute(
                select(consents.c.given_by, consents.c.representative_relationship, consents.c.assent,
                       screenings.c.screening_values).join(screenings, screenings.c.id == consents.c.screening_id)
            ).all()  # fmt: skip
    finally:
        trial.engine.dispose()
    ages = [(json.loads(r.screening_values)["age"], r) for r in rows]
    minors = [r for age, r in ages if age < 50]
    adults = [r for age, r in ages if age >= 50]
    assert minors and adults
    assert all((r.given_by, r.representative_relationship, r.assent) == ("representative", "parent", "given")
               for r in minors)  # fmt: skip
    assert all(r.representative_relationship == ("spouse" if r.given_by == "representative" else None)
               for r in adults)  # fmt: skip
    assert {r.given_by for r in adults} == {"participant", "representative"}
