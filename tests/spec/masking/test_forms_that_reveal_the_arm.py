"""A form whose values differ by arm (``forms[].reveals_arm``: in WOUND-2 the ward's count of dressing changes) is
kept whole from every role the trial masks, as a preparation's attributes are the unblinded pharmacist's record:
a masked user can neither open nor fill it (a refusal naming the rule), and no read path shows them its values,
its queries, its audit entries or that it was filled at all. ``protocol check`` refuses the declaration where it
is pointless (nothing masked) or unusable (every role that fills forms masked, or every reader of the lock
readiness), and anything masked roles see that reads it (a derived field elsewhere, a data check, an estimand while
the blinded statistician is masked). The lock readiness report keeps it from a masked data manager or monitor:
nothing of it, not even a count of its open items, only that it is withheld and needs an unmasked reviewer.

The first trial's file gains a ward form, ``ward_dressings.dressing_changes``, at the baseline visit. The trial
masks the outcome assessor (WOUND-2's masking); the table spec over every role masks the administrator and the
blinded statistician too. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from tests.spec.forms.conftest import enrolled_ten_days_ago
from tests.spec.protocol.conftest import mutated_text
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import PASSWORD, Trial, make_trial, username, who
from trialwright.cli.main import app as cli
from trialwright.domain.masking import kept_forms, masked_roles, may_see_form
from trialwright.domain.roles import Role
from trialwright.protocol import ProtocolError, load_protocol_text, masking_checks
from trialwright.protocol.masking_checks import DATA_ENTRY_ROLES, masked_role_names
from trialwright.services import analysis, audit, audit_trail, exports, readiness, redcap_export
from trialwright.services import forms as svc
from trialwright.services.errors import AccessDenied
from trialwright.services.forms.common import DATA_ENTRY
from trialwright.services.lock import LockBlocked, lock_trial
from trialwright.services.randomization import generate_list, randomize
from trialwright.services.redcap_export import ExportQuery
from trialwright.services.screening import NotFound
from trialwright.services.users import issue_token
from trialwright.services.worklist import WorkKind, lists_of, status_matrix, work_page
from trialwright.settings import Settings
from trialwright.store.engine import read_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.web.app import create_app

Mutation = Callable[[Any], None]

#: The ward's form: filled by unmasked ward staff, its count differs by arm.
WARD: dict[str, Any] = {
    "id": "ward_dressings",
    "name": "Ward dressings",
    "translations": {"fa": "پانسمان‌های بخش"},
    "reveals_arm": True,
    "fields": [{"id": "dressing_changes", "label": "Number of dressing changes", "type": "integer",
                "hard_limits": {"min": 0, "max": 200}, "translations": {"fa": "تعداد تعویض پانسمان"}}],
}  # fmt: skip
#: The count the nurse records: a number no other value of the trial holds, so a leak is seen wherever it is.
COUNT = 173


def _ward(doc: Any, **form: Any) -> None:
    doc["forms"].append({**copy.deepcopy(WARD), **form})
    next(v for v in doc["visits"] if v["id"] == "baseline")["forms"].append("ward_dressings")


def masking(*roles: str, ward: bool = True, **form: Any) -> Mutation:
    """A custom masking of ``roles`` (the outcome assessor's, as WOUND-2's, and any more), registered single-blind,
    with the ward's form."""

    def mutate(doc: Any) -> None:
        parties = ["outcome_assessor"] if "outcome_assessor" in roles else []
        parties += ["data_analyst"] if "blinded_statistician" in roles else []
        parties += ["investigator"] if "investigator" in roles else []
        doc["masking"] = {"blinding": "custom", "masked": parties or ["participant"], "masked_roles": list(roles)}
        doc["trial"]["design"]["blinding"] = "single"
        if ward:
            _ward(doc, **form)

    return mutate


