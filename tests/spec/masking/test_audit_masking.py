"""The audit trail under the masking policy.

Every value the services write into the trail is classified (``trialwright.domain.audit_masking``): visible to
every reader of the trail, or arm-revealing (masked for a blinded viewer unless that participant was
emergency-unblinded to them). A simulated trial, carried through unblinding, a list extension, an export,
locks and a failed sign-in, is read back and every (action, key) must be classified; so must every action the
code names. Arm-revealing by rule: preparation attributes, unblinding details, the list's seed hash, method and
checksums, any key naming an arm.

Then the trail as blinded readers get it: the audit page, the audit API and ``audit show`` (data manager,
monitor, administrator) and the exports without arms hold the lot, the volume, the particle count and the
unblinding reason only as ``masked``; an export with arms, an unblinded viewer and the investigator who
unblinded that participant see them. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.spec.randomization.test_randomize_service import enrolled
from tests.spec.web.conftest import sign_in
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.audit import AuditEntry
from trialwright.domain.audit_masking import AUDITED, Shown, audited_keys, classify, present_entry
from trialwright.domain.masking import MASKED, Viewer
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services import audit
from trialwright.services.audit_trail import read_trail
from trialwright.services.exports import export_source, run_export
from trialwright.services.lock import lock_trial, soft_lock, unlock_trial
from trialwright.services.randomization import (
    allocation_of,
    emergency_unblind,
    extend_list,
    generate_list,
    list_status,
    prepare,
    randomize,
)
from trialwright.services.simulation import simulate
from trialwright.services.users import AccessPolicy, AuthenticationFailed, authenticate, issue_token
from trialwright.settings import Settings
from trialwright.store.engine import session_scope
from trialwright.web.app import create_app

SRC = Path(__file__).resolve().parents[3] / "src" / "trialwright"
PROTOCOLS = sorted((Path(__file__).resolve().parents[3] / "protocols").glob("*.yaml"))
SHIPPED = [p for p in PROTOCOLS if not p.name.endswith(".simulation.yaml")]

# --- every audited value is classified -------------------------------------------------------------------


def _collected(trial: Trial) -> set[tuple[str, str]]:
    return {(e.action, key) for e in audit.entries(trial.engine, limit=10**7) for key in audited_keys(e)}


def _beyond_the_simulation(trial: Trial, tmp: Path) -> None:
    """What the simulator does not do: unblind, extend the list, export, lock, fail a sign-in."""
    engine = trial.engine
    pid = enrolled(trial, "RAZ")
    randomize(engine, who(trial, Role.INVESTIGATOR), pid)
    emergency_unblind(engine, who(trial, Role.INVESTIGATOR), pid, reason="anaphylaxis", password=PASSWORD)
    used = list_status(engine, who(trial, Role.UNBLINDED_STATISTICIAN))
    stratum = next(s.stratum for s in used if s.stratum.startswith("site=RAZ"))
    extend_list(engine, who(trial, Role.UNBLINDED_STATISTICIAN), stratum, entries=4, reason="running low")
    run_export(engine, who(trial, Role.DATA_MANAGER), "csv", tmp / "csv")
    soft_lock(engine, who(trial, Role.DATA_MANAGER), "site review", site="RAZ")
    lock_trial(engine, who(trial, Role.DATA_MANAGER), "final analysis", password=PASSWORD)
    unlock_trial(engine, who(trial, Role.DATA_MANAGER), "late query")
    with pytest.raises(AuthenticationFailed):
        authenticate(engine, "monitor", "not the password", AccessPolicy())
    issue_token(engine, "monitor", name="t", actor="test")


def test_every_value_a_simulated_trial_audits_is_classified(database_url: str, tmp_path: Path) -> None:
    trial = make_trial(database_url)
    try:
        simulate(trial.engine, FIRST_PROTOCOL, 16, seed=5)
        _beyond_the_simulation(trial, tmp_path)
        seen = _collected(trial)
    finally:
        trial.engine.dispose()
    # The run reached the entries that matter here, so the check below is not empty.
    assert {("dose.prepared", "preparation_code"), ("participant.unblinded", "reason"),
            ("randomization.list_extended", "seed_sha256"), ("form.value_entered", "value")} <= seen  # fmt: skip
    unclassified = sorted((action, key) for action, key in seen if classify(action, key) is None)
    assert unclassified == [], "classify these in trialwright.domain.audit_masking.AUDITED"


def _actions_in_the_code() -> set[str]:
    """Every action name written literally where an entry is recorded (``action=...`` lines, and the form
    transitions' table); ``{...}`` in an f-string stands for any word."""
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            if "action=" in line and "action_prefix" not in line:
                names.update(re.findall(r'"([a-z_]+\.[a-z_{}]+)"', line))
        names.update(re.findall(r'Transition\.\w+: "([a-z_]+\.[a-z_]+)"', text))
    return names


def test_every_action_the_code_names_is_classified() -> None:
    names = _actions_in_the_code()
    assert {"dose.prepared", "participant.unblinded", "form.signed", "consent.{decision}"} <= names
    missing = sorted(n for n in names if not any(re.fullmatch(re.sub(r"\{\w+\}", r"\\w+", n), a) for a in AUDITED))
    assert missing == [], "classify these actions in trialwright.domain.audit_masking.AUDITED"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_preparation_attribute_of_a_shipped_protocol_is_arm_revealing(path: Path) -> None:
    protocol = load_protocol(path).protocol
    for arm in protocol.arms:
        preparation = arm.preparation()
        for attribute in preparation.attributes if preparation else []:
            assert classify("dose.prepared", attribute.id) is Shown.ARM_REVEALING, (arm.code, attribute.id)


def test_allocation_and_unblinding_details_are_arm_revealing() -> None:
    arm_revealing = [
        ("participant.unblinded", "reason"),
        ("participant.unblinded", "notified"),
        ("participant.randomized", "arm"),
        ("participant.randomized", "decision"),
        ("randomization.list_generated", "seed_sha256"),
        ("randomization.list_generated", "method"),
        ("randomization.list_generated", "checksum"),
        ("randomization.list_extended", "seed_sha256"),
        ("randomization.list_extended", "checksum"),
        ("randomization.list_extended", "entries"),
        ("safety.decision", "reason"),
        ("dose.prepared", "product_lot"),
        ("dose.prepared", "volume_ml"),
        ("dose.prepared", "kit_number"),
    ]
    assert [k for k in arm_revealing if classify(*k) is not Shown.ARM_REVEALING] == []
    # No action shows a key that names an arm, an allocation, a lot or a kit.
    naming = {"arm", "arms", "arm_code", "arm_name", "allocation", "lot", "product_lot", "kit", "kit_number"}
    shown = [(a, k) for a, keys in AUDITED.items() for k, s in keys.items() if k in naming and s is Shown.VISIBLE]
    assert shown == []
    # What the participant page shows every reader stays readable in the trail.
    assert classify("participant.randomized", "preparation_code") is Shown.VISIBLE
    assert classify("dose.prepared", "prepared") is Shown.VISIBLE


# --- each viewer reads the trail as the masking policy lets them -------------------------------------------

_ENTRY = AuditEntry(
    seq=7,
    at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
    actor="pharmacist",
    action="dose.prepared",
    participant="RAZ-001",
    new_value=json.dumps({"preparation_code": "P-1A2B3C", "prepared": True, "product_lot": "EXO-77"}),
)


@pytest.mark.parametrize(
    ("viewer", "sees"),
    [
        (Viewer("dm", Role.DATA_MANAGER), False),
        (Viewer("inv", Role.INVESTIGATOR, frozenset({"RAZ"}), frozenset({"RAZ-002"})), False),
        (Viewer("inv", Role.INVESTIGATOR, frozenset({"RAZ"}), frozenset({"RAZ-001"})), True),  # unblinded it
        (Viewer("stat", Role.UNBLINDED_STATISTICIAN), True),
        (Viewer("dm", Role.DATA_MANAGER, masked=frozenset()), True),  # an open-label trial
    ],
)
def test_an_entry_as_each_viewer_reads_it(viewer: Viewer, sees: bool) -> None:
    entry = dataclasses.replace(_ENTRY, hash="ab" * 32, prev_hash="cd" * 32)
    presented = present_entry(viewer, entry)
    shown = json.loads(presented.new_value or "{}")
    assert shown["preparation_code"] == "P-1A2B3C" and shown["prepared"] is True
    assert shown["product_lot"] == ("EXO-77" if sees else MASKED)
    # Hashes only to a viewer not kept from the arms in general: an investigator who unblinded this participant
    # reads the entry whole but its hashes, which chain to entries they may not read.
    kept = viewer.blinded
    assert (presented.hash, presented.prev_hash) == ((MASKED, MASKED) if kept else (entry.hash, entry.prev_hash))


def test_a_value_nobody_classified_is_masked() -> None:
    new = AuditEntry(seq=8, at=_ENTRY.at, actor="x", action="something.new", new_value='"who knows"', reason="why")
    shown = present_entry(Viewer("dm", Role.DATA_MANAGER), new)
    assert (shown.new_value, shown.reason) == (json.dumps(MASKED), MASKED)


# --- through the page, the API, the command line and the exports -------------------------------------------

LOT = "LOT-EXO-7731"
REASON = f"Anaphylaxis after the infusion; pharmacy to check lot {LOT}"
LEGACY_LOT = "LOT-OLD-4402"  # written into dose.prepared by databases made before preparation attributes


@pytest.fixture
def trail(database_url: str) -> Iterator[tuple[Trial, str]]:
    t = make_trial(database_url)
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=3)
    pid = enrolled(t, "RAZ")
    code = randomize(t.engine, who(t, Role.INVESTIGATOR), pid).preparation_code
    arm = allocation_of(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), pid)
    assert arm is not None
    values = {"product_lot": LOT, "volume_ml": 3.37, **({"particles": 4.17e11} if arm.arm == "EXO" else {})}
    prepare(t.engine, who(t, Role.UNBLINDED_PHARMACIST), code, values)
    with session_scope(t.engine) as session:
        audit.record(session, actor="unblinded-pharmacist", role="unblinded_pharmacist", site="RAZ", participant=pid,
                     action="dose.prepared",
                     new_value={"preparation_code": code, "product_lot": LEGACY_LOT, "volume_ml": "3.5"})  # fmt: skip
    emergency_unblind(t.engine, who(t, Role.INVESTIGATOR), pid, reason=REASON, password=PASSWORD)
    yield t, pid
    t.engine.dispose()


