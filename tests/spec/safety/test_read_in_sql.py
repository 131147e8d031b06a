"""The safety page reads in SQL what it used to compute from every event (both databases).

A simulated trial (40 patients screened at two sites, seed 21: its adverse events, some serious, none submitted)
and six events reported here through the services to reach every deadline rule: an SAE made serious by a
follow-up, SUSARs (one life-threatening, so with a complete report due), an expected event, an unrelated one, and
submissions on time and late. At many moments (the deadlines' own due times, just before and just after each,
and days apart), the events that SQL finds serious, or with an overdue report, are exactly those the whole list
(every event read into its view, the deadlines judged in Python by ``trialwright.domain.safety``) finds, in the
same order, page after page; the overdue reports of the home page are the same; and the safety tables counted in
SQL are those ``domain.safety.safety_table`` computes from every event's view, pooled for the blinded team, by
arm for the unblinded statistician, whose arms a blinded reader never sees.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.spec.forms.conftest import NOW, TODAY
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, who
from trialwright.domain.masking import MASKED, sees_arms
from trialwright.domain.roles import Role
from trialwright.domain.safety import safety_table
from trialwright.services.audit_keys import checked_allocations
from trialwright.services.safety import (
    AdverseEventView,
    follow_up,
    list_events,
    overdue_for,
    page_events,
    record_submission,
    report_event,
    safety_tables,
)
from trialwright.services.safety.tables import group_labels
from trialwright.services.simulation import simulate
from trialwright.services.trial import current_protocol
from trialwright.store.engine import read_scope
from trialwright.store.safety_tables import ae_reports
from trialwright.store.screening_tables import participants, withdrawals


def _report(**changes: Any) -> dict[str, Any]:
    return {
        "term": "Acute kidney injury",
        "onset": (TODAY - dt.timedelta(days=10)).isoformat(),
        "grade": 3,
        "serious": True,
        "seriousness_criteria": ["hospitalisation"],
        "causality": "possible",
        "action_taken": "not_applicable",
        "outcome": "not_recovered",
        "aware_at": (NOW - dt.timedelta(days=1)).isoformat(),
        **changes,
    }


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    simulate(t.engine, FIRST_PROTOCOL, 40, seed=21)
    investigator = who(t, Role.INVESTIGATOR)
    with read_scope(t.engine) as session:
        left = select(withdrawals.c.participant_id)
        at_raz = session.execute(
            select(participants.c.participant_id)
            .where(participants.c.site == "RAZ", participants.c.participant_id.not_in(left))
            .order_by(participants.c.participant_id)
        ).scalars()
        pids = list(at_raz)[:3]
    assert len(pids) == 3
    a, b, c = pids
    days = dt.timedelta(days=1)
    # Not serious at first; a follow-up makes it serious (the SAE clock starts there); submitted late.
    mild = report_event(t.engine, investigator, a, _report(serious=False, seriousness_criteria=[], grade=2,
                                                           aware_at=(NOW - 6 * days).isoformat()))  # fmt: skip
    follow_up(t.engine, investigator, mild.ae_number, {"serious": True, "seriousness_criteria": ["hospitalisation"],
              "grade": 3, "aware_at": (NOW - 4 * days).isoformat()}, reason="ICU")  # fmt: skip
    record_submission(t.engine, investigator, mild.ae_number, "sae_to_sponsor", (NOW - 2 * days).isoformat())
    # A life-threatening SUSAR: initial due in 7 days, then the complete report 8 more; the initial sent late.
    grave = report_event(t.engine, investigator, b, _report(seriousness_criteria=["life_threatening"], grade=4,
                                                            aware_at=(NOW - 9 * days).isoformat()))  # fmt: skip
    record_submission(t.engine, investigator, grave.ae_number, "susar_initial", (NOW - 1 * days).isoformat())
    # A life-threatening SUSAR known yesterday, nothing sent.
    report_event(t.engine, investigator, c, _report(seriousness_criteria=["life_threatening", "hospitalisation"],
                                                    grade=4))  # fmt: skip
    # A SUSAR (15 days), its SAE report sent on time.
    susar = report_event(t.engine, investigator, a, _report(aware_at=(NOW - 3 * days).isoformat()))
    record_submission(t.engine, investigator, susar.ae_number, "sae_to_sponsor", (NOW - 3 * days).isoformat())
    # Serious but expected (a listed event up to its grade): an SAE, not a SUSAR; and a serious unrelated event.
    report_event(t.engine, investigator, b, _report(expected_event="infusion_related_reaction", grade=2))
    report_event(t.engine, investigator, c, _report(causality="unlikely"))
    yield t
    t.engine.dispose()


def _moments(whole: list[AdverseEventView]) -> list[dt.datetime]:
    """Days apart over the deadlines' span, and each deadline's due time, an instant before and after it."""
    dues = sorted({d.due_at for v in whole for d in v.deadlines})
    tick = dt.timedelta(microseconds=1)
    return [NOW + dt.timedelta(days=n) for n in range(-3, 40, 3)] + [m for d in dues for m in (d - tick, d, d + tick)]


def _walk(read: Any) -> list[str]:
    """Every event of a paged list, following the cursors with small pages."""
    out, cursor = [], None
    while True:
        found = read(cursor)
        out += [v.ae_number for v in found.items]
        assert found.total >= len(out)
        if found.next_cursor is None:
            assert found.total == len(out)
            return out
        cursor = found.next_cursor


def test_the_events_reported_here_reach_every_deadline_rule(trial: Trial) -> None:
    kinds = {d.kind.value for v in list_events(trial.engine, who(trial, Role.INVESTIGATOR)) for d in v.deadlines}
    states = {d.state.value for v in list_events(trial.engine, who(trial, Role.INVESTIGATOR)) for d in v.deadlines}
    assert kinds == {"sae_to_sponsor", "susar_initial", "susar_complete"}
    assert states == {"pending", "overdue", "met", "late"}


@pytest.mark.parametrize("role", [Role.INVESTIGATOR, Role.DATA_MANAGER, Role.UNBLINDED_STATISTICIAN])
def test_serious_and_overdue_events_are_those_the_whole_list_finds_at_every_moment(trial: Trial, role: Role) -> None:
    user = who(trial, role)
    whole_now = list_events(trial.engine, user)
    overdue_seen = set()
    for moment in _moments(whole_now):
        whole = list_events(trial.engine, user, now=moment)  # every event, judged in Python
        overdue = [v.ae_number for v in whole if v.overdue]
        serious = [v.ae_number for v in whole if v.classification.serious]

        def paged(at: dt.datetime = moment, **given: bool) -> list[str]:
            return _walk(lambda c: page_events(trial.engine, user, limit=2, cursor=c, now=at, **given))

        assert paged(overdue_only=True) == overdue, moment
        assert paged(serious_only=True) == serious, moment
        assert paged(overdue_only=True, serious_only=True) == [n for n in overdue if n in serious], moment
        assert [v.ae_number for v in list_events(trial.engine, user, overdue_only=True, now=moment)] == overdue
        expected_items = [(v.ae_number, d.kind, d.due_at) for v in whole for d in v.overdue]
        if role in (Role.INVESTIGATOR, Role.DATA_MANAGER):
            items = overdue_for(trial.engine, user, now=moment)
            assert [(i.ae_number, i.kind, i.due_at) for i in items] == expected_items
        overdue_seen.add(len(overdue))
    assert len(overdue_seen) > 3  # the moments moved events in and out of the overdue list


def test_the_views_of_a_page_are_those_of_the_whole_list(trial: Trial) -> None:
    user = who(trial, Role.DATA_MANAGER)
    moment = NOW + dt.timedelta(days=9)
    whole = {v.ae_number: v for v in list_events(trial.engine, user, now=moment)}
    first = page_events(trial.engine, user, overdue_only=True, now=moment)
    assert first.items and all(v == whole[v.ae_number] for v in first.items)


def _python_tables(trial: Trial, role: Role) -> tuple[Any, ...]:
    """The safety tables as ``domain.safety.safety_table`` makes them from every event's view."""
    user = who(trial, role)
    protocol = current_protocol(trial.engine).protocol
    events = list_events(trial.engine, who(trial, Role.DATA_MANAGER))  # every site
    with read_scope(trial.engine) as session:
        arms = {r.participant_id: r.arm for r in checked_allocations(session)}
        labels = group_labels(session, protocol)
    if sees_arms(protocol, user.role):
        names = {a.code: a.name for a in protocol.arms}
        groups: tuple[str, ...] = tuple(a.name for a in protocol.arms)
        group_of = {pid: names[code] for pid, code in arms.items()}
    else:
        assert labels  # the protocol pools the blinded team's tables
        groups, group_of = ("All participants",), dict.fromkeys(arms, "All participants")
    rows = safety_table([(v.participant_id, v.current, v.classification) for v in events], group_of, groups)
    in_table = sum(1 for v in events if v.participant_id in group_of)
    return groups, rows, len(group_of), in_table, len(events) - in_table


