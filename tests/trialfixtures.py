"""A trial database with one user per role, shared by the web, API and browser tests."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import Engine

from trialwright.domain.roles import Role
from trialwright.protocol import LoadedProtocol, load_protocol
from trialwright.services.trial import init_trial
from trialwright.services.users import create_user
from trialwright.store.audit_keys import default_key_file, load_key
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


def make_trial(url: str, loaded: LoadedProtocol | None = None) -> Trial:
    """A trial with an audit key in the URL's default key file (created 0600, as ``trialwright init`` does)."""
    key_file = default_key_file(url)
    engine = make_engine(url, audit_key=load_key(key_file, create=True) if key_file is not None else None)
    init_trial(engine, loaded or first_protocol())
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
