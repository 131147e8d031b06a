"""Cross-checks of the outcomes' estimands: what the engine cannot compute exactly as declared is refused, naming
the line (``trialwright.protocol.estimands`` says what it computes)."""

from __future__ import annotations

from collections.abc import Iterator

from trialwright.protocol.base import Range, a_kind
from trialwright.protocol.estimands import (
    ESTIMATORS_FOR,
    NON_INFERIORITY_ESTIMATORS,
    SUMMARIES_FOR,
    AdverseEventKind,
    Estimand,
    Estimator,
    HypothesisKind,
    IntercurrentEvent,
    IntercurrentKind,
    Scale,
    Strategy,
    Summary,
    Variable,
    VariableKind,
)
from trialwright.protocol.forms import FieldType, FormDef, FormField, ReferenceEvent
from trialwright.protocol.model import Protocol
from trialwright.protocol.references import Found, dupes, field_ref

__all__ = ["composite_limit_notes", "composite_limits", "follow_up", "outcomes"]


def outcomes(p: Protocol) -> Iterator[Found]:
    """Every problem of every outcome's estimand."""
    forms = {f.id: f for f in p.forms}
    for i, outcome in enumerate(p.outcomes):
        yield from _estimand(p, f"outcomes[{i}].estimand", outcome.estimand, forms)


_NUMERIC = {FieldType.INTEGER, FieldType.DECIMAL}
#: Intercurrent events the engine finds in the data, and the strategies it computes for each kind of variable
#: (an event the protocol names, with its field, takes those in ``_NAMED``). Anything else is refused: an estimand is
#: analysed exactly as declared or not at all.
_STRATEGIES: dict[tuple[VariableKind, str], frozenset[Strategy]] = {
    (VariableKind.CONTINUOUS, "death"): frozenset({Strategy.TREATMENT_POLICY, Strategy.COMPOSITE}),
    (VariableKind.BINARY, "death"): frozenset({Strategy.TREATMENT_POLICY, Strategy.COMPOSITE}),
    (VariableKind.ORDINAL, "death"): frozenset({Strategy.TREATMENT_POLICY, Strategy.COMPOSITE}),
    (VariableKind.COUNT, "death"): frozenset({Strategy.TREATMENT_POLICY, Strategy.COMPOSITE}),
    (VariableKind.TIME_TO_EVENT, "death"): frozenset({Strategy.COMPOSITE, Strategy.COMPETING}),
    (VariableKind.DURATION, "death"): frozenset({Strategy.COMPETING}),
    (VariableKind.TIME_TO_EVENT, "withdrawal"): frozenset({Strategy.HYPOTHETICAL}),
    # While on treatment: only what happened up to the day the intervention stopped (adverse events counted or
    # timed to that day; a time to event censored there).
    (VariableKind.BINARY, "treatment_discontinuation"): frozenset(
        {Strategy.TREATMENT_POLICY, Strategy.WHILE_ON_TREATMENT}
    ),
    (VariableKind.TIME_TO_EVENT, "treatment_discontinuation"): frozenset(
        {Strategy.TREATMENT_POLICY, Strategy.WHILE_ON_TREATMENT}
    ),
}

#: An event the protocol names (e.g. rescue therapy, with its yes/no field): treatment policy, or composite where
#: the variable is taken at a visit (it takes the declared value once the field says yes on or before the visit).
_NAMED: dict[VariableKind, frozenset[Strategy]] = {
    k: frozenset({Strategy.TREATMENT_POLICY, Strategy.COMPOSITE})
    for k in (VariableKind.CONTINUOUS, VariableKind.BINARY, VariableKind.ORDINAL, VariableKind.COUNT)
}


