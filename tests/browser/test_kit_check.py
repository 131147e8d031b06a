"""The kit check in a real browser: the coordinator types another participant's preparation code on the
administration form and is stopped, beside the field, with a message that names no arm and not whose code
it is; the participant's own code, once the pharmacist has recorded its preparation, is then saved."""

from __future__ import annotations

import pytest

from tests.browser.test_randomization import _as, _enrolled
from tests.spec.forms.test_kit_check import EXO_ARM
from tests.spec.randomization.test_preparation import EXOSOMES, PLACEBO
from tests.trialfixtures import FIRST_PROTOCOL, Trial, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol
from trialwright.services.randomization import generate_list, prepare, randomize, what_to_prepare

WRITES_ON_BOTH_DATABASES = True  # what the pages write is written and read back on SQLite and PostgreSQL

pytestmark = pytest.mark.browser


def test_another_participants_code_is_refused_on_the_page(page, live_server: str, live_trial: Trial) -> None:  # type: ignore[no-untyped-def]
    generate_list(live_trial.engine, who(live_trial, Role.UNBLINDED_STATISTICIAN), seed=20)
    investigator = who(live_trial, Role.INVESTIGATOR)
    first, second = _enrolled(live_trial), _enrolled(live_trial)
    own = randomize(live_trial.engine, investigator, first).preparation_code
    other = randomize(live_trial.engine, investigator, second).preparation_code
    pharmacist = who(live_trial, Role.UNBLINDED_PHARMACIST)  # a dose is given once its preparation is recorded
    values = PLACEBO if what_to_prepare(live_trial.engine, pharmacist, own).arm != EXO_ARM else EXOSOMES
    prepare(live_trial.engine, pharmacist, own, values)

    _as(page, live_server, Role.STUDY_COORDINATOR)
    page.goto(f"{live_server}/participants/{first}/visits/infusion/forms/administration")
    page.fill("#v-preparation_code", other)
    page.get_by_role("button", name="Save", exact=True).click()
    error = page.get_by_test_id("error-preparation_code").inner_text()
    assert f"{other} is not the code allocated to participant {first} (kit check)" in error
    shown = page.content()
    arms = load_protocol(FIRST_PROTOCOL).protocol.arms
    assert second not in error and own not in error
    assert not any(word in shown for a in arms for word in (a.name, a.intervention.name))
    page.shot("kit-check-refused")

    page.fill("#v-preparation_code", own)
    page.get_by_role("button", name="Save", exact=True).click()
    assert page.get_by_test_id("form-state").inner_text() == "draft"
    assert page.locator("#v-preparation_code").input_value() == own
    page.shot("own-code-saved")
