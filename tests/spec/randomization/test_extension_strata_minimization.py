"""A stratum that runs out, the audited extension along the seed chain, strata beyond site,
minimization in the service, the balance report and what each viewer sees, on both databases."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.spec.eligibility.test_first_trial_criteria import ELIGIBLE
from tests.spec.protocol.conftest import mutated_text
from tests.trialfixtures import PASSWORD, Trial, make_trial, screener, who
from trialwright.domain.randomization import PermutedBlocks
from trialwright.domain.roles import Role
from trialwright.protocol import load_protocol_text
from trialwright.services import audit
from trialwright.services.randomization import (
    RandomizationError,
    allocation_of,
    balance,
    emergency_unblind,
    export_list,
    extend_list,
    generate_list,
    list_records,
    list_status,
    randomize,
)
from trialwright.services.screening import enrol, record_consent, screen
from trialwright.services.users import UserView

TYPED = {k: v for k, v in ELIGIBLE.items() if k != "informed_consent"}


def trial_with(database_url: str, randomization: dict[str, Any]) -> Trial:
    def change(doc: Any) -> None:
        doc["randomization"] = randomization

    return make_trial(database_url, load_protocol_text(mutated_text(change)))


@pytest.fixture
def short_list(database_url: str) -> Iterator[Trial]:
    t = trial_with(
        database_url,
        {
            "method": "stratified_permuted_blocks",
            "block_sizes": [2],
            "stratify_by": [{"id": "site"}],
            "list_length_per_stratum": 2,
        },
    )
    yield t
    t.engine.dispose()


def enrolled(trial: Trial, site: str = "RAZ", **values: Any) -> str:
    admin = screener(trial.engine)  # screening is a coordinator's (docs/roles.md)
    s = screen(trial.engine, admin, site=site, screened_on=dt.datetime.now(dt.UTC).date(), values={**TYPED, **values})
    now = dt.datetime.now(dt.UTC)
    record_consent(
        trial.engine, admin, s.id, form_version="1.0", given_by="participant", obtained_by="K", obtained_at=now
    )
    participant = enrol(trial.engine, admin, s.id).participant
    assert participant is not None
    return participant.participant_id


def test_an_exhausted_stratum_says_so_and_an_audited_extension_continues_it(short_list: Trial) -> None:
    trial = short_list
    statistician, investigator = who(trial, Role.UNBLINDED_STATISTICIAN), who(trial, Role.INVESTIGATOR)
    generate_list(trial.engine, statistician, seed=7)
    for _ in range(2):
        randomize(trial.engine, investigator, enrolled(trial))
    waiting = enrolled(trial)
    with pytest.raises(RandomizationError, match=r"stratum site=RAZ has no entries left.*must extend the list"):
        randomize(trial.engine, investigator, waiting)
    with pytest.raises(RandomizationError, match="only the unblinded statistician"):
        extend_list(trial.engine, investigator, "site=RAZ", entries=4, reason="ran out")
    with pytest.raises(RandomizationError, match="reason"):
        extend_list(trial.engine, statistician, "site=RAZ", entries=4, reason=" ")
    with pytest.raises(RandomizationError, match="stratum: 'site=XYZ' is not one of"):
        extend_list(trial.engine, statistician, "site=XYZ", entries=4, reason="ran out")

    extend_list(trial.engine, statistician, "site=RAZ", entries=4, reason="recruitment above plan")
    assert randomize(trial.engine, investigator, waiting).number == 3
    extend_list(trial.engine, statistician, "site=RAZ", entries=2, reason="again")

    raz = [e for e in export_list(trial.engine, statistician) if e["stratum"] == "site=RAZ"]
    assert [e["sequence"] for e in raz] == list(range(1, 9)) and [e["block"] for e in raz] == [1, 1, 2, 2, 3, 3, 4, 4]
    # The seed chain: extension k of stratum i is the stream numpy spawns as spawn(...)[i].spawn(k)[k-1].
    method = PermutedBlocks({"EXO": 1, "PBO": 1}, [2])
    for k, (first, last) in enumerate([(2, 6), (6, 8)], start=1):
        stream = np.random.SeedSequence(7).spawn(2)[0].spawn(k)[k - 1]
        expected = method.stratum_list("site=RAZ", last - first, np.random.Generator(np.random.PCG64(stream)))
        assert [e["arm"] for e in raz[first:last]] == [a.arm for a in expected]
    records = list_records(trial.engine, statistician)
    assert [(r.kind, r.stratum, r.extension_number, r.entries) for r in records] == [
        ("generated", None, None, 4),
        ("extension", "site=RAZ", 1, 4),
        ("extension", "site=RAZ", 2, 2),
    ]
    assert len({r.seed_sha256 for r in records}) == 1  # one seed, one chain
    extended = audit.entries(trial.engine, action_prefix="randomization.list_extended")
    assert [e.reason for e in extended] == ["again", "recruitment above plan"]  # newest first
    assert all("EXO" not in str(e) and "PBO" not in str(e) for e in extended)
    assert {s.stratum: (s.used, s.remaining) for s in list_status(trial.engine, _stat(trial))}["site=RAZ"] == (3, 5)


def test_strata_can_cross_site_with_a_screening_field_cut_into_bands(database_url: str) -> None:
    trial = trial_with(
        database_url,
        {
            "method": "stratified_permuted_blocks",
            "block_sizes": [2, 4],
            "list_length_per_stratum": 4,
            "stratify_by": [{"id": "site"}, {"id": "age_band", "field": "age", "cut_points": [50]}],
        },
    )
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=1)
    assert [s.stratum for s in list_status(trial.engine, _stat(trial))] == [
        "site=GOL|age_band=<50",
        "site=GOL|age_band=>=50",
        "site=RAZ|age_band=<50",
        "site=RAZ|age_band=>=50",
    ]
    young = randomize(trial.engine, who(trial, Role.INVESTIGATOR), enrolled(trial, age=49))
    old = randomize(trial.engine, who(trial, Role.INVESTIGATOR), enrolled(trial, age=50))
    assert (young.stratum, old.stratum) == ("site=RAZ|age_band=<50", "site=RAZ|age_band=>=50")
    trial.engine.dispose()


def _range_g(history: list[tuple[dict[str, str], str]], levels: dict[str, str], arm: str) -> int:
    """Pocock-Simon G with the range, two arms 1:1, weights 1, written out by hand."""
    total = 0
    for factor, level in levels.items():
        n = {"EXO": 0, "PBO": 0}
        for seen, a in history:
            n[a] += seen[factor] == level
        n[arm] += 1
        total += abs(n["EXO"] - n["PBO"])
    return total


def test_minimization_in_the_service_follows_pocock_simon_and_keeps_each_decision(database_url: str) -> None:
    trial = trial_with(
        database_url,
        {
            "method": "minimization",
            "probability": 0.8,
            "factors": [{"id": "site"}, {"id": "sex", "field": "sex", "levels": ["female", "male"]}],
        },
    )
    statistician, investigator = who(trial, Role.UNBLINDED_STATISTICIAN), who(trial, Role.INVESTIGATOR)
    generate_list(trial.engine, statistician, seed=42)
    assert [r.kind for r in list_records(trial.engine, statistician)] == ["minimization"]
    sexes = ["male", "male", "female", "male", "female", "female", "male", "male", "female", "male", "male", "male"]
    for sex in sexes:
        extra = {"pregnant": False} if sex == "female" else {}
        assert randomize(trial.engine, investigator, enrolled(trial, sex=sex, **extra)).arm == "masked"
    rows = sorted(export_list(trial.engine, statistician), key=lambda e: int(str(e["randomization_number"])))
    history: list[tuple[dict[str, str], str]] = []
    for row, sex in zip(rows, sexes, strict=True):
        levels = {"site": "RAZ", "sex": sex}
        assert row["stratum"] == f"site=RAZ|sex={sex}"
        decision = json.loads(str(row["decision"]))
        g = {arm: _range_g(history, levels, arm) for arm in ("EXO", "PBO")}
        assert decision["g_values"] == pytest.approx(g)
        best = [a for a in g if g[a] == min(g.values())]
        if len(best) == 1:
            expected = best[0] if decision["draw"] < 0.8 else next(a for a in g if a not in best)
            assert row["arm"] == expected
        history.append((levels, str(row["arm"])))
    arms = [h[1] for h in history]
    assert abs(arms.count("EXO") - arms.count("PBO")) <= 2
    trial.engine.dispose()


def test_the_balance_report_counts_arms_per_stratum_for_the_unblinded_only(database_url: str) -> None:
    trial = make_trial(database_url)
    statistician = who(trial, Role.UNBLINDED_STATISTICIAN)
    generate_list(trial.engine, statistician, seed=2024)
    for site in ["RAZ"] * 7 + ["GOL"] * 3:
        randomize(trial.engine, _randomizer(trial, site), enrolled(trial, site))
    rows = export_list(trial.engine, statistician)
    report = {b.stratum: b for b in balance(trial.engine, statistician)}
    for stratum in ("site=RAZ", "site=GOL"):
        arms = [
            r["arm"]
            for r in sorted(rows, key=lambda r: r["sequence"])
            if r["stratum"] == stratum and r["participant_id"]
        ]
        running = [abs(arms[: i + 1].count("EXO") - arms[: i + 1].count("PBO")) for i in range(len(arms))]
        assert dict(report[stratum].by_arm) == {"EXO": arms.count("EXO"), "PBO": arms.count("PBO")}
        assert report[stratum].worst_running == max(running) <= report[stratum].bound == 2
    assert balance(trial.engine, who(trial, Role.DSMB_MEMBER))
    with pytest.raises(RandomizationError, match="balance report"):
        balance(trial.engine, who(trial, Role.INVESTIGATOR))
    trial.engine.dispose()


def _randomizer(trial: Trial, site: str):  # type: ignore[no-untyped-def]
    """An investigator at this site (the fixture's investigator works at RAZ)."""
    from trialwright.services.users import create_user, get_user

    name = f"investigator-{site.lower()}"
    if get_user(trial.engine, name) is None:
        create_user(
            trial.engine,
            username=name,
            password=PASSWORD,
            role=Role.INVESTIGATOR,
            sites=[site],
            full_name=name,
            actor="test",
        )
    user = get_user(trial.engine, name)
    assert user is not None
    return user


def test_each_viewer_sees_the_randomization_and_the_arm_only_as_masking_allows(database_url: str) -> None:
    trial = make_trial(database_url)
    generate_list(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), seed=8)
    pid = enrolled(trial)
    assert allocation_of(trial.engine, who(trial, Role.INVESTIGATOR), pid) is None
    done = randomize(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid)
    for role in (Role.INVESTIGATOR, Role.STUDY_COORDINATOR, Role.MONITOR, Role.DATA_MANAGER, Role.OUTCOME_ASSESSOR):
        seen = allocation_of(trial.engine, who(trial, role), pid)
        assert seen is not None and (seen.number, seen.arm, seen.unblinded) == (done.number, "masked", False)
    true_arm = allocation_of(trial.engine, who(trial, Role.UNBLINDED_STATISTICIAN), pid)
    assert true_arm is not None and true_arm.arm in {"EXO", "PBO"}
    emergency_unblind(trial.engine, who(trial, Role.INVESTIGATOR), pid, reason="bleeding", password=PASSWORD)
    mine = allocation_of(trial.engine, who(trial, Role.INVESTIGATOR), pid)
    theirs = allocation_of(trial.engine, who(trial, Role.STUDY_COORDINATOR), pid)
    assert mine is not None and theirs is not None
    assert (mine.arm, mine.unblinded) == (true_arm.arm, True)
    assert (theirs.arm, theirs.unblinded) == ("masked", True)  # flagged for everyone, revealed to one
    trial.engine.dispose()


def _stat(trial: Trial) -> UserView:
    return who(trial, Role.UNBLINDED_STATISTICIAN)
