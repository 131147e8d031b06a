"""Executing the protocol's analysis plan on an analysis data set: the results a report shows.

Pure: it reads a ``Protocol`` and an ``AnalysisData`` and returns a frozen ``AnalysisReport``. Each outcome is
analysed as the protocol plans it (``Outcome.analysis``, the first method primary) in its analysis set:

* change from baseline: per group and visit n, mean (SD), median (IQR); ANCOVA of the follow-up value on
  group, adjusted for baseline and the stratification factors (on the log scale for right-skewed markers:
  a ratio of geometric means); the Wilcoxon rank-sum test with the Hodges-Lehmann shift of the change as
  sensitivity; the same ANCOVA in the per-protocol set;
* participants with an event (SAEs): the safety set as treated, risk difference with Newcombe's hybrid
  score interval and Fisher's exact p; each expected event (e.g. infusion reactions) by worst grade;
* duration with death competing (length of stay): median (IQR), the Aalen-Johansen cumulative incidence of
  discharge alive with death as a competing event (deaths are neither dropped nor censored), and between groups
  the Fine-Gray subdistribution hazard ratio with Gray's test.

Whoever in the analysis set an outcome's analysis cannot use is listed with the reason (``OutcomeResult.excluded``).

Comparisons are each later group against the first (the comparator, when arms are named). In a pooled
analysis there is one group and no comparison: only descriptions.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from trialwright.analysis import estimands, no_events
from trialwright.analysis import sentences as say
from trialwright.analysis import statistics as st
from trialwright.analysis.consort import ArmFlow, ConsortFlow, Reason
from trialwright.analysis.dataset import AnalysisData, Grouping, Subject
from trialwright.analysis.estimands.common import N_, left_by, left_in_words, planned_day
from trialwright.analysis.results import (
    Comparison,
    Exclusion,
    OutcomeResult,
    TimepointSummary,
    fixed,
    fmt_number,
    number,
)
from trialwright.domain.coding import TermRow, term_table
from trialwright.protocol import Protocol
from trialwright.protocol.analysis_plan import ProgressionMeasure
from trialwright.protocol.design import Blinding, ScreeningField
from trialwright.protocol.estimands import AdverseEventKind
from trialwright.protocol.forms import FieldType, FormField
from trialwright.protocol.sources import Source, source

__all__ = [
    "AnalysisReport",
    "Comparison",
    "Exclusion",
    "GradeRow",
    "OutcomeResult",
    "PilotRate",
    "TableOneRow",
    "TimepointSummary",
    "analyse",
    "fmt_number",
    "table_one_places",
]

#: The one group of a pooled description.
POOLED = "All participants"

_f = fmt_number

#: Days at which the cumulative incidence of discharge is reported.
CIF_DAYS = (7, 14, 28)


@dataclass(frozen=True, slots=True)
class TableOneRow:
    """One line of Table 1: a variable (or one category of it) described per group."""

    variable: str
    label: str
    cells: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class GradeRow:
    """Participants with an expected event (e.g. an infusion reaction) by worst grade, per group."""

    event: str
    label: str
    by_grade: Mapping[str, Mapping[int, int]]  # group -> grade -> participants
    participants: Mapping[str, int]  # group -> participants with the event
    denominators: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class PilotRate:
    """A feasibility rate of the pilot, with the protocol's progression verdict if it declares one."""

    measure: str
    label: str
    numerator: float
    denominator: float
    value: float | None
    verdict: str | None  # go, amend, stop

    def text(self) -> str:
        if self.value is None:
            return "not estimable"
        if self.measure == ProgressionMeasure.RECRUITMENT_PER_SITE_MONTH.value:
            shown = f"{self.value:.2f} per site-month ({self.numerator:g} in {self.denominator:.1f} site-months)"
        else:
            shown = f"{100 * self.value:.0f}% ({int(self.numerator)}/{int(self.denominator)})"
        return shown + (f"; progression: {self.verdict}" if self.verdict else "")


