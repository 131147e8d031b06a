"""Scripting the command line (docs/cli.md, "Scripting" and "Exit codes").

* ``--json`` prints one JSON document on standard output, nothing else there, made from the service's typed
  result: the fields are checked against what went in and against an independent reading of the protocol file.
* The exit code says what kind of outcome it was, the same in every command:

  ===  ==========  ===========================================================================
  0    OK          done
  1    REFUSED     a rule of the trial refused it (nothing changed), or a check found a problem
  2    USAGE       the command line was wrong (unknown option, malformed value)
  3    NOT_FOUND   what the command names does not exist (a screening, a form, a file)
  4    PERMISSION  no such active account, a role that may not, a wrong password
  ===  ==========  ===========================================================================

* No output, text or JSON, shows a Python object's ``repr`` (``ScreeningView(id=1, ...)``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner, Result

from tests.spec.screening.test_screening_consent_enrolment import TODAY, TYPED
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, username
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role

runner = CliRunner()

#: How a dataclass or pydantic model prints itself: ``ClassName(field=...``; and the default ``<module.Class object``.
REPR = re.compile(r"\b[A-Z][A-Za-z0-9_]*\([a-z_][a-z0-9_]*=|<trialwright\.[\w.]+ object at 0x")

COORDINATOR, DATA_MANAGER, STATISTICIAN = Role.STUDY_COORDINATOR, Role.DATA_MANAGER, Role.UNBLINDED_STATISTICIAN


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    t = make_trial(module_database_url)
    yield t
    t.engine.dispose()


def _run(trial: Trial, *args: str, role: Role | None = None, input: str | None = None) -> Result:
    acting = ["--as", username(role)] if role is not None else []
    done = runner.invoke(cli, [*args, *acting, "--database", trial.url], input=input)
    assert done.exception is None or isinstance(done.exception, SystemExit), done.output
    assert not REPR.search(done.output), f"a Python repr in the output of {args}: {done.output}"
    return done


def _json(done: Result) -> object:
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)  # standard output alone: one JSON document, nothing before or after


# --json ----------------------------------------------------------------------------------------------------------


def test_screening_add_list_and_show_print_the_screening_as_json(trial: Trial) -> None:
    added = _json(_run(trial, "screening", "add", "--site", "RAZ", "--json", role=COORDINATOR, input=json.dumps(TYPED)))
    assert isinstance(added, dict)
    assert added["label"] == "RAZ-S0001" and added["site"] == "RAZ" and added["screened_on"] == TODAY.isoformat()
    # Every value but the consent was typed: the decision waits for the consent, and says so by the field's id.
    assert added["decision"] == "incomplete" and added["missing"] == ["informed_consent"]
    assert added["failed"] == [] and added["consents"] == [] and added["participant"] is None
    assert {k: added["values"][k] for k in ("age", "pao2_mmhg", "fio2")} == {k: TYPED[k] for k in ("age", "pao2_mmhg",
                                                                                                   "fio2")}  # fmt: skip
    listed = _json(_run(trial, "screening", "list", "--json", role=COORDINATOR))
    assert isinstance(listed, list) and [s["label"] for s in listed] == ["RAZ-S0001"]
    shown = _json(_run(trial, "screening", "show", "RAZ-S0001", "--json", role=COORDINATOR))
    assert shown == listed[0] == added


def test_protocol_check_json_agrees_with_the_file_read_independently(trial: Trial) -> None:
    raw = YAML(typ="safe").load(FIRST_PROTOCOL.read_text(encoding="utf-8"))
    checked = runner.invoke(cli, ["protocol", "check", str(FIRST_PROTOCOL), "--json"])
    doc = _json(checked)
    assert isinstance(doc, dict) and doc["valid"] is True
    assert doc["trial_id"] == next(i["id"] for i in raw["trial"]["ids"] if i.get("primary"))
    assert doc["version"] == raw["version"]["number"]
    criteria = len(raw["eligibility"]["inclusion"]) + len(raw["eligibility"]["exclusion"])
    assert doc["counts"] == {"sites": len(raw["sites"]), "arms": len(raw["arms"]), "criteria": criteria,
                             "visits": len(raw["visits"]), "forms": len(raw["forms"]),
                             "outcomes": len(raw["outcomes"])}  # fmt: skip
    assert all(isinstance(note, str) for note in doc["notes"])


def test_protocol_check_json_lists_a_broken_file_s_problems_and_exits_1(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(FIRST_PROTOCOL.read_text(encoding="utf-8") + "\nnot_a_field: 1\n", encoding="utf-8")
    done = runner.invoke(cli, ["protocol", "check", str(broken), "--json"])
    assert done.exit_code == 1
    doc = json.loads(done.stdout)
    assert doc["valid"] is False and any(p["path"] == "not_a_field" for p in doc["problems"]), doc


def test_user_list_json_names_every_account_and_no_secret(trial: Trial) -> None:
    users = _json(_run(trial, "user", "list", "--json"))
    assert isinstance(users, list)
    assert {u["username"]: u["role"] for u in users} == {username(r): r.value for r in Role}
    assert all(u["active"] is True for u in users)
    assert not re.search(r"password|hash", json.dumps(users), re.IGNORECASE)


def test_email_status_json_never_holds_the_mail_server_s_password(
    trial: Trial, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIALWRIGHT_SMTP_HOST", "mail.example")
    monkeypatch.setenv("TRIALWRIGHT_SMTP_USER", "trialwright")
    monkeypatch.setenv("TRIALWRIGHT_SMTP_PASSWORD", "s3cret-of-the-mail-server")
    monkeypatch.setenv("TRIALWRIGHT_EMAIL_FROM", "trialwright@hospital.example")
    done = _run(trial, "email", "status", "--json")
    doc = _json(done)
    assert isinstance(doc, dict) and doc["config"]["host"] == "mail.example" and doc["config"]["user"] == "trialwright"
    assert "password" not in doc["config"] and "s3cret-of-the-mail-server" not in done.output


def test_randomization_and_readiness_as_json(trial: Trial) -> None:
    generated = _json(_run(trial, "randomization", "generate", "--seed", "7", "--json", role=STATISTICIAN))
    assert isinstance(generated, dict) and re.fullmatch(r"[0-9a-f]{64}", generated["checksum"])
    strata = _json(_run(trial, "randomization", "status", "--json", role=STATISTICIAN))
    assert isinstance(strata, list) and strata
    assert all(s["used"] == 0 and s["remaining"] > 0 for s in strata)
    records = _json(_run(trial, "randomization", "report", "--json", role=STATISTICIAN))
    assert isinstance(records, list) and records[0]["checksum"] == generated["checksum"]
    assert records[0]["kind"] == "generated" and records[0]["by"] == username(STATISTICIAN)
    ready = _json(_run(trial, "database", "readiness", "--json", role=DATA_MANAGER))
    assert isinstance(ready, dict) and ready["ready"] is True


# Exit codes ------------------------------------------------------------------------------------------------------


def test_exit_code_0_when_done_and_1_when_a_rule_refuses(trial: Trial) -> None:
    assert _run(trial, "screening", "list", role=COORDINATOR).exit_code == 0
    too_old = _run(trial, "screening", "add", "--site", "RAZ", role=COORDINATOR, input='{"age": 300}')
    assert too_old.exit_code == 1 and "age: 300 is outside" in too_old.output
    unconsented = _run(trial, "screening", "add", "--site", "RAZ", role=COORDINATOR, input=json.dumps(TYPED))
    label = re.search(r"RAZ-S\d{4}", unconsented.output)
    assert label, unconsented.output
    not_enrolable = _run(trial, "enrol", label.group(0), role=COORDINATOR)
    assert not_enrolable.exit_code == 1 and "Traceback" not in not_enrolable.output


def test_exit_code_2_for_a_wrong_command_line(trial: Trial) -> None:
    unknown = _run(trial, "screening", "list", "--no-such-option", role=COORDINATOR)
    assert unknown.exit_code == 2
    bad_date = _run(trial, "screening", "add", "--site", "RAZ", "--date", "20-05-2021", role=COORDINATOR, input="{}")
    assert bad_date.exit_code == 2 and "--date: must be YYYY-MM-DD" in bad_date.output
    not_json = _run(trial, "screening", "add", "--site", "RAZ", role=COORDINATOR, input="{age: 30")
    assert not_json.exit_code == 2 and "--data: not valid JSON" in not_json.output
    assert runner.invoke(cli, ["protocol", "show", str(FIRST_PROTOCOL), "--calendar", "mayan"]).exit_code == 2


def test_exit_code_3_when_what_is_named_does_not_exist(trial: Trial, tmp_path: Path) -> None:
    screening = _run(trial, "screening", "show", "RAZ-S0999", role=COORDINATOR)
    assert screening.exit_code == 3 and "no screening RAZ-S0999" in screening.output
    participant = _run(trial, "consent", "withdraw", "RAZ-999", "--scope", "follow_up", "--cause", "other",
                       "--reason", "test", role=COORDINATOR)  # fmt: skip
    assert participant.exit_code == 3 and "no such participant" in participant.output
    form = _run(trial, "form", "show", "RAZ-999", "baseline", "labs", role=COORDINATOR)
    assert form.exit_code == 3, form.output
    assert runner.invoke(cli, ["protocol", "check", str(tmp_path / "missing.yaml")]).exit_code == 3


def test_exit_code_4_when_the_user_may_not(trial: Trial, monkeypatch: pytest.MonkeyPatch) -> None:
    ghost = runner.invoke(cli, ["screening", "list", "--as", "ghost", "--database", trial.url])
    assert ghost.exit_code == 4 and "no active user 'ghost'" in ghost.output
    # A role that may not: the services say "role: ..." (the coordinator reads no allocation list, no audit trail).
    role = _run(trial, "randomization", "status", role=COORDINATOR)
    assert role.exit_code == 4 and "role:" in role.output
    audit = _run(trial, "audit", "show", role=COORDINATOR)
    assert audit.exit_code == 4 and "the audit trail is for administrators" in audit.output
    # A wrong password re-entered (a DSMB decision is confirmed with the member's own).
    wrong = _run(trial, "safety", "decide", "pause", "--reason", "a signal", "--password-stdin", role=Role.DSMB_MEMBER,
                 input="not-" + PASSWORD + "\n")  # fmt: skip
    assert wrong.exit_code == 4 and "password: the password is not correct" in wrong.output
    # An unblinded account acted as with the wrong password.
    monkeypatch.setenv("TRIALWRIGHT_PASSWORD", "not-" + PASSWORD)
    assert _run(trial, "randomization", "status", role=STATISTICIAN).exit_code == 4
