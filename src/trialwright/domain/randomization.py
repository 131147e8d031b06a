"""Randomization methods: how allocations are made. Pure code; the services store and conceal the list.

Each method is a small declared variant over one base (``RandomizationMethod``):

- **Stratified permuted blocks** (``PermutedBlocks``): per stratum, a sequence of blocks whose sizes are
  drawn at random from the allowed sizes; each block holds the arms exactly in the allocation ratio, in
  a random order. The whole list is made in advance from a seed, reproducibly: the same arms, strata,
  sizes and seed give the same list (NumPy's PCG64 generator, one independent stream per stratum from
  ``SeedSequence``). The generation report records the seed's SHA-256 (not the seed), the generator and
  its version, the block sizes, the counts per stratum and arm, and a checksum of the list.
- **Simple randomization** (``SimpleRandomization``): each entry drawn independently, arm j with probability
  r_j / sum(r) (a uniform whole number below the ratio sum, read against the arms' cumulative ratios, so the
  probabilities are exact). Made in advance from the seed like permuted blocks (one stratum, ``all``), so it is
  concealed, extended and audited the same way; no block restricts the balance.
- **Minimization** (``Minimization``, Pocock and Simon, Biometrics 1975;31:103): each participant goes,
  with probability p, to the arm that least increases the weighted imbalance over the factors; counts are
  divided by the arm's ratio so that unequal ratios are respected. Every G value and the random draw are
  returned for the audit trail.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from trialwright.protocol.design import StratificationFactor

__all__ = [
    "GENERATOR",
    "Allocation",
    "GeneratedList",
    "GenerationReport",
    "ListMethod",
    "Minimization",
    "MinimizationDecision",
    "PermutedBlocks",
    "RandomizationMethod",
    "SimpleRandomization",
    "StratificationError",
    "allocation_seal",
    "factor_levels",
    "level_of",
    "list_checksum",
    "seed_sha256",
    "strata_of",
]

GENERATOR = f"numpy {np.__version__} PCG64 (SeedSequence per stratum)"


@dataclass(frozen=True)
class Allocation:
    """One entry of an allocation list."""

    stratum: str
    sequence: int  # 1, 2, ... within the stratum
    block: int | None  # 1, 2, ... within the stratum (permuted blocks only)
    block_size: int | None
    position: int | None  # 1 .. block_size within the block
    arm: str


@dataclass(frozen=True)
class GenerationReport:
    """What the statistician signs off: how the list was made, and a checksum to prove it unchanged."""

    method: str
    generator: str
    seed_sha256: str
    block_sizes: tuple[int, ...]
    ratio: Mapping[str, int]
    counts: Mapping[str, Mapping[str, int]]  # stratum -> arm -> entries
    entries: int
    checksum: str


@dataclass(frozen=True)
class GeneratedList:
    """An allocation list with its report."""

    entries: tuple[Allocation, ...]
    report: GenerationReport


def seed_sha256(seed: int) -> str:
    """The seed's fingerprint, kept in the report instead of the seed."""
    return hashlib.sha256(str(seed).encode()).hexdigest()


