"""The audit page and `GET /api/v1/audit` at any size: keyset pages newest first in the shape of every list
(``{items, total, limit, next, prev}``, opaque cursors, ``Link`` headers) with a total and filters that hold
across pages, complete and stable while entries are appended between loads; the old ``before`` is refused by
name, never answered with the first page again; a load verifies only what is
new (from the last checkpoint) and never runs the full verification or the replay. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

import trialwright.domain.audit as domain_audit
from tests.spec.web.conftest import sign_in
from tests.trialfixtures import Trial, make_trial, username
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.users import issue_token
from trialwright.settings import Settings
from trialwright.store.engine import session_scope
from trialwright.store.tables import audit_checkpoints
from trialwright.web.app import create_app


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    yield t
    t.engine.dispose()


@pytest.fixture
def client(trial: Trial) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as c:
        yield c


def _write(engine: Engine, n: int, *, action: str = "test.note", participant: str | None = None) -> None:
    with session_scope(engine) as session:
        changes = [{"actor": "alice", "action": action, "participant": participant, "new_value": i} for i in range(n)]
        audit.record_many(session, changes)


def _bearer(trial: Trial) -> dict[str, str]:
    token, _ = issue_token(trial.engine, username(Role.DATA_MANAGER), name="t", actor="test")
    return {"Authorization": f"Bearer {token}"}


def _walk(client: TestClient, headers: dict[str, str], params: dict[str, Any], between: Any) -> tuple[list[int], Any]:
    """Every page of the API, oldest cursor last, calling ``between()`` after each page; the seqs and first page."""
    seqs: list[int] = []
    first = None
    cursor = None
    for _ in range(1000):
        answer = client.get("/api/v1/audit", params={**params, **({"cursor": cursor} if cursor else {})},
                            headers=headers)  # fmt: skip
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"items", "total", "limit", "next", "prev"}
        assert (body["next"] is None) == ('rel="next"' not in answer.headers.get("link", ""))
        first = first or body
        seqs += [e["seq"] for e in body["items"]]
        cursor = body["next"]
        between()
        if cursor is None:
            return seqs, first
    raise AssertionError("the pages never end")


def test_api_pages_are_complete_and_stable_while_entries_are_appended(client: TestClient, trial: Trial) -> None:
    headers = _bearer(trial)
    _write(trial.engine, 40)
    head = audit.count(trial.engine)
    seqs, first = _walk(client, headers, {"limit": 7}, lambda: _write(trial.engine, 3))
    assert len(seqs) == len(set(seqs))  # no entry twice
    assert seqs == sorted(seqs, reverse=True)
    # Every entry that existed when the walk began, exactly once (the first page may also hold entries the token's
    # use wrote before it was read; later appends are newer than every cursor and never show up).
    assert [s for s in seqs if s <= head] == list(range(head, 0, -1))
    assert first["total"] >= head and len(first["items"]) == 7 and first["prev"] is None


def test_the_old_before_parameter_is_refused_by_name(client: TestClient, trial: Trial) -> None:
    answer = client.get("/api/v1/audit", params={"before": 5}, headers=_bearer(trial))
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "before"


def test_filters_hold_across_pages_with_their_total(client: TestClient, trial: Trial) -> None:
    headers = _bearer(trial)
    _write(trial.engine, 23, action="test.mine", participant="RAZ-042")
    _write(trial.engine, 10, action="test.other", participant="RAZ-042")
    params = {"limit": 5, "action": "test.mine", "participant": "RAZ-042", "actor": "alice"}
    seqs, first = _walk(client, headers, params, lambda: _write(trial.engine, 2, action="test.mine"))
    assert first["total"] == 23 and len(seqs) == 23 == len(set(seqs))
    mine = audit.entries(trial.engine, action_prefix="test.mine", participant="RAZ-042", limit=100)
    assert seqs == [e.seq for e in mine]


def test_the_page_keeps_its_filters_in_the_next_link_and_shows_the_total(client: TestClient, trial: Trial) -> None:
    _write(trial.engine, 60, action="test.page")
    sign_in(client, Role.DATA_MANAGER)
    page = client.get("/admin/audit", params={"action": "test.page"})
    assert page.status_code == 200 and "60 entries match" in page.text and "Showing 1–50 of 60" in page.text
    older = re.search(r'<a rel="next" data-testid="page-next" href="/admin/audit\?([^"]+)"', page.text)
    assert older is not None
    query = older.group(1).replace("&amp;", "&")
    assert "action=test.page" in query and "cursor=" in query
    second = client.get("/admin/audit?" + query)
    assert second.status_code == 200 and "60 entries match" in second.text and "Showing 51–60 of 60" in second.text
    shown = set(re.findall(r"<tr><td>(\d+)</td>", page.text)) | set(re.findall(r"<tr><td>(\d+)</td>", second.text))
    assert len(shown) == 60 and 'rel="next"' not in second.text and 'rel="prev"' in second.text


def test_a_page_load_verifies_only_new_entries_and_never_runs_the_full_verify_or_the_replay(
    client: TestClient, trial: Trial, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trialwright.services.audit_keys as audit_keys
    import trialwright.services.replay as replay_module

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the audit page ran a full verification or the replay")

    monkeypatch.setattr(replay_module, "replay", forbidden)
    monkeypatch.setattr(audit, "verify", forbidden)
    monkeypatch.setattr(audit_keys, "verify_trail", forbidden)
    hashed: list[int] = []
    real = domain_audit.entry_hash

    def counting(entry: domain_audit.AuditEntry) -> str:
        hashed.append(entry.seq)
        return real(entry)

    monkeypatch.setattr(domain_audit, "entry_hash", counting)
    sign_in(client, Role.DATA_MANAGER)
    first = client.get("/admin/audit")
    assert first.status_code == 200 and "The hash chain is intact up to entry" in first.text
    assert "No full verification recorded yet" in first.text
    with trial.engine.connect() as conn:
        verified = conn.execute(select(func.max(audit_checkpoints.c.seq))).scalar_one()
    _write(trial.engine, 12)
    head = audit.count(trial.engine)
    hashed.clear()
    second = client.get("/admin/audit")
    assert second.status_code == 200 and f"The hash chain is intact up to entry {head}" in second.text
    assert head - verified >= 12 and sorted(hashed) == list(range(verified + 1, head + 1))
