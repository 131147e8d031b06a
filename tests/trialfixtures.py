"""A trial database with one user per role, shared by the web, API and browser tests."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, make_url

from trialwright.domain.roles import Role
from trialwright.protocol import LoadedProtocol, load_protocol
from trialwright.services import clock
from trialwright.services.trial import init_trial
from trialwright.services.users import create_user
from trialwright.store.audit_keys import default_anchor_file, default_key_file, load_key
from trialwright.store.engine import make_engine

FIRST_PROTOCOL = Path(__file__).resolve().parents[1] / "protocols" / "IRCT20190101042197N2.yaml"
PASSWORD = "Correct-horse-7"


@dataclass(frozen=True)
class Trial:
    """A ready trial: its engine and database URL; every role's user is named after the role."""

    url: str
    engine: Engine


@cache
def first_protocol() -> LoadedProtocol:
    """The first trial's protocol, read and validated once per test process (it is frozen: nothing changes it)."""
    return load_protocol(FIRST_PROTOCOL)


#: Per test process: for each protocol text (its SHA-256), a SQLite trial made by ``_initialised`` once, copied
#: with its key file for every later SQLite trial of that text (``make_trial``).
_SQLITE_TEMPLATES: dict[str, Path] = {}
#: Whether the next trial may be a copy: set by ``in_a_test`` for a test's own (function-scoped) first trial,
#: cleared by that copy and after the test, so a module's or session's shared trial is always made afresh.
_MAY_COPY = [False]
#: The services' clock as imported: a template is made and copied only while it is the real one.
_REAL_NOW = clock.now


def in_a_test(running: bool) -> None:
    """Called before (True) and after (False) each test: only a test's own first trial may be a copy."""
    _MAY_COPY[0] = running


def make_trial(url: str, loaded: LoadedProtocol | None = None) -> Trial:
    """A trial with an audit key in the URL's default key file (created 0600, as ``trialwright init`` does).

    On SQLite, where the URL names a file that does not exist yet, the first trial of a protocol text in a test
    process is made as below into a folder of its own, and a test's first trial of that text is a byte copy of it
    and its key (a few milliseconds instead of the migrations, the protocol's loading and ten audited accounts
    each time): the same database ``init`` and ``user add`` would make, made once, its trail verifying as made,
    its creation times those of the template's making. Copies share the template's audit key and first entries,
    so only one trial of a test may be a copy: its first own trial. A test's second trial (another trial to
    compare with, import into or refuse), every module- or session-scoped trial, and any trial made while the
    clock is simulated or replaced are made afresh, with their own key and times."""
    loaded = loaded or first_protocol()
    database = make_url(url).database if make_url(url).get_backend_name() == "sqlite" else None
    key_file = default_key_file(url)
    first_in_test, _MAY_COPY[0] = _MAY_COPY[0], False
    real_clock = clock.now is _REAL_NOW and clock._SIMULATED.get() is None
    if (database and key_file is not None and first_in_test and real_clock and not Path(database).exists()
            and not key_file.exists()):  # fmt: skip
        template = _SQLITE_TEMPLATES.get(loaded.sha256)
        if template is None:
            folder = Path(tempfile.mkdtemp(prefix="trialwright-template-"))
            atexit.register(shutil.rmtree, folder, True)
            made = _initialised(f"sqlite:///{folder / 'trial.db'}", loaded)
            made.engine.dispose()  # closes the file whole (no write-ahead log left beside it)
            template = _SQLITE_TEMPLATES[loaded.sha256] = folder / "trial.db"
        template_key = default_key_file(f"sqlite:///{template}")
        assert template_key is not None
        shutil.copyfile(template, database)
        shutil.copy2(template_key, key_file)  # its mode (0600) too
        if default_anchor_file(template_key).exists():
            shutil.copy2(default_anchor_file(template_key), default_anchor_file(key_file))
        return Trial(url=url, engine=make_engine(url, audit_key=load_key(key_file)))
    return _initialised(url, loaded)


def _initialised(url: str, loaded: LoadedProtocol) -> Trial:
    """``init`` and one account per role, on the database at ``url``."""
    key_file = default_key_file(url)
    engine = make_engine(url, audit_key=load_key(key_file, create=True) if key_file is not None else None)
    init_trial(engine, loaded)
    for role in Role:
        sites = ["RAZ"] if role.site_scoped else []
        create_user(
            engine,
            username=role.value.replace("_", "-"),
            password=PASSWORD,
            role=role,
            sites=sites,
            full_name=f"{role.label} User",
            actor="test",
        )
    return Trial(url=url, engine=engine)


def username(role: Role) -> str:
    return role.value.replace("_", "-")


def who(trial: Trial, role: Role):  # type: ignore[no-untyped-def]
    """The trial's user with this role."""
    from trialwright.services.users import get_user

    user = get_user(trial.engine, username(role))
    assert user is not None
    return user
