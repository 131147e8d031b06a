"""A role rule is a sentence (issue 24): "role: only a monitor may verify forms against source", never "only monitor
verify ..."; several roles are named "an investigator, a study coordinator or an outcome assessor". A Persian page
says it in Persian: the roles by their Persian names (the catalog's), what they may do in words. Both databases."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services import forms as svc
from trialwright.services.lock import soft_lock
from trialwright.web.i18n import catalog_path
from trialwright.web.wording import CRF_INPUTS, page_words, say

with catalog_path("fa").open("rb") as _handle:
    CATALOG = {m.id: m.string for m in read_po(_handle, locale="fa") if m.id}
ISOLATE = str.maketrans("", "", "\u2066\u2067\u2068\u2069")


def _refusal(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(svc.FormError) as refused:
        call()
    return str(refused.value)


def test_the_role_rules_are_sentences(trial: Trial, pid: str) -> None:
    svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "labs", {"crp": 40})
    verify = _refusal(lambda: svc.verify_form(trial.engine, who(trial, Role.INVESTIGATOR), pid, "baseline", "labs"))
    complete = _refusal(lambda: svc.complete_form(trial.engine, who(trial, Role.MONITOR), pid, "baseline", "labs"))
    soft = _refusal(lambda: soft_lock(trial.engine, who(trial, Role.MONITOR), "interim", participant_id=pid))
    assert verify == "role: only a monitor may verify forms against source"
    assert complete == "role: only an investigator, a study coordinator or an outcome assessor may complete forms"
    assert soft == "role: only a data manager may soft-lock and unlock sites and participants"


def test_a_persian_page_says_the_role_rule_in_persian(trial: Trial, pid: str) -> None:
    svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "labs", {"crp": 40})
    refusals = [
        _refusal(lambda: svc.verify_form(trial.engine, who(trial, Role.INVESTIGATOR), pid, "baseline", "labs")),
        _refusal(lambda: svc.complete_form(trial.engine, who(trial, Role.MONITOR), pid, "baseline", "labs")),
    ]
    said = [s.translate(ISOLATE) for s in say(refusals, page_words(None, "fa", CRF_INPUTS), "fa")]
    rule, role = CATALOG["only %(roles)s may %(what)s"], CATALOG["Role"]
    names = [CATALOG[label] for label in ("Investigator", "Study coordinator", "Outcome assessor")]
    assert said == [
        f"{role}: " + rule % {"roles": CATALOG["Monitor"], "what": CATALOG["verify forms against source"]},
        f"{role}: " + rule % {"roles": f"{names[0]}، {names[1]}{CATALOG[' or ']}{names[2]}",
                              "what": CATALOG["complete forms"]},
    ]  # fmt: skip
    assert say(refusals[:1], page_words(None, "en", CRF_INPUTS), "en") == [
        "Role: only a monitor may verify forms against source"
    ]