def _estimand(p: Protocol, path: str, e: Estimand, forms: dict[str, FormDef]) -> Iterator[Found]:
    """What the engine cannot compute exactly as declared is refused here, naming the line: never dropped from the
    report or computed another way."""
    v, kind = e.variable, e.variable.kind
    sets = {a.id for a in p.analysis_sets}
    populations = [("population", e.population)] + [
        (f"sensitivity[{j}].population", s.population) for j, s in enumerate(e.sensitivity) if s.population
    ]
    for where, population in populations:
        if population.value not in sets:
            yield f"{path}.{where}", (
                f"{population.value!r} is not one of the protocol's analysis_sets ({', '.join(sorted(sets))}): "
                "declare it there with its definition"
            )
    yield from _variable(p, f"{path}.variable", v, forms)
    yield from _hypothesis(f"{path}.hypothesis", e)
    if e.summary not in SUMMARIES_FOR[kind]:
        yield f"{path}.summary", (
            f"{e.summary.value} does not summarise {_a(kind.value)} variable "
            f"(it takes {', '.join(sorted(x.value for x in SUMMARIES_FOR[kind]))})"
        )
    elif e.estimator not in ESTIMATORS_FOR[e.summary]:
        yield f"{path}.estimator", (
            f"{e.estimator.value} does not estimate {_a(e.summary.value)} "
            f"(it takes {', '.join(sorted(x.value for x in ESTIMATORS_FOR[e.summary]))})"
        )
    if e.summary is Summary.RATIO_OF_GEOMETRIC_MEANS and v.scale is not Scale.LOG:
        yield f"{path}.summary", "a ratio of geometric means is estimated on the log scale: set variable.scale: log"
    if e.summary is Summary.DIFFERENCE_IN_MEANS and v.scale is Scale.LOG:
        yield f"{path}.summary", "on the log scale the summary is ratio_of_geometric_means, not a difference in means"
    estimators = [("estimator", e.estimator)] + [
        (f"sensitivity[{j}].estimator", s.estimator) for j, s in enumerate(e.sensitivity)
    ]
    competing = kind is VariableKind.DURATION or (
        kind is VariableKind.TIME_TO_EVENT and e.strategy("death") is Strategy.COMPETING
    )
    for where, estimator in estimators:
        if not any(estimator in ESTIMATORS_FOR[x] for x in SUMMARIES_FOR[kind]):
            yield f"{path}.{where}", f"{estimator.value} does not analyse {_a(kind.value)} variable"
        elif estimator is not Estimator.MMRM and Estimator.MMRM in e.estimators:
            yield f"{path}.{where}", (
                f"{estimator.value} beside mmrm in one estimand: mmrm estimates as if deaths and withdrawals had not "
                f"happened (missing at random), {estimator.value} from the values observed; declare it in an "
                "estimand of its own"
            )
        elif estimator is Estimator.MMRM and (v.baseline is None or v.at not in v.visits):
            yield from _mmrm_visits(f"{path}.{where}", f"{path}.variable", v)
        elif estimator is Estimator.ANCOVA and v.baseline is None:
            yield f"{path}.{where}", (
                "ancova adjusts for the baseline value: declare variable.baseline (a visit), or declare t_test"
            )
        elif estimator is Estimator.COX and kind is not VariableKind.TIME_TO_EVENT:
            yield f"{path}.{where}", "cox times an event: for a duration ending in death use cause_specific_cox"
        elif estimator in (Estimator.COX, Estimator.RMST) and competing:
            yield f"{path}.{where}", (
                f"{estimator.value} with death competing is not computed in this version ({estimator.value} would "
                "censor the deaths, which competing keeps as an end of their own): use fine_gray "
                "(subdistribution_hazard_ratio) or cause_specific_cox (hazard_ratio)"
            )
        elif estimator in (Estimator.CAUSE_SPECIFIC_COX, Estimator.FINE_GRAY) and not competing:
            yield f"{path}.{where}", (
                f"{estimator.value} is for an end that competes with death: a duration, or a time to event that "
                "declares {event: death, strategy: competing}"
            )
    if e.covariance != "unstructured" and Estimator.MMRM not in e.estimators:
        yield f"{path}.covariance", "covariance is the mixed model's: it applies only with the estimator mmrm"
    yield from _intercurrent(p, path, e, forms)


