"""A form's save recomputes every derived value of its visit (each save states the derived values as a fresh one
would, with their audit entries). A derived value that comes out the very same as the one stored is the stored
value, not a copy: the forms it belongs to are unchanged, so their JSON is not built again and they are not
rewritten. Only the saved form's values are written to JSON.

The derived values are checked against the ratios worked out here (P/F = PaO2 / FiO2, S/F = SpO2 / FiO2), on SQLite
and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
from sqlalchemy import select

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.trialfixtures import Trial, make_trial, who
from trialwright.domain.forms import StoredValue
from trialwright.domain.roles import Role
from trialwright.services import forms as svc
from trialwright.services.forms import common
from trialwright.store.engine import session_scope
from trialwright.store.tables import audit_entries


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


def _trail_since(trial: Trial, seq: int) -> list[tuple[str | None, str | None, str]]:
    with session_scope(trial.engine) as session:
        rows = session.execute(select(audit_entries).where(audit_entries.c.seq > seq).order_by(audit_entries.c.seq))
        return [(r.form, r.field, r.action) for r in rows]


def _last_seq(trial: Trial) -> int:
    with session_scope(trial.engine) as session:
        return int(session.execute(select(audit_entries.c.seq).order_by(audit_entries.c.seq.desc())).scalars().first())


def test_a_save_builds_only_its_own_forms_json_when_the_visits_derived_values_stay_the_same(
    trial: Trial, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = enrolled_ten_days_ago(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "vitals", {"spo2": 90})
    gas = svc.save_form(trial.engine, coordinator, pid, "baseline", "blood_gas", {"pao2": 80, "fio2": 0.5})
    assert gas.values["pf_ratio"].value == pytest.approx(80 / 0.5)
    assert gas.values["sf_ratio"].value == pytest.approx(90 / 0.5)

    built: list[Mapping[str, StoredValue]] = []
    real = common.dump_values

    def counted(values: Mapping[str, StoredValue]) -> str:
        built.append(dict(values))
        return real(values)

    monkeypatch.setattr(common, "dump_values", counted)
    seq = _last_seq(trial)
    labs = svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {"crp": 12})
    assert labs.values["crp"].value == 12
    # The visit's derived values were recomputed and came out the same: only the labs form's JSON is built.
    assert built and all(set(values) <= {"crp", "cd4_cd8_ratio"} for values in built), built
    assert _trail_since(trial, seq) == [("labs", "crp", "form.value_entered")]
    gas_now = svc.get_form(trial.engine, coordinator, pid, "baseline", "blood_gas")
    assert gas_now is not None and gas_now.version == gas.version and gas_now.values == gas.values

    # An input that changes still re-derives what reads it, in this form and the others, each audited.
    built.clear()
    seq = _last_seq(trial)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "vitals", {"spo2": 92})
    gas_now = svc.get_form(trial.engine, coordinator, pid, "baseline", "blood_gas")
    assert gas_now is not None
    assert gas_now.values["sf_ratio"].value == pytest.approx(92 / 0.5)
    assert gas_now.values["pf_ratio"].value == pytest.approx(80 / 0.5)
    assert _trail_since(trial, seq) == [
        ("vitals", "spo2", "form.value_changed"),
        ("blood_gas", "sf_ratio", "form.value_derived"),
    ]
    assert any("sf_ratio" in values for values in built)