#: The mode in words per declared blinding: (unblinded, by arm while blinded, blinded). Open and single-blind trials
#: keep no one using the system from the arms, so their analysis is always by arm (never "unblinded" or "blinded").
_MODE: dict[str, tuple[str, str, str]] = {
    "open": ("", N_("Analysis by arm (open label)"), ""),
    "single": ("", N_("Analysis by arm (single-blind: the participants are masked, the arms are open to staff)"), ""),
    "double": (N_("Unblinded analysis (double-blind trial)"), "", N_("Blinded analysis (double-blind trial)")),
    "triple": (N_("Unblinded analysis (triple-blind trial)"), "", N_("Blinded analysis (triple-blind trial)")),
    "custom": (
        N_("Unblinded analysis (custom blinding: the roles the protocol lists are masked)"),
        "",
        N_("Blinded analysis (custom blinding: the roles the protocol lists are masked)"),
    ),
}
_BY_ARM_MEANING = {
    "open": N_("no one is kept from the arms."),
    "single": N_("only the participants are kept from their arms; no one using the system is."),
}


@dataclass(frozen=True, slots=True)
class AnalysisReport:
    """The analysis of one snapshot: its provenance, analysis sets, Table 1, outcomes, safety, CONSORT, pilot."""

    trial_id: str
    title: str
    protocol_version: str
    software_version: str
    taken_at: str  # ISO UTC
    snapshot_sha256: str
    audit_seq: int
    grouping: str
    groups: tuple[str, ...]
    unblinded: bool
    analysis_sets: Mapping[str, Mapping[str, int]]  # set id -> group -> n
    set_names: Mapping[str, str]
    table_one: tuple[TableOneRow, ...]
    outcomes: tuple[OutcomeResult, ...]
    by_grade: tuple[GradeRow, ...]
    #: Adverse events by primary MedDRA SOC and PT (``domain.coding.term_table``), randomized participants n (%)
    #: and events: by arm in an analysis by arm (unblinded, or a trial masking no one), pooled otherwise.
    terms: tuple[TermRow, ...]
    term_groups: tuple[str, ...]
    consort: ConsortFlow
    pilot: tuple[PilotRate, ...]
    below_limit_rule: str
    notes: tuple[str, ...]
    #: The blinding the protocol declares (``masking.blinding``; a masking written before it was declared masks as
    #: double): the mode is said with it.
    blinding: str
    lock_banner: str | None = None  # printed first: the data were locked with blockers open
    #: Form records the snapshot read, by state (every record counts whatever its state); trial-wide, never by arm.
    form_states: Mapping[str, int] = field(default_factory=dict)
    #: The data cut-off (ISO UTC) when it is not ``taken_at``: the lock of a locked trial; None: ``taken_at``.
    cut_off_at: str | None = None

    @property
    def mode(self) -> str:
        """The analysis's mode in words with the blinding the protocol declares: blinded or unblinded in a trial
        masking staff (double, triple, custom), by arm in one masking no one using the system (open, single)."""
        return _MODE[self.blinding][0 if self.unblinded else 1 if self.grouping == "by_arm" else 2]

    @property
    def mode_meaning(self) -> str:
        """What the mode means for the reader (the analysis page's sentence after the mode)."""
        if self.unblinded:
            return N_("arms are named.")
        if self.grouping == "by_arm":
            return _BY_ARM_MEANING[self.blinding]
        return N_("no arm is named.")

    @property
    def outcome_ids(self) -> tuple[str, ...]:
        """The outcomes analysed, in protocol order."""
        return tuple(dict.fromkeys(o.outcome_id for o in self.outcomes))

    def summary(self) -> str:
        """The whole report as plain text."""
        lines = [
            f"{self.title} ({self.trial_id}), protocol version {self.protocol_version}",
            f"trialwright {self.software_version}; data snapshot {self.snapshot_sha256[:16]} at {self.taken_at} "
            f"(audit entry {self.audit_seq}); {self.mode}: {self.grouping}",
        ]
        if self.cut_off_at is not None:
            lines.append(f"data cut-off at the lock, {self.cut_off_at}: follow-up is counted to it")
        if self.lock_banner:
            lines.insert(0, self.lock_banner)
        for set_id, counts in self.analysis_sets.items():
            lines.append(f"{self.set_names.get(set_id, set_id)}: " + ", ".join(f"{g} {n}" for g, n in counts.items()))
        lines.append("")
        lines.extend(o.summary() for o in self.outcomes)
        lines.append("")
        lines.append(self.consort.summary())
        if self.terms:
            lines.append("Adverse events by MedDRA SOC and PT (randomized participants n (%) [events]):")
            for t in self.terms:
                cells = "; ".join(f"{g} {t.cell(g)}" for g in self.term_groups)
                lines.append(f"  {'  ' if t.pt else ''}{t.label}: {cells}")
        lines.extend(f"{r.label}: {r.text()}" for r in self.pilot)
        lines.extend(self.notes)
        return "\n".join(lines)

    def csv_rows(self) -> list[dict[str, Any]]:
        """One row per estimate (the machine-readable core of results.json, for a spreadsheet)."""
        rows = []
        for o in self.outcomes:
            for c in o.comparisons:
                rows.append(
                    {
                        "outcome": o.outcome_id,
                        "variable": o.variable,
                        "timepoint": o.timepoint,
                        "analysis_set": c.analysis_set,
                        "comparison": c.label,
                        "method": c.method,
                        "scale": c.scale,
                        "estimate": c.estimate,
                        "ci_lower": c.lower,
                        "ci_upper": c.upper,
                        "p_value": c.p_value,
                        "n_treatment": c.n[0],
                        "n_reference": c.n[1],
                        "primary": c.primary,
                        "note": c.note,
                        **_hypothesis_columns(c, o.hypothesis),
                    }
                )
            for s in o.summaries:
                if s.visit == o.timepoint:
                    rows.append(
                        {
                            "outcome": o.outcome_id,
                            "variable": o.variable,
                            "timepoint": o.timepoint,
                            "analysis_set": o.analysis_set,
                            "comparison": s.group,
                            "method": f"describe {s.what}",
                            "scale": "mean",
                            "estimate": s.mean,
                            "ci_lower": s.ci_lower,
                            "ci_upper": s.ci_upper,
                            "p_value": None,
                            "n_treatment": s.n,
                            "n_reference": None,
                            "primary": False,
                            "note": f"sd={_f(s.sd)} median={_f(s.median)} iqr={_f(s.q1)} to {_f(s.q3)}",
                            **_hypothesis_columns(None, o.hypothesis),
                        }
                    )
        return rows


