"""The action taken with the product is the protocol's, in the protocol's words.

An oral-syrup trial was offered "infusion interrupted / stopped": the first trial's words, written in the engine.
Now each protocol may declare its answers (``safety.actions_taken``: code, label, translations, SDTM term):

| protocol                          | expected                                                              |
|-----------------------------------|-----------------------------------------------------------------------|
| no ``actions_taken``              | CDISC's own terms (codelist ACN) in words for any product, no trial's |
| ``languages: [en, fa]``, one action without Persian | a missing translation named at its path          |
| a syrup trial's own actions       | the report page offers exactly them (English, Persian); an infusion    |
|                                   | code is refused by the service; SDTM AEACN is the declared term        |
| the first trial                   | the codes it stored before (dose_not_changed, infusion_interrupted, …) |
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.spec.protocol.conftest import mutated_text
from tests.spec.web.test_randomization_pages import as_role
from tests.spec.web.test_safety_pages import _randomized
from tests.trialfixtures import FIRST_PROTOCOL, make_trial, who
from trialwright.domain.roles import Role
from trialwright.domain.safety import SafetyInputError, validate_report
from trialwright.protocol import ProtocolError, load_protocol_text
from trialwright.services.safety import report_event
from trialwright.services.users import set_preferences
from trialwright.settings import Settings
from trialwright.web.app import create_app

TEHRAN = ZoneInfo("Asia/Tehran")
SYRUP = [
    {"code": "dose_not_changed", "label": "Syrup dose not changed", "sdtm": "DOSE NOT CHANGED",
     "translations": {"fa": "دوز شربت تغییر نکرد"}},
    {"code": "syrup_stopped", "label": "Syrup stopped", "sdtm": "DRUG WITHDRAWN",
     "translations": {"fa": "شربت قطع شد"}},
]  # fmt: skip


def _syrup(document: Any) -> None:
    document["safety"]["actions_taken"] = SYRUP


def _without(document: Any) -> None:
    del document["safety"]["actions_taken"]


def _untranslated(document: Any) -> None:
    document["safety"]["actions_taken"] = [SYRUP[0], {k: v for k, v in SYRUP[1].items() if k != "translations"}]


def test_a_protocol_without_actions_taken_offers_cdiscs_own_terms() -> None:
    safety = load_protocol_text(mutated_text(_without)).protocol.safety
    assert safety.actions_taken is None
    offered = {a.code: (a.label, a.sdtm.value) for a in safety.action_choices}
    assert offered == {
        "dose_not_changed": ("Dose not changed", "DOSE NOT CHANGED"), "dose_reduced": ("Dose reduced", "DOSE REDUCED"),
        "dose_increased": ("Dose increased", "DOSE INCREASED"),
        "drug_interrupted": ("Treatment interrupted", "DRUG INTERRUPTED"),
        "drug_withdrawn": ("Treatment withdrawn", "DRUG WITHDRAWN"),
        "not_applicable": ("Not applicable", "NOT APPLICABLE"),
        "unknown": ("Unknown", "UNKNOWN"),
    }  # fmt: skip
    assert not [a for a in safety.action_choices if re.search("infusion|syrup", a.label, re.I)]  # no trial's words
    assert all(a.translations.get("fa") for a in safety.action_choices)


def test_an_action_without_its_persian_label_is_a_missing_translation() -> None:
    with pytest.raises(ProtocolError) as caught:
        load_protocol_text(mutated_text(_untranslated))
    (problem,) = caught.value.problems
    assert problem.path == "safety.actions_taken[1].translations" and "'Syrup stopped'" in problem.message


def test_the_first_trial_keeps_its_stored_codes() -> None:
    first = load_protocol_text(FIRST_PROTOCOL.read_text(encoding="utf-8")).protocol
    assert [a.code for a in first.safety.actions_taken] == [
        "dose_not_changed", "infusion_interrupted", "infusion_stopped", "drug_withdrawn", "not_applicable", "unknown",
    ]  # fmt: skip


def test_the_service_accepts_only_the_protocols_codes() -> None:
    settings = load_protocol_text(mutated_text(_syrup)).protocol.safety
    now = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    report = {"term": "Vomiting", "onset": "2026-03-01", "grade": 1, "serious": False, "causality": "probable",
              "outcome": "recovering", "aware_at": "2026-03-01T10:00+03:30"}  # fmt: skip
    with pytest.raises(SafetyInputError) as caught:
        validate_report(report | {"action_taken": "infusion_stopped"}, settings, TEHRAN, now)
    assert ("action_taken", "'infusion_stopped' is not one of dose_not_changed, syrup_stopped") in caught.value.problems
    assert validate_report(report | {"action_taken": "syrup_stopped"}, settings, TEHRAN, now).action_taken == (
        "syrup_stopped"
    )


def test_the_report_page_offers_the_protocols_words(database_url: str) -> None:
    trial = make_trial(database_url, load_protocol_text(mutated_text(_syrup)))
    try:
        pid = _randomized(trial)
        app = create_app(Settings(database_url=trial.url, lockout_threshold=3))
        with as_role(app, Role.INVESTIGATOR) as inv:
            page = inv.get(f"/participants/{pid}/adverse-events/new").text
            select = re.search(r'<select id="action_taken".*?</select>', page, re.S)
            assert select is not None
            offered = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select.group(0))
            assert offered == [("", "—"), ("dose_not_changed", "Syrup dose not changed"),
                               ("syrup_stopped", "Syrup stopped")]  # fmt: skip
            assert "infusion" not in select.group(0).lower()
        set_preferences(trial.engine, who(trial, Role.INVESTIGATOR).username, language="fa")
        with as_role(app, Role.INVESTIGATOR) as inv:
            page = inv.get(f"/participants/{pid}/adverse-events/new").text
            assert '<option value="syrup_stopped">شربت قطع شد</option>' in page
        now = dt.datetime.now(TEHRAN)
        report_event(trial.engine, who(trial, Role.INVESTIGATOR), pid, {
            "term": "Vomiting", "onset": now.date().isoformat(), "grade": 1, "serious": False,
            "causality": "probable", "action_taken": "syrup_stopped", "outcome": "recovering",
            "aware_at": now.isoformat(),
        })  # fmt: skip
    finally:
        trial.engine.dispose()


def test_a_stored_protocol_text_without_actions_reads_as_the_file_does() -> None:
    """A trial database keeps its protocol text and every page and export reads that text back: without
    ``actions_taken`` it offers CDISC's terms exactly as the file did, never another trial's words."""
    stored = load_protocol_text(mutated_text(_without), stored=True).protocol.safety
    read = load_protocol_text(mutated_text(_without)).protocol.safety
    assert stored.action_choices == read.action_choices
    assert {a.code for a in stored.action_choices} >= {"drug_interrupted", "drug_withdrawn"}
    assert not [a for a in stored.action_choices if "infusion" in a.code]
