"""Declared derivations on the data-collection path, on SQLite and PostgreSQL: saving a form computes
them (across the forms of the visit, derived inputs first), stores the value or the reason there is
none, and audits every change as ``form.value_derived``, as for the named clinical scores.

The protocol is the first trial's with the SOFA and EQ-5D-5L fragments (``fragments.py``) collected at
baseline, and a yes/no field choosing the NEWS2 SpO2 scale.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update

from tests.spec.derivations.fragments import EQ5D_FORM, SOFA_FORM, field_of, with_forms
from tests.spec.randomization.test_randomize_service import enrolled
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.forms import StoredValue
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import participants


def _scale_field(doc: Any) -> None:
    fields = next(f for f in doc["forms"] if f["id"] == "vitals")["fields"]
    fields.append({"id": "target_88_92", "label": "Target SpO2 88-92% prescribed", "type": "boolean"})
    news2 = field_of(doc, "vitals", "news2")["derived"]
    news2["inputs"] = {**news2["inputs"], "spo2_scale2": "target_88_92"}


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    loaded = load_protocol_text(with_forms(SOFA_FORM, EQ5D_FORM, mutate=_scale_field))
    t = make_trial(database_url, loaded)
    yield t
    t.engine.dispose()


@pytest.fixture
def pid(trial: Trial) -> str:
    participant = enrolled(trial)
    with session_scope(trial.engine) as session:
        session.execute(
            update(participants)
            .where(participants.c.participant_id == participant)
            .values(enrolled_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=10))
        )
    return participant


def values(trial: Trial, pid: str, form: str) -> dict[str, StoredValue]:
    view = svc.get_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", form)
    assert view is not None
    return dict(view.values)


SOFA_ENTRIES = {"platelets": 90, "bilirubin": 2.5, "cardiovascular": "map_lt_70", "gcs": 13, "creatinine": 1.5,
                "urine_output": 450}  # fmt: skip


def test_a_sofa_total_is_computed_across_the_visits_forms(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "sofa", SOFA_ENTRIES)
    sofa = values(trial, pid, "sofa")
    # The respiration band reads blood_gas.pf_ratio, not entered yet: no total, and the reason says so.
    assert sofa["respiration"] == StoredValue(
        None, "derived", reason="not computed: missing blood_gas.pf_ratio (empty)"
    )
    assert sofa["sofa_total"] == StoredValue(None, "derived", reason="not computed: missing respiration (not computed)")
    assert sofa["coagulation"].value == 2 and sofa["renal"].value == 3
    # PaO2 72 / FiO2 0.4 = 180 (P/F, a named derivation) scores 3: the total follows the other form.
    svc.save_form(trial.engine, coordinator, pid, "baseline", "blood_gas", {"pao2": 72, "fio2": 0.4})
    sofa = values(trial, pid, "sofa")
    got = {k: sofa[k].value for k in ("respiration", "coagulation", "liver", "cardiovascular_points", "cns",
                                       "renal", "sofa_total", "organ_failures")}  # fmt: skip
    assert got == {"respiration": 3, "coagulation": 2, "liver": 2, "cardiovascular_points": 1, "cns": 1,
                   "renal": 3, "sofa_total": 12, "organ_failures": 2}  # fmt: skip
    assert all(sofa[k].status == "derived" and sofa[k].reason is None for k in got)
    entries = [e for e in audit.entries(trial.engine, action_prefix="form.value_derived") if e.field == "sofa_total"]
    entries.reverse()  # oldest first
    assert [json.loads(e.new_value or "{}").get("value") for e in entries] == [None, 12]
    assert json.loads(entries[0].new_value or "{}")["reason"].startswith("not computed: missing respiration")
    assert (
        entries[-1].actor == "trialwright" and json.loads(entries[-1].detail or "{}")["because"] == "blood_gas changed"
    )


def test_missing_inputs_follow_the_declared_rule(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "blood_gas", {"pao2": 72, "fio2": 0.4})
    entries = {**SOFA_ENTRIES, "gcs": {"not_done": "sedated"}}
    del entries["urine_output"]
    svc.save_form(trial.engine, coordinator, pid, "baseline", "sofa", entries)
    sofa = values(trial, pid, "sofa")
    # renal: max of the two criteria with min_present 1, so creatinine alone gives it, with a note.
    assert sofa["renal"] == StoredValue(1, "derived", reason="from 1 of 2 inputs; missing renal_urine (not computed)")
    assert sofa["cns"] == StoredValue(None, "derived", reason="not computed: missing gcs (not done)")
    assert sofa["sofa_total"].value is None  # refuse: never a silent zero for the CNS
    assert sofa["sofa_total"].reason == "not computed: missing cns (not computed)"
    svc.save_form(trial.engine, coordinator, pid, "baseline", "sofa", {"gcs": 13})
    assert values(trial, pid, "sofa")["sofa_total"] == StoredValue(3 + 2 + 2 + 1 + 1 + 1, "derived")


def test_an_eq5d_index_from_the_protocols_value_set(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    # State 23245: 1 - (0.058 + 0.080 + 0.050 + 0.276 + 0.289) = 0.247 (England, Devlin et al. 2018).
    levels = {"mobility": "2", "self_care": "3", "usual_activities": "2", "pain_discomfort": "4",
              "anxiety_depression": "5"}  # fmt: skip
    svc.save_form(trial.engine, coordinator, pid, "baseline", "eq5d", levels)
    assert values(trial, pid, "eq5d")["index"] == StoredValue(0.247, "derived")
    svc.save_form(trial.engine, coordinator, pid, "baseline", "eq5d", {"anxiety_depression": None})
    assert values(trial, pid, "eq5d")["index"] == StoredValue(
        None, "derived", reason="not computed: missing anxiety_depression (empty)"
    )


VITALS = {"resp_rate": 16, "on_oxygen": False, "systolic_bp": 120, "pulse": 70, "consciousness": "alert",
          "temperature": 37.0}  # fmt: skip


@pytest.mark.parametrize(("target", "spo2", "on_oxygen", "news2"), [
    (True, 88, False, 0),   # in the prescribed 88-92% target: 0 on scale 2
    (False, 88, False, 3),  # the same reading on scale 1: <=91 scores 3
    (True, 97, True, 3 + 2),  # scale 2, >=97 on oxygen: 3, plus 2 for oxygen
    (False, 97, True, 0 + 2),
])  # fmt: skip
def test_news2_scores_spo2_on_the_scale_the_protocol_field_chooses(
    trial: Trial, pid: str, target: bool, spo2: int, on_oxygen: bool, news2: int
) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    entries = {**VITALS, "spo2": spo2, "on_oxygen": on_oxygen, "target_88_92": target}
    svc.save_form(trial.engine, coordinator, pid, "baseline", "vitals", entries)
    stored = values(trial, pid, "vitals")["news2"]
    assert stored.value == news2 and stored.components is not None
    assert stored.components["spo2"] == news2 - (2 if on_oxygen else 0)


def test_news2_waits_for_the_scale_field(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "vitals", {**VITALS, "spo2": 88})
    assert "news2" not in values(trial, pid, "vitals")  # not guessed as scale 1