def _hypothesis_columns(c: Comparison | None, declared: str) -> dict[str, Any]:
    """results.csv's hypothesis columns: superiority (p_value is then the two-sided p of no difference) or
    non_inferiority with the margin as a difference on the side of harm, the 95% CI's bound on that side, the
    one-sided p for H0 (the difference is the margin) and the conclusion; empty for a description row. A
    comparison not estimated keeps its declared hypothesis, with no bound and no conclusion (its note says why)."""
    if c is None:
        return {"hypothesis": None, "margin": None, "harm_bound": None, "p_value_one_sided": None, "conclusion": None}
    ni = c.non_inferiority
    if ni is None:
        return {"hypothesis": declared, "margin": None, "harm_bound": None, "p_value_one_sided": None,
                "conclusion": None}  # fmt: skip
    return {"hypothesis": "non_inferiority", "margin": ni.limit, "harm_bound": ni.bound,
            "p_value_one_sided": ni.p_value, "conclusion": ni.conclusion}  # fmt: skip


# --- safety tables ------------------------------------------------------------------------------------


def _by_grade(protocol: Protocol, safety_set: Sequence[Subject], groups: Sequence[str]) -> tuple[GradeRow, ...]:
    rows = []
    for expected in protocol.safety.expected_events:
        by_grade: dict[str, dict[int, int]] = {}
        participants: dict[str, int] = {}
        for g in groups:
            worst = [
                max(e.grade for e in s.events if e.expected_event == expected.code)
                for s in safety_set
                if s.treated_group == g and any(e.expected_event == expected.code for e in s.events)
            ]
            by_grade[g] = {grade: worst.count(grade) for grade in range(1, 6)}
            participants[g] = len(worst)
        denominators = {g: sum(1 for s in safety_set if s.treated_group == g) for g in groups}
        rows.append(GradeRow(expected.code, expected.term, by_grade, participants, denominators))
    return tuple(rows)


# --- Table 1, CONSORT, pilot ----------------------------------------------------------------------------


