"""Screenshots of the main pages, in English and Persian, for docs/screenshots.md.

Creates the demo trial in a temporary folder (``trialwright demo --no-serve``: the first trial's planned
size simulated across its sites), serves it on a free port of 127.0.0.1, signs in as the role whose work
each page is, and saves a 1280x800 PNG of the top of each page to ``docs/screenshots/<lang>-<page>.png``
(reduced to a 256-colour palette with Pillow when it is installed, to keep the repository small).

Run: ``./dev screenshots`` (or ``python scripts/screenshots.py [--out DIR] [--chromium PATH]``). It needs
Debian's chromium (``apt-get install chromium``) and Playwright for Python (the ``test`` extra).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PROTOCOL = ROOT / "protocols" / "IRCT20190101042197N2.yaml"
SIZE = {"width": 1280, "height": 800}
LANGUAGES = ("en", "fa")
# (file name, role, path, links to follow in <main>: the first matching each CSS selector in turn)
PAGES: tuple[tuple[str, str | None, str, tuple[str, ...]], ...] = (
    ("sign-in", None, "/sign-in", ()),
    ("home", "study_coordinator", "/", ()),
    ("screening", "study_coordinator", "/screening", ()),
    ("screening-new", "study_coordinator", "/screening/new", ()),
    ("participants", "study_coordinator", "/participants", ()),
    ("participant", "study_coordinator", "/participants", ("a[href^='/participants/']",)),
    ("form", "study_coordinator", "/participants",
     ("a[href^='/participants/']", "a[href*='/forms/labs']")),
    ("queries", "study_coordinator", "/queries", ()),
    ("safety", "investigator", "/safety", ()),
    ("randomization", "unblinded_statistician", "/randomization", ()),
    ("pharmacy", "unblinded_pharmacist", "/pharmacy?state=done", ()),
    ("audit", "monitor", "/admin/audit", ()),
    ("analysis", "blinded_statistician", "/analysis", ()),
    ("users", "administrator", "/admin/users", ()),
)  # fmt: skip
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic", "--font-render-hinting=none"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_demo(folder: Path) -> tuple[str, dict[str, tuple[str, str]]]:
    """The demo trial in ``folder``; its URL and, per role, a username and a password made for this run."""
    from trialwright.protocol import load_protocol
    from trialwright.services.audit_keys import engine_for
    from trialwright.services.simulation import ensure_users
    from trialwright.settings import Settings

    url = f"sqlite:///{folder / 'demo.db'}"
    trialwright = Path(sys.executable).with_name("trialwright")
    command = [str(trialwright), "demo", "--protocol", str(PROTOCOL), "--database", url, "--no-serve"]
    # This checkout's trialwright, whichever one the environment has installed.
    paths = [str(ROOT / "src"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=folder, env=env)  # noqa: S603 (our own command)
    engine = engine_for(Settings(database_url=url))
    accounts = ensure_users(engine, load_protocol(PROTOCOL).protocol, prefix="")
    engine.dispose()
    return url, {role.value: (user.username, password) for role, (user, password) in accounts.items()}


@contextmanager
def serving(url: str) -> Iterator[str]:
    import uvicorn

    from trialwright.settings import Settings
    from trialwright.web.app import create_app

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(database_url=url)), host="127.0.0.1", port=port,
                                           log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the demo server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def shrink(path: Path) -> None:
    """A 256-colour palette PNG: a page of text and flat colours loses nothing visible, and a third of the bytes."""
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def take(base: str, url: str, accounts: dict[str, tuple[str, str]], out: Path, chromium: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from trialwright.services.audit_keys import engine_for
    from trialwright.services.users import set_preferences
    from trialwright.settings import Settings

    engine = engine_for(Settings(database_url=url))
    saved = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
        for lang in LANGUAGES:
            context = browser.new_context(viewport=SIZE, device_scale_factor=1)
            page = context.new_page()
            signed_in_as = None
            for name, role, path, follow in PAGES:
                if role != signed_in_as:
                    context.clear_cookies()
                    context.add_cookies([{"name": "trialwright_lang", "value": lang, "url": base}])
                    if role is not None:
                        username, password = accounts[role]
                        set_preferences(engine, username, language=lang, calendar="both")
                        page.goto(f"{base}/sign-in")
                        page.locator("#username").fill(username)
                        page.locator("#password").fill(password)
                        page.locator("main form button[type=submit]").click()
                        page.wait_for_url(f"{base}/")
                    signed_in_as = role
                page.goto(f"{base}{path}")
                for selector in follow:
                    page.locator(f"main {selector}").first.click()
                    page.wait_for_load_state()
                target = out / f"{lang}-{name}.png"
                page.screenshot(path=str(target))
                shrink(target)
                saved.append(target)
            context.close()
        browser.close()
    engine.dispose()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="trialwright-screenshots-") as folder:
        url, accounts = make_demo(Path(folder))
        with serving(url) as base:
            saved = take(base, url, accounts, args.out, args.chromium)
    for path in saved:
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
