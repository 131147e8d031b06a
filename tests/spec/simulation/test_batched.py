"""The simulator's fast path (a visit's forms saved and verified in one transaction, ``save_and_verify_visit``, and
the weekly signing sessions signed by a pre-authenticated simulated investigator whose password was checked once,
``sign_as``) makes exactly the trial its slow path (one ``save_form`` transaction per form, the monitor's series in
one of its own, the password re-entered at every session, ``sign_forms``) makes for the same seed: the same summary,
the same stored data and the same audit trail, entry by entry (times, and the random preparation codes with the
seals over them, aside). The one difference: the fast path checks the investigator's password once."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from tests.spec.simulation.test_simulate import _fingerprint, _trial
from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.services import reauth
from trialwright.services.forms import review
from trialwright.services.simulation import simulate
from trialwright.store.data_tables import form_records, queries
from trialwright.store.engine import session_scope
from trialwright.store.tables import audit_entries


def _trail(engine) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        rows = session.execute(select(audit_entries).order_by(audit_entries.c.seq)).all()
    text = json.dumps([(e.actor, e.role, e.site, e.participant, e.form, e.field, e.action, e.old_value,
                        e.new_value, e.reason, e.detail) for e in rows])  # fmt: skip
    text = re.sub(r"P-[0-9A-F]{6}", "P-code", text)
    # A randomization's seal covers its preparation code: it differs with the code.
    return json.loads(re.sub(r'\\"seal\\":\\"[0-9a-f]{64}\\"', "seal", text))  # type: ignore[no-any-return]


def _kept(engine) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    """The form records' lifecycle (versions and the simulated moments of each step) and every query raised."""
    with session_scope(engine) as session:
        forms = session.execute(select(form_records.c.participant_id, form_records.c.form_id, form_records.c.version,
                                       form_records.c.updated_at, form_records.c.verified_at, form_records.c.signed_at,
                                       form_records.c.signature_meaning).order_by(form_records.c.id)).all()
        raised = session.execute(select(queries.c.participant_id, queries.c.field, queries.c.origin, queries.c.check_id,
                                        queries.c.text, queries.c.status, queries.c.raised_at, queries.c.raised_by)
                                 .order_by(queries.c.id)).all()  # fmt: skip
    return [tuple(map(str, r)) for r in (*forms, *raised)]