def _table_one(protocol: Protocol, data: AnalysisData, itt: Sequence[Subject]) -> tuple[TableOneRow, ...]:
    plan = protocol.analysis_plan
    if plan is None:
        return ()
    visit = plan.baseline_visit
    groups = data.groups
    rows = [TableOneRow("n", "Participants", {g: str(sum(1 for s in itt if s.group == g)) for g in groups})]
    for ref in plan.baseline_table:
        # a form's field at the baseline visit, or the screening record's value (protocol.sources)
        src = source(protocol, ref)
        f = src.field
        label = f.label + (f" ({f.unit})" if getattr(f, "unit", None) else "")
        members = {g: [_baseline(s, src, visit) for s in itt if s.group == g] for g in groups}
        if f.type in (FieldType.INTEGER, FieldType.DECIMAL):
            places = table_one_places(ref, f)
            cells = {}
            for g, values in members.items():
                d = st.describe([number(v) for v in values])
                shown = fmt_number if places is None else functools.partial(fixed, places=places)
                m, sd, med, q1, q3 = (shown(x) for x in (d.mean, d.sd, d.median, d.q1, d.q3))
                cells[g] = f"{m} ({sd}); median {med} [{q1}, {q3}]; n={d.n}" if d.n else "n=0"
            rows.append(TableOneRow(ref, label, cells))
            continue
        if f.type not in (FieldType.BOOLEAN, FieldType.CHOICE):  # refused by protocol check but in a stored text
            said = f"not described: a {str(f.type).replace('_', ' ')} field has no Table 1 row"
            rows.append(TableOneRow(ref, label, {g: said for g in groups}))
            continue
        choices = [(c.code, c.label) for c in (f.choices or [])] or [("True", "yes")]
        rows.append(TableOneRow(ref, label, {g: "" for g in groups}))
        for code, choice_label in choices:
            cells = {}
            for g, values in members.items():
                known = [v for v in values if v is not None]
                k = sum(1 for v in known if str(v) == code)
                cells[g] = f"{k} ({100 * k / len(known):.0f}%)" if known else "0"
            rows.append(TableOneRow(f"{ref}={code}", f"  {choice_label}", cells))
        missing = {g: sum(1 for v in values if v is None) for g, values in members.items()}
        if any(missing.values()):
            rows.append(TableOneRow(f"{ref}=missing", "  missing", {g: str(m) for g, m in missing.items()}))
    return tuple(rows)


def _baseline(s: Subject, src: Source, visit: str) -> Any:
    """A participant's value of one Table 1 row: the screening record's, or the form's at the baseline visit."""
    return s.screening.get(src.name) if src.screening else s.value(visit, src.ref)


def table_one_places(ref: str, f: FormField | ScreeningField) -> int | None:
    """The decimals Table 1 shows a number field's mean, SD, median and quartiles at: the field's declared decimals
    plus one (an integer field's none plus one), as CONSORT tables usually do. A decimal field without declared
    decimals (a form's: ``protocol check`` refuses it, only a protocol version stored before that rule has one; a
    typed screening field's, which keeps what was typed and declares none) has None: its numbers are shown by the
    report's general rule for numbers (``fmt_number``, 3 significant digits)."""
    if f.type == FieldType.INTEGER:
        return (f.decimals or 0) + 1
    if f.decimals is None:
        return None
    return f.decimals + 1


def _first_primary(results: Sequence[OutcomeResult]) -> OutcomeResult | None:
    """The first primary outcome's result: what the CONSORT diagram's analysis stage and the pilot's retention
    count (every primary outcome's own counts are in ``ConsortFlow.analysed_by_outcome``)."""
    return next((r for r in results if r.kind == "primary"), None)


@dataclass(frozen=True)
class _Analysed:
    """Who the first primary outcome's analysis used: its population's members less those it lists as excluded."""

    population: frozenset[str]
    excluded: Mapping[str, str]  # participant -> cause

    def used(self, pid: str) -> bool:
        return pid in self.population and pid not in self.excluded


#: The diagram's reason for exclusion from analysis of one outside the first primary outcome's analysis set.
NOT_IN_SET = N_("Not in the %(set)s")

