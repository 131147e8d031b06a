"""Randomization designs through the services, on SQLite and PostgreSQL, with the second example protocol
(EXAMPLE-CAP-3ARM) changed to each design: a single-site 2:1 trial with simple randomization; permuted blocks
stratified by site, a choice field and a numeric field cut into bands; minimization over a choice, a numeric and
a yes/no factor with weights at 2:1:1; and (first protocol) a stratum read from a derived screening field.

Every allocation is checked against an independent computation: the generator's stream read by hand, the stratum
worked out from the participant's values, and Pocock-Simon's G written out again here."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.conftest import FIRST_PROTOCOL
from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import PASSWORD, Trial, screener, who
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services import audit
from trialwright.services.randomization import (
    RandomizationError,
    StratumExhausted,
    balance,
    export_list,
    extend_list,
    generate_list,
    list_records,
    list_status,
    randomize,
)
from trialwright.services.screening import enrol, record_consent, screen
from trialwright.services.trial import init_trial
from trialwright.services.users import UserView, create_user, get_user
from trialwright.store.engine import make_engine

EXAMPLE = FIRST_PROTOCOL.with_name("EXAMPLE-CAP-3ARM.yaml")
#: Eligible for the example protocol (informed_consent comes from the consent record).
EXAMPLE_ELIGIBLE = {"age": 60, "sex": "male", "cap_confirmed": True, "curb65": 2, "immunosuppressed": False,
                    "concurrent_trial": False}  # fmt: skip


def example_trial(
    url: str, ratios: dict[str, int], randomization: dict[str, Any], sites: int = 2, target: int = 90
) -> Trial:
    """The example protocol with these arms and ratios, this randomization, pooled blinded tables; a user per role
    working at every site."""

    def mutate(doc: Any) -> None:
        doc["arms"] = [a for a in doc["arms"] if a["code"] in ratios]
        for arm in doc["arms"]:
            arm["ratio"] = ratios[arm["code"]]
        doc["sample_size"] = {"target": target}
        doc["sites"] = doc["sites"][:sites]
        doc["safety"]["blinded_tables"] = "pooled"
        doc["randomization"] = randomization

    loaded = load_protocol_text(mutated_text(mutate, EXAMPLE))
    engine = make_engine(url)
    init_trial(engine, loaded)
    for role in Role:
        sites = loaded.protocol.site_codes if role.site_scoped else []
        create_user(engine, username=role.value.replace("_", "-"), password=PASSWORD, role=role, sites=sites,
                    full_name=role.label, actor="test")  # fmt: skip
    return Trial(url=url, engine=engine)


def user(trial: Trial, role: Role):  # type: ignore[no-untyped-def]
    found = get_user(trial.engine, role.value.replace("_", "-"))
    assert found is not None
    return found


def enrolled(trial: Trial, site: str, values: dict[str, Any]) -> str:
    admin = screener(trial.engine)  # screening is a coordinator's (docs/roles.md)
    s = screen(trial.engine, admin, site=site, screened_on=dt.datetime.now(dt.UTC).date(), values=values)
    record_consent(trial.engine, admin, s.id, form_version="1.0", given_by="participant", obtained_by="Dr K",
                   obtained_at=dt.datetime.now(dt.UTC))  # fmt: skip
    participant = enrol(trial.engine, admin, s.id).participant
    assert participant is not None, s
    return participant.participant_id


def _by_stratum(rows: list[dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    grouped: dict[str, list[dict[str, object]]] = {}
    for row in sorted(rows, key=lambda r: (str(r["stratum"]), int(str(r["sequence"])))):
        grouped.setdefault(str(row["stratum"]), []).append(row)
    return grouped


# --- simple randomization ------------------------------------------------------------------------------


@pytest.fixture
def single_site_two_to_one(database_url: str) -> Iterator[Trial]:
    t = example_trial(database_url, {"LOW": 2, "PBO": 1}, {"method": "simple", "list_length": 90}, sites=1)
    yield t
    t.engine.dispose()


def test_simple_randomization_is_a_sealed_list_made_from_the_seed(single_site_two_to_one: Trial) -> None:
    trial = single_site_two_to_one
    statistician, investigator = user(trial, Role.UNBLINDED_STATISTICIAN), user(trial, Role.INVESTIGATOR)
    checksum = generate_list(trial.engine, statistician, seed=31)
    rows = export_list(trial.engine, statistician)
    # The list, worked out independently: stream SeedSequence(31).spawn(1)[0]; a whole number below 3 is LOW for
    # 0 and 1, PBO for 2.
    stream = np.random.Generator(np.random.PCG64(np.random.SeedSequence(31).spawn(1)[0]))
    expected = ["LOW" if d < 2 else "PBO" for d in stream.integers(0, 3, size=90)]
    assert [r["arm"] for r in sorted(rows, key=lambda r: int(str(r["sequence"])))] == expected
    assert {r["stratum"] for r in rows} == {"all"} and {r["block"] for r in rows} == {None}
    (record,) = list_records(trial.engine, statistician)
    assert (record.kind, record.method, record.entries, record.checksum) == (
        "generated", "simple randomization, ratio 2:1", 90, checksum)  # fmt: skip
    (generated,) = audit.entries(trial.engine, action_prefix="randomization.list_generated")
    assert "LOW" not in str(generated) and "PBO" not in str(generated)

    done = [randomize(trial.engine, investigator, enrolled(trial, "NTH", EXAMPLE_ELIGIBLE)) for _ in range(5)]
    assert [(d.stratum, d.number, d.arm) for d in done] == [("all", n, "masked") for n in range(1, 6)]
    claimed = sorted((r for r in export_list(trial.engine, statistician) if r["participant_id"]),
                     key=lambda r: int(str(r["randomization_number"])))  # fmt: skip
    assert [r["arm"] for r in claimed] == expected[:5]
    (row,) = balance(trial.engine, statistician)
    assert dict(row.by_arm) == dict(Counter(expected[:5])) and row.bound is None  # no block bounds simple lists
    assert [(s.stratum, s.used, s.remaining) for s in list_status(trial.engine, _stat(trial))] == [("all", 5, 85)]


def test_a_simple_list_that_runs_out_is_extended_along_the_seed_chain(database_url: str) -> None:
    simple = {"method": "simple", "list_length": 4}
    trial = example_trial(database_url, {"LOW": 2, "PBO": 1}, simple, sites=1, target=4)
    statistician, investigator = user(trial, Role.UNBLINDED_STATISTICIAN), user(trial, Role.INVESTIGATOR)
    generate_list(trial.engine, statistician, seed=5)
    for _ in range(4):
        randomize(trial.engine, investigator, enrolled(trial, "NTH", EXAMPLE_ELIGIBLE))
    waiting = enrolled(trial, "NTH", EXAMPLE_ELIGIBLE)
    with pytest.raises(StratumExhausted, match="stratum all has no entries left; the unblinded statistician must"):
        randomize(trial.engine, investigator, waiting)
    with pytest.raises(RandomizationError, match="stratum: 'site=NTH' is not one of the protocol's strata"):
        extend_list(trial.engine, statistician, "site=NTH", entries=3, reason="recruitment above plan")
    extend_list(trial.engine, statistician, "all", entries=3, reason="recruitment above plan")
    assert randomize(trial.engine, investigator, waiting).number == 5
    rows = sorted(export_list(trial.engine, statistician), key=lambda r: int(str(r["sequence"])))
    assert [r["sequence"] for r in rows] == list(range(1, 8)) and rows[4]["participant_id"] == waiting
    # Extension 1 of the only stratum draws from SeedSequence(5).spawn(1)[0].spawn(1)[0], worked out by hand.
    stream = np.random.Generator(np.random.PCG64(np.random.SeedSequence(5).spawn(1)[0].spawn(1)[0]))
    assert [r["arm"] for r in rows[4:]] == ["LOW" if d < 2 else "PBO" for d in stream.integers(0, 3, size=3)]
    records = list_records(trial.engine, statistician)
    assert [(r.kind, r.stratum, r.entries) for r in records] == [("generated", None, 4), ("extension", "all", 3)]
    assert len({r.seed_sha256 for r in records}) == 1
    (extended,) = audit.entries(trial.engine, action_prefix="randomization.list_extended")
    assert extended.reason == "recruitment above plan" and "LOW" not in str(extended) and "PBO" not in str(extended)
    trial.engine.dispose()


# --- permuted blocks stratified by screening fields ------------------------------------------------------


def test_blocks_stratified_by_site_a_choice_and_a_numeric_field(database_url: str) -> None:
    trial = example_trial(database_url, {"LOW": 2, "PBO": 1}, {
        "method": "stratified_permuted_blocks", "block_sizes": [3, 6], "list_length_per_stratum": 6,
        "stratify_by": [{"id": "site"}, {"id": "sex", "field": "sex", "levels": ["female", "male"]},
                        {"id": "curb", "field": "curb65", "cut_points": [2, 3]}]})  # fmt: skip
    statistician, investigator = user(trial, Role.UNBLINDED_STATISTICIAN), user(trial, Role.INVESTIGATOR)
    generate_list(trial.engine, statistician, seed=99)
    expected_strata = {f"site={site}|sex={sex}|curb={band}" for site in ("NTH", "STH") for sex in ("female", "male")
                       for band in ("<2", "2-<3", ">=3")}  # fmt: skip
    lists = _by_stratum(export_list(trial.engine, statistician))
    assert set(lists) == expected_strata  # one list per stratum: 2 sites x 2 sexes x 3 bands
    for rows in lists.values():
        assert len(rows) >= 6
        for block in {r["block"] for r in rows}:
            arms = Counter(str(r["arm"]) for r in rows if r["block"] == block)
            size = sum(arms.values())
            assert size in (3, 6) and arms == {"LOW": 2 * size // 3, "PBO": size // 3}
    people = [("NTH", "male", 1), ("NTH", "female", 2), ("STH", "male", 3), ("NTH", "male", 1), ("STH", "female", 2),
              ("NTH", "male", 3)]  # fmt: skip
    used: Counter[str] = Counter()
    for site, sex, curb in people:
        values = {**EXAMPLE_ELIGIBLE, "sex": sex, "curb65": curb, **({"pregnant": False} if sex == "female" else {})}
        done = randomize(trial.engine, investigator, enrolled(trial, site, values))
        band = "<2" if curb < 2 else ("2-<3" if curb < 3 else ">=3")  # worked out by hand from the cut points
        stratum = f"site={site}|sex={sex}|curb={band}"
        assert done.stratum == stratum and done.arm == "masked"
        # The participant took the next unused entry of that stratum's own list.
        entry = next(r for r in _by_stratum(export_list(trial.engine, statistician))[stratum]
                     if r["participant_id"] == done.participant_id)  # fmt: skip
        assert entry["sequence"] == used[stratum] + 1
        used[stratum] += 1
    assert {s.stratum: s.used for s in list_status(trial.engine, _stat(trial)) if s.used} == dict(used)
    trial.engine.dispose()


def test_a_stratum_read_from_a_derived_screening_field(database_url: str) -> None:
    # The first protocol's P/F ratio is derived from PaO2 and FiO2, never typed in: its band is worked out from them.
    def mutate(doc: Any) -> None:
        doc["randomization"]["stratify_by"] = [{"id": "site"}, {"id": "pf", "field": "pf_ratio", "cut_points": [150]}]

    engine = make_engine(database_url)
    init_trial(engine, load_protocol_text(mutated_text(mutate)))
    trial = Trial(url=database_url, engine=engine)
    for role in (Role.ADMINISTRATOR, Role.INVESTIGATOR, Role.UNBLINDED_STATISTICIAN):
        create_user(engine, username=role.value.replace("_", "-"), password=PASSWORD, role=role,
                    sites=["RAZ"] if role.site_scoped else [], full_name=role.label, actor="test")  # fmt: skip
    generate_list(engine, user(trial, Role.UNBLINDED_STATISTICIAN), seed=3)
    typed = {k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}
    low = enrolled(trial, "RAZ", {**typed, "pao2_mmhg": 70, "fio2": 0.5})  # P/F 140
    high = enrolled(trial, "RAZ", {**typed, "pao2_mmhg": 80, "fio2": 0.5})  # P/F 160
    investigator = user(trial, Role.INVESTIGATOR)
    assert randomize(engine, investigator, low).stratum == "site=RAZ|pf=<150"
    assert randomize(engine, investigator, high).stratum == "site=RAZ|pf=>=150"
    engine.dispose()


# --- minimization with factors and weights at 2:1:1 -------------------------------------------------------


def _g(history: list[tuple[dict[str, str], str]], levels: dict[str, str], arm: str) -> float:
    """Pocock-Simon G with the range of ratio-adjusted counts, weighted, written out again for 2:1:1."""
    ratio, weight = {"LOW": 2, "HIGH": 1, "PBO": 1}, {"site": 1.0, "sex": 1.0, "curb": 2.0, "immuno": 0.5}
    total = 0.0
    for factor, level in levels.items():
        n = dict.fromkeys(ratio, 0)
        for seen, a in history:
            n[a] += seen[factor] == level
        n[arm] += 1
        adjusted = [n[a] / ratio[a] for a in ratio]
        total += weight[factor] * (max(adjusted) - min(adjusted))
    return total


def test_minimization_over_choice_numeric_and_yes_no_factors_with_weights(database_url: str) -> None:
    factors = [
        {"id": "site", "weight": 1.0},
        {"id": "sex", "field": "sex", "levels": ["female", "male"]},
        {"id": "curb", "field": "curb65", "cut_points": [2], "weight": 2.0},
        {"id": "immuno", "field": "immunosuppressed", "levels": ["true", "false"], "weight": 0.5},
    ]
    minimization = {"method": "minimization", "probability": 0.8, "factors": factors}
    trial = example_trial(database_url, {"LOW": 2, "HIGH": 1, "PBO": 1}, minimization)
    statistician, investigator = user(trial, Role.UNBLINDED_STATISTICIAN), user(trial, Role.INVESTIGATOR)
    generate_list(trial.engine, statistician, seed=17)
    rng = np.random.default_rng(4)
    people = [(str(rng.choice(["NTH", "STH"])), str(rng.choice(["female", "male"])), int(rng.integers(1, 4)))
              for _ in range(16)]  # fmt: skip
    for site, sex, curb in people:
        values = {**EXAMPLE_ELIGIBLE, "sex": sex, "curb65": curb, **({"pregnant": False} if sex == "female" else {})}
        randomize(trial.engine, investigator, enrolled(trial, site, values))
    rows = sorted(export_list(trial.engine, statistician), key=lambda r: int(str(r["randomization_number"])))
    history: list[tuple[dict[str, str], str]] = []
    for row, (site, sex, curb) in zip(rows, people, strict=True):
        levels = {"site": site, "sex": sex, "curb": "<2" if curb < 2 else ">=2", "immuno": "false"}
        assert row["stratum"] == "|".join(f"{k}={v}" for k, v in levels.items())
        decision = json.loads(str(row["decision"]))
        g = {arm: _g(history, levels, arm) for arm in ("LOW", "HIGH", "PBO")}
        assert decision["g_values"] == pytest.approx(g)
        best = [a for a in g if abs(g[a] - min(g.values())) < 1e-9]
        assert decision["preferred"] == best
        if len(best) == 1 and decision["draw"] < 0.8:
            assert row["arm"] == best[0]
        history.append((levels, str(row["arm"])))
    trial.engine.dispose()


def _stat(trial: Trial) -> UserView:
    return who(trial, Role.UNBLINDED_STATISTICIAN)