def _form_transactions(engine) -> list[set[str]]:  # type: ignore[no-untyped-def]
    """For each committed transaction that created form records: the participants they belong to (filled as the
    engine runs)."""
    done: list[set[str]] = []
    current: set[str] = set()

    @event.listens_for(engine, "before_cursor_execute")
    def created(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO form_records"):
            current.add(context.compiled_parameters[0]["participant_id"])

    @event.listens_for(engine, "commit")
    def committed(conn) -> None:  # type: ignore[no-untyped-def]
        if current:
            done.append(set(current))
            current.clear()

    return done


def test_the_batched_simulation_is_the_slow_one(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _trial(database_url)
    slow = _trial(f"sqlite:///{tmp_path / 'slow.db'}")
    checks: list[str] = []
    real = reauth._verify

    def counted(password_hash: str, password: str) -> bool:  # every password re-entry's argon2 check
        checks.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(reauth, "_verify", counted)
    transactions = _form_transactions(fast)
    inserts: list[str] = []  # the INSERTs of form records (one statement, however many rows)

    @event.listens_for(fast, "before_cursor_execute")
    def inserted(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO form_records"):
            inserts.append(statement)

    batched = simulate(fast, FIRST_PROTOCOL, 14, seed=21)
    fast_checks, checks[:] = len(checks), []
    one_by_one = simulate(slow, FIRST_PROTOCOL, 14, seed=21, batched=False)
    assert batched.forms_saved > 50 and batched.forms_completed > 0 and batched.refused >= 0
    assert batched.forms_signed > 0
    assert dataclasses.replace(batched, seconds=0) == dataclasses.replace(one_by_one, seconds=0)
    assert _fingerprint(fast) == _fingerprint(slow)
    assert _kept(fast) == _kept(slow)
    # Visits next in time share a transaction, several participants' among them: fewer transactions than visits.
    with session_scope(fast) as session:
        visits_with_forms = len(session.execute(select(form_records.c.visit_record_id).distinct()).all())
    assert len(transactions) < visits_with_forms and max(len(who) for who in transactions) > 1
    # With nothing refused, the joined runs' new form records are written together: far fewer INSERTs than records.
    with session_scope(fast) as session:
        records = len(session.execute(select(form_records.c.id)).all())
    assert batched.refused == 0 and records > 100 and len(inserts) < records / 3
    trail = _trail(fast)
    assert len(trail) > 500 and trail == _trail(slow)
    actions = [entry[6] for entry in trail]
    assert actions.count("form.signed") == batched.forms_signed and actions.count("form.verified") > 0
    # The password: re-entered at every weekly signing session on the slow path, checked once on the fast path
    # (an accepted re-entry writes no audit entry on either, so the trails above are equal).
    assert fast_checks == 1 and len(checks) > 1
    fast.dispose()
    slow.dispose()


def test_a_refused_save_in_a_joined_run_gives_the_slow_trial_and_the_rest_are_written_together(
    database_url: str, tmp_path: Path
) -> None:
    """The joined visits are first saved without savepoints, their new visit and form records written together
    (one executemany per table) and each lifecycle step of a record still waiting changed where it waits; when a
    save or a series is refused there, nothing of the run is kept and it runs again with a savepoint per form, as
    before. Seed 3 with an IL-6 effect past the field's hard limit meets refusals (the experimental arm's follow-up
    IL-6) inside joined runs, which are then saved again with savepoints: the same trial as the slow path and fewer
    INSERTs of form records than form records (one each on the slow path). (The refusals were visits after a
    withdrawal until no visit was attempted after one.) The audit trail is the slow path's entry for entry but for
    the numbers of queries raised: on PostgreSQL a query raised in a pass that is then discarded has taken its number
    from the sequence, so the queries raised again are numbered after it (main does the same with a value refused in
    a joined run; the save path's to mend)."""
    fast = _trial(database_url)
    slow = _trial(f"sqlite:///{tmp_path / 'slow.db'}")
    inserts: list[str] = []  # the INSERTs of form records (one statement, however many rows)
    savepoints: list[str] = []  # a run saved again, a savepoint per form and per series

    @event.listens_for(fast, "before_cursor_execute")
    def counted(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO form_records"):
            inserts.append(statement)
        if statement.startswith("SAVEPOINT"):
            savepoints.append(statement)

    refused = {"labs.il6": 1_000_000.0}
    batched = simulate(fast, FIRST_PROTOCOL, 14, seed=3, effects=refused)
    one_by_one = simulate(slow, FIRST_PROTOCOL, 14, seed=3, batched=False, effects=refused)
    assert batched.refused > 0 and any(rule.startswith("il6: ") for rule in batched.refusals) and savepoints
    assert dataclasses.replace(batched, seconds=0) == dataclasses.replace(one_by_one, seconds=0)
    assert _fingerprint(fast) == _fingerprint(slow)
    assert _kept(fast) == _kept(slow)
    assert _queries_in_order(_trail(fast)) == _queries_in_order(_trail(slow))
    if fast.dialect.name == "sqlite":
        assert _trail(fast) == _trail(slow)
    with session_scope(fast) as session:
        records = len(session.execute(select(form_records.c.id)).all())
    assert records > 100 and len(inserts) < records
    fast.dispose()
    slow.dispose()


def _queries_in_order(trail: list[Any]) -> list[list[str]]:
    """The trail with each query's number replaced by the order in which it first appears (the first query raised
    is 1, ...): the same queries on the same entries in the same order, whatever numbers the database gave them."""
    order: dict[str, str] = {}
    numbered = re.compile(r'"query":(\d+)')

    def renumbered(match: re.Match[str]) -> str:
        return '"query":' + order.setdefault(match[1], str(len(order) + 1))

    return [[numbered.sub(renumbered, str(v)) for v in entry] for entry in trail]


def _statements_by_transaction(engine) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """Each committed transaction's statements, in order (filled as the engine runs)."""
    done: list[list[str]] = []
    current: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def ran(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        current.append(" ".join(statement.split()))

    @event.listens_for(engine, "commit")
    def committed(conn) -> None:  # type: ignore[no-untyped-def]
        done.append(list(current))
        current.clear()

    return done


def test_a_patients_own_steps_share_a_transaction(database_url: str) -> None:
    """A patient's own steps that follow each other at one moment are joined as the visits are, each through its
    service's rules and audit entries (the trail is the slow path's, above): the screening and the reason a patient
    is not enrolled; the consent and the enrolment; the unblinded statistician's read of the arm and the
    pharmacist's preparation of the dose. One transaction each where the slow path takes two or more."""
    fast = _trial(database_url)
    transactions = _statements_by_transaction(fast)
    summary = simulate(fast, FIRST_PROTOCOL, 14, seed=21)
    assert summary.enrolled > 0 and summary.randomized > 0 and sum(summary.not_enrolled.values()) > 0

    def having(*starts: str) -> list[list[str]]:
        return [t for t in transactions if all(any(s.startswith(start) for s in t) for start in starts)]

    not_enrolled = having("UPDATE screenings SET non_enrolment_reason")
    assert len(not_enrolled) == sum(summary.not_enrolled.values())
    assert not_enrolled == having("INSERT INTO screenings", "UPDATE screenings SET non_enrolment_reason")
    consents = having("INSERT INTO consents")
    assert len(consents) == summary.enrolled
    assert consents == having("INSERT INTO consents", "INSERT INTO participants")
    prepared = having("INSERT INTO preparations")
    assert len(prepared) == summary.randomized  # every arm of the first protocol has a dose to prepare
    # the statistician's read (the participant's allocation entry and whether anyone unblinded it) in the same one
    assert prepared == having("INSERT INTO preparations", "SELECT unblindings.unblinded_by")
    fast.dispose()


def test_the_fast_paths_verification_and_signing_read_no_views_and_give_the_slow_trial(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator shows no one the forms it verifies and signs, so its monitor's series and its investigator's
    weekly signing (``sign_as``) take each step without reading the form's view afterwards (its open queries'
    count, its values and missing fields): the same steps, stored data, queries and audit trail, entry for entry,
    as the slow path, whose ``verify_forms`` and ``sign_forms`` return every view as before."""
    views: list[str] = []
    real = review._view

    def counted(session, protocol, row, visit_id):  # type: ignore[no-untyped-def]
        views.append(row.state)  # the state the step left (a save's completion is viewed on both paths: it is used)
        return real(session, protocol, row, visit_id)

    monkeypatch.setattr(review, "_view", counted)
    fast = _trial(database_url)
    slow = _trial(f"sqlite:///{tmp_path / 'slow.db'}")
    batched = simulate(fast, FIRST_PROTOCOL, 14, seed=21)
    fast_views, views[:] = [s for s in views if s in {"verified", "signed"}], []
    one_by_one = simulate(slow, FIRST_PROTOCOL, 14, seed=21, batched=False)
    assert dataclasses.replace(batched, seconds=0) == dataclasses.replace(one_by_one, seconds=0)
    assert _fingerprint(fast) == _fingerprint(slow)
    assert _kept(fast) == _kept(slow)
    trail = _trail(fast)
    assert trail == _trail(slow)
    steps = [entry[6] for entry in trail if entry[6] in {"form.verified", "form.signed"}]
    assert steps.count("form.signed") == batched.forms_signed > 0 and steps.count("form.verified") > 0
    assert fast_views == []
    # the slow path: one view per verification and signature, as its services return them
    assert sorted(s for s in views if s in {"verified", "signed"}) == sorted(step[5:] for step in steps)
    fast.dispose()
    slow.dispose()
