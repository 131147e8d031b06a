"""The navigation is grouped by task: each role's pages appear once, under the task they serve; the home page's
Design section says the protocol versions."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
import yaml

from tests.spec.web.test_randomization_pages import as_role
from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.domain.roles import Role
from trialwright.services.users import UserView
from trialwright.web.deps import nav_for
from trialwright.web.navigation import by_task
from trialwright.web.templating import NavItem


def _user(role: Role) -> UserView:
    return UserView(id=1, username="u", full_name="U", role=role, sites=(), active=True, locked_until=None,
                    language="en", calendar="both", created_at=dt.datetime(2021, 4, 19, tzinfo=dt.UTC))  # fmt: skip


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.STUDY_COORDINATOR, {
            "Daily work": ["/", "/screening", "/participants", "/data/matrix", "/queries"],
            "Safety and blinding": ["/safety"],
            "Trial oversight": ["/recruitment"],
        }),
        (Role.UNBLINDED_PHARMACIST, {"Daily work": ["/", "/pharmacy"], "Safety and blinding": ["/unblindings"]}),
        (Role.ADMINISTRATOR, {
            "Daily work": ["/", "/screening", "/participants", "/data/matrix", "/queries"],
            "Safety and blinding": ["/safety"],
            "Trial oversight": ["/recruitment", "/data-access"],
            "Administration": ["/admin/users", "/admin/audit"],
        }),
    ],
    ids=lambda v: v.value if isinstance(v, Role) else "",
)  # fmt: skip
def test_a_roles_pages_by_task(role: Role, expected: dict[str, list[str]]) -> None:
    got = {task.label: [item.href for item in task.items] for task in by_task(nav_for(_user(role)))}
    assert got == expected


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_every_page_of_the_role_is_in_one_task_and_profile_in_none(role: Role) -> None:
    nav = nav_for(_user(role))
    grouped = [item.href for task in by_task(nav) for item in task.items]
    assert sorted(grouped) == sorted(item.href for item in nav if item.href != "/profile")
    assert "/profile" in {item.href for item in nav}  # shown beside the person's name instead


def test_a_page_no_task_names_joins_the_daily_work() -> None:
    tasks = by_task([NavItem("/", "Home"), NavItem("/worklist", "My work"), NavItem("/admin/audit", "Audit trail")])
    assert [(t.key, [i.href for i in t.items]) for t in tasks] == [
        ("work", ["/", "/worklist"]),
        ("admin", ["/admin/audit"]),
    ]


def test_the_home_page_design_section_lists_the_protocol_versions(app, trial) -> None:  # type: ignore[no-untyped-def]
    """The administrator's home page says which protocol versions the trial has run under (the current one
    marked, its SHA-256 the file's own) and the commands that check, show and load a protocol file."""
    text = FIRST_PROTOCOL.read_bytes()
    number = str(yaml.safe_load(text)["version"]["number"])
    with as_role(app, Role.ADMINISTRATOR) as admin:
        page = admin.get("/").text
    rows = re.findall(r'<tr data-testid="protocol-version">(.*?)</tr>', page, flags=re.DOTALL)
    assert len(rows) == 1
    assert rows[0].startswith(f"<td>{number} ") and 'data-testid="current-version"' in rows[0]
    assert f'title="{hashlib.sha256(text).hexdigest()}"' in rows[0]
    commands = page[page.index('data-testid="protocol-commands"') :]
    for command in ("trialwright protocol check FILE", "trialwright protocol show FILE", "trialwright init --protocol"):
        assert command in commands[: commands.index("</ul>")]
