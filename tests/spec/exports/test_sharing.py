"""The de-identified IPD is issued only as the sharing plan says: after a publication and its delay, from the
locked database, against an approved written request, by the unblinded statistician, when the k-anonymity
check passes; the package holds no direct identifier, no free text, no calendar date and no site, and
issuing it is audited with the SHA-256 of every file. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.spec.coding.fictional_meddra import write_release
from tests.trialfixtures import FIRST_PROTOCOL, PASSWORD, Trial, make_trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services import audit
from trialwright.services.coding import code_event, load_meddra, to_code
from trialwright.services.exports import ExportError, run_export
from trialwright.services.forms import lock_trial, unlock_trial
from trialwright.services.sharing import (
    SharingError,
    access_window_opens,
    check_kanonymity,
    decide_request,
    issue_ipd,
    list_requests,
    record_publication,
    record_request,
)
from trialwright.services.simulation import simulate

REASONS = "We pool the pilot trials of exosomes in ARDS for an individual participant data meta-analysis."


#: The first protocol with sex alone as quasi-identifier: a small simulated trial passes k=3 with it.
SMALL_TRIAL = FIRST_PROTOCOL.read_text(encoding="utf-8").replace(
    "quasi_identifiers: [demographics.sex, age]", "quasi_identifiers: [demographics.sex]"
)


@pytest.fixture(scope="module")
def trial(module_database_url: str) -> Iterator[Trial]:
    assert "quasi_identifiers: [demographics.sex]\n" in SMALL_TRIAL
    t = make_trial(module_database_url, load_protocol_text(SMALL_TRIAL))
    simulate(t.engine, FIRST_PROTOCOL, 26, seed=21)
    yield t
    t.engine.dispose()


def _request(trial: Trial) -> str:
    r = record_request(trial.engine, who(trial, Role.DATA_MANAGER), requester="A. Researcher", organisation="Uni",
                       email="a@uni.org", purpose="IPD meta-analysis", reasons=REASONS,
                       received_on=dt.date(2026, 1, 5))  # fmt: skip
    return r.number


def test_the_package_waits_for_publication_lock_approval_and_the_right_person(trial: Trial, tmp_path: Path) -> None:
    statistician = who(trial, Role.UNBLINDED_STATISTICIAN)
    number = _request(trial)
    with pytest.raises(SharingError, match="publication: no publication is recorded"):
        issue_ipd(trial.engine, statistician, number, tmp_path / "p1")
    citation = "Khedri R, et al. Exosomes in COVID-19 ARDS: a pilot trial. Trials. 2022;23:101."
    opens = record_publication(trial.engine, who(trial, Role.DATA_MANAGER), citation, dt.date(2022, 1, 10))
    assert opens == dt.date(2022, 7, 10)
    assert access_window_opens(trial.engine) == dt.date(2022, 7, 10)  # six months, as the sharing plan says
    with pytest.raises(SharingError, match="database: the IPD is issued from the locked database only"):
        issue_ipd(trial.engine, statistician, number, tmp_path / "p2")
    # One adverse event coded (the fictional MedDRA release), the others not yet: the package shows each by its coding.
    load_meddra(trial.engine, who(trial, Role.CODER), write_release(tmp_path / "MedAscii"), "27.1")
    coded = to_code(trial.engine, who(trial, Role.CODER))[0].ae_number
    code_event(trial.engine, who(trial, Role.CODER), coded, 90000011)
    lock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "final analysis", password=PASSWORD)
    try:
        with pytest.raises(SharingError, match=f"request: {number} is pending"):
            issue_ipd(trial.engine, statistician, number, tmp_path / "p3")
        with pytest.raises(SharingError, match="password: re-enter your own password"):
            decide_request(trial.engine, who(trial, Role.ADMINISTRATOR), number, approve=True, reason="ok",
                           password="wrong")  # fmt: skip
        with pytest.raises(SharingError, match="role: only"):
            decide_request(trial.engine, who(trial, Role.DATA_MANAGER), number, approve=True, reason="ok",
                           password=PASSWORD)  # fmt: skip
        decided = decide_request(trial.engine, who(trial, Role.ADMINISTRATOR), number, approve=True,
                                 reason="Meets the sharing plan's criteria", password=PASSWORD)  # fmt: skip
        assert (decided.status, decided.decided_by) == ("approved", "administrator")
        with pytest.raises(SharingError, match="role: only"):
            issue_ipd(trial.engine, who(trial, Role.DATA_MANAGER), number, tmp_path / "p4")
        assert not any((tmp_path / f"p{i}").exists() for i in range(1, 5))  # nothing written on any refusal
        check = check_kanonymity(trial.engine, who(trial, Role.DATA_MANAGER))
        assert check.passes, check.summary()
        issued = issue_ipd(trial.engine, statistician, number, tmp_path / "ipd")
        with pytest.raises(SharingError, match=f"request: {number} is issued"):  # once, not twice
            issue_ipd(trial.engine, statistician, number, tmp_path / "again")
    finally:
        unlock_trial(trial.engine, who(trial, Role.DATA_MANAGER), "the module's other specs go on")
    assert issued.status == "issued" and issued.package is not None
    folder = tmp_path / "ipd"
    # Every file issued is recorded with its SHA-256, in the register and in the audit trail.
    for name, digest in issued.package.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    (entry,) = audit.entries(trial.engine, action_prefix="sharing.ipd_issued")
    assert json.loads(entry.detail or "{}")["files"] == issued.package
    assert [r.status for r in list_requests(trial.engine, who(trial, Role.DATA_MANAGER))] == ["issued"]
    _check_deidentified(trial, folder)
    _check_event_terms(trial, folder)


def _check_event_terms(trial: Trial, folder: Path) -> None:
    """An adverse event's reported term is free text (a person may write a name or a place in it): the package
    holds its MedDRA coding instead, empty while it is not coded, and says how many are not."""
    with trial.engine.connect() as c:
        terms = {json.loads(a)["term"] for (a,) in c.execute(text("SELECT assessment FROM ae_reports"))}
    assert terms  # the simulated trial has adverse events
    package = "\n".join(p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.is_file())
    assert [t for t in terms if t in package] == []
    events = list(csv.DictReader((folder / "adverse_events.csv").open(encoding="utf-8")))
    assert "term" not in events[0]
    named = [e for e in events if e["pt_name"]]
    assert [(e["pt_code"], e["pt_name"], e["soc_name"], e["meddra_version"]) for e in named] == [
        ("90000001", "Zorbic kidney injury", "Fictional kidney disorders", "27.1")
    ]
    assert all(not (e["pt_code"] or e["soc_code"] or e["meddra_version"]) for e in events if not e["pt_name"])
    report = json.loads((folder / "deidentification.json").read_text())
    assert report["adverse_events_not_coded"] == len(events) - 1
    assert any(r.startswith("adverse_events.term") for r in report["removed"])
    assert f"{len(events) - 1} not coded yet" in (folder / "README.txt").read_text(encoding="utf-8")


def _check_deidentified(trial: Trial, folder: Path) -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in folder.rglob("*") if p.is_file())
    assert not re.search(r"\b(RAZ|GOL)\b", text)  # no site code, so no participant id either
    demographics = list(csv.DictReader((folder / "forms" / "demographics.csv").open(encoding="utf-8")))
    assert demographics and "birth_date" not in demographics[0]  # the direct identifier is gone
    assert {row["age_at_enrolment"] for row in demographics} <= {"0-19", "20-39", "40-59", "60-79", "80-89", "90+"}
    assert all(row["enrolled_on"].lstrip("-").isdigit() for row in demographics)  # a study day, not a date
    for path in (folder / "forms").glob("*.csv"):
        assert not re.search(r"\b20\d\d-\d\d-\d\d", path.read_text(encoding="utf-8")), path.name  # no dates
    labs = list(csv.DictReader((folder / "forms" / "labs.csv").open(encoding="utf-8")))
    assert labs and "tnf_alpha_kit" not in labs[0]  # free text dropped
    participants = list(csv.DictReader((folder / "participants.csv").open(encoding="utf-8")))
    assert sorted(p["ipd_id"] for p in participants) == [f"IPD-{i:03d}" for i in range(1, len(participants) + 1)]
    assert all(p["arm"] in {"EXO", "PBO"} for p in participants)  # issued by the unblinded statistician
    dictionary = {(r["file"], r["variable"]) for r in csv.DictReader((folder / "data_dictionary.csv").open())}
    assert ("forms/labs.csv", "crp") in dictionary and ("participants.csv", "ipd_id") in dictionary
    report = json.loads((folder / "deidentification.json").read_text())
    assert report["kanonymity"]["passes"] and "demographics.birth_date" in report["removed"]
    # The log forms are not shared, and the package says so (never left out unsaid).
    assert {"logs/conmeds (every entry)", "logs/medical_history (every entry)"} <= set(report["removed"])


def test_a_package_failing_k_anonymity_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    text = FIRST_PROTOCOL.read_text(encoding="utf-8").replace("  k: 3\n", "  k: 500\n")
    t = make_trial(f"sqlite:///{tmp_path / 'k.db'}", load_protocol_text(text))
    simulate(t.engine, FIRST_PROTOCOL, 8, seed=2)
    check = check_kanonymity(t.engine, who(t, Role.DATA_MANAGER))
    assert not check.passes and check.smallest < 500 and "FAILS" in check.summary()
    record_publication(t.engine, who(t, Role.DATA_MANAGER), "A. Author. A title. A journal. 2022;1:1.",
                       dt.date(2022, 1, 1))  # fmt: skip
    number = _request(t)
    decide_request(t.engine, who(t, Role.ADMINISTRATOR), number, approve=True, reason="fine", password=PASSWORD)
    lock_trial(t.engine, who(t, Role.DATA_MANAGER), "final", password=PASSWORD)
    with pytest.raises(SharingError, match=r"k-anonymity: .* smallest group \d+ .*k=500 FAILS"):
        issue_ipd(t.engine, who(t, Role.UNBLINDED_STATISTICIAN), number, tmp_path / "ipd")
    assert not (tmp_path / "ipd").exists() and not (tmp_path / "ipd.partial").exists()
    # The request is approved again, and both status changes are in the audit trail with the reason.
    assert [r.status for r in list_requests(t.engine, who(t, Role.DATA_MANAGER))] == ["approved"]
    actions = [e.action for e in reversed(audit.entries(t.engine, action_prefix="sharing.ipd"))]
    assert actions == ["sharing.ipd_issuing", "sharing.ipd_not_issued"]
    (failed,) = audit.entries(t.engine, action_prefix="sharing.ipd_not_issued")
    assert "k-anonymity" in (failed.reason or "")


def test_the_ipd_is_not_an_ordinary_export(trial: Trial, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="format: the IPD is issued only against an approved data access request"):
        run_export(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), "ipd", tmp_path / "x", with_arms=True)


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("reasons", "because", "reasons: the written request must give the reasons"),
        ("email", "nobody", "email: must be an e-mail address"),
        ("requester", " ", "requester: required"),
    ],
)
def test_a_request_needs_its_written_reasons_and_a_way_to_answer(
    trial: Trial, field: str, value: str, rule: str
) -> None:
    fields = {"requester": "A", "organisation": "B", "email": "a@b.org", "purpose": "p", "reasons": REASONS}
    with pytest.raises(SharingError, match=re.escape(rule)):
        record_request(trial.engine, who(trial, Role.DATA_MANAGER), **{**fields, field: value},
                       received_on=dt.date(2026, 1, 1))  # fmt: skip
