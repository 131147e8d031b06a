"""The randomization pages and API, as each role uses them: the statistician's list, randomizing on the
participant page, the pharmacist's preparation, emergency unblinding and its log (both databases)."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from contextlib import contextmanager

from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.spec.web.conftest import confirm_of, csrf_of, sign_in
from tests.trialfixtures import PASSWORD, Trial, screener, username, who
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.screening import enrol, record_consent, screen
from trialwright.services.users import issue_token, set_preferences
from trialwright.web.i18n import catalog_path

ARM_NAMES = ("hUCMSC-Exos + standard care", "Placebo (PBS) + standard care")


@contextmanager
def as_role(app, role: Role) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, follow_redirects=False) as c:
        yield sign_in(c, role)


def enrolled(trial: Trial) -> str:
    admin = screener(trial.engine)  # screening is a coordinator's (docs/roles.md)
    values = {k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}
    s = screen(trial.engine, admin, site="RAZ", screened_on=dt.datetime.now(dt.UTC).date(), values=values)
    now = dt.datetime.now(dt.UTC)
    record_consent(
        trial.engine, admin, s.id, form_version="1.0", given_by="participant", obtained_by="K", obtained_at=now
    )
    participant = enrol(trial.engine, admin, s.id).participant
    assert participant is not None
    return participant.participant_id


def post(c: TestClient, path: str, form_page: str, **data: str):  # type: ignore[no-untyped-def]
    return c.post(path, data={"csrf_token": csrf_of(c.get(form_page).text), **data})


def confirmed(c: TestClient, path: str, form_page: str, **data: str):  # type: ignore[no-untyped-def]
    """Post a guarded form, then confirm on the confirmation page it answers (``web/confirm.py``)."""
    asked = post(c, path, form_page, **data)
    assert asked.status_code == 200, asked.text
    return c.post(path, data={"csrf_token": csrf_of(asked.text), "confirm": confirm_of(asked.text), **data})


def test_the_trial_runs_through_the_pages(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    pid = enrolled(trial)
    with as_role(app, Role.INVESTIGATOR) as inv:
        page = post(inv, f"/participants/{pid}/randomize", f"/participants/{pid}")
        assert page.status_code == 422 and "no allocation list yet" in page.text  # nothing lost, clear reason
    with as_role(app, Role.UNBLINDED_STATISTICIAN) as stat:
        assert post(stat, "/randomization/generate", "/randomization").status_code == 303
        listing = stat.get("/randomization")
        assert listing.text.count('data-testid="list-record"') == 1 and "site=RAZ" in listing.text
        again = post(stat, "/randomization/generate", "/randomization")
        assert again.status_code == 422 and "never regenerated" in again.text
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        assert coord.get("/randomization").status_code == 403
        assert confirmed(coord, f"/participants/{pid}/randomize", f"/participants/{pid}").status_code == 303
        shown = coord.get(f"/participants/{pid}").text
        assert 'data-testid="randomization-number">1<' in shown and "masked" in shown
        assert "Emergency unblinding" not in shown  # coordinators cannot unblind
        code = shown.split('data-testid="preparation-code">')[1].split("<")[0]
    with as_role(app, Role.UNBLINDED_PHARMACIST) as pharm:
        assert code in pharm.get("/pharmacy").text and pharm.get("/participants").status_code == 403
        what = pharm.get(f"/pharmacy/{code}").text
        assert any(name in what for name in ARM_NAMES) and "2-5 mL" in what
        # The form asks exactly what this arm declares: lot and volume; the particle count for the exosomes only.
        assert 'name="a-product_lot"' in what and 'name="a-volume_ml"' in what
        assert '2 to 5 <bdi dir="ltr">mL</bdi>' in what  # the limits in words, the unit isolated left to right
        exosomes = "hUCMSC-Exos + standard care" in what
        assert ('name="a-particles"' in what) == exosomes and 'name="volume_ml"' not in what
        bad = post(pharm, f"/pharmacy/{code}", f"/pharmacy/{code}", **{"a-product_lot": "L1", "a-volume_ml": "lots"})
        # Refused naming the attribute by the label the page shows for it, not its id.
        assert bad.status_code == 422 and "Volume drawn up: must be a number" in bad.text
        assert "volume_ml: must" not in bad.text
        assert 'value="L1"' in bad.text  # what was typed is kept
        typed = {"a-product_lot": "L1", "a-volume_ml": "3", **({"a-particles": "5e10"} if exosomes else {})}
        assert post(pharm, f"/pharmacy/{code}", f"/pharmacy/{code}", **typed).status_code == 303
        record = pharm.get(f"/pharmacy/{code}").text
        # the unit isolated left to right, as everywhere a unit is shown (docs/i18n.md)
        volume = 'data-testid="recorded-volume_ml">3 <bdi dir="ltr">mL</bdi><'
        assert 'data-testid="prepared"' in record and volume in record
        particles = 'data-testid="recorded-particles">50000000000 <bdi dir="ltr">particles</bdi><'
        assert (particles in record) == exosomes
    with as_role(app, Role.INVESTIGATOR) as inv:
        assert not any(name in inv.get(f"/participants/{pid}").text for name in ARM_NAMES)
        form = f"/participants/{pid}/unblind"
        wrong = confirmed(inv, form, form, reason="suspected anaphylaxis", password="not-mine")
        assert wrong.status_code == 422 and "Your password: re-enter your own password" in wrong.text
        assert "suspected anaphylaxis" in wrong.text  # what was typed is kept
        revealed = confirmed(inv, form, form, reason="suspected anaphylaxis", password=PASSWORD)
        assert revealed.status_code == 200 and any(name in revealed.text for name in ARM_NAMES)
        assert 'data-testid="unblinded-flag"' in inv.get(f"/participants/{pid}").text
    with as_role(app, Role.STUDY_COORDINATOR) as coord:
        shown = coord.get(f"/participants/{pid}").text
        assert 'data-testid="unblinded-flag"' in shown and not any(name in shown for name in ARM_NAMES)
    with as_role(app, Role.DSMB_MEMBER) as dsmb:
        log = dsmb.get("/unblindings").text
        assert pid in log and "suspected anaphylaxis" in log and username(Role.INVESTIGATOR) in log
        assert f"Emergency unblinding of {pid}" in dsmb.get("/").text  # the notification to the DSMB
    with as_role(app, Role.UNBLINDED_STATISTICIAN) as stat:
        bad = post(stat, "/randomization/extend", "/randomization", stratum="site=RAZ", entries="4", reason="")
        assert bad.status_code == 422 and "Reason: say why the list is extended" in bad.text
        ok = post(stat, "/randomization/extend", "/randomization", stratum="site=RAZ", entries="4", reason="busy")
        assert ok.status_code == 303 and stat.get("/randomization").text.count('data-testid="list-record"') == 2
        csv = stat.get("/randomization/list.csv")
        assert csv.status_code == 200 and csv.text.startswith("stratum,sequence,block") and "EXO" in csv.text
    assert audit.entries(trial.engine, action_prefix="randomization.list_exported")


def test_the_api_randomizes_prepares_and_unblinds(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    def bearer(role: Role) -> dict[str, str]:
        token, _ = issue_token(trial.engine, username(role), name="t", actor="test")
        return {"Authorization": f"Bearer {token}"}

    pid = enrolled(trial)
    with TestClient(app) as api:
        assert api.post("/api/v1/randomization/list", headers=bearer(Role.INVESTIGATOR)).status_code == 403
        assert api.post("/api/v1/randomization/list", headers=bearer(Role.UNBLINDED_STATISTICIAN)).status_code == 201
        inv = bearer(Role.INVESTIGATOR)
        assert api.get(f"/api/v1/participants/{pid}/randomization", headers=inv).status_code == 404
        made = api.post(f"/api/v1/participants/{pid}/randomization", headers=inv)
        assert made.status_code == 201 and made.json()["arm"] == "masked" and made.json()["randomization_number"] == 1
        again = api.post(f"/api/v1/participants/{pid}/randomization", headers=inv)
        assert again.status_code == 422 and "randomized already" in again.json()["errors"][0]["rule"]
        code = made.json()["preparation_code"]
        pharm = bearer(Role.UNBLINDED_PHARMACIST)
        assert api.get(f"/api/v1/pharmacy/{code}", headers=inv).status_code == 403
        assert api.get(f"/api/v1/pharmacy/{code}", headers=pharm).json()["arm"] in ARM_NAMES
        declared = [a["id"] for a in api.get(f"/api/v1/pharmacy/{code}", headers=pharm).json()["attributes"]]
        assert declared in (["product_lot", "volume_ml", "particles"], ["product_lot", "volume_ml"])
        values: dict[str, object] = {"product_lot": "L", "volume_ml": {"value": 3, "unit": "L"}}
        wrong = api.post(f"/api/v1/pharmacy/{code}/preparation", headers=pharm, json={"values": values})
        required = [{"field": "particles", "rule": "particles: Particle count is required", "message": None}]
        assert wrong.status_code == 422 and wrong.json()["errors"] == [
            {
                "field": "volume_ml",
                "rule": "volume_ml: is recorded in mL, not in 'L' (values are never converted)",
                "message": None,
            }
        ] + (required if "particles" in declared else [])
        values = {"product_lot": "L", "volume_ml": 3, **({"particles": 5e10} if "particles" in declared else {})}
        done = api.post(f"/api/v1/pharmacy/{code}/preparation", headers=pharm, json={"values": values})
        assert done.status_code == 201 and done.json()["prepared"]
        assert {v["id"]: v["value"] for v in done.json()["recorded"]} == values
        for blinded in (inv, bearer(Role.DATA_MANAGER)):  # the values are the pharmacist's alone
            assert api.get(f"/api/v1/pharmacy/{code}", headers=blinded).status_code == 403
            assert api.post(f"/api/v1/pharmacy/{code}/preparation", headers=blinded, json={}).status_code == 403
        refused = api.post(
            f"/api/v1/participants/{pid}/unblinding", headers=inv, json={"reason": "x", "password": "no"}
        )
        assert refused.status_code == 422 and refused.json()["errors"][0]["rule"].startswith("password")
        ok = api.post(f"/api/v1/participants/{pid}/unblinding", headers=inv, json={"reason": "x", "password": PASSWORD})
        assert ok.status_code == 201 and ok.json()["arm"] in {"EXO", "PBO"} and ok.json()["emergency_unblinded"]
        assert api.get(f"/api/v1/participants/{pid}/randomization", headers=inv).json()["arm"] == ok.json()["arm"]
        other = api.get(f"/api/v1/participants/{pid}/randomization", headers=bearer(Role.MONITOR)).json()
        assert other["arm"] == "masked" and other["emergency_unblinded"]
        (logged,) = api.get("/api/v1/unblindings", headers=bearer(Role.DSMB_MEMBER)).json()
        assert logged["participant_id"] == pid
        (stratum,) = [
            b
            for b in api.get("/api/v1/randomization/balance", headers=bearer(Role.DSMB_MEMBER)).json()
            if b["stratum"] == "site=RAZ"
        ]
        assert sum(stratum["by_arm"].values()) == 1


def test_a_simple_randomization_list_is_generated_and_extended_on_the_page(database_url: str) -> None:
    from typing import Any

    from tests.spec.protocol.conftest import mutated_text
    from tests.trialfixtures import make_trial
    from trialwright.protocol import load_protocol_text
    from trialwright.settings import Settings
    from trialwright.web.app import create_app

    def simple(doc: Any) -> None:
        doc["randomization"] = {"method": "simple", "list_length": 30}

    trial = make_trial(database_url, load_protocol_text(mutated_text(simple)))
    app = create_app(Settings(database_url=trial.url))
    with as_role(app, Role.UNBLINDED_STATISTICIAN) as stat:
        assert post(stat, "/randomization/generate", "/randomization").status_code == 303
        page = stat.get("/randomization").text
        assert "simple randomization, ratio 1:1" in page and "Adds entries to the list" in page
        assert "Adds whole blocks" not in page and '<option value="all">all</option>' in page
        ok = post(stat, "/randomization/extend", "/randomization", stratum="all", entries="5", reason="busy")
        assert ok.status_code == 303 and stat.get("/randomization").text.count('data-testid="list-record"') == 2
        rows = stat.get("/randomization/list.csv").text.strip().splitlines()
        assert len(rows) == 36 and rows[1].startswith("all,1,,,,")  # no block, block size or position
    trial.engine.dispose()


def test_the_lists_method_is_said_in_the_readers_language(app, trial: Trial) -> None:  # type: ignore[no-untyped-def]
    """The method stored with the list ("stratified permuted blocks of sizes 2, 4, ratio 1:1", the first trial's
    design) is said in the catalog's Persian with Persian digits, the ratio isolated left to right."""
    with catalog_path("fa").open("rb") as handle:
        catalog = {m.id: m.string for m in read_po(handle, locale="fa") if m.id}
    with as_role(app, Role.UNBLINDED_STATISTICIAN) as stat:
        assert post(stat, "/randomization/generate", "/randomization").status_code == 303
        english = stat.get("/randomization").text
    said = re.findall(r'data-testid="list-method">([^<]*)<', english)
    assert said == ["stratified permuted blocks of sizes 2, 4, ratio 1:1"]
    set_preferences(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN).username, language="fa")
    with as_role(app, Role.UNBLINDED_STATISTICIAN) as stat:
        persian = html.unescape(stat.get("/randomization").text)
    [method] = re.findall(r'data-testid="list-method">([^<]*)<', persian)
    expected = catalog["stratified permuted blocks of sizes %(sizes)s, ratio %(ratio)s"] % {
        "sizes": "۲" + catalog[", "] + "۴", "ratio": "\u2066۱:۱\u2069"}  # fmt: skip
    assert method == expected and "stratified" not in method


def test_the_participant_page_links_the_screening_record_only_for_a_role_that_may_read_it(  # type: ignore[no-untyped-def]
    app, trial: Trial
) -> None:
    """The screening record is read by the screeners, the administrator, the monitor and the data manager
    (docs/roles.md); an outcome assessor, who sees the participant's page, is refused it (403), so the page offers
    them no link to it, and the investigator, who may read it, still has the link that opens it."""
    pid = enrolled(trial)
    with as_role(app, Role.OUTCOME_ASSESSOR) as assessor:
        page = assessor.get(f"/participants/{pid}")
        assert page.status_code == 200 and pid in page.text
        assert 'href="/screening/' not in page.text
    with as_role(app, Role.INVESTIGATOR) as inv:
        link = re.search(r'href="(/screening/\d+)"', inv.get(f"/participants/{pid}").text)
        assert link is not None and inv.get(link.group(1)).status_code == 200
    with as_role(app, Role.OUTCOME_ASSESSOR) as assessor:
        assert assessor.get(link.group(1)).status_code == 403
