"""`trialwright user add|list|disable|reset-password|token`: the same rules as the pages, all audited."""

from __future__ import annotations

from pathlib import Path

import pytest
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
        "--password-stdin",
        "--actor",
        "setup",
        stdin="Str0ng-password-1\n",
    )
    assert added.exit_code == 0, added.output
    assert "Created alice (investigator; sites: RAZ)" in added.output
    listing = _run(db, "user", "list")
    assert "alice" in listing.output and "Dr Alice" in listing.output
    assert _run(db, "user", "disable", "alice", "--reason", "left the team").exit_code == 0
    assert "disabled" in _run(db, "user", "list").output
    entry = audit.entries(make_engine(db), action_prefix="user.created")[0]
    assert entry.actor == "setup" and "Str0ng" not in (entry.new_value or "")


@pytest.mark.parametrize(
    ("args", "password", "words"),
    [
        (["--role", "investigator"], "Str0ng-password-1", "site: a investigator works at sites"),
        (["--role", "investigator", "--site", "XYZ"], "Str0ng-password-1", "unknown site XYZ"),
        (["--role", "wizard"], "Str0ng-password-1", "role: must be one of"),
        (["--role", "monitor", "--site", "GOL"], "short", "password: must be at least 12"),
        (["--role", "monitor", "--site", "GOL"], "alllowercaseletters", "password: must mix"),
    ],
)
@pytest.mark.covers("REG-10")
def test_bad_input_names_the_field_and_rule(db: str, args: list[str], password: str, words: str) -> None:
    result = _run(db, "user", "add", "bob", *args, "--password-stdin", stdin=password + "\n")
    assert result.exit_code == 1 and words in result.output and "Traceback" not in result.output


@pytest.mark.covers("REG-10")
def test_usernames_are_unique_whatever_the_case(db: str) -> None:
    first = _run(db, "user", "add", "carol", "--role", "data_manager", "--password-stdin", stdin="Str0ng-password-1\n")
    again = _run(db, "user", "add", "CAROL", "--role", "data_manager", "--password-stdin", stdin="Str0ng-password-1\n")
    assert first.exit_code == 0 and again.exit_code == 1 and "already taken" in again.output


@pytest.mark.covers("REG-3")
def test_token_and_reset(db: str) -> None:
    _run(
        db, "user", "add", "dave", "--role", "monitor", "--site", "GOL", "--password-stdin", stdin="Str0ng-password-1\n"
    )
    token = _run(db, "user", "token", "dave").output.strip()
    engine = make_engine(db)
    user = resolve_token(engine, token)
    assert token.startswith("tw_") and user is not None and user.username == "dave"
    reset = _run(db, "user", "reset-password", "dave", "--password-stdin", stdin="An0ther-password-2\n")
    assert reset.exit_code == 0 and audit.entries(engine, action_prefix="user.password_reset")


def test_bootstrap_admin_only_on_an_empty_trial(db: str) -> None:
    from trialwright.cli.serve import bootstrap_admin

    engine = make_engine(db)
    created = bootstrap_admin(engine)
    assert created is not None and created[0] == "admin" and len(created[1]) >= 12
    assert bootstrap_admin(engine) is None
