"""The initial consent form on the screening page pre-selects and pre-fills nothing (walk 4, F6), as the re-consent
section does (docs/screening.md): no form version, no one who gave it, no decision, no time. A value nobody chose is
not recorded: a choice or time left empty is refused naming the field by its label, in English and in Persian, and
nothing is stored. On both databases.

| input          | shown at first | sent empty                  |
|----------------|----------------|-----------------------------|
| form_version   | empty choice   | refused: form_version named |
| given_by       | empty choice   | refused: given_by named     |
| obtained_at    | empty          | refused: obtained_at named  |
| decision       | empty choice   | refused: decision named     |

The regained-capacity decision beside it (a participant consented by a representative, enrolled, now able to decide)
likewise: no form version, no decision ("continue in the trial" was pre-selected, and an empty decision recorded as
one), no time; its empty decision is refused by the label that form shows, "The participant's decision" (in English
and in Persian), not the initial consent's "Decision".
"""

from __future__ import annotations

import html
import re

import pytest
from babel.messages.pofile import read_po

from tests.spec.screening.test_screening_consent_enrolment import TODAY, TYPED
from tests.spec.web.conftest import csrf_of
from tests.spec.web.test_forms_keep_input import _lar_enrolled
from tests.spec.web.test_randomization_pages import as_role
from tests.trialfixtures import Trial, who
from trialwright.domain.roles import Role
from trialwright.services.screening import get_screening, screen
from trialwright.services.users import set_preferences
from trialwright.web.i18n import catalog_path

ISOLATES = re.compile("[\u2066-\u2069]")


def _screened(trial: Trial) -> int:
    return screen(trial.engine, who(trial, Role.STUDY_COORDINATOR), site="RAZ", screened_on=TODAY, values=TYPED).id


def test_the_initial_consent_form_selects_and_fills_nothing(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    sid = _screened(trial)
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(f"/screening/{sid}").text
    _nothing_chosen(page, "", ("form_version", "given_by", "decision"))


def _nothing_chosen(page: str, prefix: str, choices: tuple[str, ...]) -> None:
    """Each choice (its input's id ``prefix`` + name) starts empty with nothing selected; the time has no value."""
    for name in choices:
        select = re.search(rf'<select id="{prefix}{name}" name="{name}">(.*?)</select>', page, re.S)
        assert select, name
        assert select.group(1).startswith('<option value=""></option>'), name
        assert " selected" not in select.group(1), name
    obtained = re.search(rf'<input id="{prefix}obtained_at" name="obtained_at"[^>]*>', page)
    assert obtained, page
    assert not re.search(r'value="[^"]', obtained.group(0)), obtained.group(0)  # no time nobody chose


@pytest.mark.parametrize("language", ["en", "fa"])
def test_a_consent_without_its_choices_is_refused_naming_them(app, trial: Trial, language: str) -> None:  # type: ignore[no-untyped-def]
    sid = _screened(trial)
    if language == "fa":
        set_preferences(trial.engine, "investigator", language="fa", calendar="gregorian")
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(f"/screening/{sid}").text
        sent = {"kind": "initial", "obtained_by": "Dr K", "form_version": "", "given_by": "", "obtained_at": "",
                "decision": "", "csrf_token": csrf_of(page)}  # fmt: skip
        refused = inv.post(f"/screening/{sid}/consent", data=sent)
    assert refused.status_code == 422
    words = ISOLATES.sub("", html.unescape(refused.text))
    with catalog_path("fa").open("rb") as handle:
        catalog = {m.id: m.string for m in read_po(handle, locale="fa") if m.id}
    labels = ["Consent form version", "Consent given by", "Date and time (site time)", "Decision"]
    if language == "fa":  # each input by its Persian label, and the rule in Persian
        labels = [catalog[label] for label in labels]
        assert "is required" not in words
    errors = " ".join(re.findall(r'class="error[^"]*"[^>]*>(.*?)</', words, re.S))
    assert all(label in errors for label in labels), errors
    assert (catalog["is required"] if language == "fa" else "is required") in errors
    assert get_screening(trial.engine, who(trial, Role.INVESTIGATOR), sid).consents == ()


def test_the_regained_capacity_form_selects_and_fills_nothing(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    sid = _lar_enrolled(trial)
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(f"/screening/{sid}").text
    assert 'data-testid="regained-form"' in page
    _nothing_chosen(page, "rc-", ("form_version", "decision"))


@pytest.mark.parametrize("language", ["en", "fa"])
def test_a_regained_capacity_decision_left_empty_is_refused_never_taken_as_continue(  # type: ignore[no-untyped-def]
    app, trial: Trial, language: str
) -> None:
    sid = _lar_enrolled(trial)
    before = get_screening(trial.engine, who(trial, Role.INVESTIGATOR), sid).consents
    if language == "fa":
        set_preferences(trial.engine, "investigator", language="fa", calendar="gregorian")
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(f"/screening/{sid}").text
        sent = {"kind": "regained_capacity", "obtained_by": "Dr K", "form_version": "", "obtained_at": "",
                "decision": "", "witness": "", "csrf_token": csrf_of(page)}  # fmt: skip
        refused = inv.post(f"/screening/{sid}/consent", data=sent)
    assert refused.status_code == 422
    words = ISOLATES.sub("", html.unescape(refused.text))
    errors = " ".join(re.findall(r'class="error[^"]*"[^>]*>(.*?)</', words, re.S))
    # each input by the label the form shows it with: the decision is "The participant's decision" (walk 5 review),
    # not the initial consent's "Decision"
    labels = ["Consent form version", "Date and time (site time)", "The participant's decision"]
    with catalog_path("fa").open("rb") as handle:
        catalog = {m.id: m.string for m in read_po(handle, locale="fa") if m.id}
    if language == "fa":
        labels = [catalog[label] for label in labels]
    for label in labels:
        assert label in errors, errors
    shown = catalog["Decision"] if language == "fa" else "Decision"
    assert shown not in errors.replace(labels[-1], ""), errors
    assert (catalog["is required"] if language == "fa" else "is required") in errors
    assert get_screening(trial.engine, who(trial, Role.INVESTIGATOR), sid).consents == before


def test_an_incomplete_withdrawal_on_regaining_capacity_is_refused_before_confirming(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    """A decision to withdraw asks for a confirmation; one without its form version or time is refused first (422),
    never confirmed and then refused."""
    sid = _lar_enrolled(trial)
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = inv.get(f"/screening/{sid}").text
        sent = {"kind": "regained_capacity", "obtained_by": "Dr K", "form_version": "", "obtained_at": "",
                "decision": "withdraw", "witness": "", "csrf_token": csrf_of(page)}  # fmt: skip
        refused = inv.post(f"/screening/{sid}/consent", data=sent)
    assert refused.status_code == 422 and 'data-testid="confirm"' not in refused.text
    assert "is required" in ISOLATES.sub("", html.unescape(refused.text))
