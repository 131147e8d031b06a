"""A form saved through the API is one transaction (the caller's token, the protocol and the save; on SQLite a read
snapshot of the token and the protocol, then the save), with a bounded number of statements; the refusals and the
token's use are still recorded in transactions of their own.

Counted with SQLAlchemy's ``begin`` and ``before_cursor_execute`` events on the app's engine, on SQLite and
PostgreSQL: statements are grouped by the transaction they ran in (the ``BEGIN`` and PostgreSQL's ``SET
TRANSACTION`` themselves are not counted). On PostgreSQL the audit trail's chainer runs after the commit in short
transactions of its own (``services/audit.py``); they are left out. (Speed itself is measured by
bench/form_saves.py, never here.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select

from tests.spec.forms.conftest import TODAY, enrolled_ten_days_ago
from tests.trialfixtures import Trial, make_trial, username
from trialwright.domain.roles import Role
from trialwright.services.tokens import issue_token
from trialwright.settings import Settings
from trialwright.store.engine import session_scope
from trialwright.store.tables import audit_entries
from trialwright.web.app import create_app

#: The benchmark's form (bench/form_saves.py): nine values, NEWS2 and the S/F ratio derived.
VITALS = {
    "assessed_at": f"{TODAY.isoformat()}T00:00+03:30", "resp_rate": 26, "spo2": 90, "on_oxygen": True,
    "systolic_bp": 105, "pulse": 115, "consciousness": "alert", "temperature": 38.5, "fio2": 0.5,
}  # fmt: skip

#: Statements of the request, at most, outside the chainer, for the first form of a visit not yet recorded: the
#: refused-token count, the token with the protocol's version (one statement), what the save looks up about the
#: participant (their row, the locks, the withdrawal, the visit, deaths, the facts the checks read; on SQLite the
#: audit trail's head too: one statement, ``forms/read_ahead.look_ahead``), the visit recorded, the form record and
#: the audit entries (on PostgreSQL also the data lock; the pending entries numbered in commit order by their
#: INSERT). Before: 22 in five transactions (SQLite) and 23 in five (PostgreSQL); 16 and 17 while the token and the
#: protocol's version were two statements; 15 and 16 while the look-ups were a statement each.
MOST_STATEMENTS = {"sqlite": 6, "postgresql": 7}


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


class Transactions:
    """The statements run on an engine, grouped by the transaction they ran in."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.groups: list[list[str]] = []
        self._open: dict[int, list[str]] = {}
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "before_cursor_execute", self._statement)

    def _begin(self, conn: Any) -> None:
        self._open[id(conn)] = group = []
        self.groups.append(group)

    def _statement(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        text = " ".join(statement.split())
        if not text.startswith(("BEGIN", "SET TRANSACTION")):
            self._open.setdefault(id(conn), []).append(text)

    def stop(self) -> None:
        event.remove(self.engine, "begin", self._begin)
        event.remove(self.engine, "before_cursor_execute", self._statement)

    def chainer(self) -> list[list[str]]:
        """The audit chainer's passes after a commit (PostgreSQL)."""
        return [g for g in self.groups if g and g[0].startswith(_CHAINER)]

    def request(self) -> list[list[str]]:
        """Every other transaction: the request's own."""
        chained = self.chainer()
        return [g for g in self.groups if not any(g is c for c in chained)]


#: How a pass of the audit chainer begins: its advisory lock tried, or its pending entries taken.
_CHAINER = ("SELECT pg_try_advisory_xact_lock(", "DELETE FROM audit_pending", "SELECT audit_pending.id")


def _bearer(trial: Trial, role: Role) -> dict[str, str]:
    token, _ = issue_token(trial.engine, username(role), name="t", actor="test")
    return {"Authorization": f"Bearer {token}"}


def _actions(trial: Trial) -> list[str]:
    with session_scope(trial.engine) as session:
        return list(session.execute(select(audit_entries.c.action).order_by(audit_entries.c.seq)).scalars())


def test_a_form_saved_through_the_api_is_one_transaction(trial: Trial) -> None:
    first, pid = enrolled_ten_days_ago(trial), enrolled_ten_days_ago(trial)
    coordinator = _bearer(trial, Role.STUDY_COORDINATOR)
    app = create_app(Settings(database_url=trial.url))
    with TestClient(app) as api:
        # The token's first use (audited once a minute) and the protocol's first parse happen before counting.
        warm = api.post(f"/api/v1/participants/{first}/visits/baseline/forms/vitals", headers=coordinator,
                        json={"values": VITALS})  # fmt: skip
        assert warm.status_code == 200, warm.text
        counted = Transactions(app.state.engine)
        saved = api.post(f"/api/v1/participants/{pid}/visits/baseline/forms/vitals", headers=coordinator,
                         json={"values": VITALS})  # fmt: skip
        counted.stop()
    app.state.engine.dispose()
    assert saved.status_code == 200, saved.text
    assert saved.json()["values"]["news2"]["value"] == 12 and saved.json()["open_queries"] == 0
    request = counted.request()
    first = ("SELECT api_tokens.id", "SELECT (SELECT protocol_versions.sha256")
    reads = [s for g in request for s in g if s.startswith(first)]
    # The token and the protocol's version, read once, in one statement.
    assert len(reads) == 1 and "protocol_versions.sha256" in reads[0], request
    if trial.engine.dialect.name == "postgresql":
        # One transaction: the token, the protocol and the save. (The chainer's passes after it are not counted:
        # their number depends on who else holds the chainer's lock on the database at that moment.)
        assert len(request) == 1, request
    else:
        # SQLite (one writer at a time): the reads in a snapshot of their own, then the save's write transaction.
        assert len(request) == 2, request
        assert all(s.startswith("SELECT ") for s in request[0]) and set(reads) <= set(request[0]), request
    save = request[-1]
    assert sum(s.startswith("INSERT INTO form_records ") for s in save) == 1, request
    # Nothing it wrote is read back: not the visit's forms after the visit is recorded, not the form record.
    assert not [s for s in save if s.startswith("SELECT form_records.id")], request
    assert sum(len(g) for g in request) <= MOST_STATEMENTS[trial.engine.dialect.name], request


def test_what_the_api_refuses_is_still_recorded_in_its_own_transaction(trial: Trial) -> None:
    pid = enrolled_ten_days_ago(trial)
    coordinator, monitor = _bearer(trial, Role.STUDY_COORDINATOR), _bearer(trial, Role.MONITOR)
    url = f"/api/v1/participants/{pid}/visits/baseline/forms/vitals"
    with TestClient(create_app(Settings(database_url=trial.url))) as api:
        before = len(_actions(trial))
        # The coordinator's first request is refused (422): the token's use is recorded all the same.
        refused = api.post(url, headers=coordinator, json={"values": {"spo2": 101}})
        assert refused.status_code == 422
        assert _actions(trial)[before:] == ["api.token_used"]
        # Another role: 403, and the refusal audited (after the token's first use).
        assert api.post(url, headers=monitor, json={"values": {"spo2": 95}}).status_code == 403
        assert _actions(trial)[before + 1 :] == ["api.token_used", "access.denied"]
        # No token, or an unknown one: 401, nothing saved.
        assert api.post(url, json={"values": {"spo2": 95}}).status_code == 401
        assert api.post(url, headers={"Authorization": "Bearer nope"}, json={"values": {"spo2": 95}}).status_code == 401
        assert api.get(url, headers=coordinator).status_code == 404
        # Saved at last: the values and their entries, the token's use not audited again within the minute.
        assert api.post(url, headers=coordinator, json={"values": {"spo2": 95}}).status_code == 200
        assert "api.token_used" not in _actions(trial)[before + 3 :]
        assert "form.value_entered" in _actions(trial)[before + 3 :]
