"""The form lifecycle as a table of every state and move, and the visit schedule at its edges (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.domain.forms import FormState, Transition, next_state
from trialwright.domain.visits import HeldVisit, VisitStatus, schedule
from trialwright.protocol import load_protocol

D, C, V, S, L = FormState.DRAFT, FormState.COMPLETE, FormState.VERIFIED, FormState.SIGNED, FormState.LOCKED
E, COMPLETE, VERIFY, SIGN, LOCK, UNLOCK = (
    Transition.EDIT,
    Transition.COMPLETE,
    Transition.VERIFY,
    Transition.SIGN,
    Transition.LOCK,
    Transition.UNLOCK,
)
#: state -> move -> the state after it, or None where the move is refused.
TABLE = {
    D: {E: D, COMPLETE: C, VERIFY: None, SIGN: None, LOCK: None, UNLOCK: None},
    C: {E: C, COMPLETE: None, VERIFY: V, SIGN: S, LOCK: L, UNLOCK: None},
    V: {E: C, COMPLETE: None, VERIFY: None, SIGN: S, LOCK: L, UNLOCK: None},  # an edit voids verification
    # An edit voids the signature; the monitor may still verify a signed form (it stays signed, verified once).
    S: {E: C, COMPLETE: None, VERIFY: S, SIGN: None, LOCK: L, UNLOCK: None},
    L: {E: None, COMPLETE: None, VERIFY: None, SIGN: None, LOCK: None, UNLOCK: C},
}


@pytest.mark.parametrize(("state", "move"), [(s, m) for s in TABLE for m in TABLE[s]])
def test_every_move_from_every_state(state: FormState, move: Transition) -> None:
    expected = TABLE[state][move]
    if expected is None:
        with pytest.raises(ValueError, match=r"^state: "):
            next_state(state, move)
    else:
        assert next_state(state, move) is expected


def test_unlock_returns_to_the_state_before_the_lock() -> None:
    assert next_state(L, UNLOCK, before_lock=S) is S
    with pytest.raises(ValueError, match="locked; the data manager unlocks it with a reason"):
        next_state(L, E)


VISITS = load_protocol(FIRST_PROTOCOL).protocol.visits
INFUSION = dt.date(2021, 6, 1)


def status_of(visit_id: str, today: dt.date, held: dict[str, HeldVisit] | None = None, infusion: bool = True) -> str:
    refs = {"infusion": INFUSION} if infusion else {}
    (found,) = [v for v in schedule(VISITS, refs, held or {}, today) if v.visit_id == visit_id]
    return found.status.value


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (dt.date(2021, 6, 6), "upcoming"),  # day 5: before day 7's window (day 6 to 8)
        (dt.date(2021, 6, 7), "due"),  # day 6: the window opens
        (dt.date(2021, 6, 9), "due"),  # day 8: the last day inside
        (dt.date(2021, 6, 10), "overdue"),  # day 9
    ],
)
def test_day7_at_its_window_edges(today: dt.date, expected: str) -> None:
    assert status_of("day7", today) == expected


def test_held_missed_out_of_window_event_and_awaiting() -> None:
    today = dt.date(2021, 6, 20)
    assert status_of("day7", today, {"day7": HeldVisit(dt.date(2021, 6, 9))}) == VisitStatus.DONE
    assert status_of("day7", today, {"day7": HeldVisit(dt.date(2021, 6, 10))}) == VisitStatus.OUT_OF_WINDOW
    assert status_of("day7", today, {"day7": HeldVisit(None, "patient transferred")}) == VisitStatus.MISSED
    assert status_of("discharge", today) == VisitStatus.OPEN
    assert status_of("day3", today, infusion=False) == VisitStatus.AWAITING
    assert status_of("baseline", dt.date(2021, 5, 31)) == VisitStatus.DUE  # the day before the infusion
