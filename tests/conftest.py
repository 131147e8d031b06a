"""Fixtures every test shares.

``database_url`` is the one store fixture: each test that takes it runs once on embedded SQLite and
once on PostgreSQL (a fresh schema per test). Outside CI a missing PostgreSQL skips its half; with
CI=true it fails, so CI can never go green without having run the specs on both databases.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import pytest

from trialwright import legacy

ROOT = Path(__file__).resolve().parents[1]
FIRST_PROTOCOL = ROOT / "protocols" / "IRCT20190101042197N2.yaml"
POSTGRES_URL = legacy.getenv("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def must_have(what: str, reason: str) -> None:
    """Skip outside CI; fail in CI, where nothing a test is meant to check may be skipped."""
    message = f"{what} is not available: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: this must run, not skip)")
    pytest.skip(message)


def _plain_postgres_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="session", autouse=True)
def audit_keys_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """PostgreSQL trials keep their audit key under $XDG_DATA_HOME: a folder of this run, not the user's."""
    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("xdg-data"))
    yield
    if before is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = before


@pytest.fixture(scope="session", autouse=True)
def test_accounts_password_hashed_once() -> Iterator[None]:
    """Every test trial creates one account per role, all with the same password (tests.trialfixtures.PASSWORD):
    its argon2 hash, with the production parameters, is computed once per test process and reused, instead of
    ten times per trial (a tenth of a second or more each). Any other password is hashed afresh, with its own
    salt. A sign-in verifies by argon2 as in production; the one pair (that shared hash, that password) is
    verified by argon2 once per test process and its answer reused, since argon2 gives the same answer for the
    same pair (thousands of sign-ins and unblinded commands otherwise spend ~0.2 s of CPU each on it). Every
    other pair (a wrong password, another hash, the unknown user's dummy hash) is verified afresh."""
    from argon2 import PasswordHasher

    from tests.trialfixtures import PASSWORD
    from trialwright.services import users

    production = users._hasher

    class OnceForTheTestPassword(PasswordHasher):
        memo: str | None = None
        verified = False

        def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
            if password != PASSWORD or salt is not None:
                return production.hash(password, salt=salt)
            if OnceForTheTestPassword.memo is None:
                OnceForTheTestPassword.memo = production.hash(password)
            return OnceForTheTestPassword.memo

        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            if password != PASSWORD or hash != OnceForTheTestPassword.memo:
                return production.verify(hash, password)
            if not OnceForTheTestPassword.verified:
                production.verify(hash, password)  # raises as in production if argon2 says no
                OnceForTheTestPassword.verified = True
            return True

    hasher = OnceForTheTestPassword(
        time_cost=production.time_cost, memory_cost=production.memory_cost, parallelism=production.parallelism,
        hash_len=production.hash_len, salt_len=production.salt_len, type=production.type,
    )  # fmt: skip
    users._hasher = hasher
    yield
    users._hasher = production


@pytest.fixture(autouse=True)
def each_test_copies_at_most_one_trial() -> Iterator[None]:
    """A test's own first SQLite trial may be a copy of its process's template; any other trial (its second, a
    module's or a session's) is made afresh (tests.trialfixtures.make_trial)."""
    from tests.trialfixtures import in_a_test

    in_a_test(True)
    yield
    in_a_test(False)


@pytest.fixture(autouse=True)
def cli_password_of_the_test_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands acting as an unblinded account ask its password (TRIALWRIGHT_PASSWORD for scripts): every test
    account has the same one (tests.trialfixtures.PASSWORD). Specs of the refusal unset or change it."""
    from tests.trialfixtures import PASSWORD

    monkeypatch.setenv("TRIALWRIGHT_PASSWORD", PASSWORD)


@pytest.fixture(scope="session")
def postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        import psycopg

        with psycopg.connect(_plain_postgres_dsn(POSTGRES_URL), connect_timeout=3):
            return None
    except Exception as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


#: Each test schema's sessions commit without waiting for the write-ahead log to reach the disk (PostgreSQL's
#: ``synchronous_commit = off``: a commit is still atomic and every other session sees it at once; only a crash of
#: the database server itself could lose the last fraction of a second, which no test does: the crash spec kills
#: the client). A flush waits ~5 ms on this machine's disk, and the specs commit thousands of times: production
#: keeps the server's own setting (on).
NO_FLUSH_WAIT = "-csynchronous_commit=off"


@contextmanager
def fresh_database(kind: str, folder: Path, reason: str | None) -> Iterator[str]:
    """A URL to an empty database of ``kind``: a SQLite file in ``folder``, or a fresh PostgreSQL schema (afterwards
    recycled for a later test's trial or dropped: ``tests.schema_pool``)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'trial.db'}"
        return
    if reason is not None:
        must_have("PostgreSQL at " + POSTGRES_URL, reason)
    import psycopg

    schema = f"tw_{uuid.uuid4().hex[:12]}"
    dsn = _plain_postgres_dsn(POSTGRES_URL)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema} {NO_FLUSH_WAIT}')}"
    finally:
        from tests import schema_pool

        schema_pool.release(dsn, schema)  # reset and kept for the next test's trial when of its shape, else dropped


@pytest.fixture(scope="session", autouse=True)
def recycled_schemas_dropped_at_the_end() -> Iterator[None]:
    """The PostgreSQL schemas kept ready for the next test's trial, and their templates, are dropped when the test
    process ends (tests.schema_pool): a worker of pytest-xdist may end without running ``atexit``."""
    yield
    from tests import schema_pool

    schema_pool.drop_all(_plain_postgres_dsn(POSTGRES_URL))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a fresh PostgreSQL schema recycled or dropped afterwards."""
    reason = request.getfixturevalue("postgres_available") if request.param == "postgresql" else None
    with fresh_database(request.param, tmp_path, reason) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like ``database_url``, shared by the tests of one module (for many small cases on one trial)."""
    reason = request.getfixturevalue("postgres_available") if request.param == "postgresql" else None
    with fresh_database(request.param, tmp_path_factory.mktemp("db"), reason) as url:
        yield url


@pytest.fixture
def backend(database_url: str) -> str:
    """The name of the database backend the current test runs on."""
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@pytest.fixture(scope="session")
def first_protocol_path() -> Path:
    """The protocol file of the first trial, shipped with the project."""
    return FIRST_PROTOCOL


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Write the regulatory checks a test names (``@pytest.mark.covers("REG-N", ...)``) into the JUnit XML of the
    run, as a ``covers`` property of its test case, for ``trialwright validation-report`` (docs/validation.md).

    And keep together, in one test process, the tests of a module that share a module- or class-scoped fixture
    (a trial made or simulated once for the module): with ``-n 2 --dist loadgroup`` (as ``.ci/run`` runs) the
    others are spread test by test, and such a module runs in one process instead of its shared trial being made
    again in the other. ``tryfirst``: xdist reads the group marker in its own hook of the same name, which must
    come after this one."""
    for item in items:
        shared = any(
            d.scope in {"module", "class", "package"}
            for defs in item._fixtureinfo.name2fixturedefs.values()  # type: ignore[attr-defined]
            for d in defs
        )
        if shared:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
        ids = [str(check) for marker in item.iter_markers("covers") for check in marker.args]
        if ids:
            item.user_properties.append(("covers", " ".join(dict.fromkeys(ids))))
