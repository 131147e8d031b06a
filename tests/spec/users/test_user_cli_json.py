"""`--json` on the one-line actions of `trialwright user`: one JSON document on standard output (the serializer
of ``trialwright.cli.common``), with what a script needs next (the set-password token, the API token, the
request id), read back against the services, and never a password."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trialwright.cli.main import app
from trialwright.protocol import load_protocol
from trialwright.services.tokens import list_tokens
from trialwright.services.trial import init_trial
from trialwright.services.users import get_user, resolve_token
from trialwright.store.engine import make_engine

runner = CliRunner()
PASSWORD = "Granite-tulip-47"


@pytest.fixture
def db(database_url: str, first_protocol_path: Path) -> str:
    init_trial(make_engine(database_url), load_protocol(first_protocol_path))
    return database_url


def _json(db: str, *args: str, stdin: str | None = None) -> dict:  # type: ignore[type-arg]
    done = runner.invoke(app, [*args, "--json", "--database", db], input=stdin)
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)  # the whole of standard output is one document


def test_user_actions_print_one_json_document(db: str) -> None:
    engine = make_engine(db)
    added = _json(db, "user", "add", "alice", "--role", "investigator", "--site", "RAZ", "--actor", "setup")
    assert added["username"] == "alice" and added["pending"] is None
    assert added["token"]["username"] == "alice" and added["token"]["token"].startswith("sp_")
    assert _json(db, "user", "set-password", "--token", added["token"]["token"], "--password-stdin",
                 stdin=PASSWORD + "\n") == {"username": "alice", "password_set": True}  # fmt: skip
    issued = _json(db, "user", "token", "alice", "--name", "script")
    holder = resolve_token(engine, issued["token"])
    assert holder is not None and holder.username == "alice"
    (listed,) = list_tokens(engine, "alice")
    assert (issued["id"], issued["name"], issued["state"]) == (listed.id, "script", "live")
    assert _json(db, "user", "revoke-token", "alice", str(listed.id)) == {
        "username": "alice", "token_id": listed.id, "revoked": True,
    }  # fmt: skip
    assert resolve_token(engine, issued["token"]) is None
    emailed = _json(db, "user", "email", "alice", "alice@example.org", "--as", "alice", "--password-stdin",
                    stdin=PASSWORD + "\n")  # fmt: skip
    assert (emailed["username"], emailed["email"], emailed["role"]) == ("alice", "alice@example.org", "investigator")
    disabled = _json(db, "user", "disable", "alice", "--reason", "left")
    assert disabled["username"] == "alice" and disabled["active"] is False
    user = get_user(engine, "alice")
    assert user is not None and not user.active
    enabled = _json(db, "user", "enable", "alice", "--actor", "setup")
    assert enabled == {"username": "alice", "pending": None, "token": None}
    reset = _json(db, "user", "reset-password", "alice", "--actor", "setup")
    assert reset["token"]["token"].startswith("sp_") and reset["pending"] is None
    for document in (added, issued, emailed, disabled, reset):
        assert PASSWORD not in json.dumps(document) and "password_hash" not in json.dumps(document)


def test_two_person_requests_answer_in_json(db: str) -> None:
    for name in ("root", "root2"):  # setting up: fewer than two approvers, so created at once
        made = _json(db, "user", "add", name, "--role", "administrator", "--actor", "setup")
        _json(db, "user", "set-password", "--token", made["token"]["token"], "--password-stdin", stdin=PASSWORD + "\n")
    requested = _json(db, "user", "add", "kwame", "--role", "unblinded_statistician", "--as", "root", "--reason",
                      "hire", "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert requested["token"] is None and requested["pending"]["id"] == 1
    assert (requested["pending"]["kind"], requested["pending"]["role"]) == ("create", "unblinded_statistician")
    approved = _json(db, "user", "approve", "1", "--as", "root2", "--password-stdin", stdin=PASSWORD + "\n")
    assert (approved["request"], approved["approved_by"]) == (1, "root2")
    # one shape with `user add`: the set-password token at token.token, whichever command issued it
    assert set(approved) == set(requested) | {"request", "approved_by"}
    assert approved["username"] == "kwame" and approved["pending"] is None
    assert approved["token"]["username"] == "kwame" and approved["token"]["token"].startswith("sp_")
    assert _json(db, "user", "set-password", "--token", approved["token"]["token"], "--password-stdin",
                 stdin=PASSWORD + "\n") == {"username": "kwame", "password_set": True}  # fmt: skip
    again = _json(db, "user", "add", "lena", "--role", "unblinded_statistician", "--as", "root", "--reason",
                  "second", "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    rejected = _json(db, "user", "reject", str(again["pending"]["id"]), "--as", "root2", "--reason", "no",
                     "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert rejected["rejected_by"] == "root2" and rejected["request"]["id"] == again["pending"]["id"]
    assert rejected["request"]["username"] == "lena"