def _level(level: str) -> Mutation:
    def mutate(doc: Any) -> None:
        doc["masking"] = {"blinding": level, **({"open_label_comparator": "open placebo"} if level == "open" else {})}
        doc["trial"]["design"]["blinding"] = level
        _ward(doc)

    return mutate


def _and(*mutations: Mutation) -> Mutation:
    def mutate(doc: Any) -> None:
        for m in mutations:
            m(doc)

    return mutate


def _derived_elsewhere(doc: Any) -> None:
    """The labs form derives a value from the ward's count (through the P/F ratio's formula: any formula will do)."""
    form = next(f for f in doc["forms"] if f["id"] == "labs")
    form["fields"].append({"id": "dressings_seen", "label": "Dressings seen", "type": "decimal", "unit": "mmHg",
                           "decimals": 1, "translations": {"fa": "پانسمان‌ها"},
                           "derived": {"name": "pf_ratio", "inputs": {"pao2_mmhg": "ward_dressings.dressing_changes",
                                                                      "fio2": "blood_gas.fio2"}}})  # fmt: skip


def _data_check(doc: Any) -> None:
    doc.setdefault("data_checks", []).append({
        "id": "dressings_vs_crp", "kind": "compare", "message": "More dressings than CRP?",
        "translations": {"fa": "پانسمان بیش از CRP؟"}, "left": ["ward_dressings.dressing_changes"], "op": "le",
        "right": ["labs.crp"],
    })  # fmt: skip


def _estimand(doc: Any) -> None:
    """The first outcome measured on the ward's form, collected at the outcome's visit too."""
    variable = doc["outcomes"][0]["estimand"]["variable"]
    variable["fields"] = ["ward_dressings.dressing_changes"]
    next(v for v in doc["visits"] if v["id"] == variable["at"])["forms"].append("ward_dressings")


# --- protocol check ---------------------------------------------------------------------------------------------

#: (case, the protocol fragment, the path refused, words of the refusal)
REFUSED: list[tuple[str, Mutation, str, str]] = [
    ("a form revealing the arm in an open-label trial", _level("open"), "forms[{w}].reveals_arm",
     "ward_dressings reveals the arm, but this trial masks no role (blinding: open)"),
    ("a form revealing the arm in a single-blind trial", _level("single"), "forms[{w}].reveals_arm",
     "this trial masks no role (blinding: single)"),
    ("a form revealing the arm that every data entry role is kept from", _level("double"),
     "forms[{w}].reveals_arm", "every role that fills forms (investigator, study coordinator, outcome assessor) "
     "is masked: no one could fill it"),
    ("a derived field of another form reading it", _and(masking("outcome_assessor"), _derived_elsewhere),
     "forms[{labs}].fields[{last}].derived", "labs.dressings_seen is derived from ward_dressings.dressing_changes, "
     "on a form that reveals the arm, but labs is read by masked roles"),
    ("a data check reading it", _and(masking("outcome_assessor"), _data_check), "data_checks[{check}]",
     "check dressings_vs_crp reads ward_dressings.dressing_changes, on a form that reveals the arm"),
    ("a form revealing the arm while every reader of the lock readiness is masked (no one to review it)",
     masking("outcome_assessor", "monitor", "data_manager"), "forms[{w}].reveals_arm",
     "every reader of the lock readiness report (data manager and monitor) is masked: the report keeps the form "
     "from them, so no one could review it before the lock"),
    ("a log revealing the arm (not kept yet)",
     _and(masking("outcome_assessor"), lambda doc: doc["logs"][0].__setitem__("reveals_arm", True)),
     "logs[0].reveals_arm", "the conmeds log cannot be kept from masked roles yet"),
    ("an estimand on it while the blinded statistician is masked",
     _and(masking("outcome_assessor", "blinded_statistician"), _estimand), "outcomes[0].estimand.variable.fields",
     "outcome "),
]  # fmt: skip


