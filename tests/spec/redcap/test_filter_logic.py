"""``filterLogic`` on a records export, as REDCap evaluates it: PyCap's ``export_records(filter_logic=...)``.

REDCap's API documentation: the API returns "only the records (or record-events, if a longitudinal project) where
the logic evaluates as TRUE". The project is longitudinal (visits are events), so a row (a participant at an
event) is kept when the logic is true at that event; ``[event][field]`` reads the field at the named event of the
same record. Every construct whose meaning is not exact here is refused, naming it, and a name the caller may not
read (an arm) is answered exactly as a name that does not exist.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests
from redcap import Project, RedcapError

from tests.spec.forms.conftest import TODAY, enrolled_ten_days_ago
from tests.spec.redcap.test_redcap_api import _post, _with_checkbox, served, token
from tests.spec.web.test_blinded_crawl import ARM_SECRETS, _leaks
from tests.trialfixtures import Trial, make_trial
from trialwright.domain.redcap_logic import filter_logic
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol

AT = f"{TODAY.isoformat()}T00:00+03:30"

#: What each participant's vitals hold, per event (the blanks are never sent).
DATA = {
    "p1": {"baseline_arm_1": {"vitals_spo2": "90", "vitals_pulse": "115", "vitals_signs___a": "1"},
           "day1_arm_1": {"vitals_spo2": "96", "vitals_pulse": "100"}},
    "p2": {"baseline_arm_1": {"vitals_spo2": "97", "vitals_pulse": "80"},
           "day1_arm_1": {"vitals_spo2": "88", "vitals_pulse": "120", "vitals_signs___b": "1"}},
    "p3": {"baseline_arm_1": {"vitals_spo2": "95"}},
}  # fmt: skip


@dataclass(frozen=True)
class Served:
    url: str
    ids: dict[str, str]  # participant id by its name in DATA
    tokens: dict[Role, str]


@pytest.fixture(scope="module")
def project(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The served trial (with a checkbox on vitals), its three participants' vitals imported through PyCap."""
    protocol = load_protocol(_with_checkbox(tmp_path_factory.mktemp("p") / "checkbox.yaml"))
    trial: Trial = make_trial(module_database_url, protocol)
    try:
        ids = {name: enrolled_ten_days_ago(trial) for name in DATA}
        roles = (Role.STUDY_COORDINATOR, Role.MONITOR, Role.INVESTIGATOR, Role.DATA_MANAGER)
        tokens = {role: token(trial, role) for role in roles}
        with served(trial) as url:
            coordinator = Project(url, tokens[Role.STUDY_COORDINATOR])
            rows = [{"participant_id": ids[name], "redcap_event_name": event, "vitals_assessed_at": AT, **values}
                    for name, events in DATA.items() for event, values in events.items()]  # fmt: skip
            assert coordinator.import_records(rows) == {"count": 3}
            yield Served(url, ids, tokens)
    finally:
        trial.engine.dispose()


def _kept(p: Served, logic: str, role: Role = Role.STUDY_COORDINATOR, **kw: Any) -> list[tuple[str, str]]:
    rows = Project(p.url, p.tokens[role]).export_records(filter_logic=logic, **kw)
    return [(r["participant_id"], r["redcap_event_name"]) for r in rows]


def _expected(
    ids: dict[str, str], holds: Callable[[dict[str, str], dict[str, dict[str, str]]], bool]
) -> list[tuple[str, str]]:
    """The rows (participant, event) in export order for which ``holds(values of the event, record)`` is true,
    computed from DATA (not by the endpoint's evaluator)."""
    order = ["baseline_arm_1", "day1_arm_1"]
    out = []
    for name in sorted(DATA, key=lambda n: ids[n]):
        for event in order:
            if event in DATA[name] and holds(DATA[name][event], DATA[name]):
                out.append((ids[name], event))
    return out


