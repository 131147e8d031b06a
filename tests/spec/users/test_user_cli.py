"""`trialwright user add|list|disable|reset-password|token`: the same rules as the pages, all audited; no command
ever prints a password (new accounts and resets print a one-time set-password token)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from trialwright.cli.main import app
from trialwright.protocol import load_protocol
from trialwright.services import audit
from trialwright.services.trial import init_trial
from trialwright.services.users import resolve_token
from trialwright.store.engine import make_engine

runner = CliRunner()


@pytest.fixture
def db(database_url: str, first_protocol_path: Path) -> str:
    init_trial(make_engine(database_url), load_protocol(first_protocol_path))
    return database_url


def _run(db: str, *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [*args, "--database", db], input=stdin)


@pytest.mark.covers("REG-3")
def test_add_list_disable(db: str) -> None:
    added = _run(
        db,
        "user",
        "add",
        "Alice",
        "--role",
        "investigator",
        "--site",
        "RAZ",
        "--full-name",
        "Dr Alice",
        "--actor",
        "setup",
    )
    assert added.exit_code == 0, added.output
    assert "Created alice." in added.output and "sp_" in added.output
    listing = _run(db, "user", "list")
    assert "alice" in listing.output and "Dr Alice" in listing.output
    assert _run(db, "user", "disable", "alice", "--reason", "left the team").exit_code == 0
    assert "disabled" in _run(db, "user", "list").output
    entry = audit.entries(make_engine(db), action_prefix="user.created")[0]
    assert entry.actor == "setup" and "sp_" not in (entry.new_value or "")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--role", "investigator"], "site: an investigator works at sites"),
        (["--role", "investigator", "--site", "XYZ"], "unknown site XYZ"),
        (["--role", "wizard"], "role: must be one of"),
    ],
)
@pytest.mark.covers("REG-10")
def test_bad_input_names_the_field_and_rule(db: str, args: list[str], words: str) -> None:
    result = _run(db, "user", "add", "bob", *args)
    assert result.exit_code == 1 and words in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("password", "words"),
    [("short", "password: must be at least 12"), ("alllowercaseletters", "password: must mix")],
)
def test_the_password_its_holder_sets_meets_the_policy(db: str, password: str, words: str) -> None:
    added = _run(db, "user", "add", "bob", "--role", "monitor", "--site", "GOL")
    token = added.output.strip().splitlines()[-1]
    result = _run(db, "user", "set-password", "--token", token, "--password-stdin", stdin=password + "\n")
    assert result.exit_code == 1 and words in result.output and "Traceback" not in result.output


@pytest.mark.covers("REG-10")
def test_usernames_are_unique_whatever_the_case(db: str) -> None:
    first = _run(db, "user", "add", "carol", "--role", "data_manager")
    again = _run(db, "user", "add", "CAROL", "--role", "data_manager")
    assert first.exit_code == 0 and again.exit_code == 1 and "already taken" in again.output


@pytest.mark.covers("REG-3")
def test_token_and_reset(db: str) -> None:
    _run(db, "user", "add", "dave", "--role", "monitor", "--site", "GOL")
    token = _run(db, "user", "token", "dave").output.strip()
    engine = make_engine(db)
    user = resolve_token(engine, token)
    assert token.startswith("tw_") and user is not None and user.username == "dave"
    reset = _run(db, "user", "reset-password", "dave")
    assert reset.exit_code == 0 and audit.entries(engine, action_prefix="user.password_reset")
    assert "no longer works" in reset.output and reset.output.strip().splitlines()[-1].startswith("sp_")


def test_bootstrap_admin_only_on_an_empty_trial(db: str) -> None:
    from trialwright.cli.serve import bootstrap_admin

    engine = make_engine(db)
    created = bootstrap_admin(engine)
    assert created is not None and created[0] == "admin" and len(created[1]) >= 12
    assert bootstrap_admin(engine) is None


def _set(db: str, token: str, password: str):  # type: ignore[no-untyped-def]
    return _run(db, "user", "set-password", "--token", token, "--password-stdin", stdin=password + "\n")


def test_the_two_person_rule_on_the_command_line(db: str, first_protocol_path: Path) -> None:
    """An unblinded account is only requested; the requester cannot approve it; a second administrator can,
    and the token printed then lets the new statistician choose a password. No output holds a password."""
    engine = make_engine(db)
    for name in ("root", "root2"):  # setting up: fewer than two approvers, so created at once
        made = _run(db, "user", "add", name, "--role", "administrator", "--actor", "setup")
        assert _set(db, made.output.strip().splitlines()[-1], "Granite-tulip-47").exit_code == 0
    # A name typed in is not a person: --actor may not name an account, and a label cannot make a request.
    claimed = _run(db, "user", "add", "kwame", "--role", "unblinded_statistician", "--actor", "root2")
    assert claimed.exit_code == 2 and "--actor: 'root2' is an account; to act as it, use --as root2" in claimed.output
    label = _run(db, "user", "add", "kwame", "--role", "unblinded_statistician", "--actor", "nobody")
    assert label.exit_code == 1 and "two-person rule: a request is made by a person's own active account" in (
        label.output
    )
    guessed = _run(db, "user", "add", "kwame", "--role", "unblinded_statistician", "--as", "root",
                   "--password-stdin", stdin="not-the-password\n")  # fmt: skip
    assert guessed.exit_code == 4 and "wrong username or password" in guessed.output
    requested = _run(db, "user", "add", "kwame", "--role", "unblinded_statistician", "--as", "root",
                     "--reason", "hire", "--password-stdin", stdin="Granite-tulip-47\n")  # fmt: skip
    assert requested.exit_code == 0 and "Two-person rule: request 1" in requested.output
    assert audit.entries(engine, action_prefix="user.request_made")[0].actor == "root"
    assert "sp_" not in requested.output
    assert "kwame" not in _run(db, "user", "list").output
    waiting = _run(db, "user", "requests").output
    assert "hire" in waiting and "at (UTC)" in waiting  # a time says its clock
    own = _run(db, "user", "approve", "1", "--as", "root", "--password-stdin", stdin="Granite-tulip-47\n")
    assert own.exit_code == 1 and "two-person rule: a second person approves" in own.output
    wrong = _run(db, "user", "approve", "1", "--as", "root2", "--password-stdin", stdin="not-the-password\n")
    assert wrong.exit_code == 4 and "wrong username or password" in wrong.output
    approved = _run(db, "user", "approve", "1", "--as", "root2", "--password-stdin", stdin="Granite-tulip-47\n")
    assert approved.exit_code == 0 and "approved by root2" in approved.output
    token = approved.output.strip().splitlines()[-1]
    assert token.startswith("sp_")
    assert _set(db, token, "Stat-password-12").exit_code == 0
    again = _set(db, token, "Stat-password-13")
    assert again.exit_code == 1 and "unknown, already used or expired" in again.output
    assert "kwame" in _run(db, "user", "list").output and "No request is waiting" in _run(db, "user", "requests").output
    sponsor = yaml.safe_load(first_protocol_path.read_text(encoding="utf-8"))["trial"]["sponsors"][0]
    notices = _run(db, "user", "notices").output
    assert sponsor["address"]["email"] in notices and "kwame" in notices
    assert audit.entries(engine, action_prefix="user.request_approved")[0].actor == "root2"


def test_an_unblinded_account_is_acted_as_and_given_a_token_by_its_holder_only(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the command line, --as an unblinded account (it reads the arms) asks that account's password, and an API
    token for it is issued to its holder only: an administrator who knows the account's name gets neither."""
    from tests.trialfixtures import PASSWORD
    from trialwright.domain.roles import Role
    from trialwright.services.users import create_user

    engine = make_engine(db)
    create_user(engine, username="ustat", password=PASSWORD, role=Role.UNBLINDED_STATISTICIAN, actor="setup")
    monkeypatch.setenv("TRIALWRIGHT_PASSWORD", "not-the-password")
    listed = _run(db, "randomization", "status", "--as", "ustat")
    assert listed.exit_code == 4 and "--as: wrong username or password" in listed.output
    token = _run(db, "user", "token", "ustat", "--actor", "admin-on-duty")
    assert token.exit_code == 4 and "wrong username or password" in token.output
    monkeypatch.delenv("TRIALWRIGHT_PASSWORD")
    prompted = _run(db, "randomization", "status", "--as", "ustat", stdin=PASSWORD + "\n")
    assert prompted.exit_code == 0, prompted.output
    issued = _run(db, "user", "token", "ustat", "--password-stdin", stdin=PASSWORD + "\n")
    assert issued.exit_code == 0 and issued.output.strip().splitlines()[-1].startswith("tw_")
    entry = audit.entries(engine, action_prefix="api.token_issued")[0]
    assert entry.actor == "ustat"
    failed = audit.entries(engine, action_prefix="user.reentry_failed")
    assert len(failed) == 2 and {e.actor for e in failed} == {"ustat"}