def _paths(path: str, mutate: Mutation) -> str:
    """The path with the fragment's positions filled in (the ward form's, the labs form's, its last field's...)."""
    from ruamel.yaml import YAML

    doc = YAML().load(mutated_text(mutate))
    forms = [f["id"] for f in doc["forms"]]
    labs = forms.index("labs")
    return path.format(w=forms.index("ward_dressings"), labs=labs, last=len(doc["forms"][labs]["fields"]) - 1,
                       check=len(doc.get("data_checks", [])) - 1)  # fmt: skip


@pytest.mark.parametrize(("case", "mutate", "path", "words"), REFUSED, ids=[c[0] for c in REFUSED])
def test_protocol_check_refuses(case: str, mutate: Mutation, path: str, words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(mutate), source="trial.yaml")
    at = _paths(path, mutate)
    found = [p for p in caught.value.problems if p.path == at and words in p.message]
    assert found, f"{case}: nothing at {at} saying {words!r}; got:\n{caught.value}"
    assert found[0].line is not None


def double_blind_masking_the_data_manager(doc: Any) -> None:
    """A double-blind trial as the registry says it (the participant, the investigator and the outcome assessor
    masked) that masks the data manager too, with the ward's form filled by the unmasked study coordinator; the
    monitor sees the arms (the lock's unmasked reviewer)."""
    doc["masking"] = {"blinding": "custom", "masked": ["participant", "investigator", "outcome_assessor"],
                      "masked_roles": ["investigator", "outcome_assessor", "data_manager"]}  # fmt: skip
    doc["trial"]["design"]["blinding"] = "double"
    _ward(doc)


#: Accepted: the form with its readers unmasked, an estimand on it while the statistician sees the arms (WOUND-2),
#: and a masked reader of the lock readiness (the report keeps the form from them).
ACCEPTED: list[tuple[str, Mutation, frozenset[str]]] = [
    ("the outcome assessor masked (WOUND-2)", masking("outcome_assessor"), frozenset({"outcome_assessor"})),
    ("double-blind, the data manager masked", double_blind_masking_the_data_manager,
     frozenset({"investigator", "outcome_assessor", "data_manager"})),
    ("the monitor masked", masking("outcome_assessor", "monitor"), frozenset({"outcome_assessor", "monitor"})),
    ("an estimand on it, the blinded statistician unmasked", _and(masking("outcome_assessor"), _estimand),
     frozenset({"outcome_assessor"})),
    ("three roles masked", masking("outcome_assessor", "administrator", "blinded_statistician"),
     frozenset({"outcome_assessor", "administrator", "blinded_statistician"})),
]  # fmt: skip


@pytest.mark.parametrize(("case", "mutate", "masked"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_protocol_check_accepts(case: str, mutate: Mutation, masked: frozenset[str]) -> None:
    protocol = load_protocol_text(mutated_text(mutate)).protocol
    assert protocol.form("ward_dressings").reveals_arm
    assert {r.value for r in masked_roles(protocol)} == masked == masked_role_names(protocol)
    for role in Role:
        assert may_see_form(protocol, role, "ward_dressings") == (role.value not in masked), role
        assert kept_forms(protocol, role) == (frozenset({"ward_dressings"}) if role.value in masked else frozenset())


def test_the_protocol_layer_knows_the_roles_that_fill_forms() -> None:
    assert tuple(r.value for r in DATA_ENTRY) == DATA_ENTRY_ROLES


def test_the_protocol_layer_knows_the_roles_that_read_the_lock_readiness() -> None:
    assert tuple(r.value for r in readiness.READERS) == masking_checks.READINESS_READERS


def test_wound_2_keeps_its_week_16_summary_from_the_assessor() -> None:
    from pathlib import Path

    text = Path("tests/data/simulation/WOUND-2.yaml").read_text(encoding="utf-8")
    protocol = load_protocol_text(text).protocol
    assert protocol.form("week16_summary").reveals_arm
    assert kept_forms(protocol, Role.OUTCOME_ASSESSOR) == {"week16_summary"}
    assert kept_forms(protocol, Role.STUDY_COORDINATOR) == frozenset()


# --- the trial: a masked assessor and an unmasked nurse ---------------------------------------------------------


def _trial(database_url: str, mutate: Mutation) -> tuple[Trial, str]:
    """The trial and a randomized participant whose nurse recorded ``COUNT`` dressing changes."""
    trial = make_trial(database_url, load_protocol_text(mutated_text(mutate)))
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=7)
    pid = enrolled_ten_days_ago(trial)
    randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)  # an analysed participant (the analysis path)
    nurse = who(trial, Role.STUDY_COORDINATOR)
    svc.save_form(trial.engine, nurse, pid, "baseline", "ward_dressings", {"dressing_changes": COUNT})
    return trial, pid


