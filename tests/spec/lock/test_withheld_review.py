"""The unmasked reviewer's recorded review of the forms kept from a masked data manager (``forms[].reveals_arm``).

The trial masks the data manager; the monitor sees the arms and reads the lock readiness (a monitor of every site:
one scoped to some sites sees only theirs). The lock policy asks forms to be complete; two participants in different
arms each have the ward's form (the form that reveals the arm), saved by the unmasked nurse.

| who records the review                    | the ward forms | the review                                       |
|-------------------------------------------|----------------|--------------------------------------------------|
| the masked data manager                   | complete       | refused: ``role: the trial masks your role; ...`` |
| the investigator (not a reader)           | complete       | refused: ``role: only a data manager or ...``    |
| a monitor of one site                     | complete       | refused: ``role: you see only some sites' ...``  |
| the monitor of every site                 | drafts         | refused, listing both drafts                     |
| the monitor of every site, wrong password | complete       | refused: ``password: wrong password; ...``       |
| the monitor of every site                 | complete       | recorded, audited, shown                         |
| anyone, no form withheld                  | (none)         | refused: ``withheld: no form is kept ...``       |

A refused review stores nothing (no row, no audit entry). A recorded one is said to the masked data manager as
"reviewed by <monitor> on <date> UTC" on the readiness report (command, API, page in English and Persian), and,
after their lock, on the banner of the lock page (English and Persian), ``database status``, ``/trial/lock`` and the
analysis report; a save on a ward form after it ends it (the existing wording again).

**Two worlds.** The ward forms differ by arm: in the first world the first arm's participant's form holds other
values and a query raised, answered and closed; in the second the other arm's. Everything the masked data manager
reads of the review and of the lock is the same in both worlds (the moments said aside).

On SQLite and PostgreSQL.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.spec.lock.test_lock_banner_in_persian import ENGLISH_RUN, PERSIAN_DIGITS
from tests.spec.lock.test_lock_over_forms_that_reveal_the_arm import _same
from tests.spec.masking.test_forms_that_reveal_the_arm import double_blind_masking_the_data_manager, two_arms
from tests.spec.protocol.conftest import mutated_text
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import PASSWORD, Trial, make_trial, second_trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.exports.odm import OdmExporter
from trialwright.protocol import LoadedProtocol, load_protocol_text
from trialwright.services import analysis, audit, audit_trail
from trialwright.services import forms as svc
from trialwright.services.errors import FormError
from trialwright.services.exports import export_source
from trialwright.services.lock import lock_state, lock_trial, unlock_trial
from trialwright.services.odm_import import import_odm
from trialwright.services.readiness import lock_readiness, review_withheld
from trialwright.services.trial import current_protocol
from trialwright.services.users import create_user, get_user, issue_token, set_preferences
from trialwright.settings import Settings
from trialwright.store.data_tables import withheld_reviews
from trialwright.store.engine import read_scope
from trialwright.web.app import create_app
from trialwright.web.readiness_words import banner_said

#: The reviewer's finding, audited: masked readers never read it (it may speak of the dressings).
FOUND = "ward dressings all complete, silver dressings as charted"


def _protocol() -> LoadedProtocol:
    def mutate(doc: Any) -> None:
        double_blind_masking_the_data_manager(doc)
        doc["lock_policy"] = {"forms": "complete"}

    return load_protocol_text(mutated_text(mutate))


def _lead_monitor(trial: Trial) -> Any:
    """A monitor of every site (the fixture's monitor sees one site)."""
    sites = list(current_protocol(trial.engine).protocol.site_codes)
    create_user(trial.engine, username="lead-monitor", password=PASSWORD, role=Role.MONITOR, sites=sites,
                full_name="Lead Monitor", actor="test")  # fmt: skip
    return get_user(trial.engine, "lead-monitor")


@pytest.fixture
def masked(database_url: str) -> Iterator[Trial]:
    trial = make_trial(database_url, _protocol())
    yield trial
    trial.engine.dispose()


def _complete(trial: Trial, *pids: str) -> None:
    for pid in pids:
        svc.complete_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "ward_dressings")


def _stored(trial: Trial) -> tuple[int, int]:
    with read_scope(trial.engine) as session:
        rows = session.execute(select(func.count()).select_from(withheld_reviews)).scalar_one()
    return rows, len(audit.entries(trial.engine, action_prefix="lock.withheld_reviewed"))


