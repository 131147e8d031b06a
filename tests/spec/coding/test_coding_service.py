"""Coding adverse events (both databases): the coder codes an event's reported term to a current LLT, and the
coding holds the LLT's PT and its primary HLT, HLGT and SOC (from mdhier.asc's primary flag, not the first path
listed), with the release's version, the coder and the time; recoding needs a reason and is audited with the old
and the new coding; a follow-up that changes the term puts the event back on the coder's list; the coder asks the
site through a query; nothing the coder reads names an arm."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from tests.spec.coding.fictional_meddra import write_release
from tests.spec.forms.conftest import NOW
from tests.spec.safety.test_safety_service import ARM_WORDS, sae
from tests.trialfixtures import Trial, username, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.coding import CodingError, code_event, load_meddra, query_event, to_code
from trialwright.services.forms import answer_query, close_query, list_queries
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.safety import follow_up, report_event

ZORBIC_PATH = {
    "llt_code": 90000011, "llt_name": "Acute zorbic kidney",
    "pt_code": 90000001, "pt_name": "Zorbic kidney injury",
    "hlt_code": 90300001, "hlt_name": "Fictional acute renal conditions",
    "hlgt_code": 90200001, "hlgt_name": "Fictional renal failures",
    "soc_code": 90100001, "soc_name": "Fictional kidney disorders",
}  # fmt: skip


@pytest.fixture
def event(trial: Trial, pid: str, tmp_path: Path) -> str:
    """A randomized participant's adverse event "Acute kidney injury", and the fictional release loaded."""
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    load_meddra(trial.engine, who(trial, Role.CODER), write_release(tmp_path / "MedAscii"), "27.1")
    return report_event(trial.engine, who(trial, Role.INVESTIGATOR), pid, sae()).ae_number


def test_an_event_is_coded_along_the_primary_path_with_version_coder_and_time(trial: Trial, event: str) -> None:
    coder = who(trial, Role.CODER)
    assert [i.ae_number for i in to_code(trial.engine, coder)] == [event]
    before = dt.datetime.now(dt.UTC)
    item = code_event(trial.engine, coder, event, 90000011)
    after = dt.datetime.now(dt.UTC)
    coding = item.coding
    assert coding is not None
    assert {k: v for k, v in dataclasses.asdict(coding).items() if k in ZORBIC_PATH} == ZORBIC_PATH
    assert (coding.dictionary, coding.version, coding.verbatim) == ("MedDRA", "27.1", "Acute kidney injury")
    assert coding.coded_by == username(Role.CODER) and before <= coding.coded_at <= after  # when it was coded
    assert to_code(trial.engine, coder) == []
    (entry,) = audit.entries(trial.engine, action_prefix="ae.coded")
    assert (entry.actor, entry.participant, entry.form) == (username(Role.CODER), item.participant_id,
                                                            f"adverse_event:{event}")  # fmt: skip
    assert json.loads(entry.new_value or "")["soc_name"] == "Fictional kidney disorders"


def test_a_non_current_or_unknown_llt_is_refused(trial: Trial, event: str) -> None:
    coder = who(trial, Role.CODER)
    with pytest.raises(CodingError, match=r"llt: 90000012 \(Zorbic renal lesion\) is not current in MedDRA 27.1"):
        code_event(trial.engine, coder, event, 90000012)
    with pytest.raises(CodingError, match=r"llt: 90300001 is not an LLT of MedDRA 27\.1"):
        code_event(trial.engine, coder, event, 90300001)


def test_recoding_needs_a_reason_and_is_audited_with_old_and_new(trial: Trial, event: str) -> None:
    coder = who(trial, Role.CODER)
    code_event(trial.engine, coder, event, 90000011)
    with pytest.raises(CodingError, match=r"reason: AE-0001 is coded already \(to Acute zorbic kidney\); recoding"):
        code_event(trial.engine, coder, event, 90000021)
    with pytest.raises(CodingError, match="llt: AE-0001 is coded to Acute zorbic kidney already"):
        code_event(trial.engine, coder, event, 90000011, reason="same again")
    item = code_event(trial.engine, coder, event, 90000021, reason="site clarified: a raised creatinine")
    assert item.coding is not None and (item.coding.pt_name, item.coding.soc_code) == (
        "Blorp creatinine raised", 90100002)
    (entry,) = audit.entries(trial.engine, action_prefix="ae.recoded")
    assert entry.reason == "site clarified: a raised creatinine"
    assert json.loads(entry.old_value or "")["llt_code"] == 90000011
    assert json.loads(entry.new_value or "")["llt_code"] == 90000021