@pytest.fixture
def wound(database_url: str) -> Iterator[tuple[Trial, str]]:
    trial, pid = _trial(database_url, masking("outcome_assessor"))
    yield trial, pid
    trial.engine.dispose()


def _refused_as_kept(call: Callable[[], Any]) -> str:
    with pytest.raises(svc.FormError) as caught:
        call()
    assert isinstance(caught.value, AccessDenied)
    return str(caught.value)


RULE = "form: ward_dressings reveals the arm and is kept from the roles this trial masks (reveals_arm)"


def test_the_masked_assessor_can_neither_open_nor_fill_the_form_the_nurse_fills(wound: tuple[Trial, str]) -> None:
    trial, pid = wound
    assessor, nurse = who(trial, Role.OUTCOME_ASSESSOR), who(trial, Role.STUDY_COORDINATOR)
    seen = svc.get_form(trial.engine, nurse, pid, "baseline", "ward_dressings")
    assert seen is not None and seen.values["dressing_changes"].value == COUNT
    assert _refused_as_kept(lambda: svc.get_form(trial.engine, assessor, pid, "baseline", "ward_dressings")) == RULE
    assert _refused_as_kept(lambda: svc.save_form(trial.engine, assessor, pid, "baseline", "ward_dressings",
                                                  {"dressing_changes": 1}, reason="typo")) == RULE  # fmt: skip
    assert _refused_as_kept(lambda: svc.complete_form(trial.engine, assessor, pid, "baseline", "ward_dressings"))
    # the assessor's own forms at the same visit are theirs as before
    svc.save_form(trial.engine, assessor, pid, "baseline", "chest_xray", {"zone_a": 1})


def test_the_participant_page_and_casebook_leave_the_form_out_for_the_assessor(wound: tuple[Trial, str]) -> None:
    trial, pid = wound
    assessor, nurse = who(trial, Role.OUTCOME_ASSESSOR), who(trial, Role.STUDY_COORDINATOR)
    assert "ward_dressings" in svc.participant_schedule(trial.engine, nurse, pid).forms["baseline"]
    assert "ward_dressings" not in svc.participant_schedule(trial.engine, assessor, pid).forms["baseline"]
    assert any(f.form_id == "ward_dressings" for f in svc.casebook(trial.engine, nurse, pid).forms)
    assert not any(f.form_id == "ward_dressings" for f in svc.casebook(trial.engine, assessor, pid).forms)


