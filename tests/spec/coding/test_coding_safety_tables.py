"""The safety tables by MedDRA SOC and PT (both databases): once the coder codes adverse events, the pooled table
of the team and the table by arm of the DSMB give, for each primary SOC and each PT under it, the randomized
participants with at least one such event, n (%), and the events; the events not coded yet (or coded for a term
reported differently since) are their own line "Not yet coded", never dropped and never guessed. Checked against
an independent count: pandas over the CSV export's adverse events and participants."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.spec.coding.fictional_meddra import write_release
from tests.spec.forms.conftest import NOW, enrolled_ten_days_ago
from tests.spec.safety.test_safety_service import ARM_WORDS, sae
from tests.spec.web.conftest import sign_in
from tests.trialfixtures import Trial, first_protocol, who
from trialwright.domain.coding import NOT_CODED
from trialwright.domain.roles import Role
from trialwright.services.coding import code_event, load_meddra
from trialwright.services.exports import run_export
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.safety import SafetyTables, follow_up, report_event, safety_tables
from trialwright.settings import Settings
from trialwright.web.app import create_app

ZORBIC, BLORP = "Zorbic kidney injury", "Blorp creatinine raised"
KIDNEY, INVESTIGATIONS = "Fictional kidney disorders", "Fictional investigations"

#: Each participant's events: (reported term, the LLT the coder codes it to, or None: left uncoded).
EVENTS: dict[str, list[tuple[str, int | None]]] = {
    "p1": [("Acute kidney injury", 90000011), ("Kidney injury", 90000001), ("Creatinine up", 90000021)],
    "p2": [("Creatinine raised", 90000002), ("Blorp fever", None)],
    "p3": [("Renal lesion", 90000011)],  # recoded below: the term changes by a follow-up, so it is to code again
    "p4": [],
}


@pytest.fixture
def coded(trial: Trial, tmp_path: Path) -> dict[str, str]:
    """Four randomized participants and one not randomized (with a coded event, never tabulated), the events of
    ``EVENTS`` reported and coded, and p3's term changed after coding."""
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=11)
    load_meddra(trial.engine, who(trial, Role.CODER), write_release(tmp_path / "MedAscii"), "27.1")
    investigator, coder = who(trial, Role.INVESTIGATOR), who(trial, Role.CODER)
    pids = {name: enrolled_ten_days_ago(trial) for name in EVENTS}
    for pid in pids.values():  # all before the first SAE (the protocol's safety pause holds randomization after)
        randomize(trial.engine, investigator, pid)
    for name, events in EVENTS.items():
        for term, llt in events:
            ae = report_event(trial.engine, investigator, pids[name], sae(term=term)).ae_number
            if llt is not None:
                code_event(trial.engine, coder, ae, llt)
            if name == "p3":
                changed = {"term": "Renal infarct", "aware_at": NOW.isoformat()}
                follow_up(trial.engine, investigator, ae, changed, "the diagnosis changed")
    outsider = pids["p5"] = enrolled_ten_days_ago(trial)
    code_event(trial.engine, coder, report_event(trial.engine, investigator, outsider, sae()).ae_number, 90000011)
    return pids


def _independent(trial: Trial, tmp_path: Path, with_arms: bool) -> tuple[dict[tuple[str, str], dict], dict]:
    """From the CSV export alone: per (group, line) participants and events, and per group the denominator."""
    actor = who(trial, Role.UNBLINDED_STATISTICIAN if with_arms else Role.DATA_MANAGER)
    out = tmp_path / ("arms" if with_arms else "pooled")
    run_export(trial.engine, actor, "csv", out, with_arms=with_arms)
    people = pd.read_csv(out / "participants.csv", dtype=str, keep_default_na=False)
    people = people[people["randomization_number"] != ""]
    people["group"] = people["arm"] if with_arms else "All participants"
    events = pd.read_csv(out / "adverse_events.csv", dtype=str, keep_default_na=False)
    events = events.merge(people[["participant_id", "group"]], on="participant_id")  # randomized only
    uncoded = events["pt_name"] == ""
    lines = pd.concat(
        [
            events[~uncoded].assign(line=events["soc_name"]),
            events[~uncoded].assign(line=events["soc_name"] + " / " + events["pt_name"]),
            events[uncoded].assign(line=NOT_CODED),
        ]
    )
    counted = lines.groupby(["group", "line"]).agg(n=("participant_id", "nunique"), events=("ae_number", "size"))
    return counted.to_dict("index"), people.groupby("group").size().to_dict()