def _secrets(text: str) -> list[str]:
    return [s for s in (LOT, LEGACY_LOT, "Anaphylaxis", "3.37") if s in text]


@pytest.mark.parametrize("role", [Role.DATA_MANAGER, Role.MONITOR, Role.ADMINISTRATOR])
def test_blinded_readers_get_the_trail_masked_everywhere(trail: tuple[Trial, str], role: Role) -> None:
    trial, pid = trail
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, role)
        page = client.get("/admin/audit")
        assert page.status_code == 200 and "dose.prepared" in page.text and "participant.unblinded" in page.text
        assert _secrets(page.text) == [] and MASKED in page.text
        token, _ = issue_token(trial.engine, username(role), name="t", actor="test")
        api = client.get("/api/v1/audit", params={"participant": pid}, headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 200
        rows = {(r["action"], r["seq"]): r for r in api.json()["items"]}
        assert {a for a, _ in rows} >= {"dose.prepared", "participant.unblinded", "participant.randomized"}
        assert _secrets(api.text) == []
        unblinding = next(r for (a, _), r in rows.items() if a == "participant.unblinded")
        assert unblinding["reason"] == MASKED and json.loads(unblinding["detail"]) == {"notified": MASKED}
    shown = CliRunner().invoke(cli, ["audit", "show", "--as", username(role), "--database", trial.url])
    assert shown.exit_code == 0 and "participant.unblinded" in shown.output and _secrets(shown.output) == []
    # No entry's hash either: with the fields, the hashes around a masked value would let a reader try its values.
    as_json = CliRunner().invoke(cli, ["audit", "show", "--as", username(role), "--database", trial.url, "--json"])
    hashes = {e.hash for e in audit.entries(trial.engine)}
    assert as_json.exit_code == 0 and len(hashes) > 10
    assert '"hash"' in as_json.output and [h for h in hashes if h in as_json.output] == []


def test_the_api_refuses_the_trail_to_roles_that_do_not_read_it_and_answers_odd_filters(
    trail: tuple[Trial, str],
) -> None:
    trial, _ = trail
    with TestClient(create_app(Settings(database_url=trial.url))) as client:
        for role in (Role.INVESTIGATOR, Role.UNBLINDED_PHARMACIST, Role.BLINDED_STATISTICIAN):
            token, _ = issue_token(trial.engine, username(role), name="t", actor="test")
            assert client.get("/api/v1/audit", headers={"Authorization": f"Bearer {token}"}).status_code == 403
        # A filter no entry can match (PostgreSQL text holds no NUL) answers an empty list, not a server error.
        token, _ = issue_token(trial.engine, username(Role.DATA_MANAGER), name="t", actor="test")
        for query in ({"participant": "\x00"}, {"actor": "a\x00"}, {"action": "\x00"}):
            answer = client.get("/api/v1/audit", params=query, headers={"Authorization": f"Bearer {token}"})
            empty = {"items": [], "total": 0, "limit": 50, "next": None, "prev": None}
            assert (answer.status_code, answer.json()) == (200, empty), query


def test_exports_hold_the_values_only_with_arms(trail: tuple[Trial, str]) -> None:
    trial, pid = trail
    blinded = "".join(repr(e) for e in export_source(trial.engine, who(trial, Role.DATA_MANAGER)).audit())
    assert pid in blinded and "participant.unblinded" in blinded and _secrets(blinded) == []
    assert [h for h in {e.hash for e in audit.entries(trial.engine)} if h in blinded] == []  # no entry's hash
    source = export_source(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), with_arms=True)
    unblinded = "".join(repr(e) for e in source.audit())
    assert {LOT, LEGACY_LOT, "Anaphylaxis"} <= set(_secrets(unblinded))


def test_the_prepared_dose_is_audited_at_its_site_without_its_values(trail: tuple[Trial, str]) -> None:
    trial, pid = trail
    (entry, _legacy) = [e for e in audit.entries(trial.engine, participant=pid) if e.action == "dose.prepared"][::-1]
    assert entry.site == "RAZ" and sorted(json.loads(entry.new_value or "{}")) == ["preparation_code", "prepared"]
    # So the monitor of RAZ reads it among their site's entries.
    assert entry.seq in {e.seq for e in read_trail(trial.engine, who(trial, Role.MONITOR), participant=pid)}