def test_filter_logic_keeps_the_record_events_where_it_is_true(project: Served) -> None:
    ids = project.ids
    spo2 = lambda v: int(v["vitals_spo2"])  # noqa: E731
    # A plain variable is read at the row's own event.
    assert _kept(project, "[vitals_spo2] < 92") == _expected(ids, lambda v, r: spo2(v) < 92)
    # Numbers compare as numbers even when quoted ('100' is the number 100, so 90 < 100; as text "90" > "100").
    assert _kept(project, "[vitals_spo2] < '100'") == _expected(ids, lambda v, r: True)
    # A blank equals '' only: p3's pulse was never sent; a blank is neither above nor below a number.
    assert _kept(project, "[vitals_pulse] = ''") == [(ids["p3"], "baseline_arm_1")]
    assert _kept(project, "[vitals_pulse] < 1000") == _expected(ids, lambda v, r: "vitals_pulse" in v)
    assert _kept(project, "[vitals_pulse] <> 80") == _expected(ids, lambda v, r: v.get("vitals_pulse") != "80")
    # An event prefix pins the event: every row of a record whose baseline SpO2 was below 92.
    pinned = _expected(ids, lambda v, r: spo2(r["baseline_arm_1"]) < 92)
    assert _kept(project, "[baseline_arm_1][vitals_spo2] < 92") == pinned
    assert len(pinned) == 2  # p1 at baseline and at day 1
    # A checkbox choice, and / or / parentheses, and text compared with text.
    ticked = "[vitals_signs(a)] = '1' or ([vitals_signs(b)] = \"1\" and [vitals_pulse] >= 120)"
    assert _kept(project, ticked) == [(ids["p1"], "baseline_arm_1"), (ids["p2"], "day1_arm_1")]
    assert _kept(project, f"[participant_id] = '{ids['p2']}' AND [vitals_spo2] > 90") == [(ids["p2"], "baseline_arm_1")]
    # The logic reads fields the export does not return; the other parameters then choose rows and columns.
    only = Project(project.url, project.tokens[Role.STUDY_COORDINATOR]).export_records(
        fields=["vitals_pulse"], events=["day1_arm_1"], filter_logic="[baseline_arm_1][vitals_spo2] < 92"
    )
    assert only == [{"participant_id": ids["p1"], "redcap_event_name": "day1_arm_1", "vitals_pulse": "100",
                     "vitals_complete": "0"}]  # fmt: skip
    eav = Project(project.url, project.tokens[Role.STUDY_COORDINATOR]).export_records(
        record_type="eav", fields=["vitals_spo2"], filter_logic="[vitals_spo2] > 96"
    )
    assert [(r["record"], r["redcap_event_name"], r["value"]) for r in eav if r["field_name"] == "vitals_spo2"] == [
        (ids["p2"], "baseline_arm_1", "97")
    ]
    # The monitor (blinded, same site) gets the same rows.
    assert _kept(project, "[vitals_spo2] < 92", Role.MONITOR) == _expected(ids, lambda v, r: spo2(v) < 92)


@pytest.mark.parametrize(
    ("logic", "said"),
    [
        ("datediff([vitals_assessed_at], 'today', 'd') > 1", "filterLogic: the function datediff() is not supported"),
        ("if([vitals_spo2] > 90, 1, 0) = 1", "filterLogic: the function if() is not supported"),
        ("[record-name] = '1'", "filterLogic: [record-name] (a smart variable) is not supported"),
        ("[vitals_spo2] + 1 > 90", "filterLogic: arithmetic '+' is not supported (comparisons joined by and/or only)"),
        ("[vitals_signs] = '1'", "filterLogic: [vitals_signs] is a checkbox: name its choice, [vitals_signs(code)]"),
        ("[week9_arm_1][vitals_spo2] = 1", "filterLogic: [week9_arm_1] is not an event of this project"),
        ("[vitals_spo2]", "filterLogic: a comparison (= != <> < <= > >=) is needed after [vitals_spo2]"),
        ("([vitals_spo2] > 1", "filterLogic: a parenthesis is not closed"),
    ],
)
def test_a_construct_without_an_exact_meaning_is_refused_naming_it(project: Served, logic: str, said: str) -> None:
    with pytest.raises(RedcapError) as refused:
        Project(project.url, project.tokens[Role.STUDY_COORDINATOR]).export_records(filter_logic=logic)
    assert refused.value.args[0]["error"] == said