def test_a_review_is_refused_naming_the_rule_and_stores_nothing(masked: Trial) -> None:
    first, second = two_arms(masked)
    lead = _lead_monitor(masked)
    refusals = [
        (who(masked, Role.DATA_MANAGER), "role: the trial masks your role; only an unmasked reader of the lock "
                                         "readiness may review the forms kept from masked readers"),
        (who(masked, Role.INVESTIGATOR), "role: only a data manager or a monitor may review the forms kept from masked "
                                         "readers"),
        (who(masked, Role.MONITOR), "role: you see only some sites' forms; the review is of every site's forms"),
    ]  # fmt: skip
    for actor, rule in refusals:
        with pytest.raises(FormError, match=re.escape(rule)):
            review_withheld(masked.engine, actor, FOUND, password=PASSWORD)
    # Not ready as the reviewer sees them: both drafts listed.
    with pytest.raises(FormError) as refused:
        review_withheld(masked.engine, lead, FOUND, password=PASSWORD)
    said = str(refused.value)
    assert said.startswith("withheld: the forms kept from masked readers (ward_dressings) are not ready: 2 blockers "
                           "on them: "), said  # fmt: skip
    for pid in (first, second):
        assert f"{pid} baseline ward_dressings: draft; the lock policy needs complete" in said, said
    _complete(masked, first, second)
    with pytest.raises(FormError, match="password: wrong password"):
        review_withheld(masked.engine, lead, FOUND, password="not-it")
    with pytest.raises(FormError, match="reason: say what you reviewed and found"):
        review_withheld(masked.engine, lead, "  ", password=PASSWORD)
    assert _stored(masked) == (0, 0)


def test_no_review_where_no_form_is_withheld(trial: Trial) -> None:
    # A trial whose forms are kept from no reader of the lock readiness (the first trial: no form reveals the arm).
    with pytest.raises(FormError, match=re.escape("withheld: no form is kept from a masked reader of the lock "
                                                  "readiness")):  # fmt: skip
        review_withheld(trial.engine, who(trial, Role.MONITOR), FOUND, password=PASSWORD)
    assert _stored(trial) == (0, 0)


def _api(trial: Trial, role_user: str, path: str) -> dict[str, Any]:
    token, _ = issue_token(trial.engine, role_user, name=f"t{path}", actor="test")
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        answer = client.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _pages(trial: Trial) -> tuple[str, str]:
    """The masked data manager's readiness page's words on the forms kept from them, in English and Persian."""
    app = create_app(Settings(database_url=trial.url))
    said = []
    for lang in ("en", "fa"):
        set_preferences(trial.engine, username(Role.DATA_MANAGER), language=lang, calendar="gregorian")
        with TestClient(app, follow_redirects=False) as client:
            page = sign_in(client, Role.DATA_MANAGER).get("/data-management/readiness").text
        found = re.search(r'data-testid="readiness-withheld">([^<]*)<', page)
        assert found is not None, page
        said.append(html.unescape(found[1]))
    set_preferences(trial.engine, username(Role.DATA_MANAGER), language="en", calendar="gregorian")
    return said[0], said[1]


def _readiness_cli(trial: Trial) -> str:
    done = CliRunner().invoke(cli, ["database", "readiness", "--database", trial.url, "--as",
                                    username(Role.DATA_MANAGER)])  # fmt: skip
    return " ".join(done.output.split())


def _status(trial: Trial) -> str:
    done = CliRunner().invoke(cli, ["database", "status", "--database", trial.url, "--as", username(Role.DATA_MANAGER)])
    assert done.exit_code == 0, done.output
    return " ".join(done.output.split())


#: What the API's readiness report says of the forms withheld and their review.
READINESS_KEYS = ("withheld", "reviewers", "ready", "headline", "review")


def _masked_reads(trial: Trial) -> dict[str, Any]:
    """What the masked data manager reads of the review, before their lock and after (the lock made here)."""
    manager = who(trial, Role.DATA_MANAGER)
    report = lock_readiness(trial.engine, manager)
    english, persian = _pages(trial)
    api = _api(trial, username(Role.DATA_MANAGER), "/trial/readiness")
    reads: dict[str, Any] = {
        "readiness": _same(report.summary().split("\n", 1)[0]),
        "readiness command": _same(_readiness_cli(trial)),
        "readiness api": _same(json.dumps({k: api[k] for k in READINESS_KEYS})),
        "readiness page": _same(english),
        "readiness page fa": persian,
    }
    lock_trial(trial.engine, manager, "final", password=PASSWORD)
    state = lock_state(trial.engine)
    protocol = current_protocol(trial.engine).protocol
    trail = audit_trail.read_trail(trial.engine, manager, action_prefix="lock.withheld_reviewed", limit=10)
    statistician = who(trial, Role.BLINDED_STATISTICIAN)
    reads |= {
        "banner": _same(state.banner or ""),
        "banner fa": banner_said(state, protocol, "fa"),
        "status": _same(_status(trial)),
        "lock api": {k: _same(str(v)) for k, v in _api(trial, username(Role.DATA_MANAGER), "/trial/lock").items()},
        "analysis": _same(analysis.analysis_data(trial.engine, statistician).lock_banner or ""),
        "audit": [(e.action, e.actor, e.role, e.reason, e.detail) for e in trail],
    }
    return reads


