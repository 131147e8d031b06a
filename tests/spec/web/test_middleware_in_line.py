"""The middleware runs in line: a request is served in the task that received it.

Every answer's security headers and the anonymous CSRF cookie are set by plain ASGI middleware
(``web/headers.py`` ``SecurityHeaders``, ``web/security.py`` ``AnonymousCsrf``), not by ``@app.middleware("http")``,
which runs the rest of the app in a task of its own and relays the request body through a stream: about half a
millisecond of CPU more for an API save than for a GET (docs/benchmarks.md, "Form saves over HTTP: the middleware in
line"). What the headers and the cookie say is specified in ``test_hardening.py``; this says how they are added.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.middleware.base import BaseHTTPMiddleware

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.forms.test_api_save_transactions import VITALS
from tests.trialfixtures import Trial, username
from trialwright.domain.roles import Role
from trialwright.services.tokens import issue_token


class TasksCounted:
    """The app, counting the asyncio tasks that the app's tasks start while it serves a request."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.started = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        before = loop.get_task_factory()

        def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
            if asyncio.current_task(loop) is not None:  # started by a task: not the test client's own calls
                self.started += 1
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(counting)  # type: ignore[arg-type]
        try:
            await self.app(scope, receive, send)
        finally:
            loop.set_task_factory(before)


def test_no_middleware_is_an_http_middleware_task(app: FastAPI) -> None:
    assert [m.cls for m in app.user_middleware if m.cls is BaseHTTPMiddleware] == []


def test_an_api_save_a_get_and_a_page_start_no_task(app: FastAPI, trial: Trial) -> None:
    participant = enrolled_ten_days_ago(trial)
    token, _ = issue_token(trial.engine, username(Role.STUDY_COORDINATOR), name="spec", actor="spec")
    bearer = {"Authorization": f"Bearer {token}"}
    counted = TasksCounted(app)
    with TestClient(counted) as client:  # type: ignore[arg-type]
        counted.started = 0
        saved = client.post(f"/api/v1/participants/{participant}/visits/baseline/forms/vitals", headers=bearer,
                            json={"values": VITALS})  # fmt: skip
        assert saved.status_code == 200, saved.text
        assert saved.headers["cache-control"] == "no-store"
        assert "trialwright_csrf=" in saved.headers["set-cookie"]  # the client's first request: no cookie yet
        assert client.get("/api/v1/me", headers=bearer).status_code == 200
        assert client.get("/sign-in").status_code == 200
        assert counted.started == 0
