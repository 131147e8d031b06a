"""An estimand in words a DSMB member reads: the five attributes and the estimators, for `protocol show` and the
report.

English by default (``protocol show``, ``results.json``, the report's own English); in another language
(``Speech``: the reader's catalog and digits, given by the web) the app's sentences are the catalog's and the
protocol's texts (the analysis set's name and definition, a field's label and choices, a visit's name) are the
protocol's translations, so a Persian report says the whole estimand in Persian."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from trialwright.analysis.estimands.common import METHOD, N_
from trialwright.protocol import Protocol
from trialwright.protocol.estimands import (
    AdverseEventKind,
    Estimator,
    Hypothesis,
    HypothesisKind,
    IntercurrentEvent,
    Scale,
    Strategy,
    Summary,
    VariableKind,
)
from trialwright.protocol.outcomes import Outcome

__all__ = ["ENGLISH", "Speech", "hypothesis_words", "in_words"]


def _same(text: str) -> str:
    return text


@dataclass(frozen=True)
class Speech:
    """The language an estimand is said in: its code, the catalog (``gettext``: an English message to the
    language) and its digits (``digits``: a number as the language writes it). English by default."""

    lang: str = "en"
    gettext: Callable[[str], str] = _same
    digits: Callable[[str], str] = _same


ENGLISH = Speech()

_EVENT_WORDS = {
    "death": N_("death"),
    "withdrawal": N_("withdrawal"),
    "treatment_discontinuation": N_("treatment discontinuation"),
}
_VALUE_WORDS = {"event": N_("event"), "no_event": N_("no event"), "True": N_("yes"), "False": N_("no")}
_COVARIANCE_WORDS = {
    "unstructured": N_("unstructured"),
    "compound_symmetry": N_("compound symmetry"),
    "ar1": N_("ar1"),
}

_SUMMARY_WORDS = {
    Summary.DIFFERENCE_IN_MEANS: N_("the difference in means between the arms"),
    Summary.RATIO_OF_GEOMETRIC_MEANS: N_("the ratio of geometric means between the arms"),
    Summary.HODGES_LEHMANN_SHIFT: N_("the Hodges-Lehmann shift between the arms"),
    Summary.RISK_DIFFERENCE: N_("the difference in the proportion with the event between the arms"),
    Summary.RISK_RATIO: N_("the ratio of the proportions with the event between the arms"),
    Summary.ODDS_RATIO: N_("the odds ratio of the event between the arms"),
    Summary.COMMON_ODDS_RATIO: N_("the common odds ratio of a higher category between the arms"),
    Summary.HAZARD_RATIO: N_("the hazard ratio between the arms"),
    Summary.SUBDISTRIBUTION_HAZARD_RATIO: N_(
        "the subdistribution hazard ratio of ending the stay alive between the arms"
    ),
    Summary.RATE_RATIO: N_("the ratio of the mean counts (rate ratio) between the arms"),
    Summary.RMST_DIFFERENCE: N_("the difference in restricted mean time free of the event between the arms"),
}

_STRATEGY_WORDS = {
    Strategy.TREATMENT_POLICY: N_(
        "treatment policy: the value whatever happened (a value it prevents is missing, and "
        "the participant is listed as not analysed)"
    ),
    Strategy.COMPOSITE: N_("composite: the event is part of the outcome"),
    Strategy.HYPOTHETICAL: N_("hypothetical: as if it had not happened"),
    Strategy.WHILE_ON_TREATMENT: N_(
        "while on treatment: only what happened up to the day the intervention stopped "
        "(adverse events counted to that day; a time to event censored there; the never treated listed)"
    ),
    Strategy.PRINCIPAL_STRATUM: N_("principal stratum"),
    Strategy.COMPETING: N_("a competing event: it ends the stay otherwise than alive, never dropped or censored"),
}
#: A time to event's words where they differ from a duration's (death competing)
_TTE_COMPETING = N_(
    "a competing event: a death before the event ends follow-up on the day of death without it, never dropped or "
    "censored"
)
_TTE_SHR = N_("the subdistribution hazard ratio of the event between the arms, death competing")


def _own(item: object, attribute: str, lang: str) -> str:
    """A protocol text in ``lang``: its ``translations`` (a name or label) or its ``<attribute>_translations`` (a
    definition), else as written (a protocol that declares no other language has no translation to give)."""
    text = str(getattr(item, attribute))
    if lang == "en":
        return text
    own = "translations" if attribute in ("name", "label") else f"{attribute}_translations"
    given: dict[str, str] = getattr(item, own, None) or {}
    return given.get(lang) or text


def in_words(protocol: Protocol, outcome: Outcome, speech: Speech = ENGLISH) -> tuple[tuple[str, str], ...]:
    """The estimand's five attributes and its estimators as sentences a DSMB member reads (each attribute's name
    in English: the reader's page translates it)."""
    t, lang = speech.gettext, speech.lang
    e = outcome.estimand
    v = e.variable
    chosen = next((a for a in protocol.analysis_sets if a.id == e.population.value), None)
    set_name = _own(chosen, "name", lang) if chosen else e.population.value
    definition = _own(chosen, "definition", lang) if chosen else ""
    comma, semicolon = t(N_(", ")), t(N_("; "))

    def day(n: int | None) -> str:
        return speech.digits(str(n))

    def field(ref: str) -> object:
        form_id, _, field_id = ref.partition(".")
        return protocol.form(form_id).field(field_id)

    def label(ref: str) -> str:
        text = _own(field(ref), "label", lang)
        if lang == "en" and len(text) > 1 and text[0].isupper() and text[1].islower():
            text = text[0].lower() + text[1:]  # mid-sentence ("where the participant lives"), not "CD4" or "NEWS2"
        return f"{text} ({ref})"

    def visit(visit_id: str | None) -> str:
        return _own(protocol.visit(visit_id), "name", lang) if visit_id else ""

    def code(value: object, ref: str | None) -> str:
        """A stored code as the reader says it: as written in English; else yes/no, event/no event or a choice's
        label in the language, a number in its digits."""
        text = str(value)
        if lang == "en":
            return text
        choice = next((c for c in getattr(field(ref), "choices", None) or [] if c.code == text), None) if ref else None
        if choice is not None:
            return _own(choice, "label", lang)
        if text in _VALUE_WORDS:
            return t(_VALUE_WORDS[text])
        return speech.digits(text)

    def event_name(x: IntercurrentEvent) -> str:
        if lang == "en" or (x.event not in _EVENT_WORDS and not x.field):
            return x.event.replace("_", " ")
        return t(_EVENT_WORDS[x.event]) if x.event in _EVENT_WORDS else _own(field(str(x.field)), "label", lang)

    own_field = v.fields[0] if v.fields else None
    if v.kind is VariableKind.CONTINUOUS:
        what = comma.join(label(f) for f in v.fields)
        variable = t(N_("{what} at {visit}")).format(what=what, visit=visit(v.at))
        if v.visits:
            variable += t(N_(" (from its values at {visits})")).format(visits=comma.join(visit(x) for x in v.visits))
        if v.baseline:
            variable += t(N_(", adjusted for its value at {visit}")).format(visit=visit(v.baseline))
        if v.change_from_baseline:
            variable += t(N_(" (described as the change from it)"))
        if v.scale is Scale.LOG:
            variable += t(N_(", on the log scale"))
    elif v.kind is VariableKind.BINARY and v.adverse_event is not None:
        kind = t(N_("a serious adverse event")) if v.adverse_event is AdverseEventKind.SAE else t(N_("death"))
        variable = t(N_("whether the participant had {kind} from the start of treatment (day 0) to day {day}")).format(
            kind=kind, day=day(v.up_to_day)
        )
    elif v.kind is VariableKind.BINARY and v.responder is not None:
        variable = t(N_("whether {what} at {visit} meets the responder rule {rule}")).format(
            what=label(v.fields[0]), visit=visit(v.at), rule=str(v.responder)
        )
        if v.baseline:
            variable += t(N_(" (change from its value at {visit})")).format(visit=visit(v.baseline))
    elif v.kind is VariableKind.BINARY:
        variable = t(N_("whether {what} at {visit} is {values}")).format(
            what=label(v.fields[0]),
            visit=visit(v.at),
            values=t(N_(" or ")).join(code(c, own_field) for c in v.event_values),
        )
    elif v.kind is VariableKind.COUNT:
        variable = t(N_("{what} at {visit}, a count")).format(what=label(v.fields[0]), visit=visit(v.at))
    elif v.kind is VariableKind.ORDINAL:
        variable = t(N_("{what} at {visit}, ordered {order}")).format(
            what=label(v.fields[0]), visit=visit(v.at), order=" < ".join(code(c, own_field) for c in v.order)
        )
    elif v.kind is VariableKind.TIME_TO_EVENT and v.adverse_event is None:
        variable = t(
            N_(
                "days from randomization to the date recorded in {field} ('{label}', at {visit}; blank while the event "
                "has not happened), followed to day {day}"
            )
        ).format(
            field=v.fields[0], label=_own(field(v.fields[0]), "label", lang), visit=visit(v.at), day=day(v.up_to_day)
        )
    elif v.kind is VariableKind.TIME_TO_EVENT:
        kind = t(N_("the first serious adverse event")) if v.adverse_event is AdverseEventKind.SAE else t(N_("death"))
        variable = t(N_("days from randomization to {kind}, followed to day {day}")).format(
            kind=kind, day=day(v.up_to_day)
        )
    else:
        variable = t(N_("{what}: the stay's length, ending alive or in death")).format(what=label(v.fields[0]))

    def strategy_words(strategy: Strategy) -> str:
        if strategy is Strategy.COMPETING and v.kind is VariableKind.TIME_TO_EVENT:
            return _TTE_COMPETING
        return _STRATEGY_WORDS[strategy]

    tte = t(N_(" (followed until it, then censored)"))
    if v.kind is VariableKind.TIME_TO_EVENT and v.adverse_event is None:
        tte = t(
            N_(
                " (followed until it, then censored, when a form recorded the event or its absence first; otherwise "
                "listed as not analysed: nothing says whether the event happened)"
            )
        )
    how = {
        VariableKind.TIME_TO_EVENT: tte,
        VariableKind.CONTINUOUS: t(N_(" (the values missing after it are modelled as missing at random)")),
    }.get(v.kind, "")
    events = semicolon.join(
        t(N_("{event}: {strategy}")).format(event=event_name(x), strategy=t(strategy_words(x.strategy)))
        + (how if x.strategy is Strategy.HYPOTHETICAL else "")
        + (t(N_(" (it counts as {value})")).format(value=code(x.value, own_field)) if x.value is not None else "")
        for x in e.intercurrent_events
    )
    summary = _SUMMARY_WORDS[e.summary]
    if v.kind is VariableKind.TIME_TO_EVENT and e.summary is Summary.SUBDISTRIBUTION_HAZARD_RATIO:
        summary = _TTE_SHR
    names = {a.id: _own(a, "name", lang) for a in protocol.analysis_sets}
    sensitivity = semicolon.join(
        t(METHOD.get(s.estimator, s.estimator.value))
        + (t(N_(" (population: {name})")).format(name=names[s.population.value]) if s.population else "")
        for s in e.sensitivity
    )
    covariance = (
        t(N_("; {covariance} covariance")).format(covariance=t(_COVARIANCE_WORDS[e.covariance]))
        if e.estimator is Estimator.MMRM
        else ""
    )
    return (
        ("Population", f"{set_name}: {definition}".rstrip(": ")),
        ("Variable", variable),
        ("Intercurrent events", events or t(N_("none declared"))),
        ("Summary", t(summary)),
        ("Estimator", t(METHOD.get(e.estimator, e.estimator.value)) + covariance),
        ("Sensitivity", sensitivity or t(N_("none"))),
        ("Hypothesis", hypothesis_words(e.hypothesis, speech)),
    )


def hypothesis_words(h: Hypothesis, speech: Speech = ENGLISH) -> str:
    """The estimand's hypothesis as the report says it: superiority (the default) or non-inferiority with its margin,
    its direction of benefit and the one-sided test the 95% CI's bound makes."""
    t = speech.gettext
    if h.kind is HypothesisKind.SUPERIORITY:
        return t(N_("superiority: a two-sided test of no difference (the default)"))
    if h.margin is None or h.lower_is_better is None:  # protocol check refuses it: never printed as a margin of 0
        raise ValueError("the non-inferiority hypothesis has no margin or no direction of benefit")
    limit = h.margin if h.lower_is_better else -h.margin
    said = N_(
        "non-inferiority, margin {limit} (lower is better): non-inferior when the upper bound of the 95% CI is below "
        "it (a one-sided test at 2.5%)"
    ) if h.lower_is_better else N_(
        "non-inferiority, margin {limit} (higher is better): non-inferior when the lower bound of the 95% CI is "
        "above it (a one-sided test at 2.5%)"
    )
    return t(said).format(limit=speech.digits(f"{limit:+g}"))