def test_a_recorded_review_is_said_to_the_masked_data_manager_until_a_form_changes(masked: Trial) -> None:
    first, second = two_arms(masked)
    _complete(masked, first, second)
    lead = _lead_monitor(masked)
    before = lock_readiness(masked.engine, who(masked, Role.DATA_MANAGER))
    assert before.review is None and "reviewed by" not in before.headline()
    done = review_withheld(masked.engine, lead, FOUND, password=PASSWORD)
    at = f"{done.at:%Y-%m-%d %H:%M}"
    reviewed = f"reviewed by lead-monitor on {at} UTC"
    assert done.forms == ("ward_dressings",) and _stored(masked) == (1, 1)
    (entry,) = audit.entries(masked.engine, action_prefix="lock.withheld_reviewed")
    assert (entry.actor, entry.role, entry.reason) == ("lead-monitor", "monitor", FOUND)
    version = current_protocol(masked.engine).protocol.version.number
    assert json.loads(entry.detail or "{}") == {"forms": ["ward_dressings"], "protocol_version": version}
    reads = _masked_reads(masked)
    assert reads["readiness"].endswith(f"nothing of them is shown; an unmasked reviewer found them ready "
                                       f"({_same(reviewed)}) over 2 participant(s).")  # fmt: skip
    # Beside a standing review no reader is told it is unknown whether anything on the forms blocks the lock.
    assert all("not even" not in reads[k] for k in ("readiness", "readiness command", "readiness page"))
    assert _same(reviewed) in reads["readiness command"]
    api = json.loads(reads["readiness api"])
    assert api["review"]["by"] == "lead-monitor" and api["review"]["forms"] == ["ward_dressings"]
    assert api["ready"] is False  # the lock still asks the data manager's override
    assert reads["readiness page"].endswith(f"Reviewed by lead-monitor on {_same(at)} UTC.")
    assert ENGLISH_RUN.findall(reads["readiness page fa"]) == [], reads["readiness page fa"]
    assert at.translate(PERSIAN_DIGITS) in reads["readiness page fa"]
    # The lock made after it: its banner says the review everywhere.
    assert "over forms kept from them (ward_dressings), " + _same(reviewed) + ": final" in reads["banner"]
    assert "must find ready" not in reads["banner"]
    assert ENGLISH_RUN.findall(reads["banner fa"]) == [] and at.translate(PERSIAN_DIGITS) in reads["banner fa"]
    assert _same(reviewed) in reads["status"]
    assert reads["lock api"]["reviewed_by"] == "lead-monitor" and _same(reviewed) in reads["lock api"]["banner"]
    assert _same(reviewed) in reads["analysis"]
    # The masked data manager reads who reviewed, when and which forms, never the reviewer's finding.
    ((action, actor, role, reason, detail),) = reads["audit"]
    assert (action, actor, role, reason) == ("lock.withheld_reviewed", "lead-monitor", "monitor", "masked")
    assert json.loads(detail or "{}")["forms"] == ["ward_dressings"]
    # A change on a ward form after the review ends it: the existing words again.
    unlock_trial(masked.engine, who(masked, Role.DATA_MANAGER), "a correction")
    svc.save_form(masked.engine, who(masked, Role.STUDY_COORDINATOR), first, "baseline", "ward_dressings",
                  {"dressing_changes": 4}, reason="miscounted")  # fmt: skip
    after = lock_readiness(masked.engine, who(masked, Role.DATA_MANAGER))
    assert after.review is None and "reviewed by" not in after.headline()
    state = lock_trial(masked.engine, who(masked, Role.DATA_MANAGER), "final", password=PASSWORD)
    assert state.reviewed_by is None and "which an unmasked reviewer (monitor) must find ready" in (state.banner or "")