def test_queries_on_the_form_are_kept_from_the_assessor(wound: tuple[Trial, str]) -> None:
    trial, pid = wound
    assessor, nurse = who(trial, Role.OUTCOME_ASSESSOR), who(trial, Role.STUDY_COORDINATOR)
    monitor = who(trial, Role.MONITOR)  # unmasked here
    raised = svc.raise_query(trial.engine, monitor, pid, "Is 173 right?", visit_id="baseline",
                             form_id="ward_dressings", field_id="dressing_changes")  # fmt: skip
    assert [q.id for q in svc.list_queries(trial.engine, nurse, participant_id=pid)] == [raised.id]
    assert svc.list_queries(trial.engine, assessor, participant_id=pid) == []
    assert svc.participant_schedule(trial.engine, assessor, pid).open_queries == 0
    assert svc.participant_schedule(trial.engine, nurse, pid).open_queries == 1
    with pytest.raises(NotFound):  # as a query that does not exist: not even that there is one
        svc.answer_query(trial.engine, assessor, raised.id, "yes")
    mine = work_page(trial.engine, assessor, WorkKind.QUERIES_TO_ANSWER)
    assert not any(i.form_id == "ward_dressings" for i in mine.items)
    theirs = work_page(trial.engine, nurse, WorkKind.QUERIES_TO_ANSWER)
    assert any(i.form_id == "ward_dressings" for i in theirs.items)
    assert svc.answer_query(trial.engine, nurse, raised.id, "yes, 173").status == "answered"


def test_the_status_matrix_has_no_column_for_the_form_for_the_assessor(wound: tuple[Trial, str]) -> None:
    trial, _ = wound
    nurse_columns = status_matrix(trial.engine, who(trial, Role.STUDY_COORDINATOR)).columns
    assessor_columns = status_matrix(trial.engine, who(trial, Role.OUTCOME_ASSESSOR)).columns
    assert ("baseline", "ward_dressings") in {(c.visit_id, c.form_id) for c in nurse_columns}
    assert "ward_dressings" not in {c.form_id for c in assessor_columns}
    assert len(assessor_columns) == len(nurse_columns) - 1


def test_the_pages_refuse_the_assessor_by_the_rule_and_show_the_nurse(wound: tuple[Trial, str]) -> None:
    trial, pid = wound
    url = f"/participants/{pid}/visits/baseline/forms/ward_dressings"
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.STUDY_COORDINATOR)
        page = client.get(url)
        assert page.status_code == 200 and f'value="{COUNT}"' in page.text
        participant = client.get(f"/participants/{pid}")
        assert "ward_dressings" in participant.text
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        sign_in(client, Role.OUTCOME_ASSESSOR)
        page = client.get(url)
        assert page.status_code == 403 and "reveals the arm" in page.text and str(COUNT) not in page.text
        participant = client.get(f"/participants/{pid}")
        assert participant.status_code == 200 and "ward_dressings" not in participant.text
        form = client.get(f"/participants/{pid}/visits/baseline/forms/chest_xray")
        saved = client.post(url, data={"csrf_token": csrf_of(form.text), "v-dressing_changes": "2", "reason": "x"})
        assert saved.status_code == 403 and "reveals the arm" in saved.text
        casebook = client.get(f"/data/casebook/{pid}")
        assert casebook.status_code in (200, 403) and "ward_dressings" not in casebook.text
        assert svc.get_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline",
                            "ward_dressings").values["dressing_changes"].value == COUNT  # fmt: skip


# --- every role, every read path ----------------------------------------------------------------------------------

#: The masked roles of the table: a reader of the audit trail, REDCap and the casebook, an exporter and analyst, and
#: the assessor (a masked data manager, reader of the lock readiness, is the last section's).
THREE = ("outcome_assessor", "administrator", "blinded_statistician")


@pytest.fixture
def everyone(database_url: str) -> Iterator[tuple[Trial, str]]:
    trial, pid = _trial(database_url, masking(*THREE))
    yield trial, pid
    trial.engine.dispose()


def _shows(found: Any) -> bool:
    """Whether what a path answered holds the count, or the form (its id), anywhere in its text."""
    text = repr(found)
    return bool(re.search(rf"\b{COUNT}\b", text)) or "ward_dressings" in text


