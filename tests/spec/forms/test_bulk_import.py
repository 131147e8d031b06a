"""The bulk form import (``import_forms``: ``trialwright form import``, the API's import) on both databases.

It is the one-form save run row by row with two economies that must change no outcome: what no form save can
change (the participant, their consent, randomization, withdrawal, adverse events, the locks) is read once per
participant, and the audit entries of a batch of rows are written with one INSERT. So:

- the same rows give the same stored values (derived ones too), visits, queries and audit entries (action,
  actor, role, site, form, field, old and new value, reason, detail; in the same order) whether they are
  imported in batches or saved one by one with ``save_form``;
- a refused row is reported with its row number, the field and the rule; by default (all or nothing) nothing
  of the import is stored, not even the good rows of its batch; with ``all_or_nothing=False`` every other row
  of every batch is stored and only the refused row is missing;
- what a form save can change and the import keeps in memory (a visit's row, the visit's forms, the records
  that say a participant died) is what the database holds for every row: after a refused row undid the visit
  it had recorded, and after a row that recorded a death.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from tests.spec.forms.conftest import CONSENTED_AT, ENROLLED_AT, enrolled_ten_days_ago, randomized_days_ago
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import forms as svc
from trialwright.store.data_tables import form_records, queries, visit_records
from trialwright.store.engine import session_scope
from trialwright.store.tables import audit_entries

TEHRAN = ZoneInfo("Asia/Tehran")
AT = ENROLLED_AT + dt.timedelta(hours=2)  # on the enrolment day at the site, after the consent
STAMP = AT.astimezone(TEHRAN).isoformat(timespec="minutes")
DAY = AT.astimezone(TEHRAN).date()


def rows_for(pid: str) -> list[dict[str, Any]]:
    """Five forms at baseline: derivations across forms (P/F, NEWS2), a soft-limit query, a value corrected."""
    return [
        {"participant": pid, "visit": "baseline", "form": "vitals", "visit_date": DAY.isoformat(), "values": {
            "assessed_at": STAMP, "resp_rate": 22, "spo2": 93, "on_oxygen": True, "systolic_bp": 120, "pulse": 90,
            "consciousness": "alert", "temperature": 37.5, "fio2": 0.3}},
        {"participant": pid, "visit": "baseline", "form": "blood_gas", "values": {
            "sampled_at": STAMP, "pao2": 70, "paco2": 40, "ph": 7.4, "fio2": 0.3,
            "support_mode": "conventional_oxygen", "peep": 0}},
        {"participant": pid, "visit": "baseline", "form": "labs", "values": {"sampled_at": STAMP, "crp": 450}},
        {"participant": pid, "visit": "baseline", "form": "vitals", "values": {"resp_rate": 26, "spo2": 91}},
        {"participant": pid, "visit": "baseline", "form": "labs", "values": {"crp": 120, "ddimer": 1.5}},
    ]  # fmt: skip


def save_one_by_one(trial: Trial, rows: list[dict[str, Any]]) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    for row in rows:
        day = row.get("visit_date")
        svc.save_form(trial.engine, coordinator, row["participant"], row["visit"], row["form"], row["values"],
                      visit_date=dt.date.fromisoformat(day) if day else None)  # fmt: skip


def _without_ids(text: str | None) -> Any:
    value = json.loads(text) if text else None
    if isinstance(value, dict):
        value.pop("query", None)  # a query's row id
    return value


def stored(trial: Trial, pid: str, since: int = 0) -> dict[str, Any]:
    """What a participant's saves left (audit entries after ``since``), without times and row ids (and with the
    participant id as ``P``)."""
    with session_scope(trial.engine) as session:
        visits = session.execute(
            select(visit_records.c.visit_id, visit_records.c.visit_date)
            .where(visit_records.c.participant_id == pid).order_by(visit_records.c.visit_id)
        ).all()  # fmt: skip
        forms = session.execute(
            select(form_records.c.form_id, form_records.c.state, form_records.c.form_values, form_records.c.version)
            .where(form_records.c.participant_id == pid).order_by(form_records.c.form_id)
        ).all()  # fmt: skip
        raised = session.execute(
            select(queries.c.field, queries.c.origin, queries.c.check_id, queries.c.text, queries.c.status)
            .where(queries.c.participant_id == pid).order_by(queries.c.id)
        ).all()  # fmt: skip
        trail = session.execute(
            select(audit_entries)
            .where(audit_entries.c.participant == pid, audit_entries.c.seq > since)
            .order_by(audit_entries.c.seq)
        ).all()
    return json.loads(json.dumps({
        "visits": [tuple(v) for v in visits],
        "forms": [(f.form_id, f.state, json.loads(f.form_values), f.version) for f in forms],
        "queries": [tuple(q) for q in raised],
        "trail": [(e.action, e.actor, e.role, e.site, e.form, e.field, _without_ids(e.old_value),
                   _without_ids(e.new_value), e.reason, _without_ids(e.detail)) for e in trail],
    }, default=str).replace(pid, "P"))  # fmt: skip


@pytest.mark.parametrize(("batch", "all_or_nothing"), [(2, True), (500, True), (2, False)])
def test_the_batched_import_stores_what_one_by_one_saves_store(trial: Trial, batch: int, all_or_nothing: bool) -> None:
    """All or nothing, the rows run without savepoints (a refusal starts again with them); partial, with."""
    slow, fast = enrolled_ten_days_ago(trial), enrolled_ten_days_ago(trial)
    enrolled = head(trial)  # their screening, consent and enrolment differ (numbers): compared from here on
    save_one_by_one(trial, rows_for(slow))
    report = svc.import_forms(
        trial.engine, who(trial, Role.STUDY_COORDINATOR), rows_for(fast), batch=batch, all_or_nothing=all_or_nothing
    )
    assert report == svc.ImportReport(5, ())
    one_by_one, imported = stored(trial, slow, enrolled), stored(trial, fast, enrolled)
    assert imported == one_by_one
    # Not equal by being empty: the rows made derived values, a query and a trail of every value.
    actions = [entry[0] for entry in imported["trail"]]
    assert actions.count("form.value_entered") == 9 + 7 + 2 + 1 and actions.count("form.value_changed") == 3
    assert "form.value_derived" in actions and "query.raised" in actions and "visit.held" in actions
    assert [q[:2] for q in imported["queries"]][:1] == [["crp", "soft_limit"]]
    vitals = dict((f[0], f[2]) for f in imported["forms"])["vitals"]
    assert vitals["resp_rate"]["value"] == 26 and vitals["news2"]["status"] == "derived"
    assert CONSENTED_AT < AT


def test_a_refused_row_names_row_field_and_rule_and_its_batch_is_not_dropped(trial: Trial) -> None:
    pid = enrolled_ten_days_ago(trial)
    enrolled = head(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    rows = rows_for(pid)
    before_consent = (CONSENTED_AT - dt.timedelta(minutes=30)).astimezone(TEHRAN)
    rows[1] = {**rows[1], "values": {**rows[1]["values"], "sampled_at": before_consent.isoformat(timespec="minutes")}}
    rows[2] = {**rows[2], "values": {"crp": 900}}
    report = svc.import_forms(trial.engine, coordinator, rows, batch=2)  # rows 1-2, 3-4, 5: a bad row in two
    assert report.saved == 0 and [index for index, _ in report.rejected] == [2, 3]
    (consent,), (crp,) = (problems for _, problems in report.rejected)
    assert consent.startswith(f"blood_gas.sampled_at: {before_consent:%Y-%m-%d %H:%M} is before the consent")
    assert crp == "crp: 900 mg/L is outside the accepted range 0-600 mg/L"
    assert stored(trial, pid, enrolled) == {"visits": [], "forms": [], "queries": [], "trail": []}  # all or nothing
    partial = svc.import_forms(trial.engine, coordinator, rows, all_or_nothing=False, batch=2)
    assert partial.saved == 3 and [index for index, _ in partial.rejected] == [2, 3]
    kept = stored(trial, pid, enrolled)
    assert [f[0] for f in kept["forms"]] == ["labs", "vitals"]  # row 1 (batch 1), rows 4 and 5 (batches 2, 3)
    labs = dict((f[0], f[2]) for f in kept["forms"])["labs"]
    assert labs["crp"]["value"] == 120 and labs["ddimer"]["value"] == 1.5
    entered = [(e[4], e[5]) for e in kept["trail"] if e[0] == "form.value_entered"]
    assert ("blood_gas", "pao2") not in entered and ("labs", "crp") in entered and ("vitals", "spo2") in entered
    (summary,) = [e for e in svc_entries(trial) if e.action == "form.bulk_import"]
    assert json.loads(summary.detail or "{}") == {"rows": 5, "saved": 3, "rejected": [2, 3]}


def test_a_row_that_is_not_a_form_is_refused_never_read_as_an_empty_one(trial: Trial) -> None:
    """A row with no values, an unknown key, or naming nothing that exists is refused with what is wrong; none of
    them makes an empty draft or records a visit as held today."""
    pid = enrolled_ten_days_ago(trial)
    enrolled = head(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    rows: list[Any] = [
        {"participant": pid, "visit": "day7", "form": "labs"},
        {"participant": pid, "visit": "day7", "form": "labs", "values": {}},
        {"participant": pid, "visit": "day7", "form": "labs", "values": {"crp": 40}, "colour": "blue"},
        {"participant": "RAZ-999", "visit": "day7", "form": "labs", "values": {"crp": 40}},
        "not a row",
    ]
    report = svc.import_forms(trial.engine, coordinator, rows, all_or_nothing=False)
    assert report.saved == 0
    assert dict(report.rejected) == {
        1: ("values: missing",),
        2: ("values: must be a non-empty object of field values",),
        3: ("colour: unknown key (known: participant, visit, form, values, reason, visit_date)",),
        4: ("no such participant (participant RAZ-999, visit day7, form labs)",),
        5: ("row: must be an object with participant, visit, form, values",),
    }
    assert stored(trial, pid, enrolled) == {"visits": [], "forms": [], "queries": [], "trail": []}


def test_a_visit_a_refused_row_recorded_is_recorded_again_by_the_next_row(trial: Trial) -> None:
    """The first row holds the visit, then is refused (a time before the consent) and its savepoint undoes the
    visit; the next row of that visit records it afresh, and its form belongs to it."""
    pid = enrolled_ten_days_ago(trial)
    enrolled = head(trial)
    before_consent = (CONSENTED_AT - dt.timedelta(minutes=30)).astimezone(TEHRAN).isoformat(timespec="minutes")
    first, second = rows_for(pid)[:2]
    rows = [
        {**first, "values": {**first["values"], "assessed_at": before_consent}},
        {**second, "visit_date": DAY.isoformat()},
    ]
    report = svc.import_forms(trial.engine, who(trial, Role.STUDY_COORDINATOR), rows, all_or_nothing=False)
    assert report.saved == 1 and [index for index, _ in report.rejected] == [1]
    kept = stored(trial, pid, enrolled)
    assert kept["visits"] == [["baseline", DAY.isoformat()]] and [f[0] for f in kept["forms"]] == ["blood_gas"]
    assert [e[0] for e in kept["trail"]].count("visit.held") == 1
    with session_scope(trial.engine) as session:
        orphans = session.execute(
            select(func.count()).select_from(form_records)
            .where(form_records.c.visit_record_id.not_in(select(visit_records.c.id)))
        ).scalar_one()  # fmt: skip
    assert orphans == 0


def test_a_death_one_row_records_closes_the_visits_after_it_for_the_rows_after_it(trial: Trial) -> None:
    """Row 1 (day 1) reads the participant's death records (none); row 2 records the death at discharge; row 3,
    at a visit after the death and without a reason, is refused as a separate save would be."""
    pid = enrolled_ten_days_ago(trial)
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    infusion = randomized_days_ago(trial, pid, 8).astimezone(TEHRAN)
    started = (infusion + dt.timedelta(hours=1)).isoformat(timespec="minutes")
    svc.save_form(trial.engine, coordinator, pid, "infusion", "administration", {"started_at": started},
                  visit_date=infusion.date())  # fmt: skip
    day = infusion.date()
    day1, died, day3 = (day + dt.timedelta(days=n) for n in (1, 2, 3))
    admitted = day - dt.timedelta(days=3)
    rows = [
        {"participant": pid, "visit": "day1", "form": "vitals", "visit_date": day1.isoformat(),
         "values": {"resp_rate": 22}},
        {"participant": pid, "visit": "discharge", "form": "hospital_course", "visit_date": died.isoformat(),
         "values": {"admitted_on": admitted.isoformat(), "status": "died", "ended_on": died.isoformat()}},
        {"participant": pid, "visit": "day3", "form": "performance", "visit_date": day3.isoformat(),
         "values": {"status": "3"}},
    ]  # fmt: skip
    report = svc.import_forms(trial.engine, coordinator, rows, all_or_nothing=False)
    assert report.saved == 2
    assert report.rejected == ((3, (
        f"visit_date: day3 on {day3.isoformat()} is after the participant's death on {died.isoformat()} "
        "(hospital_course.status at discharge); a form after death needs a reason",
    )),)  # fmt: skip


def head(trial: Trial) -> int:
    with session_scope(trial.engine) as session:
        return int(session.execute(select(func.max(audit_entries.c.seq))).scalar() or 0)


def svc_entries(trial: Trial) -> list[Any]:
    with session_scope(trial.engine) as session:
        return list(session.execute(select(audit_entries).order_by(audit_entries.c.seq)).all())