#: How the diagram words each cause of exclusion from analysis.
_EXCLUDED = {
    "died": N_("Died before the outcome was measured"),
    "withdrew_consent": N_("Withdrew consent before the outcome was measured"),
    "lost_to_follow_up": N_("Lost to follow-up before the outcome was measured"),
    "left_follow_up": N_("Left follow-up for another reason before the outcome was measured"),
    "not_due": N_("Outcome not yet due (its visit's window had not closed by the data cut-off)"),
    "missing": N_("Outcome not recorded (visit missed or value missing)"),
    "unusable": N_("Outcome value not usable (e.g. not positive on the log scale)"),
    "untreated": N_("Never treated (the estimand counts time on treatment only)"),
    "outside": NOT_IN_SET,
}

#: How the diagram words each way of leaving follow-up (``left_in_words``, capitalized), for the catalog.
LEFT_FOLLOW_UP = (
    N_("Withdrew consent"),
    N_("Lost to follow-up"),
    N_("Left follow-up (investigator decision)"),
    N_("Left follow-up (adverse event)"),
    N_("Left follow-up (other)"),
    N_("Left follow-up (cause not recorded)"),
)


def _end_of_follow_up(protocol: Protocol) -> Callable[[Subject], int | None]:
    """For a participant, the planned day (from randomization) of the last scheduled visit that can be placed;
    None when none can (then every withdrawal counts as a loss)."""
    days = [planned_day(protocol, v.id) for v in protocol.visits if v.kind == "scheduled"]

    def last(s: Subject) -> int | None:
        known = [d for day in days if (d := day(s)) is not None]
        return max(known) if known else None

    return last


def _died_by(s: Subject, day: int | None) -> bool:
    """Whether the participant died on or before ``day`` (days from randomization); when the day is not known,
    whether they died at all (as ``left_by`` for withdrawals)."""
    return s.death_day is not None and (day is None or s.death_day <= day)


def _consort(
    protocol: Protocol, data: AnalysisData, itt: Sequence[Subject], results: Sequence[OutcomeResult], used: _Analysed
) -> ConsortFlow:
    sc = data.screened
    excluded = [
        Reason(N_("Not meeting eligibility criteria"), sc.not_eligible),
        Reason(N_("Declined to participate"), sc.declined),
    ]
    excluded += [Reason(label, n) for label, n in sorted(sc.other_reasons.items()) if n]
    first = _first_primary(results)
    last = _end_of_follow_up(protocol)
    arms = []
    for g in data.groups:
        members = [s for s in itt if s.group == g]
        recorded = protocol.analysis_plan is not None and protocol.analysis_plan.treatment is not None
        received = sum(1 for s in members if s.treated) if recorded else None
        # A death or a withdrawal after the last scheduled visit's day is no loss: the participant completed
        # follow-up (walk 6 F3: a death on day 34 after the day-28 visit was listed under lost to follow-up).
        dead = {s.participant_id for s in members if _died_by(s, last(s))}
        died = len(dead)
        left = Counter(left_in_words(s) for s in members if left_by(s, last(s)) and s.participant_id not in dead)
        stopped = sum(1 for s in members if "intervention" in s.withdrawn)
        analysed = sum(1 for s in members if used.used(s.participant_id))
        causes = Counter(used.excluded[s.participant_id] for s in members if s.participant_id in used.excluded)
        causes["outside"] = sum(
            1 for s in members if s.participant_id not in used.population and s.participant_id not in used.excluded
        )
        arms.append(
            ArmFlow(
                g,
                len(members),
                received,
                (Reason(N_("Intervention not recorded as given"), len(members) - received),)
                if received is not None and received < len(members)
                else (),
                tuple(
                    r
                    for r in (Reason(N_("Died"), died), *(Reason(w.capitalize(), n) for w, n in sorted(left.items())))
                    if r.count
                ),
                (Reason(N_("Withdrew from the intervention"), stopped),) if stopped else (),
                analysed,
                tuple(
                    Reason(
                        label % {"set": first.analysis_set if first else ""} if cause == "outside" else label,
                        causes[cause],
                    )
                    for cause, label in _EXCLUDED.items()
                    if causes[cause]
                ),
            )
        )
    primaries = [r for r in results if r.kind == "primary"]
    by_outcome = tuple(
        (f"{r.description} ({r.variable})", tuple((g, r.analysed.get(g, 0)) for g in r.in_set)) for r in primaries
    )
    by_first = CONSORT_SET % {"set": first.analysis_set, "outcome": first.description} if first else ""
    set_name = by_first or N_("Intention to treat")
    return ConsortFlow(
        sc.assessed,
        tuple(excluded),
        len(itt),
        tuple(arms),
        set_name,
        tuple((r.label, r.text()) for r in _pilot(protocol, data, itt, used)),
        protocol.short_name,
        by_outcome if len({counts for _, counts in by_outcome}) > 1 else (),
    )