def _reads(trial: Trial, pid: str, role: Role) -> dict[str, bool | None]:
    """Each read path as ``role`` uses it: True (the form or its count shown), False (not shown, or refused as
    kept), None (the role does not use this path at all, refused by its role rule)."""
    user = who(trial, role)
    engine = trial.engine

    def path(call: Callable[[], Any]) -> bool | None:
        try:
            return _shows(call())
        except (PermissionError, svc.FormError, exports.ExportError, analysis.AnalysisError, NotFound) as exc:
            return False if isinstance(exc, AccessDenied) and "reveals the arm" in str(exc) else None

    def export() -> Any:
        source = exports.export_source(engine, user)
        return [list(source.forms()), list(source.audit()), list(source.queries()), source.count() and None]

    return {
        "form": path(lambda: svc.get_form(engine, user, pid, "baseline", "ward_dressings")),
        "schedule": path(lambda: svc.participant_schedule(engine, user, pid).forms),
        "casebook": path(lambda: svc.casebook(engine, user, pid).forms),
        "audit trail": path(lambda: audit_trail.read_trail(engine, user, participant=pid, limit=1000)),
        "export": path(export),
        "status matrix": path(lambda: status_matrix(engine, user).columns),
        "redcap records": path(lambda: redcap_export.export_records(engine, user, ExportQuery())),
        "analysis data": path(lambda: [s.values for s in analysis.analysis_data(engine, user).subjects]),
        "work lists": path(lambda: [work_page(engine, user, k).items for k in lists_of(role)]),
    }


def test_no_masked_role_reads_the_form_on_any_path_and_every_unmasked_reader_does(
    everyone: tuple[Trial, str],
) -> None:
    trial, pid = everyone
    protocol = load_protocol_text(mutated_text(masking(*THREE))).protocol
    masked = masked_roles(protocol)
    table = {role: _reads(trial, pid, role) for role in Role}
    for role, paths in table.items():
        for name, shown in paths.items():
            if role in masked:
                assert shown is not True, f"{role.value} (masked) reads the form by the {name}: {paths}"
    # The unmasked readers do read it where their role reads anything (so the table can fail).
    assert table[Role.STUDY_COORDINATOR]["form"] and table[Role.STUDY_COORDINATOR]["casebook"]
    assert table[Role.INVESTIGATOR]["schedule"] and table[Role.MONITOR]["audit trail"]
    assert table[Role.DATA_MANAGER]["export"] and table[Role.UNBLINDED_STATISTICIAN]["analysis data"]
    assert table[Role.DATA_MANAGER]["redcap records"] and table[Role.INVESTIGATOR]["status matrix"]
    # and the masked readers use each path, kept from the form alone (not refused the path by their role)
    assert table[Role.ADMINISTRATOR]["audit trail"] is False and table[Role.BLINDED_STATISTICIAN]["export"] is False
    assert table[Role.BLINDED_STATISTICIAN]["analysis data"] is False
    assert table[Role.ADMINISTRATOR]["casebook"] is False and table[Role.ADMINISTRATOR]["redcap records"] is False
    assert table[Role.OUTCOME_ASSESSOR]["form"] is False and table[Role.ADMINISTRATOR]["status matrix"] is False


def test_a_masked_exporter_s_export_holds_no_count_and_its_entry_says_what_was_withheld(
    everyone: tuple[Trial, str], tmp_path: Any
) -> None:
    trial, _ = everyone
    result = exports.run_export(trial.engine, who(trial, Role.BLINDED_STATISTICIAN), "csv", tmp_path / "bs")
    for f in result.files:
        assert not re.search(rf"\b{COUNT}\b", f.read_text(encoding="utf-8", errors="replace")), f.name
    entry = audit_trail.read_trail(trial.engine, who(trial, Role.ADMINISTRATOR), action_prefix="export.")[0]
    assert json.loads(entry.new_value or "{}")["withheld"] == ["ward_dressings"]
    shown = exports.run_export(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), "csv", tmp_path / "us")
    assert any(re.search(rf"\b{COUNT}\b", f.read_text(encoding="utf-8", errors="replace")) for f in shown.files)


