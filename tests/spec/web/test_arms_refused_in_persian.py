"""Every branch of the refusal a masked role meets when it asks for the arms (``domain.masking.arms_refused``) reaches
a Persian page in Persian, as the common branch (``masking.blinding: double``; only an unblinded statistician may
...) does:

| the protocol's masking              | roles that may see the arms | the sentence                                   |
|-------------------------------------|-----------------------------|------------------------------------------------|
| ``blinding`` declared               | some                        | ``(masking.blinding: X)`` ... ``only R may W`` |
| ``blinding`` not declared (double)  | some                        | ``(masking.blinding not declared: ...)``       |
| ``blinding`` declared               | none                        | ``no role may W in this trial``                |
| ``blinding`` not declared           | none                        | both                                           |

A protocol without ``masking.blinding`` (written before it existed, its masked parties listed) reaches the pages:
the analysis page and the exports page refuse the masked statistician and data manager in Persian (both databases).
No loaded protocol lets no role see the arms (the unblinded statistician always does, and both callers list it), so
the two "no role" branches are said by the page's wording from the sentence ``arms_refused`` makes for a list of
masked roles. Nothing English is left in the rule but the protocol's own key and value (``masking.blinding``,
``double``); the input it refuses is named as the common branch names it (``with_arms``, ``unblinded``). The API keeps
its rules in English (``field``, ``rule``), as for the common branch.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.spec.protocol.conftest import mutated_text
from tests.spec.web.conftest import csrf_of, sign_in
from tests.trialfixtures import FIRST_PROTOCOL, Trial, make_trial, username
from trialwright.domain.masking import arms_refused
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol, load_protocol_text
from trialwright.services.users import set_preferences
from trialwright.web.i18n import translations
from trialwright.web.wording import page_words, say

fa = translations("fa").gettext
ISOLATES = re.compile("[\u2066-\u2069]")
NOT_DECLARED = "masking.blinding not declared: masked as double"


def _undeclared(doc: Any) -> None:
    """The first trial's masking as a protocol written before ``blinding`` existed: its masked parties only."""
    del doc["masking"]["blinding"]


UNDECLARED = load_protocol_text(mutated_text(_undeclared), source="undeclared.yaml")
DOUBLE = load_protocol(FIRST_PROTOCOL).protocol


def _english_left(said: str) -> list[str]:
    """The English words left in a Persian sentence, once the protocol's own key and value are set aside."""
    return re.findall(r"[A-Za-z]+", ISOLATES.sub("", said).replace("masking.blinding", "").replace("double", ""))


@pytest.fixture
def trial(database_url: str) -> Iterator[Trial]:
    t = make_trial(database_url, UNDECLARED)
    yield t
    t.engine.dispose()


def _persian(trial: Trial, role: Role) -> None:
    set_preferences(trial.engine, username(role), language="fa", calendar="gregorian")


def test_the_protocol_declares_no_blinding_and_the_service_says_so() -> None:
    assert UNDECLARED.protocol.masking.blinding is None
    refused = arms_refused(UNDECLARED.protocol, Role.BLINDED_STATISTICIAN,
                           (Role.BLINDED_STATISTICIAN, Role.UNBLINDED_STATISTICIAN), "run the unblinded analysis")
    assert refused == (f"a blinded statistician is masked in this trial ({NOT_DECLARED}) and may not see the arms; "
                       "only an unblinded statistician may run the unblinded analysis")  # fmt: skip


def test_the_analysis_page_refuses_a_masked_statistician_in_persian_when_blinding_is_not_declared(
    client: TestClient, trial: Trial
) -> None:
    _persian(trial, Role.BLINDED_STATISTICIAN)
    sign_in(client, Role.BLINDED_STATISTICIAN)
    refused = client.get("/analysis?unblinded=1")
    said = ISOLATES.sub("", html.unescape(refused.text))
    assert refused.status_code == 403
    rule = fa("%(role)s is masked in this trial (masking.blinding not declared: masked as double) and may not see the "
              "arms; only %(roles)s may %(what)s")
    assert "در این کارآزمایی" in rule  # the catalog has the sentence
    expected = rule % {"role": fa("Blinded statistician"), "roles": fa("Unblinded statistician"),
                       "what": fa("run the unblinded analysis")}  # fmt: skip
    assert expected in said, said
    assert "is masked" not in said and "not declared" not in said and "may not see" not in said


