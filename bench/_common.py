"""What the benchmarks share: a throw-away database per backend, a fresh trial, enrolled participants,
percentiles, and copies of the store's tables for the raw baselines.

Not a benchmark itself. Each script in bench/ imports it after putting the worktree's ``src`` and its root on
``sys.path`` (so the trial fixtures of the tests make the trial exactly as the tests do).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from sqlalchemy import Column, MetaData, Table  # noqa: E402

from trialwright import legacy  # noqa: E402

POSTGRES = legacy.getenv("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")
ELIGIBLE = {
    "age": 45, "sex": "male", "pcr_positive": True, "pao2_mmhg": 90, "fio2": 0.6, "on_oxygen": True,
    "spo2_on_oxygen": 88, "bilateral_infiltrates": True,
    **dict.fromkeys(["malignancy", "hepatic_failure", "renal_failure", "lung_transplant", "lung_surgery",
                     "bone_marrow_transplant", "autoimmune_disease", "metabolic_disease", "dialysis",
                     "contagious_infection", "active_epilepsy", "coagulopathy", "trauma", "concurrent_trial"], False),
}  # fmt: skip


def postgres_dsn() -> str:
    """The PostgreSQL URL as psycopg takes it."""
    return POSTGRES.replace("postgresql+psycopg://", "postgresql://", 1)


def in_schema(url: str, schema: str) -> str:
    """``url`` with its search_path set to ``schema``."""
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def throwaway_database(backend: str) -> Iterator[str]:
    """A URL to an empty database: a SQLite file in a temporary folder, or a fresh PostgreSQL schema; both
    removed afterwards. The audit key file of a PostgreSQL trial goes to a temporary XDG_DATA_HOME too."""
    with tempfile.TemporaryDirectory() as folder:
        if backend == "sqlite":
            yield f"sqlite:///{folder}/bench.db"
            return
        import psycopg

        before = os.environ.get("XDG_DATA_HOME")
        os.environ["XDG_DATA_HOME"] = str(Path(folder) / "xdg")
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(postgres_dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield in_schema(POSTGRES, schema)
        finally:
            with psycopg.connect(postgres_dsn(), autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            if before is None:
                os.environ.pop("XDG_DATA_HOME", None)
            else:
                os.environ["XDG_DATA_HOME"] = before


_PROTOCOLS: dict[str, Any] = {}


@contextmanager
def simulated_smoke_trial(screened: int = 6, seed: int = 1) -> Iterator[str]:
    """The URL of a temporary SQLite trial of the first protocol with ``screened`` patients simulated through the
    services (its audit key created beside it): what a benchmark's ``--smoke`` run measures; removed afterwards."""
    from trialwright.protocol import load_protocol
    from trialwright.services.audit_keys import engine_for
    from trialwright.services.simulation import simulate
    from trialwright.services.trial import init_trial
    from trialwright.settings import Settings

    protocol = ROOT / "protocols" / "IRCT20190101042197N2.yaml"
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/smoke.db"
        engine = engine_for(Settings(database_url=url), create_key=True)
        init_trial(engine, load_protocol(protocol))
        simulate(engine, protocol, screened, seed)
        engine.dispose()
        yield url


def make_bench_trial(url: str, roles: Sequence[Any], text: str | None = None) -> Any:
    """A trial made as ``tests.trialfixtures.make_trial`` makes one (audit key, the first protocol or ``text``,
    users named after their roles with the tests' password), with accounts for ``roles`` only: each account
    costs a password hash, and a smoke run makes several trials."""
    from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, username

    from trialwright.protocol import load_protocol_text
    from trialwright.services.trial import init_trial
    from trialwright.services.users import create_user
    from trialwright.store.audit_keys import default_key_file, load_key
    from trialwright.store.engine import make_engine

    text = text if text is not None else FIRST_PROTOCOL.read_text(encoding="utf-8")
    if text not in _PROTOCOLS:  # loading the protocol (YAML, UCUM checks) takes seconds: once per process
        _PROTOCOLS[text] = load_protocol_text(text)
    key_file = default_key_file(url)
    engine = make_engine(url, audit_key=load_key(key_file, create=True) if key_file is not None else None)
    init_trial(engine, _PROTOCOLS[text])
    for role in roles:
        create_user(
            engine, username=username(role), password=PASSWORD, role=role, sites=["RAZ"] if role.site_scoped else [],
            full_name=f"{role.label} User", actor="test",
        )  # fmt: skip
    return Trial(url=url, engine=engine)


def enrol_many(engine: Any, count: int, site: str = "RAZ", by: str | None = None) -> list[str]:
    """``count`` eligible patients screened, consented and enrolled through the services (not timed), by the
    account ``by`` (a study coordinator at every site unless given: only an
    investigator or a study coordinator screens)."""
    from tests.trialfixtures import screener

    from trialwright.services.screening import enrol, record_consent, screen
    from trialwright.services.users import get_user

    admin = get_user(engine, by) if by else screener(engine)
    assert admin is not None
    people = []
    for _ in range(count):
        s = screen(engine, admin, site=site, screened_on=None, values=ELIGIBLE)
        record_consent(
            engine, admin, s.id, form_version="1.0", given_by="participant", obtained_by="bench",
            obtained_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
        )  # fmt: skip
        enrolled = enrol(engine, admin, s.id).participant
        assert enrolled is not None
        people.append(enrolled.participant_id)
    return people


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def bare_copy(table: Table, metadata: MetaData, prefix: str = "raw_") -> Table:
    """A copy of a store table for a raw baseline: the same columns, types and primary key (so the same row
    width and the same key index), without foreign keys, other indexes or defaults."""
    return Table(
        prefix + table.name,
        metadata,
        *[Column(c.name, c.type, primary_key=c.primary_key, autoincrement=False) for c in table.columns],
    )