def test_a_masked_caller_naming_the_form_in_the_redcap_export_is_refused(everyone: tuple[Trial, str]) -> None:
    trial, _ = everyone
    with pytest.raises(Exception, match="ward_dressings reveals the arm") as caught:
        query = ExportQuery(forms=("ward_dressings",))
        redcap_export.export_records(trial.engine, who(trial, Role.ADMINISTRATOR), query)
    assert isinstance(caught.value, AccessDenied)


# --- the lock readiness: a masked data manager, an unmasked monitor ------------------------------------------------
#
# Two participants in different arms; the monitor raises queries on their ward forms. In the first world the one in
# the first arm has two open queries there and the other one; in the second, one and two. Whatever differs between
# the worlds differs by arm: the masked data manager's report (service, command line, API, pages), their refused
# lock and their query inbox are the same in both, and say that the form is withheld and needs an unmasked
# reviewer; the monitor's list each query.


def two_arms(trial: Trial) -> tuple[str, str]:
    """Two randomized participants in different arms (the first of each arm the list gives, from seed 7), each
    with the ward's form saved by the nurse (unmasked)."""
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=7)
    first: dict[str, str] = {}
    for _ in range(8):  # a block holds both arms: two are found within its size
        if len(first) == 2:
            break
        pid = enrolled_ten_days_ago(trial)
        randomize(trial.engine, who(trial, Role.INVESTIGATOR), pid)
        with read_scope(trial.engine) as session:
            arm = session.execute(select(allocation_entries.c.arm)
                                  .where(allocation_entries.c.participant_id == pid)).scalar_one()  # fmt: skip
        first.setdefault(arm, pid)
    a, b = first.values()
    for pid in (a, b):
        svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "ward_dressings",
                      {"dressing_changes": COUNT})  # fmt: skip
    return a, b


def _ask(trial: Trial, pid: str, n: int) -> list[int]:
    monitor = who(trial, Role.MONITOR)
    return [svc.raise_query(trial.engine, monitor, pid, f"Dressings {i} right?", visit_id="baseline",
                            form_id="ward_dressings", field_id="dressing_changes").id for i in range(n)]  # fmt: skip


_AT = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(\+00:00|Z)?")


def _same(text: str) -> str:
    """The text with its moment of reading (the report's ``taken_at``) and page tokens left out."""
    text = re.sub(r'<p data-testid="readiness-summary">[^·]*·', "", text)
    return re.sub(r'(name="(csrf_token|confirm)" value=")[^"]*"', r"\1", _AT.sub("<at>", text))


def _as(trial: Trial, role: Role) -> dict[str, Any]:
    """Everything of the lock readiness ``role`` reads: the report, the command line's text, JSON and exit status,
    the API's answer, the readiness and lock pages, the lock's refusal and the query inbox."""
    user = who(trial, role)
    report = readiness.lock_readiness(trial.engine, user)
    base = ["database", "readiness", "--database", trial.url, "--as", username(role), "--limit", "0"]
    text, as_json = CliRunner().invoke(cli, base), CliRunner().invoke(cli, [*base, "--json"])
    token, _ = issue_token(trial.engine, username(role), name=f"t{len(report.blockers)}", actor="test")
    with TestClient(create_app(Settings(database_url=trial.url)), follow_redirects=False) as client:
        api = client.get("/api/v1/trial/readiness", headers={"Authorization": f"Bearer {token}"}).json()
        sign_in(client, role)
        page = client.get("/data-management/readiness").text
        lock_page = client.get("/data-management").text if role is Role.DATA_MANAGER else ""
    refused = ""
    if role is Role.DATA_MANAGER:
        with pytest.raises(LockBlocked) as caught:
            lock_trial(trial.engine, user, "final")
        refused = str(caught.value)
    api.pop("taken_at")
    return {
        "report": dataclasses.replace(report, taken_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)),
        "cli": (text.exit_code, _same(text.output)), "json": (as_json.exit_code, _same(as_json.stdout)),
        "api": api, "page": _same(page), "lock page": _same(lock_page), "lock refused": refused,
        "queries": [(q.participant_id, q.form_id, q.status) for q in svc.list_queries(trial.engine, user)],
    }  # fmt: skip


