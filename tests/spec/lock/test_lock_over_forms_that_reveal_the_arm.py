"""The trial lock over forms that reveal the arm (``forms[].reveals_arm``), as every role reads it afterwards.

**An unmasked data manager's override.** The trial masks the monitor, the administrator (who reads the whole audit
trail) and the outcome assessor; the data manager sees the arms. Two participants in different arms; the data manager
raises queries on their ward forms (the form that reveals the arm). In the first world the one in the first arm has
two open queries there and the other none; in the second the first's are closed and the other has one. The data
manager locks with the override, reads, unlocks and changes the queries, and locks again. A count of blockers on the
ward form differs between the worlds, and by arm, so:

| what a masked role reads about the lock                                       | first world = second world |
|-------------------------------------------------------------------------------|----------------------------|
| ``lock_state`` (its ``open_blockers`` counts the blockers outside the form)   | yes                        |
| the banner in English and in Persian (naming the form left out of the count)  | yes                        |
| ``database status --as monitor`` (text and ``--json``)                        | yes                        |
| ``GET /api/v1/trial/lock`` as the monitor                                     | yes                        |
| the ``trial.locked`` audit entry as the masked administrator reads it         | yes (a masked key)         |
| the blinded statistician's analysis report banner                             | yes                        |

while the unmasked record, the audit entry's ``revealing_open_blockers``, is 4 and then 3 (the ward form of each
participant not signed, plus two open queries, then one).

**A masked data manager's override with only withheld forms.** The trial masks the data manager; nothing they may
see blocks the lock (no participant yet), but the ward form is withheld from them. Their lock is refused until they
override; then the banner says the lock was made over the forms kept from them, which the unmasked reviewer (the
monitor) must find ready: on the lock state, the lock page (English and Persian), ``database status``, the API and
the analysis report, and the withheld forms travel in the ODM file and back.

**The refusal on a Persian confirm page** is said in Persian: "nothing you may see blocks the lock", the forms
withheld and what to do once they are reviewed, or how many blockers of each kind block the lock (no three English
words in a row).

On SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.spec.lock.test_lock_banner_in_persian import ENGLISH_RUN, FA, PERSIAN_DIGITS
from tests.spec.masking.test_forms_that_reveal_the_arm import double_blind_masking_the_data_manager, masking, two_arms
from tests.spec.protocol.conftest import mutated_text
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import PASSWORD, Trial, make_trial, second_trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.audit import entry_hash
from trialwright.domain.audit_masking import mask_entry
from trialwright.domain.roles import Role
from trialwright.exports.odm import OdmExporter
from trialwright.protocol import load_protocol_text
from trialwright.services import analysis, audit, audit_trail
from trialwright.services import forms as svc
from trialwright.services.exports import export_source
from trialwright.services.lock import LockBlocked, LockState, lock_state, lock_trial, unlock_trial
from trialwright.services.odm_import import import_odm
from trialwright.services.users import issue_token, set_preferences
from trialwright.settings import Settings
from trialwright.store.data_tables import trial_locks
from trialwright.web.app import create_app
from trialwright.web.readiness_words import banner_said

#: The roles the first trial masks: the monitor reads the lock, the administrator the whole audit trail (a
#: site-scoped monitor's holds no trial-level entry).
MASKED = ("outcome_assessor", "monitor", "administrator")
#: A moment both worlds' readings are said at (the lock's own minute differs between them).
AT = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(\+00:00|Z)?")


def _same(text: str) -> str:
    return _MOMENT.sub("<at>", text)


def _ask(trial: Trial, pid: str, n: int) -> list[int]:
    """``n`` queries on the participant's ward form, raised by the (unmasked) data manager."""
    manager = who(trial, Role.DATA_MANAGER)
    return [svc.raise_query(trial.engine, manager, pid, f"Dressings {i} right?", visit_id="baseline",
                            form_id="ward_dressings", field_id="dressing_changes").id for i in range(n)]  # fmt: skip


def _status(trial: Trial, role: Role) -> tuple[tuple[int, str], tuple[int, str]]:
    base = ["database", "status", "--database", trial.url, "--as", username(role)]
    text, as_json = CliRunner().invoke(cli, base), CliRunner().invoke(cli, [*base, "--json"])
    return (text.exit_code, _same(" ".join(text.output.split()))), (as_json.exit_code, _same(as_json.stdout))