def test_the_exports_page_refuses_a_masked_data_manager_in_persian_when_blinding_is_not_declared(
    client: TestClient, trial: Trial
) -> None:
    _persian(trial, Role.DATA_MANAGER)
    sign_in(client, Role.DATA_MANAGER)
    form = client.get("/exports")
    refused = client.post("/exports", data={"format": "csv", "with_arms": "1", "csrf_token": csrf_of(form.text)})
    said = ISOLATES.sub("", html.unescape(refused.text))
    assert refused.status_code == 403
    rule = fa("%(role)s is masked in this trial (masking.blinding not declared: masked as double) and may not see the "
              "arms; only %(roles)s may %(what)s")
    expected = rule % {"role": fa("Data manager"), "roles": fa("Unblinded statistician"), "what": fa("export the arms")}
    assert expected in said, said
    assert "is masked" not in said and "not declared" not in said and "may not see" not in said


def test_the_english_page_says_the_rule_as_written(client: TestClient, trial: Trial) -> None:
    sign_in(client, Role.BLINDED_STATISTICIAN)
    said = html.unescape(client.get("/analysis?unblinded=1").text)
    assert (f"unblinded: a blinded statistician is masked in this trial ({NOT_DECLARED}) and may not see the arms; "
            "only an unblinded statistician may run the unblinded analysis") in said  # fmt: skip


# Each branch as the service words it and as a Persian page says it: (protocol, roles this trial lets, msgid, values)
BRANCHES = [
    ("declared, some role", DOUBLE, (Role.DATA_MANAGER, Role.UNBLINDED_STATISTICIAN),
     "%(role)s is masked in this trial (masking.blinding: %(blinding)s) and may not see the arms; only %(roles)s may "
     "%(what)s", {"blinding": "double", "roles": "Unblinded statistician"}),
    ("not declared, some role", UNDECLARED.protocol, (Role.DATA_MANAGER, Role.UNBLINDED_STATISTICIAN),
     "%(role)s is masked in this trial (masking.blinding not declared: masked as double) and may not see the arms; "
     "only %(roles)s may %(what)s", {"roles": "Unblinded statistician"}),
    ("declared, no role", DOUBLE, (Role.DATA_MANAGER, Role.BLINDED_STATISTICIAN),
     "%(role)s is masked in this trial (masking.blinding: %(blinding)s) and may not see the arms; no role may "
     "%(what)s in this trial", {"blinding": "double"}),
    ("not declared, no role", UNDECLARED.protocol, (Role.DATA_MANAGER, Role.BLINDED_STATISTICIAN),
     "%(role)s is masked in this trial (masking.blinding not declared: masked as double) and may not see the arms; "
     "no role may %(what)s in this trial", {}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "protocol", "roles", "msgid", "values"), BRANCHES, ids=[b[0] for b in BRANCHES])
def test_every_branch_of_the_refusal_is_said_in_persian(
    case: str, protocol: Any, roles: tuple[Role, ...], msgid: str, values: dict[str, str]
) -> None:
    refusal = f"with_arms: {arms_refused(protocol, Role.DATA_MANAGER, roles, 'export the arms')}"
    english = msgid % {"role": "a data manager", "what": "export the arms", **values,
                       **({"roles": "an unblinded statistician"} if "roles" in values else {})}  # fmt: skip
    assert refusal == f"with_arms: {english}", case  # the msgid is the service's sentence
    said = ISOLATES.sub("", say([refusal], page_words(None, "fa"), "fa")[0])
    translated = fa(msgid)
    assert translated != msgid, f"{case}: the catalog has no Persian for {msgid!r}"
    persian = {"role": fa("Data manager"), "what": fa("export the arms"), **values,
               **({"roles": fa(values["roles"])} if "roles" in values else {})}  # fmt: skip
    head, _, rule = said.partition(": ")
    assert head == "with_arms" and rule == translated % persian, said  # the head is the input's name, as the API's
    assert _english_left(rule) == [], said