def _mmrm_visits(where: str, variable: str, v: Variable) -> Iterator[Found]:
    """What the mixed model lacks of its visits, each named where it is declared: the baseline it adjusts for, the
    visits it models, and the visit the effect is reported at (one of those visits)."""
    if v.baseline is None:
        yield where, "mmrm adjusts for the baseline value: declare variable.baseline (a visit)"
    if not v.visits:
        yield where, (
            "mmrm models the values at variable.visits: declare them (every post-baseline visit the model uses, "
            "including variable.at, the visit the effect is reported at)"
        )
    elif v.at is None:
        yield where, f"mmrm reports the effect at variable.at: declare it (one of {', '.join(v.visits)})"
    elif v.at not in v.visits:
        yield f"{variable}.at", (
            f"{v.at!r} is not one of variable.visits ({', '.join(v.visits)}): mmrm reports the effect at one of the "
            f"visits it models; add {v.at} to variable.visits or set variable.at to one of them"
        )


def _a(word: str) -> str:
    """The word with its indefinite article: a ratio, an odds ratio."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _variable(p: Protocol, path: str, v: Variable, forms: dict[str, FormDef]) -> Iterator[Found]:
    visits = {x.id: x for x in p.visits}
    kind = v.kind
    for k, ref in enumerate(v.fields):
        found = list(field_ref(forms, ref, f"{path}.fields[{k}]"))
        yield from found
        if found:
            continue
        form_id, _, field_id = ref.partition(".")
        f = forms[form_id].field(field_id)
        named = [("at", v.at), ("baseline", v.baseline), *((f"visits[{j}]", x) for j, x in enumerate(v.visits))]
        for where, visit_id in named:
            if visit_id is None:
                continue
            if visit_id not in visits:
                yield f"{path}.{where}", f"{visit_id!r} has no visit (known: {', '.join(visits)})"
            elif form_id not in visits[visit_id].forms:
                yield f"{path}.{where}", f"visit {visit_id!r} does not collect form {form_id!r}"
        if kind is VariableKind.TIME_TO_EVENT and f.type is not FieldType.DATE:
            yield f"{path}.fields[{k}]", (
                f"{ref} is {a_kind(f.type.value)} field; a time to an event a form records reads the event's date "
                "(a date field, blank while the event has not happened)"
            )
        if kind is VariableKind.COUNT and f.type is not FieldType.INTEGER:
            yield f"{path}.fields[{k}]", (
                f"{ref} is {a_kind(f.type.value)} field; a count variable needs an integer field"
            )
        if kind in (VariableKind.CONTINUOUS, VariableKind.DURATION) and f.type not in _NUMERIC:
            yield f"{path}.fields[{k}]", (
                f"{ref} is {a_kind(f.type.value)} field; a {kind.value} variable needs an integer or decimal field "
                "(a choice or yes/no field is a binary or ordinal variable)"
            )
        if kind is VariableKind.BINARY and v.responder is not None:
            yield from _responder(p, path, v, ref, f)
        elif kind is VariableKind.BINARY:
            codes = ["True", "False"] if f.type is FieldType.BOOLEAN else [c.code for c in f.choices]
            if f.type not in (FieldType.BOOLEAN, FieldType.CHOICE):
                yield f"{path}.fields[{k}]", f"{ref} is {a_kind(f.type.value)} field; binary needs choice or yes/no"
                continue  # no values to name: the field's kind is the problem
            for j, value in enumerate(v.event_values):
                if value not in codes:
                    yield f"{path}.event_values[{j}]", f"{value!r} is not a value of {ref} ({', '.join(codes)})"
        if kind is VariableKind.ORDINAL:
            codes = [c.code for c in f.choices]
            if f.type is not FieldType.CHOICE:
                yield f"{path}.fields[{k}]", f"{ref} is {a_kind(f.type.value)} field; ordinal needs a choice field"
            elif sorted(v.order) != sorted(codes):
                yield f"{path}.order", (
                    f"order must list every code of {ref} exactly once, lowest first ({', '.join(codes)}): a code "
                    "without a place in the order cannot be analysed"
                )
    if kind is VariableKind.DURATION and p.safety.death_record is None:
        yield f"{path}.kind", (
            "a duration ends alive or in death: declare safety.death_record so the analysis knows how each stay "
            "ended (deaths compete; they are never dropped)"
        )


def _responder(p: Protocol, path: str, v: Variable, ref: str, f: FormField) -> Iterator[Found]:
    """A responder rule reads a number, at a baseline visit before the outcome visit, and says what a percent change
    from a baseline of 0 (or below) is when the field allows one."""
    rule = v.responder
    assert rule is not None
    if f.type not in _NUMERIC:
        yield f"{path}.fields[0]", (
            f"{ref} is {a_kind(f.type.value)} field; a responder rule reads an integer or decimal field (a choice or "
            "yes/no field is binary by its event_values)"
        )
        return
    visits = {x.id: x for x in p.visits}
    if v.baseline is not None and v.at is not None and v.baseline in visits and v.at in visits:
        base, at = visits[v.baseline], visits[v.at]
        if v.baseline == v.at or (base.reference == at.reference and base.day >= at.day):
            yield f"{path}.baseline", (
                f"baseline visit {v.baseline!r} (day {base.day}) is not before the outcome visit {v.at!r} (day "
                f"{at.day}): a change is measured from an earlier visit"
            )
    low = f.hard_limits.min if f.hard_limits is not None else None
    if rule.percent and (low is None or low <= 0) and rule.zero_baseline is None:
        yield f"{path}.responder.zero_baseline", (
            (f"{ref} has no lower hard limit: its baseline can be 0" if low is None else
             f"{ref}'s hard_limits allow a baseline of {low:g}")
            + ", where a percent change is undefined: declare zero_baseline: exclude (listed as not analysed) or "
            "refuse (not estimated, the participants named)"
        )
    if rule.zero_baseline is not None and not rule.percent:
        yield f"{path}.responder.zero_baseline", "zero_baseline concerns a percent change: the rule has none"


def follow_up(p: Protocol) -> Iterator[Found]:
    """Every time to event's end of follow-up against the schedule (``_follow_up``)."""
    for i, outcome in enumerate(p.outcomes):
        yield from _follow_up(p, f"outcomes[{i}].estimand.variable", outcome.estimand.variable)
        yield from _rmst_follow_up(p, f"outcomes[{i}].estimand", outcome.estimand)


