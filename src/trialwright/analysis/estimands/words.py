"""An estimand in words a DSMB member reads: the five attributes and the estimators, for `protocol show` and the
report."""

from __future__ import annotations

from trialwright.analysis.estimands.common import (
    METHOD,
)
from trialwright.protocol import Protocol
from trialwright.protocol.estimands import (
    AdverseEventKind,
    Estimator,
    Scale,
    Strategy,
    Summary,
    VariableKind,
)
from trialwright.protocol.outcomes import Outcome

__all__ = ["in_words"]


_SUMMARY_WORDS = {
    Summary.DIFFERENCE_IN_MEANS: "the difference in means between the arms",
    Summary.RATIO_OF_GEOMETRIC_MEANS: "the ratio of geometric means between the arms",
    Summary.HODGES_LEHMANN_SHIFT: "the Hodges-Lehmann shift between the arms",
    Summary.RISK_DIFFERENCE: "the difference in the proportion with the event between the arms",
    Summary.RISK_RATIO: "the ratio of the proportions with the event between the arms",
    Summary.ODDS_RATIO: "the odds ratio of the event between the arms",
    Summary.COMMON_ODDS_RATIO: "the common odds ratio of a higher category between the arms",
    Summary.HAZARD_RATIO: "the hazard ratio between the arms",
    Summary.SUBDISTRIBUTION_HAZARD_RATIO: "the subdistribution hazard ratio of ending the stay alive between the arms",
    Summary.RATE_RATIO: "the ratio of the mean counts (rate ratio) between the arms",
    Summary.RMST_DIFFERENCE: "the difference in restricted mean time free of the event between the arms",
}

_STRATEGY_WORDS = {
    Strategy.TREATMENT_POLICY: "treatment policy: the value whatever happened (a value it prevents is missing, and "
    "the participant is listed as not analysed)",
    Strategy.COMPOSITE: "composite: the event is part of the outcome",
    Strategy.HYPOTHETICAL: "hypothetical: as if it had not happened",
    Strategy.WHILE_ON_TREATMENT: "while on treatment: only what happened up to the day the intervention stopped "
    "(adverse events counted to that day; a time to event censored there; the never treated listed)",
    Strategy.PRINCIPAL_STRATUM: "principal stratum",
    Strategy.COMPETING: "a competing event: it ends the stay otherwise than alive, never dropped or censored",
}


def in_words(protocol: Protocol, outcome: Outcome) -> tuple[tuple[str, str], ...]:
    """The estimand's five attributes and its estimators as sentences a DSMB member reads."""
    e = outcome.estimand
    v = e.variable
    set_name = next((a.name for a in protocol.analysis_sets if a.id == e.population.value), e.population.value)
    definition = next((a.definition for a in protocol.analysis_sets if a.id == e.population.value), "")

    def label(ref: str) -> str:
        form_id, _, field_id = ref.partition(".")
        f = protocol.form(form_id).field(field_id)
        text = f.label
        if len(text) > 1 and text[0].isupper() and text[1].islower():
            text = text[0].lower() + text[1:]  # mid-sentence ("where the participant lives"), not "CD4" or "NEWS2"
        return f"{text} ({ref})"

    def visit(visit_id: str | None) -> str:
        return protocol.visit(visit_id).name if visit_id else ""

    if v.kind is VariableKind.CONTINUOUS:
        what = ", ".join(label(f) for f in v.fields)
        variable = f"{what} at {visit(v.at)}"
        if v.visits:
            variable += f" (from its values at {', '.join(visit(x) for x in v.visits)})"
        if v.baseline:
            variable += f", adjusted for its value at {visit(v.baseline)}"
        if v.change_from_baseline:
            variable += " (described as the change from it)"
        if v.scale is Scale.LOG:
            variable += ", on the log scale"
    elif v.kind is VariableKind.BINARY and v.adverse_event is not None:
        kind = "a serious adverse event" if v.adverse_event is AdverseEventKind.SAE else "death"
        variable = f"whether the participant had {kind} from the start of treatment (day 0) to day {v.up_to_day}"
    elif v.kind is VariableKind.BINARY:
        variable = f"whether {label(v.fields[0])} at {visit(v.at)} is {' or '.join(v.event_values)}"
    elif v.kind is VariableKind.COUNT:
        variable = f"{label(v.fields[0])} at {visit(v.at)}, a count"
    elif v.kind is VariableKind.ORDINAL:
        variable = f"{label(v.fields[0])} at {visit(v.at)}, ordered {' < '.join(v.order)}"
    elif v.kind is VariableKind.TIME_TO_EVENT and v.adverse_event is None:
        form_id, _, field_id = v.fields[0].partition(".")
        variable = (
            f"days from randomization to the date recorded in {v.fields[0]} "
            f"('{protocol.form(form_id).field(field_id).label}', at {visit(v.at)}; blank while the event has not "
            f"happened), followed to day {v.up_to_day}"
        )
    elif v.kind is VariableKind.TIME_TO_EVENT:
        kind = "the first serious adverse event" if v.adverse_event is AdverseEventKind.SAE else "death"
        variable = f"days from randomization to {kind}, followed to day {v.up_to_day}"
    else:
        variable = f"{label(v.fields[0])}: the stay's length, ending alive or in death"
    tte = " (followed until it, then censored)"
    if v.kind is VariableKind.TIME_TO_EVENT and v.adverse_event is None:
        tte = (
            " (followed until it, then censored, when a form recorded the event or its absence first; otherwise "
            "listed as not analysed: nothing says whether the event happened)"
        )
    how = {
        VariableKind.TIME_TO_EVENT: tte,
        VariableKind.CONTINUOUS: " (the values missing after it are modelled as missing at random)",
    }.get(v.kind, "")
    events = "; ".join(
        f"{x.event.replace('_', ' ')}: {_STRATEGY_WORDS[x.strategy]}"
        + (how if x.strategy is Strategy.HYPOTHETICAL else "")
        + (f" (it counts as {x.value})" if x.value is not None else "")
        for x in e.intercurrent_events
    )
    names = {a.id: a.name for a in protocol.analysis_sets}
    sensitivity = "; ".join(
        METHOD.get(s.estimator, s.estimator.value)
        + (f" (population: {names[s.population.value]})" if s.population else "")
        for s in e.sensitivity
    )
    covariance = f"; {e.covariance.replace('_', ' ')} covariance" if e.estimator is Estimator.MMRM else ""
    return (
        ("Population", f"{set_name}: {definition}".rstrip(": ")),
        ("Variable", variable),
        ("Intercurrent events", events or "none declared"),
        ("Summary", _SUMMARY_WORDS[e.summary]),
        ("Estimator", METHOD.get(e.estimator, e.estimator.value) + covariance),
        ("Sensitivity", sensitivity or "none"),
    )