def test_a_masked_data_manager_reads_the_same_lock_readiness_whatever_the_arms_hold(database_url: str) -> None:
    trial = make_trial(database_url, load_protocol_text(mutated_text(double_blind_masking_the_data_manager)))
    try:
        first, second = two_arms(trial)
        one = _ask(trial, first, 2)
        _ask(trial, second, 1)
        world_one = {role: _as(trial, role) for role in (Role.DATA_MANAGER, Role.MONITOR)}
        svc.close_query(trial.engine, who(trial, Role.MONITOR), one[0])
        _ask(trial, second, 1)
        world_two = {role: _as(trial, role) for role in (Role.DATA_MANAGER, Role.MONITOR)}
    finally:
        trial.engine.dispose()
    manager = world_one[Role.DATA_MANAGER]
    for name, seen in manager.items():
        assert seen == world_two[Role.DATA_MANAGER][name], f"the masked data manager's {name} differs by arm"
        assert not re.search(rf"\b{COUNT}\b", repr(seen)) and "Dressings" not in repr(seen), name
    report = manager["report"]
    assert report.withheld == ("ward_dressings",) and report.reviewers == ("monitor",) and not report.ready
    assert not any(b.form == "ward_dressings" or "ward_dressings" in b.where for b in report.blockers)
    assert report.counts()[readiness.BlockerKind.QUERY] == 0 and manager["queries"] == []
    said = "forms kept from you because they reveal the arm (reveals_arm): ward_dressings"
    assert said in report.headline() and "an unmasked reviewer for them (monitor)" in report.headline()
    assert manager["cli"][0] == 1 and said in " ".join(manager["cli"][1].split())  # the console wraps it
    assert manager["json"][0] == 1 and json.loads(manager["json"][1])["report"]["withheld"] == ["ward_dressings"]
    assert manager["api"]["withheld"] == ["ward_dressings"] and manager["api"]["reviewers"] == ["monitor"]
    assert manager["api"]["ready"] is False and said in manager["api"]["headline"]
    for page in (manager["page"], manager["lock page"]):
        assert 'data-testid="readiness-withheld"' in page and "an unmasked reviewer for them (Monitor)" in page
    assert said in manager["lock refused"] and "override with a reason and your password" in manager["lock refused"]
    # The unmasked monitor reads each query on the ward's form, two and one, then one and two.
    for world, counts in ((world_one, (2, 1)), (world_two, (1, 2))):
        monitor = world[Role.MONITOR]["report"]
        assert monitor.withheld == () and "Dressings" in world[Role.MONITOR]["page"]
        on_ward = [b.participant_id for b in monitor.blockers if b.kind is readiness.BlockerKind.QUERY
                   and b.form == "ward_dressings"]  # fmt: skip
        assert (on_ward.count(first), on_ward.count(second)) == counts
        assert world[Role.MONITOR]["api"]["counts"]["query"] == sum(counts)


def test_a_masked_data_manager_s_lock_override_is_audited_with_the_forms_withheld(database_url: str) -> None:
    trial = make_trial(database_url, load_protocol_text(mutated_text(double_blind_masking_the_data_manager)))
    try:
        first, _ = two_arms(trial)
        _ask(trial, first, 2)
        manager = who(trial, Role.DATA_MANAGER)
        visible = len(readiness.lock_readiness(trial.engine, manager).blockers)
        state = lock_trial(trial.engine, manager, "final", password=PASSWORD)
        assert state.locked and state.open_blockers == (visible or None)
        (entry,) = audit.entries(trial.engine, action_prefix="trial.locked")
        assert json.loads(entry.detail or "{}") == {"override": True, "open_blockers": visible,
                                                    "withheld": ["ward_dressings"],
                                                    "uncounted": ["ward_dressings"]}  # fmt: skip
    finally:
        trial.engine.dispose()
