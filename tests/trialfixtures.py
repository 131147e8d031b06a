"""A trial database with one user per role, shared by the web, API and browser tests."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url

from tests import schema_pool
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
#: Per test process: for each protocol text, the SQL (``pg_dump --inserts`` of a template schema made by
#: ``_initialised`` once) that rebuilds that trial in another schema, with the schema's name as ``_SCHEMA``.
_POSTGRES_TEMPLATES: dict[str, tuple[str, Path]] = {}
_SCHEMA = "tw_template_schema_name"
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
    schema = _schema(url)
    if schema and key_file is not None and first_in_test and real_clock and not key_file.exists():
        script, template_key = _postgres_template(url, loaded)
        if not schema_pool.take(_plain(url), schema, loaded.sha256):
            _rebuild(url, script.replace(_SCHEMA, schema))
        shutil.copy2(template_key, key_file)
        if default_anchor_file(template_key).exists():
            shutil.copy2(default_anchor_file(template_key), default_anchor_file(key_file))
        return Trial(url=url, engine=make_engine(url, audit_key=load_key(key_file)))
    return _initialised(url, loaded)


def _schema(url: str) -> str | None:
    """The schema a PostgreSQL URL names in its search path (the tests' fresh schemas), else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return None
    found = re.match(r"-csearch_path=(tw_[a-z0-9]+)(?: |$)", str(parsed.query.get("options", "")))
    return found.group(1) if found else None


def _postgres_template(url: str, loaded: LoadedProtocol) -> tuple[str, Path]:
    """The rebuilding SQL of this protocol's template trial and its key file, made on first use in this process:
    a schema of its own initialised as ``_initialised`` does, dumped by ``pg_dump`` (the same database's tables,
    sequences with their values, the append-only trigger and its function, every row) and kept for the process as
    the rows and sequences a recycled schema is reset to (``tests.schema_pool``)."""
    made = _POSTGRES_TEMPLATES.get(loaded.sha256)
    if made is not None:
        return made
    import psycopg

    from trialwright.store.dump import find_pg_tool, libpq_environment

    name = f"tw_tpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    plain = _plain(url)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    options = str(make_url(url).query.get("options", ""))
    template_url = (
        make_url(url)
        .update_query_dict({"options": options.replace(f"search_path={_schema(url)}", f"search_path={name}")})
        .render_as_string(hide_password=False)
    )
    try:
        _initialised(template_url, loaded).engine.dispose()
        env, database = libpq_environment(template_url)
        dumped = subprocess.run(
            [str(find_pg_tool("pg_dump")), "--inserts", "--no-owner", "--no-privileges", f"--schema={name}",
             f"--dbname={database}"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        schema_pool.add_template(plain, loaded.sha256, name)  # kept: the rows every recycled schema is reset to
    except BaseException:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        raise
    # Left out: the schema's creation (the test's schema exists) and psql's own commands (``\restrict KEY``),
    # each a whole line of its own; every other line is kept as dumped (a text value's blank lines included).
    lines = [
        line
        for line in dumped.stdout.split("\n")
        if line != f"CREATE SCHEMA {name};" and not re.fullmatch(r"\\(un)?restrict [A-Za-z0-9]+", line)
    ]
    script = "\n".join(lines).replace(name, _SCHEMA)
    assert name not in script and _SCHEMA in script
    template_key = default_key_file(template_url)
    assert template_key is not None and template_key.exists()
    _POSTGRES_TEMPLATES[loaded.sha256] = script, template_key
    return script, template_key


def _plain(url: str) -> str:
    """A PostgreSQL URL as libpq takes it: no driver name, no options (the search path is the server's default)."""
    return make_url(url).set(drivername="postgresql", query={}).render_as_string(hide_password=False)


def _rebuild(url: str, script: str) -> None:
    """Run a template's SQL in one transaction into the URL's (empty) schema."""
    import psycopg

    with psycopg.connect(_plain(url)) as conn:
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute(script)  # type: ignore[arg-type]  # the dump's own SQL, no parameters


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


def screener(engine: Engine):  # type: ignore[no-untyped-def]
    """A study coordinator working at every site of the trial (made on first use): the account the tests screen,
    record consent and enrol with (only an investigator or a study coordinator may, docs/roles.md), wherever the
    patient is."""
    from trialwright.services.trial import current_protocol
    from trialwright.services.users import get_user

    found = get_user(engine, "screener")
    if found is None:
        sites = list(current_protocol(engine).protocol.site_codes)
        create_user(engine, username="screener", password=PASSWORD, role=Role.STUDY_COORDINATOR, sites=sites,
                    full_name="Screener", actor="test")  # fmt: skip
        found = get_user(engine, "screener")
    assert found is not None
    return found


@contextmanager
def second_trial(
    folder: Path, database_url: str, request: pytest.FixtureRequest, loaded: LoadedProtocol | None = None
) -> Iterator[Trial]:
    """A fresh trial of the protocol (the first one unless ``loaded``) on a second database of the kind
    ``database_url`` names (a file in ``folder``/target, or another PostgreSQL schema): where a spec imports what it
    exported. ``request``: the spec's, to ask whether PostgreSQL is there when it is needed."""
    from tests.conftest import fresh_database

    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    (folder / "target").mkdir()
    reason = request.getfixturevalue("postgres_available") if kind == "postgresql" else None
    with fresh_database(kind, folder / "target", reason) as url:
        fresh = make_trial(url, loaded)
        try:
            yield fresh
        finally:
            fresh.engine.dispose()
