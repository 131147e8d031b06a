"""Randomization methods, checked over many seeds against the properties the reference asks for
(shared/reference/statistics.md) with scipy's exact and chi-square tests, and against hand-worked
minimization steps."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from trialwright.domain.randomization import Minimization, PermutedBlocks, list_checksum, strata_of

ONE_TO_ONE = {"EXO": 1, "PBO": 1}
SEEDS = range(300)
ALPHA = 0.001  # a true property fails these tests once in a thousand runs at most; seeds are fixed anyway


@pytest.fixture(scope="module")
def lists():  # type: ignore[no-untyped-def]
    method = PermutedBlocks(ONE_TO_ONE, [2, 4])
    return [method.generate(["site=RAZ", "site=GOL"], 60, seed) for seed in SEEDS]


@pytest.mark.covers("REG-8")
def test_the_same_seed_gives_the_same_list_and_checksum() -> None:
    method = PermutedBlocks(ONE_TO_ONE, [2, 4])
    a, b = method.generate(["site=RAZ"], 30, 2021), method.generate(["site=RAZ"], 30, 2021)
    assert a.entries == b.entries and a.report.checksum == b.report.checksum == list_checksum(a.entries)
    assert method.generate(["site=RAZ"], 30, 2022).entries != a.entries
    assert a.report.seed_sha256 != "2021" and len(a.report.seed_sha256) == 64
    assert "PCG64" in a.report.generator


@pytest.mark.covers("REG-8")
def test_every_completed_block_is_exactly_balanced(lists) -> None:  # type: ignore[no-untyped-def]
    for generated in lists:
        blocks: dict[tuple[str, int], list[str]] = {}
        for e in generated.entries:
            blocks.setdefault((e.stratum, e.block), []).append(e.arm)
        for arms in blocks.values():
            assert len(arms) in (2, 4) and arms.count("EXO") == arms.count("PBO")


@pytest.mark.covers("REG-8")
def test_running_imbalance_never_exceeds_half_the_largest_block(lists) -> None:  # type: ignore[no-untyped-def]
    for generated in lists:
        for stratum in ("site=RAZ", "site=GOL"):
            difference = 0
            for e in (e for e in generated.entries if e.stratum == stratum):
                difference += 1 if e.arm == "EXO" else -1
                assert abs(difference) <= 2


def test_each_allocation_is_a_fair_coin_marginally(lists) -> None:  # type: ignore[no-untyped-def]
    for position in (0, 1, 2, 5):
        exo = sum(g.entries[position].arm == "EXO" for g in lists)
        assert stats.binomtest(exo, len(lists), 0.5).pvalue > ALPHA


def test_block_sizes_are_drawn_uniformly(lists) -> None:  # type: ignore[no-untyped-def]
    sizes = Counter(e.block_size for g in lists for e in g.entries if e.position == 1)
    assert stats.chisquare([sizes[2], sizes[4]]).pvalue > ALPHA


def test_within_block_patterns_are_uniform(lists) -> None:  # type: ignore[no-untyped-def]
    patterns: Counter[tuple[str, ...]] = Counter()
    for g in lists:
        blocks: dict[tuple[str, int], list[str]] = {}
        for e in g.entries:
            if e.block_size == 4:
                blocks.setdefault((e.stratum, e.block), []).append(e.arm)
        patterns.update(tuple(b) for b in blocks.values())
    assert len(patterns) == 6  # C(4, 2) arrangements of two EXO and two PBO
    assert stats.chisquare(list(patterns.values())).pvalue > ALPHA


def test_no_serial_dependence_between_neighbours(lists) -> None:  # type: ignore[no-untyped-def]
    # Across blocks (first entries of consecutive blocks) allocations are independent.
    pairs = Counter()
    for g in lists:
        firsts = [e.arm for e in g.entries if e.position == 1 and e.stratum == "site=RAZ"]
        pairs.update(itertools.pairwise(firsts))
    table = np.array([[pairs[("EXO", "EXO")], pairs[("EXO", "PBO")]], [pairs[("PBO", "EXO")], pairs[("PBO", "PBO")]]])
    assert stats.chi2_contingency(table).pvalue > ALPHA


def test_unequal_ratio_two_to_one_to_one() -> None:
    method = PermutedBlocks({"A": 2, "B": 1, "C": 1}, [4, 8])
    generated = method.generate(["all"], 100, 7)
    blocks: dict[int, list[str]] = {}
    for e in generated.entries:
        blocks.setdefault(e.block, []).append(e.arm)
    for arms in blocks.values():
        unit = len(arms) // 4
        assert Counter(arms) == {"A": 2 * unit, "B": unit, "C": unit}
    assert generated.report.counts["all"]["A"] == 2 * generated.report.counts["all"]["B"]


@pytest.mark.parametrize("sizes", [[3], [2, 5], []])
def test_block_sizes_must_hold_the_ratio(sizes: list[int]) -> None:
    with pytest.raises(ValueError, match="multiples of the ratio sum 2"):
        PermutedBlocks(ONE_TO_ONE, sizes)


def test_strata_are_every_combination_of_levels() -> None:
    assert strata_of({"site": ["RAZ", "GOL"], "age": ["<50", ">=50"]}) == [
        "site=RAZ|age=<50", "site=RAZ|age=>=50", "site=GOL|age=<50", "site=GOL|age=>=50",
    ]  # fmt: skip
    assert strata_of({}) == ["all"]


# --- minimization -------------------------------------------------------------------------------


def test_a_hand_worked_minimization_step_range() -> None:
    # So far at site RAZ: A 3, B 1; among men: A 2, B 2. A new man at RAZ:
    # joining A gives ranges |4-1| + |3-2| = 4; joining B gives |3-2| + |2-3| = 2, so B is preferred.
    counts = {("site", "RAZ", "A"): 3, ("site", "RAZ", "B"): 1, ("sex", "male", "A"): 2, ("sex", "male", "B"): 2}
    method = Minimization({"A": 1, "B": 1}, {"site": 1, "sex": 1}, 0.8)
    assert method.g_values(counts, {"site": "RAZ", "sex": "male"}) == {"A": 4.0, "B": 2.0}
    low = method.assign(counts, {"site": "RAZ", "sex": "male"}, np.random.Generator(np.random.PCG64(1)))
    assert low.preferred == ("B",) and not low.tie


def test_a_hand_worked_minimization_step_variance_with_weights() -> None:
    # Joining A: site (4, 1) has variance 2.25, weighted x2 = 4.5; sex (3, 2) variance 0.25 -> G_A = 4.75.
    # Joining B: site (3, 2) 0.25 x2 = 0.5; sex (2, 3) 0.25 -> G_B = 0.75.
    counts = {("site", "RAZ", "A"): 3, ("site", "RAZ", "B"): 1, ("sex", "male", "A"): 2, ("sex", "male", "B"): 2}
    method = Minimization({"A": 1, "B": 1}, {"site": 2, "sex": 1}, 0.8, "variance")
    assert method.g_values(counts, {"site": "RAZ", "sex": "male"}) == pytest.approx({"A": 4.75, "B": 0.75})


def _simulate(method: Minimization, n: int, seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.Generator(np.random.PCG64(seed))
    counts: Counter[tuple[str, str, str]] = Counter()
    decisions = []
    for _ in range(n):
        levels = {"site": str(rng.choice(["RAZ", "GOL"])), "sex": str(rng.choice(["female", "male"]))}
        decision = method.assign(counts, levels, rng)
        decisions.append(decision)
        for factor, level in levels.items():
            counts[(factor, level, decision.arm)] += 1
    return decisions, counts


def test_the_least_imbalance_arm_is_chosen_with_probability_p() -> None:
    method = Minimization(ONE_TO_ONE, {"site": 1, "sex": 1}, 0.8)
    followed = total = 0
    for seed in range(40):
        decisions, _ = _simulate(method, 100, seed)
        untied = [d for d in decisions if not d.tie]
        followed += sum(d.arm in d.preferred for d in untied)
        total += len(untied)
    assert total > 1000
    assert stats.binomtest(followed, total, 0.8).pvalue > ALPHA


@pytest.mark.covers("REG-8")
def test_minimization_keeps_every_margin_nearly_balanced() -> None:
    method = Minimization(ONE_TO_ONE, {"site": 1, "sex": 1}, 0.8)
    worst = 0
    for seed in range(40):
        _, counts = _simulate(method, 200, seed)
        for factor, level in [("site", "RAZ"), ("site", "GOL"), ("sex", "female"), ("sex", "male")]:
            worst = max(worst, abs(counts[(factor, level, "EXO")] - counts[(factor, level, "PBO")]))
    # Simple randomization of 100 per level would often differ by 20 or more.
    assert worst <= 10


def test_ties_are_broken_at_random_by_ratio() -> None:
    method = Minimization(ONE_TO_ONE, {"site": 1}, 0.8)
    arms = Counter(
        method.assign({}, {"site": "RAZ"}, np.random.Generator(np.random.PCG64(seed))).arm for seed in range(400)
    )
    assert stats.binomtest(arms["EXO"], 400, 0.5).pvalue > ALPHA


def test_every_arm_pair_is_reachable_with_three_arms() -> None:
    method = Minimization({"A": 2, "B": 1, "C": 1}, {"site": 1}, 0.7)
    decisions, _counts = _simulate(method, 400, 3)
    arms = Counter(d.arm for d in decisions)
    # Ratio-adjusted counts: A about twice B and C.
    assert abs(arms["A"] / 2 - arms["B"]) <= 10 and abs(arms["B"] - arms["C"]) <= 10
    assert set(itertools.chain.from_iterable(d.preferred for d in decisions)) == {"A", "B", "C"}


def test_a_participants_level_of_each_factor() -> None:
    from trialwright.domain.randomization import StratificationError, factor_levels, level_of
    from trialwright.protocol.design import StratificationFactor

    site = StratificationFactor(id="site")
    age = StratificationFactor(id="age_band", field="age", cut_points=[50, 65])
    sex = StratificationFactor(id="sex", field="sex", levels=["female", "male"])
    assert factor_levels(site, ["RAZ", "GOL"]) == ["RAZ", "GOL"]
    assert factor_levels(age, []) == ["<50", "50-<65", ">=65"]
    assert [level_of(age, "RAZ", {"age": a}) for a in (18, 49.9, 50, 64, 65, 90)] == [
        "<50", "<50", "50-<65", "50-<65", ">=65", ">=65"
    ]  # fmt: skip
    assert level_of(site, "GOL", {}) == "GOL" and level_of(sex, "RAZ", {"sex": "male"}) == "male"
    with pytest.raises(StratificationError, match=r"age: needed to randomize \(stratification factor 'age_band'\)"):
        level_of(age, "RAZ", {})
    with pytest.raises(StratificationError, match="sex: 'other' is not one of the levels"):
        level_of(sex, "RAZ", {"sex": "other"})
