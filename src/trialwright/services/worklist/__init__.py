"""Each role's work list (its home page) and the participant x visit x form status matrix, read in SQL with counts
and pages: a trial of 100,000 participants costs what one of 30 does (``tests/spec/paging``).

``work_list`` gives the first page of each of the user's lists (``lists.LISTS``) with their counts, the overdue
safety reports of the responsible roles, the account requests waiting for an approver, the pharmacist's codes to
prepare, the coder's adverse events to code and a DSMB member's pending decision (the safety pause holding until
the DSMB decides) and serious adverse events to review (serious now, first reported so since the DSMB's last
decision); ``work_page`` one page of one list; ``status_matrix`` the matrix (``matrix.py``). None of them
reads an allocation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine

from trialwright.domain.paging import DEFAULT_LIMIT, Page
from trialwright.domain.roles import Role
from trialwright.services import clock, coding
from trialwright.services.approvals import RequestView, may_approve, pending_requests
from trialwright.services.randomization.pharmacy import PreparationState, preparation_counts
from trialwright.services.safety import OverdueItem, overdue_for, pause, saes_to_review
from trialwright.services.screening.dissent import DECIDERS, OpenDissent, open_dissents
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.services.worklist.lists import LISTS, WorkItem, WorkKind, form_url, lists_of, page_of_work
from trialwright.services.worklist.matrix import (
    CELL_STATES,
    CellState,
    MatrixCell,
    MatrixColumn,
    MatrixRow,
    StatusMatrix,
    status_matrix,
)
from trialwright.store.engine import read_scope

__all__ = [
    "CELL_STATES",
    "HOME_LIMIT",
    "LISTS",
    "CellState",
    "MatrixCell",
    "MatrixColumn",
    "MatrixRow",
    "StatusMatrix",
    "WorkItem",
    "WorkKind",
    "WorkList",
    "WorkSection",
    "form_url",
    "lists_of",
    "status_matrix",
    "work_list",
    "work_page",
]

#: Rows of each list on the home page (the list's own page shows the rest, a page at a time).
HOME_LIMIT = 10


@dataclass(frozen=True)
class WorkSection:
    """One list: its kind and its first page (``page.total`` is the count)."""

    kind: WorkKind
    page: Page[WorkItem]

    @property
    def total(self) -> int:
        """How many items the list holds."""
        return self.page.total


@dataclass(frozen=True)
class WorkList:
    """What the user has to do now: their lists, the overdue safety reports (responsible roles), the account
    requests awaiting a second person (approvers; None for others) and the codes to prepare (the pharmacist; None
    for others)."""

    role: Role
    sections: tuple[WorkSection, ...]
    overdue_reports: tuple[OverdueItem, ...]
    approvals: tuple[RequestView, ...] | None
    to_prepare: int | None
    #: Adverse events to code to MedDRA (the coder; None for others): not coded, or their term changed since.
    to_code: int | None = None
    #: a DSMB member's pending decision: the safety pause holds until the DSMB decides (None for other roles)
    decision_pending: bool | None = None
    #: a DSMB member's serious adverse events to review: serious now, first reported so after the DSMB's last
    #: decision (None for other roles)
    saes_to_review: int | None = None
    #: the investigator's decisions to record on a child's dissent recorded at a re-consent after enrolment (withdraw,
    #: or continue with the ethics committee's reason: ``screening.dissent``); None for other roles
    dissents: tuple[OpenDissent, ...] | None = None

    def section(self, kind: WorkKind) -> WorkSection:
        """The list of this kind (KeyError: not one of the role's)."""
        for s in self.sections:
            if s.kind is kind:
                return s
        raise KeyError(kind.value)

    @property
    def total(self) -> int:
        """Everything waiting: the lists' counts, the overdue reports, the requests and the codes to prepare."""
        return (
            sum(s.total for s in self.sections)
            + len(self.overdue_reports)
            + len(self.approvals or ())
            + (self.to_prepare or 0)
            + (self.to_code or 0)
            + (1 if self.decision_pending else 0)
            + (self.saes_to_review or 0)
            + len(self.dissents or ())
        )


def work_list(engine: Engine, actor: UserView, *, limit: int = HOME_LIMIT, now: dt.datetime | None = None) -> WorkList:
    """The user's work list: the first ``limit`` rows and the count of each of their lists."""
    protocol = current_protocol(engine).protocol
    moment = now or clock.now()
    with read_scope(engine) as session:
        sections = tuple(
            WorkSection(kind, page_of_work(session, protocol, actor, kind, limit=limit, now=moment))
            for kind in lists_of(actor.role)
        )
    approvals = tuple(pending_requests(engine)) if may_approve(protocol, actor.role) else None
    to_prepare = None
    if actor.role is Role.UNBLINDED_PHARMACIST:
        to_prepare = preparation_counts(engine, actor)[PreparationState.TO_PREPARE]
    to_code = len(coding.to_code(engine, actor)) if actor.role in coding.CODERS else None
    dsmb = actor.role is Role.DSMB_MEMBER
    pending = pause(engine).active if dsmb else None
    to_review = saes_to_review(engine, actor) if dsmb else None
    dissents = open_dissents(engine, actor) if actor.role in DECIDERS else None
    return WorkList(actor.role, sections, tuple(overdue_for(engine, actor, now=moment)), approvals, to_prepare,
                    to_code, pending, to_review, dissents)  # fmt: skip


def work_page(
    engine: Engine,
    actor: UserView,
    kind: WorkKind,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    now: dt.datetime | None = None,
) -> Page[WorkItem]:
    """One page of one of the user's lists (NotFound for a list that is not the role's)."""
    protocol = current_protocol(engine).protocol
    with read_scope(engine) as session:
        return page_of_work(session, protocol, actor, kind, limit=limit, cursor=cursor, now=now)