def list_checksum(entries: Sequence[Allocation]) -> str:
    """SHA-256 over the canonical form of every entry, in order."""
    canonical = json.dumps(
        [[e.stratum, e.sequence, e.block, e.block_size, e.position, e.arm] for e in entries], separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def allocation_seal(
    seed: str, participant: str, number: int, code: str, stratum: str, sequence: int, arm: str
) -> str:
    """The seal of one randomization: an HMAC-SHA256 of the participant, number, preparation code, stratum,
    sequence and arm, keyed by the allocation list's sealed seed.

    Recorded in the ``participant.randomized`` audit entry so that a replay of the trail can tell whether the
    allocation row still holds the arm it was given (a flipped arm, or claims or codes swapped between
    entries), while a blinded reader of the trail, who never holds the seed, learns nothing of the arm.
    """
    key = hashlib.sha256(f"trialwright allocation seal|{seed}".encode()).digest()
    message = json.dumps([participant, number, code, stratum, sequence, arm], separators=(",", ":"))
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def strata_of(levels: Mapping[str, Sequence[str]]) -> list[str]:
    """Every combination of factor levels, as stable stratum keys ``site=RAZ|age=<50``."""
    if not levels:
        return ["all"]
    names = list(levels)
    return [
        "|".join(f"{n}={v}" for n, v in zip(names, combo, strict=True))
        for combo in itertools.product(*(levels[n] for n in names))
    ]


class StratificationError(ValueError):
    """A participant's stratification data is missing or outside the protocol's levels."""


def factor_levels(factor: StratificationFactor, site_codes: Sequence[str]) -> list[str]:
    """The levels of one stratification factor: sites, the codes listed, or bands cut at the cut points."""
    if factor.id == "site" and factor.field is None:
        return list(site_codes)
    if factor.levels:
        return list(factor.levels)
    if not factor.cut_points:
        raise StratificationError(f"randomization: factor {factor.id!r} needs levels or cut_points")
    return factor.bands()


def level_of(factor: StratificationFactor, site: str, values: Mapping[str, object]) -> str:
    """One participant's level of a factor, from their site and screening values."""
    if factor.id == "site" and factor.field is None:
        return site
    assert factor.field is not None
    value = values.get(factor.field)
    if value is None:
        raise StratificationError(f"{factor.field}: needed to randomize (stratification factor {factor.id!r})")
    if factor.levels:
        code = str(value).lower() if isinstance(value, bool) else str(value)
        if code not in factor.levels:
            raise StratificationError(f"{factor.field}: {code!r} is not one of the levels {factor.levels}")
        return code
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StratificationError(f"{factor.field}: must be a number to be cut at {factor.cut_points}")
    band = sum(value >= c for c in factor.cut_points)
    return factor.bands()[band]


class RandomizationMethod(ABC):
    """A way of allocating participants to arms."""

    name: str

    def __init__(self, ratio: Mapping[str, int]) -> None:
        if len(ratio) < 2 or any(r < 1 for r in ratio.values()):
            raise ValueError("at least two arms, each with a whole-number ratio >= 1")
        self.ratio = dict(ratio)

    @property
    def arms(self) -> list[str]:
        """Arm codes in protocol order."""
        return list(self.ratio)

    @abstractmethod
    def describe(self) -> str:
        """One line for reports."""


class ListMethod(RandomizationMethod):
    """A method whose allocation list is made in advance from a seed, one independent stream per stratum.

    A variant supplies ``describe`` and ``stratum_list``; generating, extending along the seed chain and the
    generation report are shared, so every listed method is concealed, extended and audited alike.
    """

    #: The allowed block sizes (empty when the method has no blocks).
    block_sizes: tuple[int, ...] = ()

    @abstractmethod
    def stratum_list(
        self, stratum: str, length: int, rng: np.random.Generator, start: int = 1, first_block: int = 1
    ) -> list[Allocation]:
        """At least ``length`` entries for one stratum, numbered from ``start`` (blocks from ``first_block``)."""

    def extension(
        self, stratum: str, stratum_index: int, number: int, after: Allocation, length: int, seed: int
    ) -> GeneratedList:
        """The ``number``-th extension (1, 2, ...) of one stratum, continuing after its last entry.

        The seed chain is kept: extension k of the i-th stratum draws from the stream spawned as
        ``SeedSequence(seed).spawn(...)[i].spawn(k)[k - 1]``, so the original seed reproduces the list and
        every extension of it, and no extension reuses a stream.
        """
        if number < 1 or length < 1:
            raise ValueError("extension number and length must be at least 1")
        child = np.random.SeedSequence(seed, spawn_key=(stratum_index, number - 1))
        entries = self.stratum_list(
            stratum, length, np.random.Generator(np.random.PCG64(child)), after.sequence + 1, (after.block or 0) + 1
        )
        return GeneratedList(tuple(entries), self._report(entries, seed))

    def _report(self, entries: Sequence[Allocation], seed: int) -> GenerationReport:
        counts: dict[str, dict[str, int]] = {}
        for e in entries:
            counts.setdefault(e.stratum, dict.fromkeys(self.arms, 0))[e.arm] += 1
        return GenerationReport(
            method=self.describe(),
            generator=GENERATOR,
            seed_sha256=seed_sha256(seed),
            block_sizes=self.block_sizes,
            ratio=dict(self.ratio),
            counts=counts,
            entries=len(entries),
            checksum=list_checksum(entries),
        )

    def generate(self, strata: Sequence[str], per_stratum: int, seed: int) -> GeneratedList:
        """The whole list: ``per_stratum`` entries (rounded up to whole blocks) for every stratum."""
        if per_stratum < 1:
            raise ValueError("per_stratum must be at least 1")
        children = np.random.SeedSequence(seed).spawn(len(strata))
        entries: list[Allocation] = []
        for stratum, child in zip(strata, children, strict=True):
            entries += self.stratum_list(stratum, per_stratum, np.random.Generator(np.random.PCG64(child)))
        return GeneratedList(tuple(entries), self._report(entries, seed))


class PermutedBlocks(ListMethod):
    """Stratified permuted blocks of randomly chosen sizes."""

    name = "stratified_permuted_blocks"

    def __init__(self, ratio: Mapping[str, int], block_sizes: Sequence[int]) -> None:
        super().__init__(ratio)
        unit = sum(self.ratio.values())
        bad = [b for b in block_sizes if b < unit or b % unit]
        if not block_sizes or bad:
            raise ValueError(f"block sizes must be multiples of the ratio sum {unit} (got {list(block_sizes)})")
        self.block_sizes = tuple(sorted(set(block_sizes)))

    def describe(self) -> str:
        ratio = ":".join(str(r) for r in self.ratio.values())
        return f"stratified permuted blocks of sizes {', '.join(map(str, self.block_sizes))}, ratio {ratio}"

    def _block(self, rng: np.random.Generator, size: int) -> list[str]:
        times = size // sum(self.ratio.values())
        content = [arm for arm, r in self.ratio.items() for _ in range(r * times)]
        return [content[i] for i in rng.permutation(len(content))]

    def stratum_list(
        self, stratum: str, length: int, rng: np.random.Generator, start: int = 1, first_block: int = 1
    ) -> list[Allocation]:
        """At least ``length`` entries for one stratum, in whole blocks."""
        entries: list[Allocation] = []
        block = first_block
        while len(entries) < length:
            size = int(rng.choice(self.block_sizes))
            for position, arm in enumerate(self._block(rng, size), 1):
                entries.append(Allocation(stratum, start + len(entries), block, size, position, arm))
            block += 1
        return entries


class SimpleRandomization(ListMethod):
    """Simple randomization: every entry an independent draw with probabilities in the ratio."""

    name = "simple"

    def describe(self) -> str:
        return f"simple randomization, ratio {':'.join(str(r) for r in self.ratio.values())}"

    def stratum_list(
        self, stratum: str, length: int, rng: np.random.Generator, start: int = 1, first_block: int = 1
    ) -> list[Allocation]:
        """Exactly ``length`` independent entries (there are no blocks, so ``first_block`` is not used)."""
        # A uniform whole number in [0, ratio sum) against the cumulative ratios: arm j with probability
        # r_j / sum(r) exactly, with no floating-point probabilities.
        bounds = np.cumsum(list(self.ratio.values()))
        draws = rng.integers(0, int(bounds[-1]), size=length)
        arms = self.arms
        return [
            Allocation(stratum, start + i, None, None, None, arms[int(np.searchsorted(bounds, d, side="right"))])
            for i, d in enumerate(draws)
        ]


@dataclass(frozen=True)
class MinimizationDecision:
    """One minimization step, with everything the audit trail needs to replay it."""

    arm: str
    g_values: Mapping[str, float]
    preferred: tuple[str, ...]  # arms with the smallest G
    draw: float  # the uniform draw that decided
    tie: bool
    followed_preference: bool = field(default=True)


class Minimization(RandomizationMethod):
    """Pocock-Simon minimization with range or variance imbalance, factor weights and probability p."""

    name = "minimization"

    def __init__(
        self,
        ratio: Mapping[str, int],
        weights: Mapping[str, float],
        probability: float,
        measure: Literal["range", "variance"] = "range",
    ) -> None:
        super().__init__(ratio)
        if not 0.5 < probability <= 1.0:
            raise ValueError("probability must be above 0.5 and at most 1")
        self.weights = dict(weights)
        self.probability = probability
        self.measure = measure

    def describe(self) -> str:
        return f"minimization ({self.measure}, p = {self.probability:g}, weights {self.weights})"

    def imbalance(self, counts: Sequence[float]) -> float:
        """Range or variance of the ratio-adjusted counts."""
        values = np.asarray(counts, dtype=float)
        return float(values.max() - values.min()) if self.measure == "range" else float(values.var())

    def g_values(self, counts: Mapping[tuple[str, str, str], int], levels: Mapping[str, str]) -> dict[str, float]:
        """G_j for each candidate arm j: the weighted imbalance if the participant joined j."""
        g: dict[str, float] = {}
        for j in self.arms:
            total = 0.0
            for factor, level in levels.items():
                adjusted = [(counts.get((factor, level, k), 0) + (k == j)) / self.ratio[k] for k in self.arms]
                total += self.weights.get(factor, 1.0) * self.imbalance(adjusted)
            g[j] = total
        return g

    def assign(
        self, counts: Mapping[tuple[str, str, str], int], levels: Mapping[str, str], rng: np.random.Generator
    ) -> MinimizationDecision:
        """Allocate one participant with these factor levels, given the counts so far."""
        g = self.g_values(counts, levels)
        best = min(g.values())
        preferred = tuple(a for a in self.arms if abs(g[a] - best) < 1e-12)
        draw = float(rng.random())
        if len(preferred) > 1:
            # A tie: simple randomization among the tied arms, weighted by their ratio.
            weights = np.array([self.ratio[a] for a in preferred], dtype=float)
            index = int(np.searchsorted(np.cumsum(weights / weights.sum()), draw, side="right"))
            return MinimizationDecision(preferred[min(index, len(preferred) - 1)], g, preferred, draw, True)
        if draw < self.probability:
            return MinimizationDecision(preferred[0], g, preferred, draw, False, True)
        others = [a for a in self.arms if a not in preferred]
        index = min(int((draw - self.probability) / (1 - self.probability) * len(others)), len(others) - 1)
        return MinimizationDecision(others[index], g, preferred, draw, False, False)
