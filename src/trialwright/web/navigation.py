"""The navigation grouped by task: what a person came to do (the day's work with patients, safety and
blinding, overseeing the trial, administration), each group holding the pages of that task their role may
open (``deps.nav_for`` says which). Profile is not a task: the page header links it beside the person's name.

A page this table does not name joins the day's work, so a new page is never hidden from the navigation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from trialwright.services.randomization import common as randomization_service
from trialwright.web.i18n import N_

__all__ = ["PARTICIPANT_READERS", "TASKS", "NavTask", "by_task"]

#: Who reads participant pages: the service's rule (``services.randomization.PARTICIPANT_READERS``), read here by
#: the route's guard and the test of whether a page offers a link to one.
PARTICIPANT_READERS = randomization_service.PARTICIPANT_READERS


class _Link(Protocol):
    @property
    def href(self) -> str: ...

    @property
    def label(self) -> str: ...


@dataclass(frozen=True)
class NavTask:
    """One group of the navigation; ``label`` is an English message id, translated when shown."""

    key: str
    label: str
    items: tuple[_Link, ...]


OVERSIGHT = (
    "/recruitment", "/randomization", "/analysis", "/exports", "/data-management", "/data-management/readiness",
    "/data-access",
)  # fmt: skip
#: (key, label, the pages of the task); the first task takes any page not named here.
TASKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("work", N_("Daily work"), ("/", "/screening", "/participants", "/data/matrix", "/queries", "/pharmacy")),
    ("safety", N_("Safety and blinding"), ("/safety", "/dsmb", "/unblindings")),
    ("oversight", N_("Trial oversight"), OVERSIGHT),
    ("admin", N_("Administration"), ("/admin/users", "/admin/users/requests", "/admin/audit")),
)
NOT_A_TASK = frozenset({"/profile"})


def by_task(nav: Iterable[_Link]) -> tuple[NavTask, ...]:
    """The role's links grouped by task, in the order of ``TASKS`` and, within a task, of ``nav``; empty
    tasks left out."""
    task_of = {href: key for key, _, hrefs in TASKS for href in hrefs}
    groups: dict[str, list[_Link]] = {key: [] for key, _, _ in TASKS}
    for item in nav:
        if item.href not in NOT_A_TASK:
            groups[task_of.get(item.href, TASKS[0][0])].append(item)
    return tuple(NavTask(key, label, tuple(groups[key])) for key, label, _ in TASKS if groups[key])