def test_a_site_user_is_moved_to_other_sites_with_a_reason_and_an_audit_entry(db: str) -> None:
    from trialwright.services.users import get_user

    assert _run(db, "user", "add", "carol", "--role", "study_coordinator", "--site", "RAZ").exit_code == 0
    moved = _run(db, "user", "sites", "carol", "--site", "GOL", "--reason", "transferred to Golestan", "--actor", "ann")
    assert moved.exit_code == 0, moved.output
    assert "carol now works at GOL." in moved.output
    user = get_user(make_engine(db), "carol")
    assert user is not None and user.sites == ("GOL",)  # what she sees changes at her next request
    (entry,) = audit.entries(make_engine(db), action_prefix="user.sites_changed")
    assert entry.actor == "ann" and entry.reason == "transferred to Golestan"
    assert '"RAZ"' in (entry.old_value or "") and '"GOL"' in (entry.new_value or "")
    assert _run(db, "user", "sites", "carol", "--site", "GOL").exit_code == 2  # no reason: not done
    assert get_user(make_engine(db), "carol").sites == ("GOL",)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("user", "role", "sites", "words"),
    [
        ("dora", "data_manager", ["RAZ"], "site: data manager is a trial-wide role; it works at no site"),
        ("erin", "study_coordinator", ["XYZ"], "site: unknown site XYZ"),
        # An unblinded account gains no site by one person: a second approves a new account there.
        ("finn", "unblinded_pharmacist", ["RAZ", "GOL"], "under the two-person rule; one person cannot add a site"),
    ],
)
def test_sites_changes_refused_say_the_rule_and_change_nothing(
    db: str, user: str, role: str, sites: list[str], words: str
) -> None:
    from trialwright.services.users import get_user

    _account(db, user, role, [] if role == "data_manager" else ["RAZ"])
    before = get_user(make_engine(db), user)
    args = [a for s in sites for a in ("--site", s)]
    refused = _run(db, "user", "sites", user, *args, "--reason", "reorganised")
    assert refused.exit_code == 1 and words in refused.output and "Traceback" not in refused.output
    assert get_user(make_engine(db), user) == before
    assert not audit.entries(make_engine(db), action_prefix="user.sites_changed")


def test_an_unblinded_account_may_lose_a_site(db: str) -> None:
    from trialwright.services.users import get_user

    _account(db, "gus", "unblinded_pharmacist", ["RAZ", "GOL"])
    narrowed = _run(db, "user", "sites", "gus", "--site", "RAZ", "--reason", "GOL has its own pharmacist now")
    assert narrowed.exit_code == 0, narrowed.output
    assert get_user(make_engine(db), "gus").sites == ("RAZ",)  # type: ignore[union-attr]


def _account(db: str, user: str, role: str, sites: list[str]) -> None:
    """An account made directly (an unblinded one is otherwise a request under the two-person rule)."""
    from tests.trialfixtures import PASSWORD
    from trialwright.services.users import create_user

    create_user(make_engine(db), username=user, password=PASSWORD, role=role, sites=sites, actor="setup")
