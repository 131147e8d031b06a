"""`trialwright query list|show|raise|answer|close`: the data queries from the command line, through the services the
inbox and ``/api/v1/queries`` call, so the command line shows what the API shows and is refused what the API is.

- A monitor raises, a coordinator answers, the monitor closes, on the command line: each step's query equals the
  API's, and the audit trail is the one the same round trip through the API leaves.
- A coordinator raises: exit 4 with the role rule, nothing raised; a monitor answers: exit 4; the unblinded
  pharmacist lists: exit 4 with the rule, before any password is asked.
- The masked outcome assessor lists while a query is open on the form that reveals the arm: the API's list for them,
  item for item, without that query or the form's value; `show` of its id says what an id no query has says.
- Five queries listed two at a time: each page says which part of how many it shows and the next and previous
  page's `--cursor`; the pages reach every query once, in the API's order (and in `--json`, three at a time).
- An unknown query id (3), an empty question or answer, a field the form lacks, a closed query closed or answered
  again (1), a status, limit or cursor that is none (2): non-zero, the field named.

On SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from tests.spec.masking.test_forms_that_reveal_the_arm import COUNT, _trial, masking
from tests.trialfixtures import Trial, username, who
from trialwright.cli.main import app
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app

runner = CliRunner()


def _cli(trial: Trial, role: Role, *words: str) -> Result:
    return runner.invoke(app, ["query", *words, "--as", username(role), "--database", trial.url], input="")


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _same_time(item: dict[str, Any]) -> dict[str, Any]:
    """A query as JSON, its ``raised_at`` read as a time (the API writes UTC as ``Z``, the command line ``+00:00``)."""
    return {**item, "raised_at": dt.datetime.fromisoformat(item["raised_at"].replace("Z", "+00:00"))}


class Api:
    """The API as one user of the trial."""

    def __init__(self, client: TestClient, trial: Trial, role: Role) -> None:
        token, _ = issue_token(trial.engine, username(role), name=f"t-{role.value}", actor="test")
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **params: Any) -> Any:
        answer = self.client.get(path, headers=self.headers, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        answer = self.client.post(path, headers=self.headers, json=body)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()

    def queries(self, **params: Any) -> list[dict[str, Any]]:
        return [_same_time(q) for q in self.get("/api/v1/queries", limit=500, **params)["items"]]


@pytest.fixture
def api(trial: Trial) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=trial.url))) as client:
        yield client


@pytest.fixture
def labs(trial: Trial, pid: str) -> str:
    """The participant, with their baseline labs saved by the coordinator (a form to raise queries on)."""
    svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "labs", {"crp": 45})
    return pid


def _trail(trial: Trial, pid: str, query_id: int) -> list[tuple[Any, ...]]:
    """The query's audit entries, oldest first, without what differs between two queries (the id, the time)."""
    found = []
    for e in reversed(audit.entries(trial.engine, participant=pid, action_prefix="query.")):
        new = json.loads(e.new_value or "{}")
        if new.get("query") == query_id:
            new.pop("query")
            found.append((e.action, e.actor, e.role, e.site, e.form, e.field, e.old_value, new))
    return found


def test_a_round_trip_on_the_command_line_is_what_the_api_shows_and_audits(
    trial: Trial, labs: str, api: TestClient
) -> None:
    pid = labs
    monitor, coordinator = Api(api, trial, Role.MONITOR), Api(api, trial, Role.STUDY_COORDINATOR)
    target = ["--visit", "baseline", "--form", "labs", "--field", "crp"]
    raised = _json(_cli(trial, Role.MONITOR, "raise", pid, "Is CRP 45 right?", *target, "--json"))
    assert (raised["status"], raised["form_id"], raised["field"], raised["raised_by"]) == (
        "open", "labs", "crp", username(Role.MONITOR))  # fmt: skip
    number = str(raised["id"])
    assert [_same_time(raised)] == monitor.queries(participant_id=pid)
    answered = _json(_cli(trial, Role.STUDY_COORDINATOR, "answer", number, "The chart says 45.", "--json"))
    assert answered["status"] == "answered" and answered["answer"] == "The chart says 45."
    assert [_same_time(answered)] == coordinator.queries(participant_id=pid)
    closed = _json(_cli(trial, Role.MONITOR, "close", number, "--note", "Confirmed.", "--json"))
    assert (closed["status"], closed["closed_by"], closed["close_note"]) == ("closed", "monitor", "Confirmed.")
    assert [_same_time(closed)] == monitor.queries(participant_id=pid)
    assert _json(_cli(trial, Role.MONITOR, "show", number, "--json")) == closed
    listed = _json(_cli(trial, Role.STUDY_COORDINATOR, "list", "--participant", pid, "--json"))
    assert [_same_time(q) for q in listed["items"]] == coordinator.queries(participant_id=pid)
    text = _cli(trial, Role.MONITOR, "list", "--participant", pid)
    assert text.exit_code == 0 and f"#{number} closed {pid} (RAZ) baseline labs crp: Is CRP 45 right?" in text.output
    assert "answer by study-coordinator: The chart says 45.; closed by monitor: Confirmed." in text.output
    # The same round trip through the API leaves the same audit trail (but for the query's id and time).
    body = {
        "participant_id": pid,
        "text": "Is CRP 45 right?",
        "visit_id": "baseline",
        "form_id": "labs",
        "field": "crp",
    }
    second = monitor.post("/api/v1/queries", body)["id"]
    coordinator.post(f"/api/v1/queries/{second}/answer", {"answer": "The chart says 45."})
    monitor.post(f"/api/v1/queries/{second}/close", {"note": "Confirmed."})
    on_the_command_line = _trail(trial, pid, raised["id"])
    assert [a for a, *_ in on_the_command_line] == ["query.raised", "query.answered", "query.closed"]
    assert on_the_command_line == _trail(trial, pid, second)


