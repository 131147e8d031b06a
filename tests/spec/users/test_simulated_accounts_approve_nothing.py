"""The simulator's accounts are nobody's: they do not count as approvers (walk 3 F7).

``simulate`` into a new database makes one account per role (``sim-administrator``, ...), their passwords drawn and
never shown, so no person signs in as them and they approve nothing. The two-person rule's setting-up step ("while
fewer than two accounts hold an approving role, an approving account is created at once") counts people's accounts
only, so the real administrators of a simulated trial can still be set up, and then guard each other.

| step (command line, one database)                                   | expected                         |
|---------------------------------------------------------------------|----------------------------------|
| simulate 6 participants into a new database                         | sim-administrator exists         |
| user add admin1 --role administrator                                | created at once (setting up)     |
| user add admin2 --role administrator --as admin1                    | created at once (setting up)     |
| user add admin3 --role administrator --as admin1                    | a request: two approvers now     |
| user add ustat --role unblinded_statistician --as admin1            | a request                        |
| user approve 2 --as admin2                                          | approved by admin2               |
| a person's account named ``simulation``                             | refused: the simulator's name    |
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.trialfixtures import FIRST_PROTOCOL
from trialwright.cli.main import app as cli
from trialwright.services import audit
from trialwright.services.users import UserError, get_user, normalise_username
from trialwright.store.engine import make_engine

runner = CliRunner()
PASSWORDS = {"admin1": "Granite-tulip-47", "admin2": "Basalt-orchid-58"}


def _run(url: str, *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, [*args, "--database", url], input=stdin)


def _add_admin(url: str, name: str, *acting: str) -> str:
    stdin = PASSWORDS[acting[1]] + "\n" if acting else None
    extra = ["--password-stdin"] if acting else []
    made = _run(url, "user", "add", name, "--role", "administrator", *acting, *extra, stdin=stdin)
    assert made.exit_code == 0, made.output
    return str(made.output)


def test_after_simulate_the_real_administrators_are_set_up_and_then_guard_each_other(database_url: str) -> None:
    simulated = _run(database_url, "simulate", "--protocol", str(FIRST_PROTOCOL), "--participants", "6", "--seed", "4")
    assert simulated.exit_code == 0, simulated.output
    engine = make_engine(database_url)
    assert get_user(engine, "sim-administrator") is not None
    first = _add_admin(database_url, "admin1")
    assert "Created admin1." in first
    token = first.strip().splitlines()[-1]
    stdin = PASSWORDS["admin1"] + "\n"
    assert _run(database_url, "user", "set-password", "--token", token, "--password-stdin", stdin=stdin).exit_code == 0
    second = _add_admin(database_url, "admin2", "--as", "admin1")
    assert "Created admin2." in second and "Two-person rule" not in second
    token = second.strip().splitlines()[-1]
    stdin = PASSWORDS["admin2"] + "\n"
    assert _run(database_url, "user", "set-password", "--token", token, "--password-stdin", stdin=stdin).exit_code == 0
    [made2] = [e for e in audit.entries(engine, action_prefix="user.created") if "admin2" in (e.new_value or "")]
    assert made2.actor == "admin1" and "setting up: fewer than two approvers" in (made2.detail or "")
    # Two people now hold the approving role: the next approving account, and an unblinded one, are requests.
    third = _add_admin(database_url, "admin3", "--as", "admin1")
    assert "Two-person rule: request 1" in third and get_user(engine, "admin3") is None
    ustat = _run(database_url, "user", "add", "ustat", "--role", "unblinded_statistician", "--as", "admin1",
                 "--password-stdin", stdin=PASSWORDS["admin1"] + "\n")  # fmt: skip
    assert ustat.exit_code == 0 and "Two-person rule: request 2" in ustat.output, ustat.output
    own = _run(database_url, "user", "approve", "2", "--as", "admin1", "--password-stdin",
               stdin=PASSWORDS["admin1"] + "\n")  # fmt: skip
    assert own.exit_code == 1 and "two-person rule: a second person approves" in own.output
    approved = _run(database_url, "user", "approve", "2", "--as", "admin2", "--password-stdin",
                    stdin=PASSWORDS["admin2"] + "\n")  # fmt: skip
    assert approved.exit_code == 0 and "approved by admin2" in approved.output, approved.output
    assert get_user(engine, "ustat") is not None
    engine.dispose()


def test_no_person_takes_the_simulators_name() -> None:
    with pytest.raises(UserError, match="'simulation' is the name the system records its own actions under"):
        normalise_username("Simulation")
