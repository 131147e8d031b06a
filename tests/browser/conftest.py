"""A live trialwright server on a free port and Debian's chromium driven by Playwright (headless).

Outside CI a missing chromium or Playwright skips these tests; with CI=true they fail.
The live server runs on SQLite; a module that writes through the pages declares
``WRITES_ON_BOTH_DATABASES = True`` and then runs once on SQLite and once on PostgreSQL (a fresh schema).
Screenshots of every step are kept in test-artifacts/screenshots/.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.conftest import ROOT, fresh_database, must_have
from tests.trialfixtures import Trial, make_trial
from trialwright import legacy
from trialwright.settings import Settings
from trialwright.web.app import create_app

CHROMIUM = legacy.getenv("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SHOTS = ROOT / "test-artifacts" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a module that writes through the pages on both databases (``WRITES_ON_BOTH_DATABASES = True``)."""
    if getattr(metafunc.module, "WRITES_ON_BOTH_DATABASES", False) and "live_database" in metafunc.fixturenames:
        metafunc.parametrize("live_database", ["sqlite", "postgresql"], indirect=True, scope="module")


@pytest.fixture(scope="module")
def live_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the live server's empty database: SQLite, or PostgreSQL for a module that asks for both."""
    kind = getattr(request, "param", "sqlite")
    reason = request.getfixturevalue("postgres_available") if kind == "postgresql" else None
    with fresh_database(kind, tmp_path_factory.mktemp("live"), reason) as url:
        yield url


@pytest.fixture(scope="module")
def live_trial(live_database: str) -> Trial:
    return make_trial(live_database)


@pytest.fixture(scope="module")
def live_server(live_trial: Trial) -> Iterator[str]:
    port = _free_port()
    app = create_app(Settings(database_url=live_trial.url))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        must_have("chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        must_have("playwright", str(exc))
    # A click that submits a form returns once the next page starts loading; assertions wait for what
    # they look for (expect) as long as any other step may, on a loaded CI machine.
    expect.set_options(timeout=15_000)
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        except Exception as exc:
            must_have("chromium", f"could not launch: {exc}")
        yield b
        b.close()


@pytest.fixture
def page(browser, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    steps = iter(range(1, 100))

    def shot(label: str) -> None:
        pg.screenshot(path=str(SHOTS / f"{request.node.name}-{next(steps):02d}-{label}.png"), full_page=True)

    pg.shot = shot  # type: ignore[attr-defined]
    yield pg
    context.close()