def test_a_role_that_may_not_raise_is_refused_with_the_rule(trial: Trial, labs: str, api: TestClient) -> None:
    refused = _cli(trial, Role.STUDY_COORDINATOR, "raise", labs, "Is CRP 45 right?")
    assert refused.exit_code == 4, refused.output
    assert "role: only a monitor or a data manager may raise queries" in refused.output
    assert Api(api, trial, Role.MONITOR).queries() == []  # nothing raised
    answered = _cli(trial, Role.MONITOR, "answer", "1", "yes")
    assert answered.exit_code == 4 and "may answer queries" in answered.output
    # A role that reads no queries is refused with the rule before its unblinded account's password is asked.
    pharmacist = _cli(trial, Role.UNBLINDED_PHARMACIST, "list")
    assert pharmacist.exit_code == 4 and "may read queries" in pharmacist.output
    assert "Password" not in pharmacist.output


@pytest.fixture
def wound(database_url: str) -> Iterator[tuple[Trial, str]]:
    """A trial masking the outcome assessor, with a form that reveals the arm, filled in (``COUNT``) for ``pid``."""
    trial, pid = _trial(database_url, masking("outcome_assessor"))
    yield trial, pid
    trial.engine.dispose()


def test_a_masked_role_s_list_is_the_api_s_and_names_nothing_of_the_arm(wound: tuple[Trial, str]) -> None:
    trial, pid = wound
    monitor = who(trial, Role.MONITOR)  # unmasked here
    kept = svc.raise_query(trial.engine, monitor, pid, f"Is {COUNT} right?", visit_id="baseline",
                           form_id="ward_dressings", field_id="dressing_changes")  # fmt: skip
    shown = svc.raise_query(trial.engine, monitor, pid, "Date of birth checked?")
    with TestClient(create_app(Settings(database_url=trial.url))) as client:
        assessor_api, nurse_api = Api(client, trial, Role.OUTCOME_ASSESSOR), Api(client, trial, Role.STUDY_COORDINATOR)
        assessor_page = assessor_api.get("/api/v1/queries")
        assessor, nurse = assessor_api.queries(), nurse_api.queries()
    listed = _json(_cli(trial, Role.OUTCOME_ASSESSOR, "list", "--json"))
    assert [_same_time(q) for q in listed["items"]] == assessor
    assert [q["id"] for q in assessor] == [shown.id] and listed["total"] == assessor_page["total"] == 1
    assert {q["id"] for q in nurse} == {kept.id, shown.id}  # the unmasked nurse reads both
    text = _cli(trial, Role.OUTCOME_ASSESSOR, "list")
    assert text.exit_code == 0 and f"#{shown.id} " in text.output and text.output.rstrip().endswith("1 query.")
    for seen in (text.output, json.dumps(listed)):
        assert "ward_dressings" not in seen and not re.search(rf"\b{COUNT}\b", seen) and f"#{kept.id} " not in seen
    # The kept query is not found, in the words of an id no query has.
    unknown = kept.id + shown.id + 100
    hidden, none = (_cli(trial, Role.OUTCOME_ASSESSOR, "show", str(n)) for n in (kept.id, unknown))
    assert hidden.exit_code == none.exit_code == 3
    assert hidden.output.replace(str(kept.id), "N") == none.output.replace(str(unknown), "N")
    assert "query: no query N" in hidden.output.replace(str(kept.id), "N")
    answered = _cli(trial, Role.OUTCOME_ASSESSOR, "answer", str(kept.id), "yes")
    assert answered.exit_code == 3 and f"query: no query {kept.id}" in answered.output