def _world(trial: Trial, on: int) -> dict[str, Any]:
    """The ward form of the participant of one arm (``on``: 0 the first arm's, 1 the other's) holds other values
    and a query raised, answered and closed; then the forms are completed, reviewed, read and locked."""
    pids = two_arms(trial)
    nurse, lead = who(trial, Role.STUDY_COORDINATOR), _lead_monitor(trial)
    svc.save_form(trial.engine, nurse, pids[on], "baseline", "ward_dressings", {"dressing_changes": 9})
    q = svc.raise_query(trial.engine, lead, pids[on], "Nine changes?", visit_id="baseline", form_id="ward_dressings",
                        field_id="dressing_changes").id  # fmt: skip
    svc.answer_query(trial.engine, nurse, q, "Yes, nine.")
    svc.close_query(trial.engine, lead, q)
    _complete(trial, *pids)
    review_withheld(trial.engine, lead, FOUND, password=PASSWORD)
    return _masked_reads(trial)


def test_what_the_masked_data_manager_reads_of_the_review_is_the_same_whatever_the_arms_hold(
    masked: Trial, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    one = _world(masked, 0)
    with second_trial(tmp_path, masked.url, request, _protocol()) as other:
        two = _world(other, 1)
    digits = re.compile(r"[۰-۹]{4}-[۰-۹]{2}-[۰-۹]{2} [۰-۹]{2}:[۰-۹]{2}")
    for name, seen in one.items():
        if name.endswith(" fa"):
            seen, other_seen = digits.sub("<at>", seen), digits.sub("<at>", two[name])
        else:
            other_seen = two[name]
        assert seen == other_seen, f"the masked data manager's {name} differs by arm:\n{seen}\n{other_seen}"
    assert "reviewed by lead-monitor on <at> UTC" in one["banner"]


def test_an_odm_round_trip_after_a_review_keeps_the_lock_and_does_not_claim_the_review(
    masked: Trial, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The ODM file does not carry the review yet (docs/lock.md): a trial imported from it is locked over the forms
    withheld as the source was, and says they must be found ready (it claims no review it does not hold)."""
    first, second = two_arms(masked)
    _complete(masked, first, second)
    review_withheld(masked.engine, _lead_monitor(masked), FOUND, password=PASSWORD)
    manager = who(masked, Role.DATA_MANAGER)
    assert lock_trial(masked.engine, manager, "final", password=PASSWORD).reviewed_by == "lead-monitor"
    (tmp_path / "odm").mkdir()
    path, *_ = OdmExporter().write(export_source(masked.engine, manager), tmp_path / "odm")
    with second_trial(tmp_path, masked.url, request, _protocol()) as target:
        done = import_odm(target.engine, who(target, Role.DATA_MANAGER), path)
        assert done.byte_identical, done.reexport_difference
        imported = lock_state(target.engine)
        assert imported.withheld == ("ward_dressings",) and imported.reviewed_by is None
        assert "which an unmasked reviewer (monitor) must find ready" in (imported.banner or "")


def test_the_reviewer_records_it_on_the_readiness_page_in_their_language(masked: Trial) -> None:
    """The readiness page offers the form to the unmasked reviewer only; a refusal is said on it (422, in Persian on
    a Persian page), and a recorded review is said on it."""
    first, second = two_arms(masked)
    _lead_monitor(masked)
    app = create_app(Settings(database_url=masked.url))
    with TestClient(app, follow_redirects=False) as client:
        page = sign_in(client, Role.DATA_MANAGER).get("/data-management/readiness").text
    assert 'data-testid="withheld-review"' not in page  # the masked data manager is not offered it
    set_preferences(masked.engine, "lead-monitor", language="fa", calendar="jalali")
    with TestClient(app, follow_redirects=False) as client:
        page = sign_in(client, "lead-monitor").get("/data-management/readiness").text
        assert 'data-testid="withheld-review"' in page
        form = {"csrf_token": csrf_of(page), "reason": FOUND, "password": PASSWORD}
        refused = client.post("/data-management/readiness/review", data=form)
        assert refused.status_code == 422
        (said,) = [html.unescape(e) for e in re.findall(r'<p class="error" role="alert">([^<]*)</p>', refused.text)]
        assert "آماده نیستند" in said and "are not ready" not in said, said
        _complete(masked, first, second)
        done = client.post("/data-management/readiness/review", data=form)
        assert done.status_code == 303, done.text
        shown = client.get("/data-management/readiness").text
    standing = re.search(r'data-testid="review-standing">([^<]*)<', shown)
    assert standing is not None and "lead-monitor" in standing[1] and ENGLISH_RUN.findall(standing[1]) == []
    assert _stored(masked) == (1, 1)