#: The CONSORT diagram's analysis set: the first primary outcome's set, named with the outcome.
CONSORT_SET = N_("%(set)s, for %(outcome)s")

_PILOT_LABELS = {
    ProgressionMeasure.ELIGIBILITY_RATE: N_("Eligible of those screened"),
    ProgressionMeasure.CONSENT_RATE: N_("Consented of those eligible"),
    ProgressionMeasure.RECRUITMENT_PER_SITE_MONTH: N_("Recruitment rate"),
    ProgressionMeasure.RETENTION_RATE: N_("Retained to the primary timepoint"),
}


def _pilot(protocol: Protocol, data: AnalysisData, itt: Sequence[Subject], used: _Analysed) -> tuple[PilotRate, ...]:
    """The feasibility rates of a pilot trial (``trial.design.pilot``); none for a trial that is not a pilot."""
    if not protocol.trial.design.pilot:
        return ()
    sc = data.screened
    parts = {
        ProgressionMeasure.ELIGIBILITY_RATE: (sc.eligible, sc.assessed),
        ProgressionMeasure.CONSENT_RATE: (sc.consented, sc.eligible),
        ProgressionMeasure.RECRUITMENT_PER_SITE_MONTH: (len(itt), sc.site_months),
        ProgressionMeasure.RETENTION_RATE: (sum(1 for s in itt if used.used(s.participant_id)), len(itt)),
    }
    criteria = {c.measure: c for c in (protocol.analysis_plan.progression_criteria if protocol.analysis_plan else [])}
    out = []
    for measure, (num, den) in parts.items():
        value = num / den if den else None
        verdict = None
        c = criteria.get(measure)
        if c is not None and value is not None:
            verdict = "go" if value >= c.go else ("stop" if c.stop is not None and value < c.stop else "amend")
        out.append(PilotRate(measure.value, _PILOT_LABELS[measure], float(num), float(den), value, verdict))
    return tuple(out)


def _terms(data: AnalysisData, itt: Sequence[Subject]) -> tuple[TermRow, ...]:
    """The table by SOC and PT over the randomized participants: by arm only in an analysis by arm; pooled in a
    blinded one, even where the protocol allows unnamed groups (a table of terms by group would let a reader tie
    a known event's group to others)."""
    if data.grouping is Grouping.BY_ARM:
        return tuple(term_table(data.ae_terms, {s.participant_id: s.group for s in itt}, data.groups))
    return tuple(term_table(data.ae_terms, dict.fromkeys((s.participant_id for s in itt), POOLED), (POOLED,)))


# --- the whole plan -------------------------------------------------------------------------------------


def declared_sets(
    protocol: Protocol, counted: Mapping[str, Mapping[str, int]]
) -> tuple[dict[str, Mapping[str, int]], list[str]]:
    """The analysis sets the protocol declares, in its order, with their counts (a set it does not declare is not
    reported); a declared set trialwright cannot count (an id other than those of ``counted``) is said in a note,
    never left out unsaid."""
    sets = {a.id: counted[a.id] for a in protocol.analysis_sets if a.id in counted}
    notes = [
        say.NOT_COUNTED % {"set_id": a.id, "set": a.name, "counted": ", ".join(counted)}
        for a in protocol.analysis_sets
        if a.id not in counted
    ]
    return sets, notes


