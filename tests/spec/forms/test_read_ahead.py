"""Reading ahead for a bulk import's batch (``services/forms/read_ahead.py``), on both databases.

The batch's participants are looked up with one statement per kind; every answer must be the very answer the
save path's own look-up would have given, under the very key it would have used, so that the import decides
exactly as one-by-one saves do. Here the participants differ in what the look-ups read: one with visits, forms,
a randomization, a dose infused and an adverse event; one withdrawn from follow-up; one soft-locked; one with
nothing yet; and one the rows name that does not exist.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, event

from tests.spec.forms.conftest import CONSENTED_AT, enrolled_ten_days_ago, randomized_days_ago
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.bulk_reads import answers, reading_once
from trialwright.services.coherence import participant_facts
from trialwright.services.deaths import death_of
from trialwright.services.errors import FormError
from trialwright.services.forms.checks import _derive_all
from trialwright.services.forms.common import _visit_forms, _visit_row, _withdrawn
from trialwright.services.forms.read_ahead import look_ahead, read_ahead
from trialwright.services.forms.visits import _references
from trialwright.services.lock import require_unlocked, soft_lock
from trialwright.services.safety import report_event
from trialwright.services.screening import NotFound, participant_row, withdraw
from trialwright.services.trial import current_protocol
from trialwright.store.engine import session_scope
from trialwright.store.screening_tables import participants

TEHRAN = ZoneInfo("Asia/Tehran")


def plain(value: Any) -> Any:
    """Rows as tuples, inside lists and mappings, so that an answer compares by what it holds."""
    if isinstance(value, Row | tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def participants_in_every_state(trial: Trial) -> list[str]:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    busy, gone, locked, fresh = (enrolled_ten_days_ago(trial) for _ in range(4))
    infused = randomized_days_ago(trial, busy, 8).astimezone(TEHRAN)
    started = (infused + dt.timedelta(hours=1)).isoformat(timespec="minutes")
    svc.save_form(trial.engine, coordinator, busy, "infusion", "administration", {"started_at": started},
                  visit_date=infused.date())  # fmt: skip
    at = (CONSENTED_AT + dt.timedelta(hours=2)).astimezone(TEHRAN)
    svc.save_form(trial.engine, coordinator, busy, "baseline", "vitals", {"assessed_at": at.isoformat(), "spo2": 93},
                  visit_date=at.date())  # fmt: skip
    report_event(trial.engine, who(trial, Role.INVESTIGATOR), busy, {
        "term": "Headache", "onset": infused.date().isoformat(), "grade": 1, "serious": False, "causality": "unlikely",
        "action_taken": "not_applicable", "outcome": "recovered", "aware_at": infused.isoformat(),
    })  # fmt: skip
    withdraw(trial.engine, coordinator, gone, scope="follow_up", cause="withdrew_consent", reason="moved away",
             withdrawn_on=None)  # fmt: skip
    soft_lock(trial.engine, who(trial, Role.DATA_MANAGER), "cleaning", participant_id=locked)
    return [busy, gone, locked, fresh, "RAZ-999"]


def look_ups_one_by_one(session: Any, protocol: Any, pids: list[str], actor: Any) -> None:
    """What the save path reads about each participant, each by its own look-up."""
    for pid in pids:
        try:
            row = participant_row(session, actor, pid)
        except NotFound:
            continue
        with contextlib.suppress(FormError):
            _withdrawn(session, pid)
        with contextlib.suppress(FormError):
            require_unlocked(session, pid, site=row.site)
        participant_facts(session, protocol, row)
        _references(session, protocol, row)
        death_of(session, protocol, pid)
        _derive_all(session, protocol, row, None, {})  # reads the screening's values
        for visit in protocol.visits:
            visit_row = _visit_row(session, pid, visit.id)
            if visit_row is not None:
                _visit_forms(session, visit_row)


def test_reading_ahead_answers_every_look_up_as_the_look_up_itself_would(trial: Trial) -> None:
    pids = participants_in_every_state(trial)
    protocol = current_protocol(trial.engine).protocol
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    with session_scope(trial.engine) as session, reading_once(session):
        look_ups_one_by_one(session, protocol, pids, coordinator)
        one_by_one = dict(answers(session))
    with session_scope(trial.engine) as session, reading_once(session):
        read_ahead(session, protocol, [{"participant": pid} for pid in pids])
        ahead = dict(answers(session))
    missing = set(one_by_one) - set(ahead) - {("trial_lock",)}  # the trial's lock: read once per import anyway
    assert not missing
    assert {k: plain(ahead[k]) for k in one_by_one if k in ahead} == {
        k: plain(v) for k, v in one_by_one.items() if k in ahead
    }
    # Not equal by being empty: the look-ups found the visits, forms, events, the withdrawal and the lock.
    busy, gone, locked = pids[:3]
    assert plain(ahead[("withdrawn", gone)]) is not None and ahead[("withdrawn", busy)] is None
    assert len(ahead[("soft_locks", ("participant", locked), ("site", "RAZ"))]) == 1
    assert len(ahead[("ae_reports", busy)]) == 1 and ahead[("participant", "RAZ-999")] is None
    assert set(ahead[("visit_dates", busy)]) == {"infusion", "baseline"}
    assert ahead[("facts", busy)].randomized_at is not None


def test_one_save_looks_ahead_in_one_statement_answering_as_the_look_ups_would(trial: Trial) -> None:
    """One form save (the page, the API) reads what it looks up about its participant with one statement
    (``look_ahead``): each answer it stores is the look-up's own; where there is something to read (a withdrawal, a
    soft lock, adverse events, records that can say a death, the visit's row) it stores nothing and the look-up
    reads as before."""
    pids = participants_in_every_state(trial)
    protocol = current_protocol(trial.engine).protocol
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    seen: list[str] = []

    def statement(conn: Any, cursor: Any, text: str, *_: Any) -> None:
        if not text.startswith("BEGIN"):
            seen.append(text)

    aheads = {}
    for pid in pids:
        with session_scope(trial.engine) as session, reading_once(session):
            look_ups_one_by_one(session, protocol, [pid], coordinator)
            one_by_one = dict(answers(session))
        with session_scope(trial.engine) as session, reading_once(session):
            seen.clear()
            event.listen(trial.engine, "before_cursor_execute", statement)
            try:
                look_ahead(session, protocol, pid, "baseline")
            finally:
                event.remove(trial.engine, "before_cursor_execute", statement)
            ahead = dict(answers(session))
        assert len(seen) == 1, seen
        assert set(ahead) <= set(one_by_one), set(ahead) - set(one_by_one)
        if ("participant", pid) in ahead:  # its row, with the statement's other columns beside it
            row = ahead.pop(("participant", pid))
            assert tuple(getattr(row, c.name) for c in participants.c) == plain(one_by_one[("participant", pid)])
        assert {k: plain(v) for k, v in ahead.items()} == {k: plain(one_by_one[k]) for k in ahead}
        aheads[pid] = ahead
    busy, gone, locked, fresh, unknown = pids
    # Not equal by being empty: the fresh participant's every look-up is answered, nothing of the others' found.
    assert set(aheads[fresh]) == {
        ("facts", fresh), ("randomized_at", fresh), ("trial_lock",), ("withdrawn", fresh), ("ae_reports", fresh),
        ("soft_locks", ("participant", fresh), ("site", "RAZ")), ("death_forms", fresh), ("visit", fresh, "baseline"),
        *[k for k in aheads[fresh] if k[0] == "screening_values"],
    }  # fmt: skip
    assert ("ae_reports", busy) not in aheads[busy] and ("visit", busy, "baseline") not in aheads[busy]
    assert ("withdrawn", gone) not in aheads[gone] and ("withdrawn", locked) in aheads[locked]
    assert ("soft_locks", ("participant", locked), ("site", "RAZ")) not in aheads[locked]
    assert aheads[unknown] == {}


def test_saves_after_a_look_ahead_keep_the_audit_chain(trial: Trial) -> None:
    """On SQLite the statement also reads the audit trail's head in the save's write transaction: the entries the
    saves write chain on from it, and the trail verifies."""
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    for _ in range(3):
        svc.save_form(trial.engine, coordinator, enrolled_ten_days_ago(trial), "baseline", "vitals", {"spo2": 93})
    assert audit.verify(trial.engine).ok