def _lines(result: Result) -> tuple[list[int], str]:
    """The query numbers a text page lists, and what it says after them."""
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    numbers = [int(m.group(1)) for line in lines if (m := re.match(r"#(\d+) ", line))]
    return numbers, " | ".join(line for line in lines if not line.startswith("#"))


def test_list_paging_reaches_every_query_and_says_when_cut(trial: Trial, labs: str, api: TestClient) -> None:
    monitor = who(trial, Role.MONITOR)
    for n in range(5):
        svc.raise_query(trial.engine, monitor, labs, f"Question {n}?")
    expected = [q["id"] for q in Api(api, trial, Role.MONITOR).queries()]
    assert len(expected) == 5
    seen, cursor, said = [], None, []
    while True:
        numbers, last = _lines(
            _cli(trial, Role.MONITOR, "list", "--limit", "2", *(["--cursor", cursor] if cursor else []))
        )
        seen += numbers
        said.append(re.sub(r"--cursor \S+", "--cursor C", last))
        found = re.search(r"The next page: --cursor (\S+)", last)
        if found is None:
            break
        cursor = found.group(1)
    assert seen == expected  # every query once, in the API's order
    assert said == [
        "Queries 1-2 of 5 shown (--limit 2). | The next page: --cursor C",
        "Queries 3-4 of 5 shown (--limit 2). | The next page: --cursor C | The previous page: --cursor C",
        "Queries 5-5 of 5 shown (--limit 2). | The previous page: --cursor C",
    ]
    whole = _lines(_cli(trial, Role.MONITOR, "list"))
    assert whole == (expected, "5 queries.")  # not cut: says so by saying nothing is left out
    pages, cursor = [], None
    while True:
        page = _json(
            _cli(trial, Role.MONITOR, "list", "--limit", "3", "--json", *(["--cursor", cursor] if cursor else []))
        )
        pages.append(([q["id"] for q in page["items"]], page["total"], page["start"]))
        if (cursor := page["next_cursor"]) is None:
            break
    assert pages == [(expected[:3], 5, 0), (expected[3:], 5, 3)]


def test_bad_input_exits_non_zero_naming_the_field(trial: Trial, labs: str) -> None:
    raised = _json(_cli(trial, Role.MONITOR, "raise", labs, "Is CRP 45 right?", "--json"))
    number = str(raised["id"])
    cases = [
        (Role.MONITOR, ["show", "9999"], 3, "query: no query 9999"),
        (Role.STUDY_COORDINATOR, ["answer", "9999", "yes"], 3, "query: no query 9999"),
        (Role.MONITOR, ["close", "9999"], 3, "query: no query 9999"),
        (Role.MONITOR, ["raise", labs, ""], 1, "text: write the question"),
        (Role.MONITOR, ["raise", labs, "   "], 1, "text: write the question"),
        (Role.STUDY_COORDINATOR, ["answer", number, ""], 1, "answer: write the answer"),
        (Role.MONITOR, ["raise", labs, "Which?", "--visit", "baseline", "--form", "labs", "--field", "nope"], 1,
         "field: form labs has no field 'nope'"),
        (Role.MONITOR, ["raise", labs, "Which?", "--form", "labs"], 1, "visit: None is not a visit of the protocol"),
        (Role.MONITOR, ["raise", labs, "Which?", "--log", "conmeds"], 1, "sequence: a query on a log entry names"),
        (Role.MONITOR, ["raise", "RAZ-999", "Who?"], 3, "no such participant"),
        (Role.MONITOR, ["list", "--status", "pending"], 2, "--status"),
        (Role.MONITOR, ["list", "--limit", "0"], 2, "limit: between 1 and 500"),
        (Role.MONITOR, ["list", "--cursor", "not-a-cursor"], 2, "cursor:"),
    ]  # fmt: skip
    for role, words, code, said in cases:
        result = _cli(trial, role, *words)
        assert (result.exit_code, said in " ".join(result.output.split())) == (code, True), (words, result.output)
    assert _cli(trial, Role.MONITOR, "close", number).exit_code == 0
    again = _cli(trial, Role.MONITOR, "close", number)
    assert again.exit_code == 1 and f"query: {number} is closed already" in again.output
    late = _cli(trial, Role.STUDY_COORDINATOR, "answer", number, "too late")
    assert late.exit_code == 1 and f"query: {number} is closed" in late.output
