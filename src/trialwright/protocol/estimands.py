"""Estimands (ICH E9(R1)): what each outcome estimates, declared in the protocol in five attributes, so that the
analysis is chosen by what the protocol says and nothing else.

* **population**: the analysis set (intention to treat, modified intention to treat, per protocol, safety);
* **variable**: what is measured for each participant: a number at a visit (optionally as the change from
  baseline, on the natural or the log scale), a yes/no (a form field's value at a visit, or an adverse event by a
  day), an ordered category, the time to an event, or a duration that ends alive or in death;
* **intercurrent events** the protocol expects (death, withdrawal, treatment discontinuation, and any it names)
  each with its **strategy** (treatment policy, composite, hypothetical, while on treatment, principal stratum; and
  for a duration, death as a competing event);
* **population-level summary**: difference in means, ratio of geometric means, risk difference, risk ratio, odds
  ratio, common odds ratio, hazard ratio, subdistribution hazard ratio, difference in restricted mean survival
  time, Hodges-Lehmann shift;
* the **estimator** that estimates it, and sensitivity estimators (optionally in another population).

``SUPPORTED`` says which combinations the engine computes exactly. Everything else is refused by ``protocol
check`` (``trialwright.protocol.checks``), never approximated: a declared estimand is either analysed as declared
or the protocol does not load.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from trialwright.protocol.base import Identifier, ProtocolModel

__all__ = [
    "ESTIMATORS_FOR",
    "NON_INFERIORITY_ESTIMATORS",
    "SUMMARIES_FOR",
    "AdverseEventKind",
    "Covariance",
    "Estimand",
    "Estimator",
    "Hypothesis",
    "HypothesisKind",
    "IntercurrentEvent",
    "IntercurrentKind",
    "Population",
    "Responder",
    "ResponderCriterion",
    "ResponderMeasure",
    "Scale",
    "Sensitivity",
    "Strategy",
    "Summary",
    "Variable",
    "VariableKind",
]


class Population(StrEnum):
    """Who the estimand is about, and in which group each is analysed."""

    ITT = "itt"  # every randomized participant, as randomized
    MODIFIED_ITT = "modified_itt"  # randomized and given any of the intervention, as randomized
    PER_PROTOCOL = "per_protocol"  # treated as allocated, without the protocol deviations the plan names
    SAFETY = "safety"  # given any of the intervention, as treated


class VariableKind(StrEnum):
    """What one participant contributes."""

    CONTINUOUS = "continuous"  # a number at a visit
    BINARY = "binary"  # yes or no: a form field's value at a visit, or an adverse event by a day
    ORDINAL = "ordinal"  # an ordered category at a visit
    COUNT = "count"  # a whole number at a visit: events counted, or a bounded score (e.g. ventilator-free days)
    TIME_TO_EVENT = "time_to_event"  # days from randomization to an event, censored when not seen
    DURATION = "duration"  # a stay's length in days, ending alive (the event) or in death (competing)


class Scale(StrEnum):
    """The scale a continuous variable is analysed on."""

    NATURAL = "natural"
    LOG = "log"  # right-skewed markers: differences of logs, reported as ratios


class AdverseEventKind(StrEnum):
    """Adverse events a variable can count or time: serious ones, or deaths (fatal ones)."""

    SAE = "sae"
    DEATH = "death"


class ResponderMeasure(StrEnum):
    """What a responder criterion compares with its threshold."""

    VALUE = "value"  # the value at the variable's visit (e.g. HbA1c < 7)
    CHANGE = "change"  # the value minus its baseline (e.g. change <= -4)
    PERCENT_CHANGE = "percent_change"  # 100 * (value - baseline) / baseline (e.g. percent_change <= -50)


Operator = Literal["<", "<=", ">", ">="]


class ResponderCriterion(ProtocolModel):
    """One comparison of a responder rule: measure, operator, threshold (``change <= -4``)."""

    measure: ResponderMeasure = Field(description="value, change (from baseline) or percent_change (from baseline).")
    operator: Operator = Field(description="<, <=, > or >=: the direction that counts as a response.")
    threshold: float = Field(description="The number the measure is compared with.")

    def met(self, x: float) -> bool:
        """Whether the measure ``x`` meets the criterion."""
        t = self.threshold
        return {"<": x < t, "<=": x <= t, ">": x > t, ">=": x >= t}[self.operator]

    def __str__(self) -> str:
        return f"{self.measure.value} {self.operator} {self.threshold:g}"


class Responder(ProtocolModel):
    """A responder computed at analysis from a numeric field's stored values (never typed): at the variable's visit
    (``at``), against its value at the baseline visit (``baseline``) for a change or a percent change."""

    criteria: list[ResponderCriterion] = Field(
        min_length=1, description="The comparisons (e.g. [{measure: percent_change, operator: '<=', threshold: -50}])."
    )
    combine: Literal["any", "all"] | None = Field(
        default=None,
        description="With more than one criterion: any (a responder if one is met) or all (if every one is met).",
    )
    zero_baseline: Literal["exclude", "refuse"] | None = Field(
        default=None,
        description="A percent change from a baseline of 0 or below is undefined. Required when the field's "
        "hard_limits allow such a baseline: exclude (the participant is listed as not analysed, with the reason) or "
        "refuse (the comparison is not estimated and the participants are named).",
    )

    @model_validator(mode="after")
    def _combined(self) -> Responder:
        if len(self.criteria) > 1 and self.combine is None:
            raise ValueError("a responder rule with more than one criterion says combine: any or all")
        if len(self.criteria) == 1 and self.combine is not None:
            raise ValueError("combine joins several criteria: a rule of one criterion has none")
        return self

    @property
    def needs_baseline(self) -> bool:
        return any(c.measure is not ResponderMeasure.VALUE for c in self.criteria)

    @property
    def percent(self) -> bool:
        return any(c.measure is ResponderMeasure.PERCENT_CHANGE for c in self.criteria)

    def __str__(self) -> str:
        return f" {self.combine or ''} ".join(str(c) for c in self.criteria).replace("  ", " ")


class Variable(ProtocolModel):
    """The variable of an estimand (ICH E9(R1) A.3.2): what is measured, when, and on which scale."""

    kind: VariableKind = Field(description="continuous, binary, ordinal, time_to_event or duration.")
    fields: list[str] = Field(
        default_factory=list,
        description="form.field it reads. A continuous variable may name several (e.g. CD3, CD4, CD8): each is "
        "analysed as its own estimand with the same attributes. A time to event may name one date field: the date "
        "the event happened, blank while it has not (at: the visit whose form records it).",
    )
    at: Identifier | None = Field(
        default=None,
        description="The visit (timepoint) the value is taken at; for a time to an event a form records, the visit "
        "whose form records its date.",
    )
    visits: list[Identifier] = Field(
        default_factory=list,
        description="Repeated measures (estimator mmrm): every post-baseline visit the model uses, in order, "
        "including at (the visit the effect is reported at).",
    )
    baseline: Identifier | None = Field(
        default=None, description="Baseline visit: adjusted for (ANCOVA), and the change from it described."
    )
    change_from_baseline: bool = Field(
        default=False, description="Described as the change from baseline (the model adjusts for baseline either way)."
    )
    scale: Scale = Field(default=Scale.NATURAL, description="natural, or log for right-skewed markers (ratios).")
    event_values: list[str] = Field(
        default_factory=list,
        description="Binary from a form field: the codes that count as the event ('True' for a yes/no field).",
    )
    responder: Responder | None = Field(
        default=None,
        description="Binary from a numeric field: the responder rule computed at analysis from its stored values at "
        "at (and baseline for a change), in place of event_values.",
    )
    order: list[str] = Field(default_factory=list, description="Ordinal: every code of the field, lowest first.")
    adverse_event: AdverseEventKind | None = Field(
        default=None,
        description="Binary or time to event from the adverse event reports: sae (any serious one) or death.",
    )
    up_to_day: int | None = Field(
        default=None,
        ge=0,
        description="Binary from adverse events: onset from day 0 (the start of treatment) to this day, both "
        "included. Time to event: the end of follow-up in days from randomization (censored there); for a date a "
        "form records, on or before the last scheduled visit's day plus its window's days after.",
    )

    @field_validator("event_values", "order", mode="before")
    @classmethod
    def _codes(cls, value: object) -> object:
        """YAML reads true/false unquoted as booleans: for a yes/no field they are its codes 'True' and 'False'."""
        if isinstance(value, list):
            return [str(v) if isinstance(v, bool) else v for v in value]
        return value

    @model_validator(mode="after")
    def _shape(self) -> Variable:
        for ref in self.fields:
            if ref.count(".") != 1:
                raise ValueError(f"field {ref!r} must be written form.field")
        kind = self.kind
        if kind is VariableKind.CONTINUOUS and not self.fields:
            raise ValueError("a continuous variable names its fields (form.field)")
        if kind in (VariableKind.ORDINAL, VariableKind.DURATION, VariableKind.COUNT) and len(self.fields) != 1:
            raise ValueError(f"an {kind.value} variable names one field")
        if kind is VariableKind.BINARY and bool(self.fields) == (self.adverse_event is not None):
            raise ValueError("a binary variable reads either one field (with event_values) or adverse_event")
        if kind is VariableKind.BINARY and self.fields and (len(self.fields) != 1 or
                                                           bool(self.event_values) == (self.responder is not None)):
            raise ValueError(
                "a binary variable from a form field names one field and either its event_values (a choice or yes/no "
                "field) or a responder rule (a numeric field)"
            )
        if self.responder is not None and kind is not VariableKind.BINARY:
            raise ValueError("a responder rule makes a binary variable: declare kind: binary")
        if self.responder is not None and self.responder.needs_baseline and self.baseline is None:
            raise ValueError("a responder rule on a change or percent change from baseline needs a baseline visit")
        if kind is VariableKind.BINARY and self.adverse_event is not None and self.up_to_day is None:
            raise ValueError("a binary variable from adverse events says up_to_day")
        if kind is VariableKind.ORDINAL and len(self.order) < 2:
            raise ValueError("an ordinal variable lists its codes in order (order), at least two")
        if kind is VariableKind.TIME_TO_EVENT and (self.adverse_event is None) == (len(self.fields) != 1):
            raise ValueError(
                "a time-to-event variable times either an adverse_event (sae or death) or the date one form field "
                "records (fields: [form.date_field], with at: the visit whose form records it), from randomization"
            )
        if kind is VariableKind.TIME_TO_EVENT and self.fields and not self.at:
            raise ValueError("a time to an event a form records says the visit whose form records it (at)")
        if kind is VariableKind.TIME_TO_EVENT and self.up_to_day is None:
            raise ValueError("a time-to-event variable says up_to_day, the end of follow-up")
        shaped = (VariableKind.CONTINUOUS, VariableKind.BINARY, VariableKind.ORDINAL, VariableKind.COUNT)
        if kind in shaped and self.fields and not self.at:
            raise ValueError(f"a {kind.value} variable from a form field says the visit it is taken at (at)")
        if self.change_from_baseline and self.baseline is None:
            raise ValueError("a change from baseline needs a baseline visit")
        if self.scale is Scale.LOG and kind is not VariableKind.CONTINUOUS:
            raise ValueError("only a continuous variable has a log scale")
        return self


class IntercurrentKind(StrEnum):
    """Intercurrent events the engine finds in the data itself."""

    DEATH = "death"  # from a fatal adverse event or the protocol's death record, whichever is first
    WITHDRAWAL = "withdrawal"  # withdrawal from follow-up
    TREATMENT_DISCONTINUATION = "treatment_discontinuation"  # withdrawal from the intervention, or never treated


class Strategy(StrEnum):
    """How an intercurrent event is handled (ICH E9(R1) A.3.1), plus death as a competing event for durations and
    times to events."""

    TREATMENT_POLICY = "treatment_policy"  # the value whatever happened (what is missing stays missing, and listed)
    COMPOSITE = "composite"  # the event itself is the outcome: it takes the declared value
    HYPOTHETICAL = "hypothetical"  # as if it had not happened (censored at it, for times to events)
    WHILE_ON_TREATMENT = "while_on_treatment"
    PRINCIPAL_STRATUM = "principal_stratum"
    COMPETING = "competing"  # death ends a duration, or prevents a time to event, as a competing event (Fine-Gray)


class IntercurrentEvent(ProtocolModel):
    """An intercurrent event the estimand expects, and its strategy."""

    event: Identifier = Field(
        description="death, withdrawal or treatment_discontinuation, or an event the protocol names (with field)."
    )
    strategy: Strategy = Field(description="How it is handled.")
    field: str | None = Field(
        default=None, description="For an event the protocol names (e.g. rescue therapy): the yes/no form.field."
    )
    value: int | float | str | None = Field(
        default=None,
        description="Composite: the value it takes: a number (continuous), a code (ordinal), or event / no_event "
        "(binary).",
    )
    description: str | None = Field(default=None, description="The rule in the protocol's words.")
    description_translations: dict[str, str] = Field(
        default_factory=dict, description="The rule in other languages."
    )


class Summary(StrEnum):
    """The population-level summary (ICH E9(R1) A.3.2)."""

    DIFFERENCE_IN_MEANS = "difference_in_means"
    RATIO_OF_GEOMETRIC_MEANS = "ratio_of_geometric_means"
    HODGES_LEHMANN_SHIFT = "hodges_lehmann_shift"
    RATE_RATIO = "rate_ratio"
    RISK_DIFFERENCE = "risk_difference"
    RISK_RATIO = "risk_ratio"
    ODDS_RATIO = "odds_ratio"
    COMMON_ODDS_RATIO = "common_odds_ratio"
    HAZARD_RATIO = "hazard_ratio"
    SUBDISTRIBUTION_HAZARD_RATIO = "subdistribution_hazard_ratio"
    RMST_DIFFERENCE = "rmst_difference"


class Estimator(StrEnum):
    """The methods that estimate a summary (docs/analysis.md names each one's source)."""

    ANCOVA = "ancova"  # adjusted for baseline and the stratification factors; on the log scale a ratio
    MMRM = "mmrm"  # mixed model for repeated measures, unstructured covariance, effect at the variable's visit
    T_TEST = "t_test"  # difference in means (ratio on the log scale), unadjusted
    WILCOXON_HODGES_LEHMANN = "wilcoxon_hodges_lehmann"
    NEWCOMBE = "newcombe"  # risk difference, Newcombe's hybrid score interval, Fisher's exact p
    KATZ = "katz"  # risk ratio, log (Katz) interval
    LOGISTIC = "logistic"  # odds ratio adjusted for the stratification factors
    MANTEL_HAENSZEL = "mantel_haenszel"  # across the randomization strata
    PROPORTIONAL_ODDS = "proportional_odds"
    NEGATIVE_BINOMIAL = "negative_binomial"  # rate ratio of counts, adjusted for the stratification factors
    COX = "cox"  # with the log-rank test and a proportional-hazards check
    RMST = "rmst"  # restricted mean survival time up to the variable's up_to_day
    FINE_GRAY = "fine_gray"  # with Gray's test
    CAUSE_SPECIFIC_COX = "cause_specific_cox"


#: The summaries each kind of variable can have.
SUMMARIES_FOR: dict[VariableKind, frozenset[Summary]] = {
    VariableKind.CONTINUOUS: frozenset(
        {Summary.DIFFERENCE_IN_MEANS, Summary.RATIO_OF_GEOMETRIC_MEANS, Summary.HODGES_LEHMANN_SHIFT}
    ),
    VariableKind.BINARY: frozenset({Summary.RISK_DIFFERENCE, Summary.RISK_RATIO, Summary.ODDS_RATIO}),
    VariableKind.ORDINAL: frozenset({Summary.COMMON_ODDS_RATIO}),
    VariableKind.COUNT: frozenset({Summary.RATE_RATIO, Summary.HODGES_LEHMANN_SHIFT, Summary.COMMON_ODDS_RATIO}),
    VariableKind.TIME_TO_EVENT: frozenset(  # the subdistribution hazard ratio with death competing
        {Summary.HAZARD_RATIO, Summary.RMST_DIFFERENCE, Summary.SUBDISTRIBUTION_HAZARD_RATIO}
    ),
    VariableKind.DURATION: frozenset({Summary.SUBDISTRIBUTION_HAZARD_RATIO, Summary.HAZARD_RATIO}),
}

#: The estimators of each summary.
ESTIMATORS_FOR: dict[Summary, frozenset[Estimator]] = {
    Summary.DIFFERENCE_IN_MEANS: frozenset({Estimator.ANCOVA, Estimator.MMRM, Estimator.T_TEST}),
    Summary.RATIO_OF_GEOMETRIC_MEANS: frozenset({Estimator.ANCOVA, Estimator.MMRM, Estimator.T_TEST}),
    Summary.HODGES_LEHMANN_SHIFT: frozenset({Estimator.WILCOXON_HODGES_LEHMANN}),
    Summary.RISK_DIFFERENCE: frozenset({Estimator.NEWCOMBE, Estimator.MANTEL_HAENSZEL}),
    Summary.RISK_RATIO: frozenset({Estimator.KATZ, Estimator.MANTEL_HAENSZEL}),
    Summary.ODDS_RATIO: frozenset({Estimator.LOGISTIC, Estimator.MANTEL_HAENSZEL}),
    Summary.COMMON_ODDS_RATIO: frozenset({Estimator.PROPORTIONAL_ODDS}),
    Summary.RATE_RATIO: frozenset({Estimator.NEGATIVE_BINOMIAL}),
    Summary.HAZARD_RATIO: frozenset({Estimator.COX, Estimator.CAUSE_SPECIFIC_COX}),
    Summary.SUBDISTRIBUTION_HAZARD_RATIO: frozenset({Estimator.FINE_GRAY}),
    Summary.RMST_DIFFERENCE: frozenset({Estimator.RMST}),
}


Covariance = Literal["unstructured", "compound_symmetry", "ar1"]


class Sensitivity(ProtocolModel):
    """A sensitivity estimator: another method, optionally in another population."""

    estimator: Estimator = Field(description="The method.")
    population: Population | None = Field(default=None, description="Another analysis set (default: the same).")


class HypothesisKind(StrEnum):
    """What the trial sets out to show about the comparison (ICH E9 3.3.2)."""

    SUPERIORITY = "superiority"
    NON_INFERIORITY = "non_inferiority"


#: The summaries a non-inferiority margin is read on, with the estimators whose bound and one-sided p the engine
#: computes (``trialwright.analysis.noninferiority``); any other is refused by ``protocol check``, not approximated.
NON_INFERIORITY_ESTIMATORS: dict[Summary, frozenset[Estimator]] = {
    Summary.DIFFERENCE_IN_MEANS: frozenset({Estimator.ANCOVA}),
}


class Hypothesis(ProtocolModel):
    """The hypothesis an estimand's comparison tests: superiority (two-sided, no margin: the default, and what every
    protocol without this key has always meant) or non-inferiority with a margin on the summary's scale and the
    direction of benefit."""

    kind: HypothesisKind = Field(
        default=HypothesisKind.SUPERIORITY,
        description="superiority (the default: a two-sided test of no difference) or non_inferiority.",
    )
    margin: float | None = Field(
        default=None,
        description="non_inferiority only: the non-inferiority margin, a positive number on the scale of the summary "
        "(a difference in means: in the variable's units). The treatment is non-inferior when the 95% CI's bound on "
        "the side of harm lies within the margin.",
    )
    lower_is_better: bool | None = Field(
        default=None,
        description="non_inferiority only: the direction of benefit, required: true when a lower value is better "
        "for the participant (harm is a positive difference), false when a higher value is better.",
    )


class Estimand(ProtocolModel):
    """The estimand of an outcome, in the five attributes of ICH E9(R1), with its estimators."""

    population: Population = Field(description="itt, modified_itt, per_protocol or safety.")
    variable: Variable = Field(description="What is measured for each participant.")
    intercurrent_events: list[IntercurrentEvent] = Field(
        default_factory=list, description="The intercurrent events expected, each with its strategy."
    )
    summary: Summary = Field(description="The population-level summary.")
    estimator: Estimator = Field(description="The main estimator.")
    sensitivity: list[Sensitivity] = Field(default_factory=list, description="Sensitivity estimators.")
    hypothesis: Hypothesis = Field(
        default_factory=Hypothesis,
        description="superiority (the default) or non_inferiority with its margin and direction of benefit; see "
        "docs/analysis.md.",
    )
    covariance: Covariance = Field(
        default="unstructured",
        description="mmrm only: the within-participant covariance of the repeated values (unstructured, "
        "compound_symmetry or ar1).",
    )

    @property
    def estimators(self) -> tuple[Estimator, ...]:
        """The main estimator and every sensitivity estimator."""
        return (self.estimator, *(s.estimator for s in self.sensitivity))

    def strategy(self, event: str) -> Strategy | None:
        """The strategy declared for an intercurrent event (None: not declared)."""
        return next((e.strategy for e in self.intercurrent_events if e.event == event), None)

    def intercurrent(self, event: str) -> IntercurrentEvent | None:
        """The declaration of an intercurrent event (None: not declared)."""
        return next((e for e in self.intercurrent_events if e.event == event), None)
