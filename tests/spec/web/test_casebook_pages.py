"""The casebook page: the investigator reviews a participant's forms and signs every ready one with one password
entry; a form changed after the page was read is refused with the reason; the monitor marks chosen forms
source-verified in one action; a blinded monitor's casebook names no arm (both databases)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.spec.forms.conftest import enrolled_ten_days_ago, randomized_days_ago
from tests.spec.forms.test_casebook import READY, trial_protocol
from tests.spec.web.conftest import csrf_of
from tests.spec.web.test_blinded_crawl import ARM_SECRETS
from tests.spec.web.test_randomization_pages import as_role
from tests.trialfixtures import PASSWORD, Trial, username, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services import forms as svc
from trialwright.services.users import issue_token
from trialwright.store.auth_tables import users


def _complete(trial: Trial, pid: str) -> None:
    coordinator = who(trial, Role.STUDY_COORDINATOR)
    for form_id, values in READY.items():
        svc.save_form(trial.engine, coordinator, pid, "baseline", form_id, values)
        svc.complete_form(trial.engine, coordinator, pid, "baseline", form_id)
    svc.save_form(trial.engine, coordinator, pid, "baseline", "labs", {})


def _full_name(trial: Trial, user: str) -> str:
    with trial.engine.connect() as conn:
        return str(conn.execute(select(users.c.full_name).where(users.c.username == user)).scalar_one())


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
        posted = inv.post(f"{url}/sign", data={"csrf_token": token, "form": chosen, "password": PASSWORD})
        assert posted.status_code == 303 and posted.headers["location"] == url  # post, redirect, get
        signed = inv.get(url)
        assert signed.text.count('data-testid="done"') == 2
        # the visit by its name, not its id
        assert re.search(r'data-testid="excluded">Baseline \(before infusion\) · [^<:]+: changed since you reviewed it',
                         signed.text)  # fmt: skip
        # The signature manifestation names the person (21 CFR 11.50), as the users table holds them.
        name = _full_name(trial, "investigator")
        assert signed.text.count(f'data-testid="signature">signed by {name} (investigator)') == 2
        assert 'data-testid="outcome"' not in inv.get(url).text  # a reload shows the page, posts nothing again
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
        posted = monitor.post(f"{url}/verify", data={"csrf_token": csrf_of(page.text), "form": whole, "field": picked})
        assert posted.status_code == 303
        done = monitor.get(url)
        assert done.text.count('data-testid="done"') == 3
        assert done.text.count('data-testid="field-verified-baseline-blood_gas-') == len(required)
        assert not [s for s in ARM_SECRETS if re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", done.text)]
        assert monitor.post(f"{url}/sign", data={"csrf_token": csrf_of(page.text), "form": chosen}).status_code == 403
    assert sorted(e.form or "" for e in audit.entries(trial.engine, action_prefix="form.verified")) == sorted(READY)
    assert len(audit.entries(trial.engine, action_prefix="form.field_verified")) == len(required)
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        page = coord.get(url)
        assert page.status_code == 200 and 'name="form"' not in page.text  # reads it; neither signs nor verifies


def _count(html: str, testid: str) -> int:
    match = re.search(rf'data-testid="{testid}">(\d+)<', html)
    assert match, f"no {testid} on the page"
    return int(match.group(1))


def test_field_by_field_verification_is_counted_and_the_form_is_verified_with_its_last_field(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    _complete(trial, pid)
    url = f"/data/casebook/{pid}"
    required = svc.verification_fields(trial_protocol(trial), "blood_gas")
    assert len(required) >= 2
    with as_role(app, Role.MONITOR) as monitor:
        for n, field_id in enumerate(required, start=1):
            page = monitor.get(url).text
            seal = re.search(r'name="field" value="baseline\|blood_gas\|([^|"]+)\|', page)
            assert seal
            chosen = [f"baseline|blood_gas|{seal.group(1)}|{field_id}"]
            posted = monitor.post(f"{url}/verify", data={"csrf_token": csrf_of(page), "field": chosen})
            assert posted.status_code == 303
            after = monitor.get(url).text
            assert _count(after, "fields-count") == 1  # this post verified one field: said, never "Verified: 0"
            last = n == len(required)
            assert _count(after, "done-count") == (1 if last else 0)  # the form, once its last required field is
            assert after.count('data-testid="field-verified-baseline-blood_gas-') == n
            assert 'data-testid="outcome"' not in monitor.get(url).text  # shown once
    book = svc.casebook(trial.engine, who(trial, Role.MONITOR), pid)
    assert next(f for f in book.forms if f.form_id == "blood_gas").view.state.value == "verified"  # type: ignore[union-attr]
    verified_by = {e.form for e in audit.entries(trial.engine, action_prefix="form.verified")}
    assert verified_by == {"blood_gas"}
    assert len(audit.entries(trial.engine, action_prefix="form.field_verified")) == len(required)


def test_the_api_verifies_field_by_field_as_the_page_does(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled_ten_days_ago(trial)
    _complete(trial, pid)
    token, _ = issue_token(trial.engine, username(Role.MONITOR), name="t", actor="test")
    headers = {"Authorization": f"Bearer {token}"}
    required = svc.verification_fields(trial_protocol(trial), "blood_gas")
    url = f"/api/v1/participants/{pid}/casebook"
    with TestClient(app) as api:
        book = api.get(url, headers=headers).json()
        gas = next(f for f in book["forms"] if f["form_id"] == "blood_gas")
        assert gas["verified_fields"] == []
        first = {"visit_id": "baseline", "form_id": "blood_gas", "seal": gas["seal"], "fields": list(required[:1])}
        part = api.post(f"{url}/verify", headers=headers, json={"fields": [first]})
        assert part.status_code == 200, part.text
        assert part.json()["done"] == [] and part.json()["fields_verified"] == [
            {"visit_id": "baseline", "form_id": "blood_gas", "field": required[0]}]  # fmt: skip
        rest = {**first, "fields": list(required[1:])}
        whole = api.post(f"{url}/verify", headers=headers, json={"fields": [rest]})
        assert [f["form_id"] for f in whole.json()["done"]] == ["blood_gas"]
        assert whole.json()["done"][0]["state"] == "verified"
        again = next(f for f in api.get(url, headers=headers).json()["forms"] if f["form_id"] == "blood_gas")
        assert again["verified_fields"] == sorted(required)
        stale = {**first, "seal": "0" * 20, "form_id": "vitals", "fields": ["pulse"]}
        left = api.post(f"{url}/verify", headers=headers, json={"fields": [stale]}).json()
        assert left["excluded"] == [{"visit_id": "baseline", "form_id": "vitals",
                                     "reason": "changed since you reviewed it; review the casebook again"}]  # fmt: skip
        assert api.post(f"{url}/verify", headers=headers, json={"fields": [{**first, "fields": []}]}).status_code == 422
    assert len(audit.entries(trial.engine, action_prefix="form.field_verified")) == len(required)
