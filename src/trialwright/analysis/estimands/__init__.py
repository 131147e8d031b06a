"""Estimating what each outcome's estimand declares (``trialwright.protocol.estimands``), for any trial.

For an outcome the engine takes the estimand's population (the analysis set, grouped as the data set allows),
reads its variable for every participant, applies each intercurrent event's strategy (death from a fatal adverse
event or the protocol's death record, whichever is first; withdrawal; treatment discontinuation), and runs the main
estimator and the sensitivity estimators between each later group and the first. Whoever in the population the
main analysis cannot use is listed with the reason (``OutcomeResult.excluded``); nothing is dropped silently.
``protocol check`` has already refused every combination this module does not compute.

Blinding: efficacy outcomes are analysed in the efficacy sets (pooled in every blinded mode); variables read from
adverse events in the safety sets (by unnamed groups where the protocol allows them). The caller chooses.
"""

from __future__ import annotations

from dataclasses import replace

from trialwright.analysis.estimands.categorical import binary, ordinal
from trialwright.analysis.estimands.common import CIF_DAYS, N_, Sets, sets_of
from trialwright.analysis.estimands.continuous import continuous
from trialwright.analysis.estimands.counts import count
from trialwright.analysis.estimands.timed import duration, time_to_event
from trialwright.analysis.estimands.words import in_words
from trialwright.analysis.results import Exclusion, OutcomeResult
from trialwright.protocol import Protocol
from trialwright.protocol.estimands import Population, VariableKind
from trialwright.protocol.outcomes import Outcome

__all__ = ["CIF_DAYS", "Sets", "analyse_outcome", "in_words", "sets_of"]


def analyse_outcome(protocol: Protocol, outcome: Outcome, sets: Sets) -> list[OutcomeResult]:
    """Every result the outcome's estimand asks for (one per field of a continuous variable), each carrying the
    estimand in words."""
    words = in_words(protocol, outcome)
    unplaced: tuple[Exclusion, ...] = ()
    if outcome.estimand.population is Population.SAFETY:
        why = N_("treated with a preparation code no allocation has: in no group as treated")
        unplaced = tuple(Exclusion(s.participant_id, "none", why, "unusable") for s in sets.unplaced)
    declared = outcome.estimand.hypothesis.kind.value
    return [
        replace(r, estimand=words, excluded=r.excluded + unplaced, hypothesis=declared)
        for r in _results(protocol, outcome, sets)
    ]


def _results(protocol: Protocol, outcome: Outcome, sets: Sets) -> list[OutcomeResult]:
    kind = outcome.estimand.variable.kind
    if kind is VariableKind.CONTINUOUS:
        return [continuous(protocol, outcome, f, sets) for f in outcome.estimand.variable.fields]
    if kind is VariableKind.BINARY:
        return [binary(protocol, outcome, sets)]
    if kind is VariableKind.ORDINAL:
        return [ordinal(protocol, outcome, sets)]
    if kind is VariableKind.COUNT:
        return [count(protocol, outcome, sets)]
    if kind is VariableKind.DURATION:
        return [duration(outcome, sets)]
    if kind is VariableKind.TIME_TO_EVENT:
        return [time_to_event(outcome, sets)]
    raise ValueError(f"outcome {outcome.id}: {kind.value} variables are not analysed in this version")