def _api_lock(trial: Trial, role: Role, name: str) -> dict[str, Any]:
    token, _ = issue_token(trial.engine, username(role), name=name, actor="test")
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        answer = client.get("/api/v1/trial/lock", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    found.pop("at")
    return {**found, "banner": _same(found["banner"] or "")}  # the lock's own minute differs between the worlds


def _latest_lock_entry(trial: Trial, role: Role) -> Any:
    """The newest ``trial.locked`` entry as ``role`` reads it on the audit trail (its place in the chain left out)."""
    entries = audit_trail.read_trail(trial.engine, who(trial, role), action_prefix="trial.locked", limit=1000)
    entry = max(entries, key=lambda e: e.seq)
    return (entry.action, entry.actor, entry.role, entry.reason, entry.old_value, entry.new_value, entry.detail)


def _masked_reads(trial: Trial, name: str) -> dict[str, Any]:
    """Everything of the lock the masked monitor and the blinded statistician read."""
    protocol = load_protocol_text(mutated_text(masking(*MASKED))).protocol
    state = dataclasses.replace(lock_state(trial.engine), at=AT)
    report = analysis.analysis_data(trial.engine, who(trial, Role.BLINDED_STATISTICIAN))
    return {
        "state": state,
        "banner": state.banner,
        "banner fa": banner_said(state, protocol, "fa"),
        "status": _status(trial, Role.MONITOR),
        "api": _api_lock(trial, Role.MONITOR, name),
        "audit as the administrator": _latest_lock_entry(trial, Role.ADMINISTRATOR),
        "analysis banner": _same(report.lock_banner or ""),
    }


def _unmasked_record(trial: Trial) -> dict[str, Any]:
    (entry, *_) = sorted(audit.entries(trial.engine, action_prefix="trial.locked"), key=lambda e: -e.seq)
    return json.loads(entry.detail or "{}")  # type: ignore[no-any-return]


def test_what_a_masked_role_reads_of_an_unmasked_override_is_the_same_whatever_the_arms_hold(
    database_url: str,
) -> None:
    trial = make_trial(database_url, load_protocol_text(mutated_text(masking(*MASKED))))
    manager = who(trial, Role.DATA_MANAGER)
    try:
        first, second = two_arms(trial)
        asked = _ask(trial, first, 2)
        lock_trial(trial.engine, manager, "final", password=PASSWORD)
        world_one, record_one = _masked_reads(trial, "one"), _unmasked_record(trial)
        unlock_trial(trial.engine, manager, "the queries change")
        for q in asked:
            svc.close_query(trial.engine, manager, q)
        _ask(trial, second, 1)
        lock_trial(trial.engine, manager, "final", password=PASSWORD)
        world_two, record_two = _masked_reads(trial, "two"), _unmasked_record(trial)
    finally:
        trial.engine.dispose()
    for name, seen in world_one.items():
        assert seen == world_two[name], f"the masked reader's {name} differs by arm:\n{seen}\n{world_two[name]}"
    state: LockState = world_one["state"]
    assert state.open_blockers and state.uncounted == ("ward_dressings",) and state.withheld == ()
    n = state.open_blockers
    said = f"(ward_dressings) by {manager.username} on 2026-01-02 03:04 UTC: final"
    assert world_one["banner"] == f"Locked with {n} open blockers outside the forms that reveal the arm {said}"
    assert ENGLISH_RUN.findall(world_one["banner fa"]) == [] and "پانسمان‌های بخش" in world_one["banner fa"]
    persian = {"n": str(n).translate(PERSIAN_DIGITS), "forms": "پانسمان‌های بخش", "user": manager.username,
               "reason": "final", "at": "2026-01-02 03:04".translate(PERSIAN_DIGITS)}  # fmt: skip
    assert world_one["banner fa"] == FA[OUTSIDE] % persian
    assert "outside the forms that reveal the arm (ward_dressings)" in world_one["status"][0][1]
    assert world_one["api"]["open_blockers"] == n and world_one["api"]["uncounted"] == ["ward_dressings"]
    assert world_one["analysis banner"].startswith(f"Locked with {n} open blockers outside the forms")
    detail = json.loads(world_one["audit as the administrator"][-1])
    assert detail["revealing_open_blockers"] == "masked" and detail["open_blockers"] == n
    assert detail["uncounted"] == ["ward_dressings"]
    # The unmasked record: the ward forms (drafts) and two open queries, then the ward forms and one.
    assert (record_one["revealing_open_blockers"]["count"], record_two["revealing_open_blockers"]["count"]) == (4, 3)
    assert record_one["open_blockers"] == record_two["open_blockers"] == n


OUTSIDE = (
    "Locked with %(n)s open blockers outside the forms that reveal the arm (%(forms)s) by %(user)s on %(at)s UTC: "
    "%(reason)s"
)
WITHHELD = (
    "Locked by %(user)s on %(at)s UTC over forms kept from them (%(withheld)s), which an unmasked reviewer "
    "(%(reviewers)s) must find ready: %(reason)s"
)


@pytest.fixture
def masked_manager(database_url: str) -> Iterator[Trial]:
    """A trial masking the data manager, with the ward's form, and no participant yet (nothing blocks the lock that
    the data manager may see)."""
    trial = make_trial(database_url, load_protocol_text(mutated_text(double_blind_masking_the_data_manager)))
    yield trial
    trial.engine.dispose()


def _banner_on(page: str) -> str:
    found = re.search(r'data-testid="lock-banner">([^<]*)<', page)
    assert found is not None, "no lock banner on the page"
    return html.unescape(found[1])


def test_a_masked_data_manager_s_lock_over_forms_withheld_shows_the_banner_everywhere(
    masked_manager: Trial, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    trial = masked_manager
    manager = who(trial, Role.DATA_MANAGER)
    with pytest.raises(LockBlocked, match="nothing you may see blocks the lock"):
        lock_trial(trial.engine, manager, "final")
    state = lock_trial(trial.engine, manager, "final", password=PASSWORD)
    at = f"{state.at:%Y-%m-%d %H:%M}"
    expected = (f"Locked by {manager.username} on {at} UTC over forms kept from them (ward_dressings), which an "
                "unmasked reviewer (monitor) must find ready: final")  # fmt: skip
    assert state.banner == expected
    assert state.open_blockers is None and state.withheld == ("ward_dressings",) and state.reviewers == ("monitor",)
    (entry,) = audit.entries(trial.engine, action_prefix="trial.locked")
    assert json.loads(entry.detail or "{}") == {"override": True, "open_blockers": 0, "withheld": ["ward_dressings"],
                                                "uncounted": ["ward_dressings"]}  # fmt: skip
    app = create_app(Settings(database_url=trial.url))
    with TestClient(app, follow_redirects=False) as client:
        english = _banner_on(sign_in(client, Role.DATA_MANAGER).get("/data-management").text)
    assert english == expected.replace("(ward_dressings)", "(Ward dressings)").replace("(monitor)", "(Monitor)")
    set_preferences(trial.engine, username(Role.DATA_MANAGER), language="fa", calendar="jalali")
    with TestClient(app, follow_redirects=False) as client:
        persian = _banner_on(sign_in(client, Role.DATA_MANAGER).get("/data-management").text)
    assert ENGLISH_RUN.findall(persian) == []
    assert persian == FA[WITHHELD] % {"user": manager.username, "at": at.translate(PERSIAN_DIGITS),
                                      "withheld": "پانسمان‌های بخش", "reviewers": FA["Monitor"],
                                      "reason": "final"}  # fmt: skip
    for role in (Role.DATA_MANAGER, Role.MONITOR):
        (code, text), (json_code, as_json) = _status(trial, role)
        assert code == 0 and _same(expected) in text, text
        assert json_code == 0 and json.loads(as_json)["lock"]["withheld"] == ["ward_dressings"]
    api = _api_lock(trial, Role.MONITOR, "m")
    assert api["banner"] == _same(expected)
    assert api["withheld"] == ["ward_dressings"] and api["reviewers"] == ["monitor"]
    report = analysis.analysis_data(trial.engine, who(trial, Role.BLINDED_STATISTICIAN))
    assert report.lock_banner == expected
    # The ODM file carries the forms withheld (tw:TrialLock Withheld="ward_dressings"), and a trial imported from it
    # is locked over them as the source was.
    (tmp_path / "odm").mkdir()
    path, *_ = OdmExporter().write(export_source(trial.engine, manager), tmp_path / "odm")
    assert 'Withheld="ward_dressings"' in path.read_text(encoding="utf-8")
    with second_trial(tmp_path, trial.url, request, load_protocol_text(mutated_text(
            double_blind_masking_the_data_manager))) as target:  # fmt: skip
        done = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
        assert done.byte_identical, done.reexport_difference
        assert lock_state(target.engine) == lock_state(trial.engine)
        assert lock_state(target.engine).banner == expected


def test_a_file_without_withheld_forms_reads_as_none_withheld(
    masked_manager: Trial, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    trial = masked_manager
    lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "final", password=PASSWORD)
    (tmp_path / "odm").mkdir()
    path, *_ = OdmExporter().write(export_source(trial.engine, who(trial, Role.DATA_MANAGER)), tmp_path / "odm")
    edited = tmp_path / "without.xml"
    edited.write_text(path.read_text(encoding="utf-8").replace(' Withheld="ward_dressings"', ""), encoding="utf-8")
    with second_trial(tmp_path, trial.url, request, load_protocol_text(mutated_text(
            double_blind_masking_the_data_manager))) as target:  # fmt: skip
        import_odm(target.engine, who(target, Role.DATA_MANAGER), edited)
        state = lock_state(target.engine)
        assert state.locked and state.withheld == () and state.banner is None


def test_the_lock_refusal_on_a_persian_confirm_page_is_persian(masked_manager: Trial) -> None:
    trial = masked_manager
    set_preferences(trial.engine, username(Role.DATA_MANAGER), language="fa", calendar="jalali")
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        page = sign_in(client, Role.DATA_MANAGER).get("/data-management").text
        form = {"csrf_token": csrf_of(page), "action": "lock", "reason": "پایان"}
        confirm = client.post("/data-management/lock", data=form)
        token = re.search(r'name="confirm" value="([^"]*)"', confirm.text)
        assert confirm.status_code == 200 and token is not None
        refused = client.post("/data-management/lock", data={**form, "confirm": token[1]})
    assert refused.status_code == 422
    errors = [html.unescape(e) for e in re.findall(r'<p class="error" role="alert">([^<]*)</p>', refused.text)]
    assert errors, refused.text
    (said,) = errors
    assert ENGLISH_RUN.findall(said) == [], said
    assert said.startswith(FA["Nothing you may see blocks the lock."])
    assert FA["Once an unmasked reviewer has found them ready, override with a reason and your password."] in said
    assert "پانسمان‌های بخش" in said
    assert not lock_state(trial.engine).locked


def test_a_refusal_over_blockers_on_a_persian_confirm_page_counts_them_in_persian(trial: Trial, pid: str) -> None:
    """The first trial (no form withheld): a draft form at baseline, the rest not started; the data manager's
    refusal counts the blockers by kind in Persian words and digits (the English page keeps its words:
    ``test_lock_edges.py``)."""
    svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "labs", {"crp": 40})
    set_preferences(trial.engine, username(Role.DATA_MANAGER), language="fa", calendar="jalali")
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        page = sign_in(client, Role.DATA_MANAGER).get("/data-management").text
        form = {"csrf_token": csrf_of(page), "action": "lock", "reason": "پایان"}
        token = re.search(r'name="confirm" value="([^"]*)"', client.post("/data-management/lock", data=form).text)
        assert token is not None
        refused = client.post("/data-management/lock", data={**form, "confirm": token[1]})
    assert refused.status_code == 422
    (said,) = [html.unescape(e) for e in re.findall(r'<p class="error" role="alert">([^<]*)</p>', refused.text)]
    assert ENGLISH_RUN.findall(said) == [] and not re.search(r"[0-9]", said), said
    n = "7".translate(PERSIAN_DIGITS)
    kinds = FA["%(n)s forms not ready"] % {"n": n}
    counted = FA["%(n)s blockers (%(kinds)s)"] % {"n": n, "kinds": kinds}
    assert said == FA["%(counted)s block the lock; resolve them, or override with a reason and your password."] % {
        "counted": counted
    }
    assert not lock_state(trial.engine).locked


def test_a_lock_made_before_its_count_left_out_those_forms_claims_no_form_left_out(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Every lock since migration 0042 stores the forms withheld ('' none) and its count leaves out the forms that
    reveal the arm, which its banner names, also after an ODM export and import (``Withheld=""``). A lock stored
    before (``withheld`` NULL) or read from a file without ``Withheld`` counted every blocker: its banner says the
    plain count and names no form left out of it (it would be a wrong count that looks right)."""
    protocol_text = mutated_text(masking(*MASKED))
    trial = make_trial(database_url, load_protocol_text(protocol_text))
    manager = who(trial, Role.DATA_MANAGER)
    try:
        first, _ = two_arms(trial)
        _ask(trial, first, 1)
        state = lock_trial(trial.engine, manager, "final", password=PASSWORD)
        n = state.open_blockers
        assert n and state.uncounted == ("ward_dressings",) and "outside the forms" in (state.banner or "")
        (tmp_path / "odm").mkdir()
        path, *_ = OdmExporter().write(export_source(trial.engine, manager), tmp_path / "odm")
        text = path.read_text(encoding="utf-8")
        assert 'Withheld=""' in text
        without = tmp_path / "without.xml"
        without.write_text(text.replace(' Withheld=""', ""), encoding="utf-8")
        for file, outside in ((path, True), (without, False)):
            folder = tmp_path / file.stem
            folder.mkdir()
            with second_trial(folder, trial.url, request, load_protocol_text(protocol_text)) as target:
                import_odm(target.engine, who(target, Role.DATA_MANAGER), file)
                imported = lock_state(target.engine)
                assert imported.open_blockers == n
                assert imported.uncounted == (("ward_dressings",) if outside else ())
                assert ("outside the forms that reveal the arm (ward_dressings)" in (imported.banner or "")) is outside
        # A lock stored before migration 0042: the column NULL.
        with trial.engine.begin() as conn:
            conn.execute(trial_locks.update().values(withheld=None))
        before = lock_state(trial.engine)
        assert before.uncounted == ()
        assert before.banner == f"Locked with {n} open blockers by {manager.username} on " + (
            f"{before.at:%Y-%m-%d %H:%M} UTC: final" if before.at else ""
        )
    finally:
        trial.engine.dispose()


def test_the_count_kept_from_masked_readers_cannot_be_found_from_the_entry_s_hash(
    database_url: str, tmp_path: Path
) -> None:
    """The ``trial.locked`` entry's hash is a SHA-256 of every field of the entry. A masked reader knows every field
    but the masked count (the API gives the entry masked; its previous hash is the entry before's): trying counts 0
    to 199 against the hash must not find it. The count is stored with a random nonce (before, a bare integer: the
    second try found it), and the hash itself is withheld from a masked reader: the lock's ``AuditRecord`` in an
    ODM export made without the arms says ``audit:<seq>:masked`` (``tests/spec/audit/test_hash_of_a_masked_entry``);
    one made with them, the hash."""
    trial = make_trial(database_url, load_protocol_text(mutated_text(masking(*MASKED))))
    manager = who(trial, Role.DATA_MANAGER)
    try:
        first, _ = two_arms(trial)
        _ask(trial, first, 1)
        lock_trial(trial.engine, manager, "final", password=PASSWORD)
        (raw, *_) = sorted(audit.entries(trial.engine, action_prefix="trial.locked"), key=lambda e: -e.seq)
        for with_arms, shown in ((False, "masked"), (True, raw.hash)):
            (tmp_path / f"odm-{with_arms}").mkdir()
            path, *_ = OdmExporter().write(export_source(trial.engine, manager, with_arms=with_arms),
                                           tmp_path / f"odm-{with_arms}")  # fmt: skip
            text = path.read_text(encoding="utf-8")
            assert f"<SourceID>audit:{raw.seq}:{shown}</SourceID>" in text
            assert raw.hash not in text or with_arms
    finally:
        trial.engine.dispose()
    seen = mask_entry(raw)
    shown = json.loads(seen.detail or "{}")
    assert shown["revealing_open_blockers"] == "masked"
    assert entry_hash(raw) == raw.hash  # the hash is what a reader of the export can recompute from the fields
    found = []
    for count in range(200):
        guess = json.dumps(shown | {"revealing_open_blockers": count}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)  # fmt: skip
        if entry_hash(dataclasses.replace(seen, detail=guess)) == raw.hash:
            found.append(count)
    assert found == [], f"the masked count {found} was found by trying counts against the entry's hash"
