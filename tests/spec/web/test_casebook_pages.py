"""The casebook page: the investigator reviews a participant's forms and signs every ready one with one password
entry; a form changed after the page was read is refused with the reason; the monitor marks chosen forms
source-verified in one action; a blinded monitor's casebook names no arm (both databases)."""

from __future__ import annotations

import re

from tests.spec.forms.conftest import enrolled_ten_days_ago, randomized_days_ago
from tests.spec.forms.test_casebook import READY, trial_protocol
from tests.spec.web.conftest import csrf_of
from tests.spec.web.test_blinded_crawl import ARM_SECRETS
from tests.spec.web.test_randomization_pages import as_role
from tests.trialfixtures import PASSWORD, Trial, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services import forms as svc


def _complete(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    for form_id, values in READY.items():
        svc.save_form(trial.engine, coordinator, pid, "baseline", form_id, values)
        svc.complete_form(trial.engine, coordinator, pid, "baseline", form_id)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {})


def _chosen(html: str) -> list[str]:
    return re.findall(r'name="form" value="([^"]+)" checked', html)


def test_the_investigator_signs_the_casebook_with_one_password(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    _complete(trial, pid)
    url = f"/data/casebook/{pid}"
    with as_role(app, Role.INVESTIGATOR) as inv:
        matrix = inv.get("/data/matrix").text  # the casebook is reached from the participant's row of the matrix
        assert f'href="{url}" data-testid="casebook-link"' in matrix
        page = inv.get(url)
        assert page.status_code == 200
        chosen = _chosen(page.text)
        assert sorted(c.split("|")[1] for c in chosen) == sorted(READY)
        assert 'data-testid="why-baseline-labs">Not ready: not complete<' in page.text
        assert 'data-testid="value-baseline-vitals-pulse">115' in page.text  # every value as stored
        # in words: yes/no, never True/False; a choice by its label, never its code
        assert 'data-testid="value-baseline-vitals-on_oxygen">yes<' in page.text and ">True<" not in page.text
        choices = trial_protocol(trial).form("vitals").field("consciousness").choices
        alert = next(c.label for c in choices if c.code == "alert")
        assert f'data-testid="value-baseline-vitals-consciousness">{alert}<' in page.text
        assert "Investigator User" in page.text and "legally binding" in page.text  # who signs, and what it means
        # A value saved by someone else after the page was read: that form is not signed, and says why.
        svc.save_form(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid, "baseline", "blood_gas",
                      {"pao2": 85}, reason="source says 85")  # fmt: skip
        token = csrf_of(page.text)
        wrong = inv.post(f"{url}/sign", data={"csrf_token": token, "form": chosen, "password": "wrong"})
        assert wrong.status_code == 422 and "password" in wrong.text
        signed = inv.post(f"{url}/sign", data={"csrf_token": token, "form": chosen, "password": PASSWORD})
        assert signed.status_code == 200
        assert signed.text.count('data-testid="done"') == 2
        # the visit by its name, not its id
        assert re.search(r'data-testid="excluded">Baseline \(before infusion\) · [^<:]+: changed since you reviewed it',
                         signed.text)  # fmt: skip
        assert signed.text.count('data-testid="signature">signed by investigator') == 2
    entries = audit.entries(trial.engine, action_prefix="form.signed")
    assert sorted(e.form or "" for e in entries) == ["performance", "vitals"]
    assert len(audit.entries(trial.engine, action_prefix="user.reentry_failed")) == 1  # the one wrong entry


def test_the_monitor_verifies_in_bulk_and_sees_no_arm(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    randomized_days_ago(trial, pid, 1)
    _complete(trial, pid)
    url = f"/data/casebook/{pid}"
    with as_role(app, Role.MONITOR) as monitor:
        page = monitor.get(url)
        assert page.status_code == 200
        assert [s for s in ARM_SECRETS if re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", page.text)] == []
        assert _chosen(page.text) == []  # a verification is chosen, never pre-chosen
        chosen = re.findall(r'name="form" value="([^"]+)"', page.text)
        assert sorted(c.split("|")[1] for c in chosen) == sorted(READY)
        # Two forms as a whole; the blood gas field by field (every required field: the form is verified).
        gas = re.findall(r'name="field" value="(baseline\|blood_gas\|[^"]+)"', page.text)
        required = svc.verification_fields(trial_protocol(trial), "blood_gas")
        picked = [g for g in gas if g.rsplit("|", 1)[1] in required]
        assert len(picked) == len(required)
        whole = [c for c in chosen if "|blood_gas|" not in c]
        done = monitor.post(f"{url}/verify", data={"csrf_token": csrf_of(page.text), "form": whole, "field": picked})
        assert done.status_code == 200 and done.text.count('data-testid="done"') == 3
        assert done.text.count('data-testid="field-verified-baseline-blood_gas-') == len(required)
        assert not [s for s in ARM_SECRETS if re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", done.text)]
        assert monitor.post(f"{url}/sign", data={"csrf_token": csrf_of(page.text), "form": chosen}).status_code == 403
    assert sorted(e.form or "" for e in audit.entries(trial.engine, action_prefix="form.verified")) == sorted(READY)
    assert len(audit.entries(trial.engine, action_prefix="form.field_verified")) == len(required)
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(url)
        assert page.status_code == 200 and 'name="form"' not in page.text  # reads it; neither signs nor verifies