@pytest.mark.parametrize("role", [Role.INVESTIGATOR, Role.UNBLINDED_STATISTICIAN, Role.DSMB_MEMBER])
def test_the_safety_tables_counted_in_sql_are_those_of_every_events_view(trial: Trial, role: Role) -> None:
    tables = safety_tables(trial.engine, who(trial, role))
    groups, rows, randomized, in_table, outside = _python_tables(trial, role)
    assert (tables.groups, list(tables.rows)) == (groups, rows)
    assert (tables.participants, tables.events, tables.not_randomized_events) == (randomized, in_table, outside)
    assert sum(r.counts[g] for r in rows for g in groups) > 0
    if role is Role.INVESTIGATOR:
        assert tables.grouping == "pooled" and groups == ("All participants",)
        assert all(v.arm == MASKED for v in page_events(trial.engine, who(trial, role)).items)


def test_each_report_keeps_what_sql_counts_beside_its_assessment(trial: Trial) -> None:
    with read_scope(trial.engine) as session:
        rows = session.execute(select(ae_reports)).all()
    assert len(rows) > 6
    for r in rows:
        data = json.loads(r.assessment)
        assert (r.grade, r.causality, r.expected_event) == (
            data["grade"],
            data["causality"],
            data.get("expected_event"),
        )
        assert r.criteria == f" {' '.join(data['seriousness_criteria'])} "