def _follow_up(p: Protocol, path: str, v: Variable) -> Iterator[Found]:
    """A time to an event a form records ends its follow-up (``up_to_day``, days from randomization) on or before
    the last scheduled visit's last day: that visit's day plus its window's days after. Past it no form is due, so
    no date is recorded, and a later end would count everyone event-free to a day nobody was followed to. Said only
    when every scheduled visit is counted from screening, enrolment or randomization (none after randomization, so
    the day is a ceiling in days from randomization); from another event (a first dose, a surgery) the protocol does
    not say when that is. A time to an adverse event (sae, death) is not bounded by the visits: safety reporting
    outlasts the schedule."""
    if v.kind is not VariableKind.TIME_TO_EVENT or v.up_to_day is None or not v.fields:
        return
    scheduled = [x for x in p.visits if x.kind == "scheduled"]
    if not scheduled or any(x.reference not in set(ReferenceEvent) for x in scheduled):
        return
    last = max(scheduled, key=lambda x: x.latest)
    if v.up_to_day > last.latest:
        yield f"{path}.up_to_day", (
            f"day {v.up_to_day} is beyond the last visit: {last.id} on day {last.day} from {last.reference}, its "
            f"window {last.window.after} days after, so day {last.latest} at the latest; nobody is followed past it, "
            f"so the end of follow-up is on or before day {last.latest}"
        )


