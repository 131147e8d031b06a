"""The unblinded pharmacist works at their sites only, like every site-scoped role (both databases).

A pharmacist of GOL neither lists, reads nor records the preparation of a RAZ participant: pages and API answer
404, as for an unknown code (another site's record answers like a missing one everywhere in trialwright), and
nothing is recorded. The pharmacist of RAZ does all three. The unblinding log and the notices show a pharmacist
their sites' participants only; the command line offers a pharmacist no export and no audit trail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from tests.spec.randomization.test_randomize_service import enrolled
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import PASSWORD, Trial, make_trial, who
from trialwright.cli.main import app as cli
from trialwright.domain.roles import Role
from trialwright.services.randomization import (
    emergency_unblind,
    generate_list,
    notifications_for,
    preparation_queue,
    prepare,
    randomize,
    unblinding_log,
    what_to_prepare,
)
from trialwright.services.screening import NotFound
from trialwright.services.users import create_user, get_user, issue_token
from trialwright.settings import Settings
from trialwright.store.engine import session_scope
from trialwright.store.randomization_tables import notifications, preparations
from trialwright.web.app import create_app

GOL_PHARMACIST = "pharmacist-gol"
VALUES = {"product_lot": "LOT-1", "volume_ml": 3.5, "particles": 5e10}


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url)
    create_user(t.engine, username=GOL_PHARMACIST, password=PASSWORD, role=Role.UNBLINDED_PHARMACIST,
                sites=["GOL"], full_name="GOL pharmacist", actor="test")  # fmt: skip
    generate_list(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), seed=3)
    yield t
    t.engine.dispose()


def _raz_code(trial: Trial) -> tuple[str, str]:
    """A RAZ participant randomized, and their preparation code."""
    pid = enrolled(trial, "RAZ")
    return pid, randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid).preparation_code


def _values_for(trial: Trial, code: str) -> dict[str, object]:
    # The RAZ pharmacist reads which attributes this code's arm declares (placebo has no particle count).
    wanted = {a.id for a in what_to_prepare(trial.engine, who(trial, Role.UNBLINDED_PHARMACIST), code).attributes}
    return {k: v for k, v in VALUES.items() if k in wanted}


def _prepared(trial: Trial, code: str) -> bool:
    with session_scope(trial.engine) as session:
        return session.execute(select(preparations).where(preparations.c.preparation_code == code)).first() is not None


def test_the_service_keeps_another_sites_preparations_from_the_pharmacist(trial: Trial) -> None:
    pid, code = _raz_code(trial)
    gol = get_user(trial.engine, GOL_PHARMACIST)
    assert gol is not None
    assert preparation_queue(trial.engine, gol) == []
    with pytest.raises(NotFound):
        what_to_prepare(trial.engine, gol, code)
    with pytest.raises(NotFound):
        prepare(trial.engine, gol, code, _values_for(trial, code))
    assert not _prepared(trial, code)
    raz = who(trial, Role.UNBLINDED_PHARMACIST)
    assert [i.preparation_code for i in preparation_queue(trial.engine, raz)] == [code]
    done = prepare(trial.engine, raz, code, _values_for(trial, code))
    assert done.prepared and done.participant_id == pid and _prepared(trial, code)


def test_the_unblinding_log_shows_a_pharmacist_their_sites_only(trial: Trial) -> None:
    pid, _ = _raz_code(trial)
    emergency_unblind(trial.engine, who(trial, Role.INVESTIGATOR), pid, reason="anaphylaxis", password=PASSWORD)
    gol = get_user(trial.engine, GOL_PHARMACIST)
    assert gol is not None
    assert unblinding_log(trial.engine, gol) == []
    assert [u.participant_id for u in unblinding_log(trial.engine, who(trial, Role.UNBLINDED_PHARMACIST))] == [pid]
    # Trial-wide roles read every site's unblindings.
    assert [u.participant_id for u in unblinding_log(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN))] == [pid]
    # A protocol may notify the pharmacist too (the first trial notifies the statistician and the DSMB): a notice
    # about a RAZ participant reaches RAZ's pharmacist only; one about no participant reaches both.
    with session_scope(trial.engine) as session:
        for participant in (pid, None):
            notice = {"subject": f"about {participant}", "participant_id": participant}
            session.execute(
                notifications.insert().values(role="unblinded_pharmacist", created_at=dt.datetime.now(dt.UTC), **notice)
            )
    assert [n.subject for n in notifications_for(trial.engine, gol)] == ["about None"]
    raz = who(trial, Role.UNBLINDED_PHARMACIST)
    assert [n.subject for n in notifications_for(trial.engine, raz)] == ["about None", f"about {pid}"]


def test_pages_answer_404_for_another_sites_code_and_record_nothing(trial: Trial) -> None:
    _, code = _raz_code(trial)
    values = {f"a-{k}": str(v) for k, v in _values_for(trial, code).items()}
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, GOL_PHARMACIST)
        queue = client.get("/pharmacy")
        assert queue.status_code == 200 and code not in queue.text
        assert client.get(f"/pharmacy/{code}").status_code == 404
        form = {"csrf_token": csrf_of(queue.text), **values}
        refused = client.post(f"/pharmacy/{code}", data=form)
        assert refused.status_code == 404 and not _prepared(trial, code)
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.UNBLINDED_PHARMACIST)
        queue = client.get("/pharmacy")
        assert queue.status_code == 200 and code in queue.text
        assert client.get(f"/pharmacy/{code}").status_code == 200
        done = client.post(f"/pharmacy/{code}", data={"csrf_token": csrf_of(queue.text), **values})
        assert done.status_code == 303 and _prepared(trial, code)


def test_the_api_answers_404_for_another_sites_code_and_records_nothing(trial: Trial) -> None:
    _, code = _raz_code(trial)
    values = _values_for(trial, code)
    gol, _ = issue_token(trial.engine, GOL_PHARMACIST, name="t", actor="test")
    raz, _ = issue_token(trial.engine, "unblinded-pharmacist", name="t", actor="test")
    with TestClient(create_app(Settings(database_url=trial.url))) as client:
        as_gol = {"Authorization": f"Bearer {gol}"}
        assert client.get(f"/api/v1/pharmacy/{code}", headers=as_gol).status_code == 404
        refused = client.post(f"/api/v1/pharmacy/{code}/preparation", json={"values": values}, headers=as_gol)
        assert refused.status_code == 404 and not _prepared(trial, code)
        as_raz = {"Authorization": f"Bearer {raz}"}
        shown = client.get(f"/api/v1/pharmacy/{code}", headers=as_raz)
        assert shown.status_code == 200 and shown.json()["preparation_code"] == code
        done = client.post(f"/api/v1/pharmacy/{code}/preparation", json={"values": values}, headers=as_raz)
        assert done.status_code == 201 and _prepared(trial, code)


def test_the_command_line_gives_a_pharmacist_no_export_and_no_audit_trail(trial: Trial, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _raz_code(trial)
    runner = CliRunner()
    for args in (["export", "csv", "--out", str(tmp_path / "out")], ["audit", "show"]):
        result = runner.invoke(cli, [*args, "--as", GOL_PHARMACIST, "--database", trial.url])
        assert result.exit_code == 4, result.output  # a role that may not (docs/cli.md, "Exit codes")
        assert "role: only the data manager" in result.output or "the audit trail is for" in result.output
    assert not (tmp_path / "out").exists()
