"""Rate limits on guessing (429 with Retry-After), and refused API tokens audited in aggregate.

Failed sign-ins are limited per client address and per username, password re-entries per address and per
user, refused API tokens per address. A flood of refused tokens leaves a bounded number of audit entries,
whatever its size.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import PASSWORD, Trial, username
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.tokens import issue_token
from trialwright.settings import Settings
from trialwright.web.app import create_app


def _client(trial: Trial, address: str = "198.51.100.7", **settings: int) -> TestClient:
    app = create_app(Settings(database_url=trial.url, lockout_threshold=100, **settings))  # type: ignore[arg-type]
    return TestClient(app, follow_redirects=False, client=(address, 50000))


def _fail_sign_in(client: TestClient, name: str) -> int:
    form = client.get("/sign-in")
    data = {"username": name, "password": "Wrong-guess-123", "csrf_token": csrf_of(form.text)}
    return client.post("/sign-in", data=data).status_code


def test_failed_sign_ins_per_address_answer_429_with_retry_after(trial: Trial) -> None:
    with _client(trial, rate_limit_sign_in=3) as client:
        assert [_fail_sign_in(client, f"guess-{i}") for i in range(3)] == [401, 401, 401]
        form = client.get("/sign-in")
        data = {"username": username(Role.MONITOR), "password": PASSWORD, "csrf_token": csrf_of(form.text)}
        refused = client.post("/sign-in", data=data)  # even the right password, from this address, for now
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["Content-Security-Policy"]  # an answer like any other
    # Another address is not held back by this one's failures.
    with _client(trial, address="203.0.113.9", rate_limit_sign_in=3) as other:
        sign_in(other, Role.MONITOR)


def test_failed_sign_ins_per_username_answer_429_from_any_address(trial: Trial) -> None:
    target = username(Role.INVESTIGATOR)
    with _client(trial, address="198.51.100.1", rate_limit_sign_in=2) as first:
        assert [_fail_sign_in(first, target) for _ in range(2)] == [401, 401]
        app = first.app
        with TestClient(app, follow_redirects=False, client=("198.51.100.2", 50000)) as second:
            assert _fail_sign_in(second, target) == 429
            assert _fail_sign_in(second, "someone-else") == 401
    # Successful sign-ins are not counted.
    with _client(trial, address="198.51.100.3", rate_limit_sign_in=1) as c:
        for _ in range(3):
            sign_in(c, Role.MONITOR)
            c.cookies.clear()


def test_password_reentries_are_rate_limited(trial: Trial) -> None:
    with _client(trial, rate_limit_reentry=2) as client:
        token, _ = issue_token(trial.engine, username(Role.INVESTIGATOR), name="t", actor="test")
        headers = {"Authorization": f"Bearer {token}"}
        path = "/api/v1/participants/RAZ-001/visits/baseline/forms/vitals/sign"
        codes = [client.post(path, json={"password": f"guess-{i}"}, headers=headers).status_code for i in range(3)]
        assert codes == [422, 422, 429]  # two wrong passwords refused as such, then the limit
        sign_in(client, Role.INVESTIGATOR)
        page = client.get("/participants")
        unblind = client.post(
            "/participants/RAZ-001/unblind",
            data={"csrf_token": csrf_of(page.text), "reason": "x", "password": PASSWORD, "confirm": "confirmed"},
        )
        assert unblind.status_code == 429 and "Retry-After" in unblind.headers  # the same user, by page


def test_a_flood_of_refused_tokens_writes_a_bounded_number_of_audit_entries(trial: Trial) -> None:
    with _client(trial, rate_limit_token_refusals=0) as client:  # no limit: every request reaches the check
        before = audit.count(trial.engine)
        for i in range(150):
            assert client.get("/api/v1/me", headers={"Authorization": f"Bearer tw_forged_{i}"}).status_code == 401
        during = audit.count(trial.engine) - before
    after = audit.count(trial.engine) - before  # the app has stopped: the window's count is written
    assert during == 1 and after == 2
    (first,) = audit.entries(trial.engine, action_prefix="api.token_refused")
    (total,) = audit.entries(trial.engine, action_prefix="api.token_refusals")
    assert '"source":"198.51.100.7"' in (first.detail or "") and '"refusals":150' in (total.detail or "")
    assert "tw_forged" not in str(first) + str(total)


def test_refused_tokens_past_the_limit_answer_429(trial: Trial) -> None:
    with _client(trial, rate_limit_token_refusals=5) as client:
        codes = [client.get("/api/v1/me", headers={"Authorization": "Bearer tw_forged"}).status_code for _ in range(7)]
        assert codes == [401] * 5 + [429] * 2
        late = client.get("/api/v1/trial")
        assert late.status_code == 429 and int(late.headers["Retry-After"]) >= 1
        # A valid token from that address is held back too until the window ends (the limit is per address).
        token, _ = issue_token(trial.engine, username(Role.MONITOR), name="t", actor="test")
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 429


# -- Several workers: one limit ------------------------------------------------------------------------------------


def test_two_workers_share_one_sign_in_limit(trial: Trial) -> None:
    """Two apps, each with an engine of its own (two worker processes), count into one window: three failed
    sign-ins allowed in all, not three per worker."""
    with (
        _client(trial, rate_limit_sign_in=3) as first,
        _client(trial, rate_limit_sign_in=3) as second,
    ):
        assert first.app.state.engine is not second.app.state.engine  # type: ignore[attr-defined]
        assert [_fail_sign_in(first, "guess-1"), _fail_sign_in(second, "guess-2")] == [401, 401]
        assert _fail_sign_in(first, "guess-3") == 401
        assert _fail_sign_in(second, "guess-4") == 429  # the third failure was counted on the other worker
        assert _fail_sign_in(first, "guess-5") == 429


def test_two_engines_count_into_one_window_without_losing_a_count(trial: Trial) -> None:
    """The limiter's counts, from two engines in turn and from threads at once: every event is counted once."""
    import threading

    from trialwright.services.ratelimit import DatabaseCounts, RateLimited, RateLimiter
    from trialwright.store.engine import make_engine

    other = make_engine(trial.url)
    try:
        now = [1_000_000.0]
        a = RateLimiter(40, 60, "tries", clock=lambda: now[0], counts=DatabaseCounts(trial.engine, "spec"))
        b = RateLimiter(40, 60, "tries", clock=lambda: now[0], counts=DatabaseCounts(other, "spec"))
        workers = [threading.Thread(target=lambda lim=lim: [lim.hit("k") for _ in range(10)]) for lim in (a, b) * 2]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert b.retry_after("k") == 60 and a.retry_after("other key") is None  # 40 counted: at the limit
        try:
            a.take("k")
        except RateLimited as refused:
            assert refused.retry_after == 60
        else:
            raise AssertionError("the 41st event was let through")
        now[0] += 59
        assert a.retry_after("k") == 1
        now[0] += 1  # the window has closed: a new one opens on either engine
        b.take("k")
        assert a.retry_after("k") is None
    finally:
        other.dispose()


def test_two_workers_audit_one_flood_of_refused_tokens_once(trial: Trial) -> None:
    """A flood spread over two workers is one window per address: one entry when it opens, one count."""
    with (
        _client(trial, rate_limit_token_refusals=0) as first,
        _client(trial, rate_limit_token_refusals=0) as second,
    ):
        before = audit.count(trial.engine)
        for i in range(20):
            client = first if i % 2 else second
            assert client.get("/api/v1/me", headers={"Authorization": f"Bearer tw_forged_{i}"}).status_code == 401
        assert audit.count(trial.engine) - before == 1
    assert audit.count(trial.engine) - before == 2  # the first worker to stop wrote the count; the second none
    (total,) = audit.entries(trial.engine, action_prefix="api.token_refusals")
    assert '"refusals":20' in (total.detail or "")