def _rmst_follow_up(p: Protocol, path: str, e: Estimand) -> Iterator[Found]:
    """RMST to ``up_to_day`` is the area under each arm's Kaplan-Meier curve to that day, defined only up to the
    smaller of the arms' largest observed times (the analysis refuses a later day). A time to an event a form records
    at visit ``at`` is followed to the day that visit is held: on its day, or within its window. A day past the
    visit's own day is reached only by those seen late in both arms, so by chance; it is refused here rather than at
    the analysis. Said only for a visit counted from screening, enrolment or randomization (as ``_follow_up``)."""
    v = e.variable
    rmst = e.estimator is Estimator.RMST or any(s.estimator is Estimator.RMST for s in e.sensitivity)
    if not rmst or v.kind is not VariableKind.TIME_TO_EVENT or v.up_to_day is None or not v.fields or v.at is None:
        return
    visit = next((x for x in p.visits if x.id == v.at), None)
    if visit is None or visit.reference not in set(ReferenceEvent) or v.up_to_day <= visit.day:
        return
    yield f"{path}.variable.up_to_day", (
        f"rmst to day {v.up_to_day} is past {visit.id}'s day {visit.day}: the time to the event is followed to the "
        f"day {visit.id} is held, so only participants seen late in its window reach day {v.up_to_day}, and the "
        "restricted mean is computed only up to the smaller of the arms' largest observed times; declare up_to_day "
        f"at most {visit.day}"
    )


def _hypothesis(path: str, e: Estimand) -> Iterator[Found]:
    """A superiority hypothesis takes no margin or direction; a non-inferiority one needs both, a positive margin,
    and a summary and estimators whose bound and one-sided p the engine computes (none is dropped from the report)."""
    h = e.hypothesis
    if h.kind is HypothesisKind.SUPERIORITY:
        for name in ("margin", "lower_is_better"):
            if getattr(h, name) is not None:
                yield f"{path}.{name}", (
                    f"{name} belongs to a non_inferiority hypothesis; a superiority hypothesis is a two-sided test of "
                    "no difference (set kind: non_inferiority, or remove it)"
                )
        return
    if h.margin is None:
        yield f"{path}.margin", (
            "a non_inferiority hypothesis needs its margin (a positive number on the summary's scale)"
        )
    elif not h.margin > 0 or h.margin == float("inf"):
        yield f"{path}.margin", f"the non-inferiority margin must be a positive finite number, not {h.margin}"
    if h.lower_is_better is None:
        yield f"{path}.lower_is_better", (
            "a non_inferiority hypothesis needs the direction of benefit: lower_is_better: true or false"
        )
    allowed = NON_INFERIORITY_ESTIMATORS.get(e.summary)
    if allowed is None:
        yield f"{path}.kind", (
            f"non-inferiority on {_a(e.summary.value)} is not yet computed (it is for "
            f"{', '.join(sorted(s.value for s in NON_INFERIORITY_ESTIMATORS))})"
        )
        return
    estimators = [("estimator", e.estimator)] + [
        (f"sensitivity[{j}].estimator", s.estimator) for j, s in enumerate(e.sensitivity)
    ]
    for where, estimator in estimators:
        if estimator not in allowed:
            yield f"{path.rsplit('.', 1)[0]}.{where}", (
                f"non-inferiority by {estimator.value} is not yet computed (the bound and one-sided p are for "
                f"{', '.join(sorted(x.value for x in allowed))}): declare it in an estimand of its own without the "
                "non_inferiority hypothesis"
            )