def test_a_changed_term_puts_the_event_back_on_the_list(trial: Trial, event: str) -> None:
    coder = who(trial, Role.CODER)
    code_event(trial.engine, coder, event, 90000011)
    follow_up(trial.engine, who(trial, Role.INVESTIGATOR), event,
              {"term": "Blorp creatinine high", "aware_at": NOW.isoformat()}, "lab review")  # fmt: skip
    (item,) = to_code(trial.engine, coder)
    assert item.stale and item.term == "Blorp creatinine high"
    assert item.coding is not None and item.coding.verbatim == "Acute kidney injury"
    recoded = code_event(trial.engine, coder, event, 90000021, reason="the site changed the term")
    assert recoded.coded and to_code(trial.engine, coder) == []


def test_the_coder_asks_the_site_and_the_site_answers(trial: Trial, event: str) -> None:
    coder = who(trial, Role.CODER)
    query_id = query_event(trial.engine, coder, event, "Kidney injury or a raised creatinine only?")
    investigator = who(trial, Role.INVESTIGATOR)
    (query,) = list_queries(trial.engine, investigator)
    assert query.id == query_id and query.text == "AE-0001 (coding): Kidney injury or a raised creatinine only?"
    answer_query(trial.engine, investigator, query_id, "Raised creatinine only")
    assert close_query(trial.engine, coder, query_id, "recoded").status == "closed"
    (raised,) = audit.entries(trial.engine, action_prefix="query.raised")
    assert raised.actor == username(Role.CODER)


@pytest.mark.parametrize("role", [Role.INVESTIGATOR, Role.DATA_MANAGER, Role.MONITOR])
def test_only_the_coder_codes(trial: Trial, event: str, role: Role) -> None:
    article = "an" if role.value[0] in "aeiou" else "a"  # "an investigator", "a monitor"
    with pytest.raises(CodingError, match=f"role: {article} {role.value} may not code adverse events"):
        code_event(trial.engine, who(trial, role), event, 90000011)
    with pytest.raises(CodingError, match=f"role: {article} {role.value} may not ask about adverse events"):
        query_event(trial.engine, who(trial, role), event, "?")


def test_what_the_coder_reads_names_no_arm(trial: Trial, event: str) -> None:
    coder = who(trial, Role.CODER)
    before = repr(to_code(trial.engine, coder))
    after = repr(code_event(trial.engine, coder, event, 90000011))
    for word in ARM_WORDS:
        assert word not in before and word not in after


def test_the_coder_works_from_the_command_line(trial: Trial, event: str) -> None:
    from typer.testing import CliRunner

    from trialwright.cli.main import app as cli

    runner = CliRunner()
    db = ["--database", trial.url, "--as", username(Role.CODER)]
    listed = runner.invoke(cli, ["coding", "list", *db])
    assert listed.exit_code == 0 and f"{event}" in listed.output and "not coded" in listed.output
    found = runner.invoke(cli, ["coding", "search", "acute zorbic", *db])
    assert "90000011  Acute zorbic kidney  (PT 90000001 Zorbic kidney injury; SOC Fictional kidney disorders)" in (
        found.output
    )
    coded = runner.invoke(cli, ["coding", "code", event, "--llt", "90000011", *db])
    assert coded.exit_code == 0, coded.output
    assert "Acute zorbic kidney -> PT Zorbic kidney injury -> SOC Fictional kidney disorders (MedDRA 27.1)" in (
        coded.output
    )
    again = runner.invoke(cli, ["coding", "code", event, "--llt", "90000021", *db])
    assert again.exit_code == 1 and "recoding needs a reason" in again.output
    asked = runner.invoke(cli, ["coding", "query", event, "--text", "Which test?", *db])
    assert asked.exit_code == 0 and "raised" in asked.output
    (query,) = list_queries(trial.engine, who(trial, Role.DATA_MANAGER))
    early = runner.invoke(cli, ["coding", "queries", event, *db])
    assert early.exit_code == 0 and f"{query.id}  open  {event} (coding): Which test?" in early.output
    answer_query(trial.engine, who(trial, Role.INVESTIGATOR), query.id, "Serum creatinine")
    listed = runner.invoke(cli, ["coding", "queries", event, *db])
    assert "answered" in listed.output and "answer: Serum creatinine (investigator)" in listed.output
    closed = runner.invoke(cli, ["coding", "close-query", event, str(query.id), "--note", "clear now", *db])
    assert closed.exit_code == 0 and f"Query {query.id} closed." in closed.output, closed.output
    assert list_queries(trial.engine, who(trial, Role.DATA_MANAGER))[0].close_note == "clear now"
    twice = runner.invoke(cli, ["coding", "close-query", event, str(query.id), *db])
    assert twice.exit_code != 0 and "closed already" in twice.output
    refused = runner.invoke(cli, ["coding", "code", event, "--llt", "90000011", "--database", trial.url,
                                  "--as", username(Role.MONITOR)])  # fmt: skip
    # 4: a role that may not (the CLI's exit-code table, docs/cli.md)
    assert refused.exit_code == 4 and "role: a monitor may not code adverse events" in refused.output
