"""The simulator runs a trial whose sites are anywhere: the three-arm example with its sites moved to
Auckland (UTC+12/+13), Los Angeles (UTC-8/-7) and two added ones in Sydney (UTC+10/+11) and Tokyo (UTC+9),
end to end on SQLite and PostgreSQL, with no error; and every date it stored is the site's local date:

- each screening's consent is on or after its screening date, and enrolment on or after consent;
- each scheduled visit is held on the randomization's date at the site plus the visit's day, inside its
  window (the simulation file is set to hold every visit, on time).

The expected dates are worked out here from the stored UTC instants and the sites' zones with zoneinfo,
not with the code under test.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ruamel.yaml import YAML
from sqlalchemy import select

from tests.spec.protocol.conftest import mutated_text
from trialwright.protocol import load_protocol
from trialwright.services.simulation import simulate
from trialwright.services.trial import init_trial
from trialwright.store.data_tables import visit_records
from trialwright.store.engine import make_engine, session_scope
from trialwright.store.randomization_tables import allocation_entries
from trialwright.store.screening_tables import consents, participants, screenings

EXAMPLE = Path(__file__).resolve().parents[3] / "protocols" / "EXAMPLE-CAP-3ARM.yaml"
ZONES = {"NTH": "Pacific/Auckland", "STH": "America/Los_Angeles", "SYD": "Australia/Sydney", "TKY": "Asia/Tokyo"}


def _sites_anywhere(document: Any) -> None:
    for code in ("SYD", "TKY"):
        site = copy.deepcopy(document["sites"][0])
        site["code"], site["name"] = code, f"{code} Hospital (fictional)"
        document["sites"].append(site)
    for site in document["sites"]:
        site["timezone"] = ZONES[site["code"]]


def _write(folder: Path) -> Path:
    protocol = folder / "SITES-ANYWHERE.yaml"
    protocol.write_text(mutated_text(_sites_anywhere, EXAMPLE), encoding="utf-8")
    yaml = YAML(typ="rt")
    plan = yaml.load(EXAMPLE.with_name("EXAMPLE-CAP-3ARM.simulation.yaml").read_text(encoding="utf-8"))
    plan["recruitment"]["sites"] = dict.fromkeys(ZONES, 1)
    plan["visits"] = {"missed": 0, "out_of_window": 0}  # every visit held, on time
    out = io.StringIO()
    yaml.dump(plan, out)
    protocol.with_name("SITES-ANYWHERE.simulation.yaml").write_text(out.getvalue(), encoding="utf-8")
    return protocol


def test_a_trial_with_sites_anywhere_simulates_with_the_sites_dates(database_url: str, tmp_path: Path) -> None:
    path = _write(tmp_path)
    loaded = load_protocol(path)
    assert {s.code: s.timezone for s in loaded.protocol.sites} == ZONES
    engine = make_engine(database_url)
    init_trial(engine, loaded)
    summary = simulate(engine, path, None, seed=11, enrolled=12)
    assert summary.enrolled == 12 and summary.randomized >= 10 and summary.forms_saved > 50
    assert summary.visits_missed == 0
    protocol = loaded.protocol
    with session_scope(engine) as session:
        screened = {r.id: r for r in session.execute(select(screenings))}
        consented = {r.screening_id: r.obtained_at for r in session.execute(select(consents))}
        people = {r.participant_id: r for r in session.execute(select(participants))}
        randomized = {r.participant_id: r.randomized_at for r in session.execute(
            select(allocation_entries).where(allocation_entries.c.participant_id.is_not(None)))}  # fmt: skip
        held = list(session.execute(select(visit_records).where(visit_records.c.visit_date.is_not(None))))
    assert {p.site for p in people.values()} == set(ZONES), "every site enrolled someone"

    def on_site(moment: dt.datetime, site: str) -> dt.date:
        return moment.astimezone(ZoneInfo(ZONES[site])).date()

    for s in screened.values():
        if s.id in consented:
            assert on_site(consented[s.id], s.site) >= s.screened_on
    for p in people.values():
        assert on_site(p.enrolled_at, p.site) >= on_site(consented[p.screening_id], p.site)
    checked = 0
    for row in held:
        visit = protocol.visit(row.visit_id)
        if visit.kind != "scheduled" or row.participant_id not in randomized:
            continue
        assert visit.reference == "randomization"
        site = people[row.participant_id].site
        reference = on_site(randomized[row.participant_id], site)
        assert row.visit_date == reference + dt.timedelta(days=visit.day), (row.participant_id, visit.id)
        assert (
            reference + dt.timedelta(days=visit.earliest)
            <= row.visit_date
            <= reference + dt.timedelta(days=visit.latest)
        )
        checked += 1
    assert checked >= 20