def _intercurrent(p: Protocol, path: str, e: Estimand, forms: dict[str, FormDef]) -> Iterator[Found]:
    kind = e.variable.kind
    yield from dupes(f"{path}.intercurrent_events", (x.event for x in e.intercurrent_events), "intercurrent event")
    for j, x in enumerate(e.intercurrent_events):
        where = f"{path}.intercurrent_events[{j}]"
        known = x.event in {k.value for k in IntercurrentKind}
        if known and x.field is not None:
            yield f"{where}.field", (
                f"{x.event} is found in the data itself (see safety.death_record, withdrawals); field names the "
                "record of an event the protocol names (e.g. rescue_therapy)"
            )
        if not known and x.field is None:
            yield f"{where}.field", (
                f"{x.event!r} is not an event the engine finds itself (death, withdrawal, treatment_discontinuation): "
                "name the yes/no form field that records it"
            )
        if x.field is not None:
            yield from field_ref(forms, x.field, f"{where}.field", {FieldType.BOOLEAN.value})
        if x.event == "death" and e.variable.adverse_event is AdverseEventKind.DEATH:
            yield f"{where}.event", "death is the variable itself here, not an intercurrent event"
            continue
        if x.event == "death" and x.strategy is Strategy.COMPETING and e.variable.adverse_event is AdverseEventKind.SAE:
            yield f"{where}.strategy", (
                "a death is itself a serious adverse event (a fatal one), so it cannot compete with the first: a death "
                "reported as an SAE would be the event and one not reported a competing event; declare death "
                "composite (or a time to event a form records, with death competing)"
            )
            continue
        named = _NAMED.get(kind, frozenset({Strategy.TREATMENT_POLICY})) if not known else None
        allowed = _STRATEGIES.get((kind, x.event), named or frozenset({Strategy.TREATMENT_POLICY}))
        if x.field is not None and x.strategy is Strategy.COMPOSITE and Estimator.MMRM in e.estimators:
            yield f"{where}.strategy", (
                f"a composite {x.event} replaces the value at variable.at only; mmrm models every visit's value: "
                "declare it in an estimand with ancova (or another estimator of one visit)"
            )
            continue
        if x.field is not None and x.strategy is Strategy.COMPOSITE and e.variable.adverse_event is not None:
            yield f"{where}.strategy", (
                f"a composite {x.event} is placed against the visit the variable is taken at; a variable read from "
                "the adverse events has none: it is refused, not approximated"
            )
            continue
        if kind is VariableKind.CONTINUOUS and Estimator.MMRM in e.estimators and x.event in ("death", "withdrawal"):
            if x.strategy is not Strategy.HYPOTHETICAL:
                yield f"{where}.strategy", (
                    f"mmrm treats the values missing after {x.event} as missing at random, which is the hypothetical "
                    "strategy: declare it hypothetical"
                )
            continue
        if x.strategy not in allowed:
            yield f"{where}.strategy", (
                f"{x.strategy.value} for {x.event} with a {kind.value} variable is not computed in this version "
                f"(it takes {', '.join(sorted(a.value for a in allowed))}); it is refused, not approximated"
            )
            continue
        on_treatment = x.strategy is Strategy.WHILE_ON_TREATMENT
        if on_treatment and kind is VariableKind.BINARY and e.variable.adverse_event is None:
            yield f"{where}.strategy", (
                "while on treatment counts adverse events up to the day the intervention stopped; a yes/no read "
                "at a visit has no such period: it is refused, not approximated"
            )
            continue
        if x.strategy is Strategy.COMPOSITE:
            yield from _composite_value(where, e, x)
            placed = kind is VariableKind.TIME_TO_EVENT or e.variable.at is None or _placed(p, e.variable.at)
            if x.event == "death" and not placed:
                yield f"{where}.strategy", (
                    f"a death is placed against visit {e.variable.at!r} by its planned day, which the engine knows "
                    "only for visits counted from randomization or from the analysis plan's treatment visit"
                )
        elif x.value is not None:
            yield f"{where}.value", "only a composite strategy gives the event a value"
    if kind is VariableKind.TIME_TO_EVENT and e.strategy("withdrawal") is not Strategy.HYPOTHETICAL:
        yield f"{path}.intercurrent_events", (
            "a time to event declares withdrawal with strategy hypothetical (followed until withdrawal, then "
            "censored): nothing is known of the event after it"
        )
    if kind is VariableKind.DURATION and e.strategy("death") is not Strategy.COMPETING:
        yield f"{path}.intercurrent_events", (
            "a duration ending in death declares death with strategy competing (deaths are never dropped or censored)"
        )


