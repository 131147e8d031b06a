"""The simulator's pre-authenticated investigator (``services/forms/simulated.py``) is made only by
``pre_authenticate``, which checks the password through the real re-entry: a wrong password is refused, audited
and counted toward the lockout as any re-entry, another role is refused, and nothing else (a user, a password, a
hand-built object) signs in its place. People's signatures keep their password re-entry (``sign_forms``)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import pickle

import pytest
from sqlalchemy import select, update

from tests.spec.simulation.test_simulate import _trial
from trialwright.domain.roles import Role
from trialwright.services.errors import AccessDenied, FormError
from trialwright.services.forms import simulated
from trialwright.services.forms.simulated import PreAuthenticated, pre_authenticate, sign_as
from trialwright.services.simulation import ensure_users
from trialwright.services.trial import current_protocol
from trialwright.services.users import disable_user
from trialwright.store.auth_tables import users
from trialwright.store.engine import session_scope
from trialwright.store.tables import audit_entries


def test_only_the_right_password_makes_a_pre_authenticated_investigator(database_url: str) -> None:
    engine = _trial(database_url)
    accounts = ensure_users(engine, current_protocol(engine).protocol)
    investigator, password = accounts[Role.INVESTIGATOR]
    monitor, monitor_password = accounts[Role.MONITOR]

    with pytest.raises(FormError, match="re-enter your own password"):
        pre_authenticate(engine, investigator, password + "x")
    with session_scope(engine) as session:
        failed = session.execute(select(audit_entries.c.actor, audit_entries.c.detail)
                                 .where(audit_entries.c.action == "user.reentry_failed")).all()  # fmt: skip
        attempts = session.execute(select(users.c.failed_attempts).where(users.c.username == investigator.username))
        assert attempts.scalar_one() == 1
    assert [(actor, json.loads(detail)["purpose"], json.loads(detail)["attempt"]) for actor, detail in failed] == [
        (investigator.username, "sign", 1)]  # fmt: skip

    with pytest.raises(FormError, match="only an investigator may sign forms"):
        pre_authenticate(engine, monitor, monitor_password)
    with pytest.raises(TypeError, match="made only by pre_authenticate"):
        PreAuthenticated(investigator, object())
    with pytest.raises(TypeError, match="a PreAuthenticated"):
        sign_as(engine, investigator, [("P-001", "day0", "vitals")])  # type: ignore[arg-type]

    signer = pre_authenticate(engine, investigator, password)
    assert signer.user.username == investigator.username
    with session_scope(engine) as session:  # the accepted re-entry reset the count, as a person's does
        attempts = session.execute(select(users.c.failed_attempts).where(users.c.username == investigator.username))
        assert attempts.scalar_one() == 0
    with pytest.raises(FormError, match="name at least one form"):
        sign_as(engine, signer, [])
    engine.dispose()


def test_a_pre_authenticated_investigator_cannot_be_forged_from_another(database_url: str) -> None:
    """What ``pre_authenticate`` vouches for is the account whose password it checked: a copy, a replacement of
    its user, a token built with the module's private mint or one whose user was swapped underneath signs
    nothing."""
    engine = _trial(database_url)
    investigator, password = ensure_users(engine, current_protocol(engine).protocol)[Role.INVESTIGATOR]
    other = dataclasses.replace(investigator, id=investigator.id + 100, username="another-investigator")
    signer = pre_authenticate(engine, investigator, password)
    forms = [("P-001", "day0", "vitals")]

    for forge in (lambda: dataclasses.replace(signer, user=other), lambda: copy.copy(signer),  # type: ignore[type-var]
                  lambda: copy.deepcopy(signer), lambda: pickle.dumps(signer)):  # fmt: skip
        with pytest.raises(TypeError):
            forge()
    with pytest.raises(TypeError):
        signer.user = other  # type: ignore[misc]
    minted = PreAuthenticated(other, simulated._MINT)  # the mint is importable: built, but never issued
    with pytest.raises(TypeError, match="a PreAuthenticated from pre_authenticate"):
        sign_as(engine, minted, forms)
    swapped = pre_authenticate(engine, investigator, password)
    object.__setattr__(swapped, "_user", other)  # under the class's guard
    with pytest.raises(TypeError, match="a PreAuthenticated from pre_authenticate"):
        sign_as(engine, swapped, forms)
    engine.dispose()


@pytest.mark.parametrize("change", ["disabled", "locked", "role"])
def test_an_account_disabled_locked_or_moved_since_the_password_check_signs_nothing(
    database_url: str, change: str
) -> None:
    """``sign_as`` reads the account again in the signing transaction (no password, no argon2) and refuses, in the
    words of a person's re-entry, an account disabled or locked since ``pre_authenticate``, and one whose role is no
    longer investigator: a run of many hours never signs for an account that could not sign now."""
    engine = _trial(database_url)
    accounts = ensure_users(engine, current_protocol(engine).protocol)
    investigator, password = accounts[Role.INVESTIGATOR]
    signer = pre_authenticate(engine, investigator, password)
    if change == "disabled":
        disable_user(engine, investigator.username, actor="admin", reason="left the trial")
        refusal = "password: re-enter your own password to sign"
    elif change == "locked":
        with session_scope(engine) as session:
            session.execute(update(users).where(users.c.username == investigator.username)
                            .values(locked_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15)))  # fmt: skip
        refusal = "password: too many wrong passwords; your account is locked"
    else:
        with session_scope(engine) as session:
            session.execute(update(users).where(users.c.username == investigator.username).values(role="monitor"))
        refusal = "role: only an investigator may sign forms"
    with pytest.raises(FormError, match=refusal) as refused:
        sign_as(engine, signer, [("P-001", "day0", "vitals")])
    assert isinstance(refused.value, AccessDenied)  # a matter of permission, as a person's refused re-entry
    with session_scope(engine) as session:
        entries = session.execute(select(audit_entries.c.action, audit_entries.c.actor, audit_entries.c.detail)
                                  .where(audit_entries.c.action.in_(["form.signed", "user.reentry_refused"]))).all()
    # A locked account's refusal is audited as a person's re-entry refused for the lock is; nothing is signed.
    expected = [("user.reentry_refused", investigator.username, {"why": "locked", "purpose": "sign"})]
    assert [(a, who, json.loads(d)) for a, who, d in entries] == (expected if change == "locked" else [])
    engine.dispose()


def test_only_the_simulation_imports_the_pre_authenticated_steps_and_it_passes_them_on_to_no_one() -> None:
    """``services/simulation.py`` imports ``services.forms.simulated`` inside ``simulate`` and re-exports nothing of
    it, so no edge reaches ``sign_as`` through it; no other module imports it, at any level (checked here from the
    source, and by the ``protected`` import-linter contract)."""
    import ast
    import tomllib
    from pathlib import Path

    import trialwright.services.simulation as simulation_module

    for name in ("PreAuthenticated", "pre_authenticate", "sign_as", "save_and_verify_visit", "save_and_verify_visits",
                 "VisitSaves", "simulated"):
        assert not hasattr(simulation_module, name), name
    with pytest.raises(ImportError):
        exec("from trialwright.services.simulation import sign_as", {})  # noqa: S102 - the import an edge would write
    src = Path(simulated.__file__).parents[2]
    importers = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [f"{node.module}.{a.name}" for a in node.names] + [str(node.module)]
                     if isinstance(node, ast.ImportFrom) and node.level == 0 else [])  # fmt: skip
            if any(n.startswith("trialwright.services.forms.simulated") for n in names):
                importers.add(path.relative_to(src.parent).as_posix())
            if isinstance(node, ast.ImportFrom) and node.level and any(a.name == "simulated" for a in node.names):
                importers.add(path.relative_to(src.parent).as_posix())
    assert importers == {"trialwright/services/simulation.py"}
    simulation_source = ast.parse(Path(simulation_module.__file__).read_text(encoding="utf-8"))
    top_level = [n for n in simulation_source.body if isinstance(n, ast.ImportFrom) and "simulated" in str(n.module)]
    assert top_level == []  # imported inside simulate() only
    contracts = tomllib.loads((src.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [c for c in contracts["tool"]["importlinter"]["contracts"]
                   if "trialwright.services.forms.simulated" in c.get("protected_modules", [])]  # fmt: skip
    assert contract["type"] == "protected" and contract["allowed_importers"] == ["trialwright.services.simulation"]