def analyse(protocol: Protocol, data: AnalysisData, *, software_version: str, unblinded: bool) -> AnalysisReport:
    """Run the protocol's analysis plan on one analysis data set."""
    groups = data.groups
    itt = list(data.subjects)
    pp = [s for s in itt if s.per_protocol]
    safety_set = [s for s in itt if s.treated]
    # Efficacy by unnamed groups before the lock would let the blinded team compare the arms: unnamed groups
    # are for safety (as the protocol's blinded_tables says); efficacy outcomes are pooled in that mode. A variable
    # counting or timing serious adverse events is a safety outcome; one of deaths (all-cause mortality) is
    # efficacy, pooled: its hazard ratio or risk difference is the trial's efficacy answer (the deaths are still
    # among the SAEs of the safety tables by group).
    safety_sets = estimands.sets_of(protocol, itt, groups)
    efficacy_sets = safety_sets
    if data.grouping is Grouping.UNNAMED_GROUPS:
        pooled = [replace(s, group=POOLED, treated_group=POOLED if s.treated_group else None) for s in itt]
        efficacy_sets = estimands.sets_of(protocol, pooled, (POOLED,))
    results: list[OutcomeResult] = []
    for outcome in protocol.outcomes:
        safety_variable = outcome.estimand.variable.adverse_event is AdverseEventKind.SAE
        found = estimands.analyse_outcome(protocol, outcome, safety_sets if safety_variable else efficacy_sets)
        if safety_variable and data.grouping is Grouping.UNNAMED_GROUPS:
            # A participant named beside an unnamed group would tie that person to it (and one emergency
            # unblinding would then name the whole group): exclusions are listed without their group here.
            found = [replace(r, excluded=tuple(replace(x, group="") for x in r.excluded)) for r in found]
        results.extend(found)
    first_outcome = next((o for o in protocol.outcomes if o.kind == "primary"), None)
    first = _first_primary(results)
    used = _Analysed(
        frozenset(s.participant_id for s in safety_sets.of(first_outcome.estimand.population))
        if first_outcome
        else frozenset(s.participant_id for s in itt),
        {x.participant_id: x.cause for x in first.excluded} if first else {},
    )
    counted = {
        "itt": {g: sum(1 for s in itt if s.group == g) for g in groups},
        "modified_itt": {g: sum(1 for s in itt if s.treated and s.group == g) for g in groups},
        "safety": {g: sum(1 for s in safety_set if s.treated_group == g) for g in groups},
        "per_protocol": {g: sum(1 for s in pp if s.group == g) for g in groups},
    }
    sets, uncounted = declared_sets(protocol, counted)
    names = {a.id: a.name for a in protocol.analysis_sets}
    notes = [*data.notes, *uncounted, *no_events.notes_for(results)]
    if (protocol.analysis_plan is None or protocol.analysis_plan.treatment is None) and (
        treated_sets := [a.id for a in protocol.analysis_sets if a.id in {"safety", "modified_itt"}]
    ):
        notes.append(say.NO_TREATMENT % {"sets": say.AND.join(treated_sets)})
    if data.grouping is Grouping.POOLED:
        notes.append(N_("Blinded, pooled: every participant in one group; no comparison between arms is made."))
    elif data.grouping is Grouping.UNNAMED_GROUPS:
        notes.append(
            N_(
                "Blinded: safety (SAEs, expected events), Table 1 and the flow by unnamed groups in an order fixed by "
                "a secret; efficacy outcomes pooled, so no reader of a blinded report can compare the arms' efficacy: "
                "that comparison is the unblinded analysis's, run only after the database lock."
            )
        )
    unblinded_people = sum(1 for s in itt if s.emergency_unblinded)
    if unblinded_people:
        notes.append(say.UNBLINDED_PEOPLE % {"n": unblinded_people})
    return AnalysisReport(
        trial_id=data.trial_id,
        title=protocol.trial.titles.public,
        protocol_version=data.protocol_version,
        software_version=software_version,
        taken_at=data.taken_at.isoformat(),
        snapshot_sha256=data.snapshot_sha256,
        audit_seq=data.audit_seq,
        grouping=data.grouping.value,
        groups=groups,
        unblinded=unblinded,
        blinding=(protocol.masking.blinding or Blinding.DOUBLE).value,
        analysis_sets=sets,
        set_names=names,
        table_one=_table_one(protocol, data, itt),
        outcomes=tuple(results),
        by_grade=_by_grade(protocol, safety_set, groups),
        terms=_terms(data, itt),
        term_groups=groups if data.grouping is Grouping.BY_ARM else (POOLED,),
        consort=_consort(protocol, data, itt, results, used),
        pilot=_pilot(protocol, data, itt, used),
        below_limit_rule=data.below_limit_rule,
        notes=tuple(notes),
        lock_banner=data.lock_banner,
        cut_off_at=data.cut_off_at.isoformat() if data.cut_off_at is not None else None,
        form_states=dict(data.form_states),
    )