def _placed(p: Protocol, visit_id: str) -> bool:
    """Whether a visit's planned day is known in days from randomization (see analysis.estimands.planned_day)."""
    visit = next((v for v in p.visits if v.id == visit_id), None)
    if visit is None:
        return True  # an unknown visit is named by the variable's own check
    treatment = p.analysis_plan.treatment if p.analysis_plan else None
    return visit.reference == ReferenceEvent.RANDOMIZATION or (
        treatment is not None and visit.reference == treatment.visit
    )


def composite_limits(p: Protocol) -> Iterator[Found]:
    """Every composite value on a count or continuous variable that its field cannot hold (``protocol check``; a text
    stored before the rule keeps loading and its analysis is refused by ``services.analysis.run_analysis``): the
    composite value takes the place of the field's value, so it must be inside each read field's hard_limits (walk 6
    F2: 99 ventilator-free days "to day 28" for a death made the mean 36.4 and a death the best outcome)."""
    for where, _, _, value, ref, limits in _composite_reads(p):
        if limits is not None and not limits.contains(value):
            low = "open" if limits.min is None else f"{limits.min:g}"
            high = "open" if limits.max is None else f"{limits.max:g}"
            yield f"{where}.value", (
                f"{value:g} lies outside {ref}'s hard_limits ({low} to {high}): a composite value takes the place of "
                "the field's value, so it must be one the field can hold"
            )


def composite_limit_notes(p: Protocol) -> tuple[str, ...]:
    """A note (for ``protocol check``, not a refusal: the author may know the value fits) for each composite value
    whose read field declares no hard_limits, so that nothing could check it: said, never passed over in silence."""
    return tuple(
        f"{outcome}: the composite value {value:g} for {event} cannot be checked against {ref}'s range: the field "
        "declares no hard_limits"
        for _, outcome, event, value, ref, limits in _composite_reads(p)
        if limits is None
    )


def _composite_reads(p: Protocol) -> Iterator[tuple[str, str, str, float, str, Range | None]]:
    """Each numeric composite value on a count or continuous variable with each field it takes the place of: (its
    intercurrent event's path, the outcome's id, the event, the value, the field's reference, the field's hard_limits
    or None).
    A value that is no number is named by ``_composite_value``, an unknown field by the variable's own check."""
    forms = {f.id: f for f in p.forms}
    for i, outcome in enumerate(p.outcomes):
        e = outcome.estimand
        if e.variable.kind not in (VariableKind.COUNT, VariableKind.CONTINUOUS):
            continue
        for j, x in enumerate(e.intercurrent_events):
            value = x.value
            if x.strategy is not Strategy.COMPOSITE or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            for ref in e.variable.fields:
                form_id, _, field_id = ref.partition(".")
                form = forms.get(form_id)
                if form is None:
                    continue
                try:
                    limits = form.field(field_id).hard_limits
                except KeyError:
                    continue
                yield f"outcomes[{i}].estimand.intercurrent_events[{j}]", outcome.id, x.event, value, ref, limits


def _composite_value(where: str, e: Estimand, x: IntercurrentEvent) -> Iterator[Found]:
    kind = e.variable.kind
    if kind is VariableKind.COUNT and (not isinstance(x.value, int) or isinstance(x.value, bool) or x.value < 0):
        yield f"{where}.value", "a composite strategy on a count gives the event a whole number (e.g. 0 free days)"
    if kind is VariableKind.CONTINUOUS:
        if not isinstance(x.value, int | float) or isinstance(x.value, bool):
            yield f"{where}.value", "a composite strategy on a continuous variable gives the event a number"
        elif e.variable.scale is Scale.LOG and x.value <= 0:
            yield f"{where}.value", "on the log scale the composite value must be above 0"
    elif kind is VariableKind.BINARY and x.value not in ("event", "no_event"):
        yield f"{where}.value", "a composite strategy on a binary variable counts the event as event or no_event"
    elif kind is VariableKind.ORDINAL and x.value not in e.variable.order:
        yield f"{where}.value", f"a composite strategy on an ordinal variable gives a code of order, not {x.value!r}"
    elif kind is VariableKind.TIME_TO_EVENT and x.value not in (None, "event"):
        yield f"{where}.value", "a composite strategy on a time to event counts death as the event (value: event)"