def _ours(tables: SafetyTables, names: dict[str, str]) -> tuple[dict[tuple[str, str], dict], dict]:
    mine = {}
    for t in tables.terms:
        line = f"{t.soc} / {t.pt}" if t.pt else t.soc or NOT_CODED
        for g in tables.groups:
            if t.participants[g] or t.events[g]:
                mine[(names[g], line)] = {"n": t.participants[g], "events": t.events[g]}
    totals = {names[g]: n for g, n in tables.terms[0].totals.items()}
    return mine, totals


def test_the_team_s_pooled_table_counts_participants_and_events_by_soc_and_pt(
    trial: Trial, coded: dict[str, str], tmp_path: Path
) -> None:
    team = safety_tables(trial.engine, who(trial, Role.INVESTIGATOR))
    assert team.grouping == "pooled"
    shown = [(t.level, t.label, t.cell("All participants")) for t in team.terms]
    assert shown == [
        ("soc", INVESTIGATIONS, "2 (50%) [2]"),
        ("pt", BLORP, "2 (50%) [2]"),
        ("soc", KIDNEY, "1 (25%) [2]"),
        ("pt", ZORBIC, "1 (25%) [2]"),
        ("not_coded", NOT_CODED, "2 (50%) [2]"),
    ]
    assert _ours(team, {"All participants": "All participants"}) == _independent(trial, tmp_path, with_arms=False)


def test_the_dsmb_table_by_arm_matches_an_independent_count_and_the_team_never_sees_an_arm(
    trial: Trial, coded: dict[str, str], tmp_path: Path
) -> None:
    dsmb = safety_tables(trial.engine, who(trial, Role.DSMB_MEMBER))
    assert dsmb.grouping == "by_arm"
    codes = {a.name: a.code for a in first_protocol().protocol.arms}
    assert _ours(dsmb, codes) == _independent(trial, tmp_path, with_arms=True)
    for role in (Role.INVESTIGATOR, Role.MONITOR, Role.DATA_MANAGER, Role.BLINDED_STATISTICIAN):
        team = safety_tables(trial.engine, who(trial, role))
        assert team.groups == ("All participants",) and not any(w in str(team.terms) for w in ARM_WORDS)


def test_the_safety_and_dsmb_pages_show_the_soc_and_pt_lines(trial: Trial, coded: dict[str, str]) -> None:
    app = create_app(Settings(database_url=trial.url))
    with TestClient(app, follow_redirects=False) as team:
        page = sign_in(team, Role.INVESTIGATOR).get("/safety").text
    table = page[page.index('data-testid="safety-terms"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r'<tr data-level="(\w+)"><th scope="row">(.*?)</th><td>(.*?)</td></tr>', table)
    assert rows == [
        ("soc", f"<strong>{INVESTIGATIONS}</strong>", "2 (50%) [2]"),
        ("pt", f"&emsp;{BLORP}", "2 (50%) [2]"),
        ("soc", f"<strong>{KIDNEY}</strong>", "1 (25%) [2]"),
        ("pt", f"&emsp;{ZORBIC}", "1 (25%) [2]"),
        ("not_coded", NOT_CODED, "2 (50%) [2]"),
    ]
    with TestClient(app, follow_redirects=False) as dsmb:
        closed = sign_in(dsmb, Role.DSMB_MEMBER).get("/dsmb").text
    by_arm = closed[closed.index('data-testid="safety-terms"') :]
    assert all(a.name in by_arm[: by_arm.index("</table>")] for a in first_protocol().protocol.arms)