def test_a_blinded_caller_cannot_filter_on_an_arm(project: Served) -> None:
    url = project.url
    for role in (Role.MONITOR, Role.INVESTIGATOR, Role.DATA_MANAGER):
        value = project.tokens[role]
        answers = {}
        for name in ("randomization_arm", "arm", "no_such_field"):
            answer = _post(url, token=value, content="record", format="json", filterLogic=f"[{name}] = 'EXO'")
            assert answer.status_code == 400
            answers[name] = answer.json()["error"]
            assert not _leaks(answer.text.replace("'EXO'", ""), ARM_SECRETS)
        # The same answer as for a name that does not exist: nothing tells the arm field is there.
        assert {n: a.replace(n, "NAME") for n, a in answers.items()} == dict.fromkeys(
            answers, "filterLogic: [NAME] is not a field of this project"
        )
    # An import takes no filter.
    refused = _post(url, token=project.tokens[Role.STUDY_COORDINATOR], content="record", format="json",
                    data="[]", filterLogic="[vitals_spo2] > 1")  # fmt: skip
    assert refused.status_code == 400 and refused.json()["error"] == "filterLogic: filters an export, not an import"


def test_export_checkbox_label_writes_a_ticked_box_as_its_choice_label(project: Served) -> None:
    # REDCap's API documentation: with rawOrLabel=label (flat), exportCheckboxLabel=true exports a checked box as
    # the option's label and an unchecked one blank, instead of Checked / Unchecked.
    coordinator = Project(project.url, project.tokens[Role.STUDY_COORDINATOR])
    p1 = project.ids["p1"]
    choices = {"a": "A", "b": "B", "c": "C"}  # _with_checkbox: each choice labelled with its code in capitals
    columns = [f"vitals_signs___{c}" for c in choices]
    (labelled,) = coordinator.export_records(
        records=[p1], events=["baseline_arm_1"], fields=["vitals_signs"], raw_or_label="label",
        export_checkbox_labels=True,
    )  # fmt: skip
    assert [labelled[c] for c in columns] == ["A", "", ""]
    (plain,) = coordinator.export_records(
        records=[p1], events=["baseline_arm_1"], fields=["vitals_signs"], raw_or_label="label"
    )
    assert [plain[c] for c in columns] == ["Checked", "Unchecked", "Unchecked"]
    for odd in ({"rawOrLabel": "raw"}, {"rawOrLabel": "label", "type": "eav"}):
        refused = _post(project.url, token=project.tokens[Role.STUDY_COORDINATOR], content="record", format="json",
                        exportCheckboxLabel="true", **odd)  # fmt: skip
        assert refused.status_code == 400
        assert refused.json()["error"] == "exportCheckboxLabel: true applies to rawOrLabel=label with type=flat only"


@pytest.mark.parametrize(
    ("logic", "kept"),
    [
        ("[x] < 0.001", True),  # 1e-07 is the number the export writes for 0.0000001
        ("[x] = 0.0000001", True),
        ("[code] > 90", False),  # a missing data code has no order against a number
        ("[code] <> 90", True),
        ("[code] = 'ND'", True),
        ("[day] >= '2026-01-31'", True),  # dates order as text
        ("[day] < '2026-01-15'", False),
        ("[blank] = ''", True),
        ("[blank] >= 0", False),
        ("[blank] <= 0", False),
        ("[other_arm_1][x] = ''", True),  # an event the record has no row at reads blank
    ],
)
def test_values_compare_as_redcap_compares_them(logic: str, kept: bool) -> None:
    row = {"x": "1e-07", "code": "ND", "day": "2026-02-01", "blank": ""}
    fields = dict.fromkeys(row)
    parsed = filter_logic(logic, fields, ["visit_arm_1", "other_arm_1"])
    assert parsed.holds({"visit_arm_1": row}, "visit_arm_1") is kept


def test_redcapr_filter_logic_in_its_request_body(project: Served) -> None:
    # REDCapR's redcap_read_oneshot body (tests/spec/redcap/redcapr) with filter_logic given: form-encoded as httr
    # sends it; REDCapR asks for CSV.
    shape = (Path(__file__).parent / "redcapr" / "redcap_read_oneshot.txt").read_text().strip()
    logic = "[vitals_spo2] >= 96 and [vitals_pulse] <> ''"
    body = shape.replace("TOKEN", project.tokens[Role.STUDY_COORDINATOR]).replace("&records=PARTICIPANT", "")
    body = body.replace("filterLogic=&", f"filterLogic={quote_plus(logic)}&")
    answer = requests.post(project.url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"},
                           timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    ids = project.ids
    expected = _expected(ids, lambda v, r: int(v["vitals_spo2"]) >= 96 and "vitals_pulse" in v)
    assert [(r["participant_id"], r["redcap_event_name"]) for r in rows] == expected
    assert sorted(expected) == sorted([(ids["p1"], "day1_arm_1"), (ids["p2"], "baseline_arm_1")])
