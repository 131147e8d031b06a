"""The report's sentences built with values, as catalog messages with named parts, and how a report says one again
in its reader's language.

The analysis writes each such sentence in English from one of these messages: a note of the report, why a
participant could not be used by an outcome's analysis (``Exclusion.reason``), a comparison's label, its method, its
scale and the note under its estimate (or why it is not estimable: the statistical methods' own words, quoted).
``results.json`` keeps the English (it is the record programs read). A report in another language reads the sentence
back (``again``): the sentence is matched against each message's English, and the message is said again in the
reader's words with each part in the reader's language (``Part``: a visit by its name, a group or analysis set by the
protocol's name, a number in the reader's digits, an identifier such as ``labs.crp`` as written). A sentence that no
message matches is shown as written, never guessed. Pure: the caller passes the catalog in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

__all__ = [
    "AFTER_DEATH",
    "AFTER_DEATH_NOT_USED",
    "ALL_EVENTS_RR",
    "ANCOVA_EMPTY_GROUP",
    "ANCOVA_EXACT",
    "ANCOVA_FEW_ROWS",
    "ANCOVA_LOG",
    "AND",
    "ARM_WORDS",
    "BEFORE_RANDOMIZATION",
    "BOTH_ARMS",
    "CATEGORIES",
    "DEATHS_UNKNOWN",
    "DF",
    "DIED_FIRST_UNKNOWN",
    "DIED_NO_START",
    "DIED_NO_START_LEFT",
    "DISCHARGED_DIED",
    "DISPERSION",
    "EFFECT_AT",
    "EFFECT_BY_VISIT",
    "EFFECT_BY_VISIT_LOG",
    "EVENTS_DIED",
    "FEW_IN_GROUP",
    "FINE_GRAY_SINGULAR",
    "GRAY",
    "GRAY_NO_VARIANCE",
    "HL_EMPTY",
    "HR_NO_EVENTS",
    "HR_NO_EVENTS_IN",
    "INTERVAL",
    "LOCKED_OVER",
    "LOCKED_OVER_ONE",
    "LOGISTIC_FAILED",
    "LOG_RANK",
    "LOG_RANK_NO_VARIANCE",
    "MARKED",
    "MESSAGES",
    "MMRM",
    "NB2_BOUNDARY",
    "NB2_BY",
    "NB2_FAILED",
    "NONE",
    "NONE_DIED",
    "NONE_LEFT",
    "NONE_LEFT_ON",
    "NOT_COUNTED",
    "NOT_DUE",
    "NOT_ESTIMABLE",
    "NOT_HELD",
    "NOT_POSITIVE",
    "NO_EVENTS",
    "NO_EVENTS_IN",
    "NO_EVENTS_IN_GROUP",
    "NO_EVENTS_RATE",
    "NO_EVENTS_RR",
    "NO_FORM",
    "NO_OVERLAP",
    "NO_START",
    "NO_START_LEFT",
    "NO_TREATMENT",
    "NO_VARIANCE",
    "NO_VARIATION",
    "N_",
    "N_DROPPED",
    "ONE_CATEGORY",
    "OR_ALL",
    "OR_NONE",
    "PH_CHECK",
    "PO_DIRECTION",
    "PO_FAILED",
    "PO_TEST",
    "PPO_BOUNDARY",
    "PPO_FAILED",
    "PPO_FEW",
    "RANK_DEFICIENT",
    "REML_FLAT",
    "RMST_NO_EVENTS",
    "RMST_NO_EVENTS_IN",
    "RMST_SCALE",
    "SCALES",
    "SEPARATED",
    "SHR_OF_EVENT",
    "STAY_END",
    "STAY_NOT_RECORDED",
    "STAY_NOT_RECORDED_LEFT",
    "STRATA_LEFT_OUT",
    "UNBLINDED_PEOPLE",
    "VERSUS",
    "WILSON_EMPTY",
    "ZERO_BASELINE",
    "ZERO_BASELINE_REFUSED",
    "again",
]


def N_(message: str) -> str:
    """Marks an English message a reader's catalog translates (found by the catalog's completeness test)."""
    return message


# --- why a participant could not be used by an outcome's analysis --------------------------------------------------
AFTER_DEATH = N_("%(variable)s at %(visit)s is recorded on day %(day)s, after death on day %(death_day)s: not used")
NOT_POSITIVE = N_("%(variable)s at %(visit)s is %(value)s, not positive (log scale)")
NONE_DIED = N_("no %(variable)s at %(visit)s (died on day %(death_day)s after randomization)")
NONE_LEFT_ON = N_("no %(variable)s at %(visit)s (%(how)s on day %(day)s)")
NONE_LEFT = N_("no %(variable)s at %(visit)s (%(how)s)")
NONE = N_("no %(variable)s at %(visit)s")
NOT_DUE = N_("%(variable)s at %(visit)s not yet due (its window had not closed by the data cut-off)")
MARKED = N_("%(variable)s at %(visit)s is marked %(mark)s: whether the event happened is not known")
BEFORE_RANDOMIZATION = N_("%(variable)s at %(visit)s is %(value)s, before randomization: not used")
NO_FORM = N_("no %(form)s form at %(visit)s: whether the event happened is not known")
ZERO_BASELINE = N_(
    "%(variable)s at %(visit)s is %(value)s: a percent change from it is undefined (zero_baseline: %(handling)s)"
)
ZERO_BASELINE_REFUSED = N_(
    "a percent change from a baseline of 0 or below is undefined for %(who)s (zero_baseline: refuse): not estimated"
)
NOT_HELD = N_("no %(variable)s at %(visit)s: the visit was not held, so whether the event happened is not known")
DEATHS_UNKNOWN = N_(
    "%(n)s deaths with nothing recorded to say whether the event came before them (listed as not analysed): without "
    "them the deaths would be understated and the event overstated, so no estimate"
)
DIED_FIRST_UNKNOWN = N_(
    "died on day %(day)s with no %(variable)s recorded at %(visit)s by then: whether the event came before the death "
    "is not known"
)
STAY_NOT_RECORDED = N_("how the stay ended is not recorded")
DIED_NO_START = N_("died, but %(variable)s has no value (the start of the stay is not recorded)")
NO_START = N_("%(variable)s has no value (the start of the stay is not recorded)")
#: the same, with how the participant left follow-up
STAY_NOT_RECORDED_LEFT = N_("how the stay ended is not recorded (%(how)s)")
DIED_NO_START_LEFT = N_("died, but %(variable)s has no value (the start of the stay is not recorded) (%(how)s)")
NO_START_LEFT = N_("%(variable)s has no value (the start of the stay is not recorded) (%(how)s)")

# --- a comparison's label and method ------------------------------------------------------------------------------
VERSUS = N_("%(treatment)s vs %(reference)s")
ANCOVA_LOG = N_("ANCOVA (log scale)")
MMRM = N_("MMRM (%(covariance)s, REML, Satterthwaite df)")

# --- the report's notes -------------------------------------------------------------------------------------------
NOT_COUNTED = N_(
    "Analysis set %(set_id)s (%(set)s) is declared but not one trialwright counts (%(counted)s): "
    "no count is reported for it"
)
NO_TREATMENT = N_(
    "No treatment record is declared (analysis_plan.treatment): the %(sets)s set counts every randomized "
    "participant as treated, as randomized; who received the intervention is not recorded."
)
UNBLINDED_PEOPLE = N_("%(n)s participant(s) were emergency-unblinded before this analysis.")
#: a time-to-event outcome with no events at all, or none in one group (``analysis.no_events``)
NO_EVENTS = N_(
    "Outcome %(outcome)s: no events in any group by day %(day)s. Everyone analysed was free of the event to the end, "
    "so each Kaplan-Meier curve stays flat, each restricted mean survival time is the whole follow-up (their "
    "difference 0, with no variance) and the hazard ratio is not estimable: check that the events are recorded."
)
NO_EVENTS_IN = N_(
    "Outcome %(outcome)s: no events in %(group)s by day %(day)s. Its Kaplan-Meier curve stays flat, its restricted "
    "mean survival time is the whole follow-up, and a hazard ratio against it is 0 or infinite (not estimable)."
)
#: between the sets of ``NO_TREATMENT``
AND = N_(" and ")

# --- a comparison's scale with its day, and the note under its estimate (each piece; several joined by "; ") ---
RMST_SCALE = N_("difference in restricted mean survival time to day %(day)s (days)")
N_DROPPED = N_("n dropped %(n)s")
DF = N_("df %(df)s (%(df_method)s)")
EFFECT_BY_VISIT = N_("effect by visit: %(visit)s %(effect)s")
EFFECT_BY_VISIT_LOG = N_("effect by visit (log scale): %(visit)s %(effect)s")
#: one more visit's effect after ``EFFECT_BY_VISIT`` (joined by "; ")
EFFECT_AT = N_("%(visit)s %(effect)s")
AFTER_DEATH_NOT_USED = N_("values recorded after the participant's death not used: %(values)s")
INTERVAL = N_("%(interval)s interval")
DISPERSION = N_("dispersion alpha=%(p)s")
PO_TEST = N_("proportional odds test p=%(p)s")
CATEGORIES = N_("categories %(low)s to %(high)s")
LOG_RANK = N_("stratified log-rank p=%(p)s")
PH_CHECK = N_("proportional hazards check p=%(p)s")
GRAY = N_("Gray's test p=%(p)s")
DISCHARGED_DIED = N_("%(n)s discharged alive, %(k)s died")
EVENTS_DIED = N_("%(n)s had the event, %(k)s died before it")
#: the scale of a time to event's Fine-Gray estimate (death competing)
SHR_OF_EVENT = N_("subdistribution hazard ratio of the event")
STRATA_LEFT_OUT = N_("strata left out of the model (in each, every participant had the same outcome): %(strata)s")
#: why an estimate is not estimable: the statistical methods' own words (``analysis.statistics``,
#: ``analysis.methods``), quoted exactly (a spec raises each and compares)
FEW_IN_GROUP = N_("fewer than 2 participants in a group")
ANCOVA_EMPTY_GROUP = N_("ANCOVA needs at least one complete row in each group")
ANCOVA_FEW_ROWS = N_("ANCOVA needs more complete rows (%(n)s) than model terms (%(k)s)")
HL_EMPTY = N_("hodges_lehmann needs at least one value in each sample")
WILSON_EMPTY = N_("wilson needs 0 <= k <= n and n >= 1, got k=%(k)s, n=%(n)s")
BOTH_ARMS = N_("group must hold both arms: at least one participant coded 1 and one coded 0")
NO_EVENTS_IN_GROUP = N_("events: group %(k)s has no events, so the hazard ratio is 0 or infinite")
LOG_RANK_NO_VARIANCE = N_("events: the log-rank test has no variance (no event with both arms at risk)")
ANCOVA_EXACT = N_("the ANCOVA model fits the data exactly, so tau has no standard error")

#: a fit that failed or an estimate with a caveat: the statistical methods' own words, quoted exactly
#: (``analysis.methods``; a spec raises or writes each and compares)
NB2_FAILED = N_(
    "the negative binomial (NB2) fit did not reach a maximum by any optimizer (BFGS, Newton-Raphson, Nelder-Mead); no "
    "Poisson model is substituted"
)
#: how the NB2 fit was found (``methods.nb2_fit.OPTIMIZERS``, statsmodels' names joined by "+") and its boundary
NB2_BY = {
    "bfgs+newton": N_("NB2 maximum likelihood by BFGS, then Newton-Raphson"),
    "bfgs": N_("NB2 maximum likelihood by BFGS (Newton-Raphson from its optimum failed)"),
    "nm+newton": N_("NB2 maximum likelihood by Nelder-Mead, then Newton-Raphson (BFGS failed)"),
    "nm": N_("NB2 maximum likelihood by Nelder-Mead (BFGS and Newton-Raphson failed)"),
}
NB2_BOUNDARY = N_(
    "dispersion alpha=%(p)s, at the boundary (essentially 0: no overdispersion): the interval holds alpha there"
)
NO_EVENTS_RATE = N_("no events in the %(arm)s group, so the rate ratio is 0 or infinite: not estimable")
NO_EVENTS_RR = N_("no events in the %(arm)s group: log RR is undefined and no continuity correction is added")
ALL_EVENTS_RR = N_("every participant in both groups had the event: RR = 1 with zero SE, so no interval or p")
OR_NONE = N_("no %(arm)s participant had the event, so the OR is 0 or infinite: not estimable")
OR_ALL = N_("every %(arm)s participant had the event, so the OR is 0 or infinite: not estimable")
#: the group a method's note names (``arm`` in the sentences above)
ARM_WORDS = (N_("treatment"), N_("reference"), N_("treatment and reference"))
SEPARATED = N_("the outcome is separated by group and covariates: no maximum-likelihood OR exists")
LOGISTIC_FAILED = N_("the logistic regression did not converge; no odds ratio is reported")
NO_VARIANCE = N_("the variance estimate is not positive, so no interval")
PO_DIRECTION = N_("OR > 1: higher categories more likely under treatment than under reference")
PO_FAILED = N_("the proportional odds fit did not converge (separation or too few observations)")
PPO_FAILED = N_("the partial proportional odds model did not converge")
PPO_FEW = N_("the proportional odds test needs at least three observed categories")
PPO_BOUNDARY = N_("category %(category)s is not observed in both arms (partial model on the boundary)")
ONE_CATEGORY = N_("the outcome takes a single category among complete rows, so there is no odds ratio")
NO_OVERLAP = N_("the groups do not overlap in category (separation): the odds ratio is not finite")
RANK_DEFICIENT = N_("the design is rank deficient (a covariate confounded with the arm or another covariate)")
REML_FLAT = N_("REML did not converge to an identifiable optimum (the likelihood is flat in Sigma)")
NO_VARIATION = N_("value does not vary, so the MMRM has nothing to estimate")
GRAY_NO_VARIANCE = N_("Gray's test has no variance: no stratum has events of interest with both arms at risk")
FINE_GRAY_SINGULAR = N_("the Fine-Gray information matrix is singular: a constant or collinear covariate")
#: a time-to-event comparison short of events (``analysis.no_events``)
HR_NO_EVENTS = N_("no events in any group: neither %(treatment)s nor %(reference)s had one by day %(day)s")
HR_NO_EVENTS_IN = N_("no events in %(group)s by day %(day)s, so the hazard ratio is 0 or infinite")
RMST_NO_EVENTS = N_(
    "no events in any group by day %(day)s: both restricted means are the whole %(end)s days, so the difference "
    "is 0 with no variance (no p-value)"
)
RMST_NO_EVENTS_IN = N_(
    "no events in %(group)s by day %(day)s: its restricted mean is the whole %(end)s days, with no variance"
)
#: the banner of a lock made over open blockers (``services.lock.override_banner``: its words, quoted exactly)
LOCKED_OVER = N_("Locked with %(n)s open blockers by %(user)s on %(at)s UTC: %(reason)s")
LOCKED_OVER_ONE = N_("Locked with %(n)s open blocker by %(user)s on %(at)s UTC: %(reason)s")
#: the same in a trial with forms that reveal the arm (their blockers left out of the count), and a masked data
#: manager's lock over the forms kept from them (``services.lock.BANNERS``)
LOCKED_OUTSIDE = N_(
    "Locked with %(n)s open blockers outside the forms that reveal the arm (%(forms)s) by %(user)s on %(at)s UTC: "
    "%(reason)s"
)
LOCKED_OUTSIDE_ONE = N_(
    "Locked with %(n)s open blocker outside the forms that reveal the arm (%(forms)s) by %(user)s on %(at)s UTC: "
    "%(reason)s"
)
LOCKED_WITHHELD = N_(
    "Locked by %(user)s on %(at)s UTC over forms kept from them (%(withheld)s), which an unmasked reviewer "
    "(%(reviewers)s) must find ready: %(reason)s"
)
LOCKED_OUTSIDE_WITHHELD = N_(
    "Locked with %(n)s open blockers outside the forms that reveal the arm (%(forms)s) by %(user)s on %(at)s UTC, "
    "over forms kept from them (%(withheld)s), which an unmasked reviewer (%(reviewers)s) must find ready: "
    "%(reason)s"
)
LOCKED_OUTSIDE_WITHHELD_ONE = N_(
    "Locked with %(n)s open blocker outside the forms that reveal the arm (%(forms)s) by %(user)s on %(at)s UTC, "
    "over forms kept from them (%(withheld)s), which an unmasked reviewer (%(reviewers)s) must find ready: "
    "%(reason)s"
)
#: the same two, while the unmasked reviewer's recorded review of the forms withheld stands
LOCKED_REVIEWED = N_(
    "Locked by %(user)s on %(at)s UTC over forms kept from them (%(withheld)s), reviewed by %(reviewer)s on "
    "%(reviewed_at)s UTC: %(reason)s"
)
LOCKED_OUTSIDE_REVIEWED = N_(
    "Locked with %(n)s open blockers outside the forms that reveal the arm (%(forms)s) by %(user)s on %(at)s UTC, "
    "over forms kept from them (%(withheld)s), reviewed by %(reviewer)s on %(reviewed_at)s UTC: %(reason)s"
)
LOCKED_OUTSIDE_REVIEWED_ONE = N_(
    "Locked with %(n)s open blocker outside the forms that reveal the arm (%(forms)s) by %(user)s on %(at)s UTC, "
    "over forms kept from them (%(withheld)s), reviewed by %(reviewer)s on %(reviewed_at)s UTC: %(reason)s"
)

#: The scales the reader's catalog says (the rest are the estimand words' own messages)
SCALES = (N_("ratio (of the change)"), N_("shift of the change"), N_("shift"), N_("cause-specific hazard ratio"),
          N_("common odds ratio"), N_("rate ratio"))  # fmt: skip
#: "not estimable" and the visit id a stay's summary is at (its end), in words
NOT_ESTIMABLE = N_("not estimable")
STAY_END = N_("end")

#: Every message with parts, the most specific first (the most words outside its parts).
MESSAGES = tuple(sorted(
    (AFTER_DEATH, NOT_POSITIVE, NONE_DIED, NONE_LEFT_ON, NONE_LEFT, NONE, MARKED, BEFORE_RANDOMIZATION, NO_FORM,
     NOT_HELD, NOT_DUE, ZERO_BASELINE, ZERO_BASELINE_REFUSED, DEATHS_UNKNOWN, DIED_FIRST_UNKNOWN, DIED_NO_START,
     NO_START, STAY_NOT_RECORDED_LEFT, DIED_NO_START_LEFT,
     NO_START_LEFT, VERSUS, MMRM,
     NOT_COUNTED, NO_TREATMENT, UNBLINDED_PEOPLE, RMST_SCALE, N_DROPPED, DF, EFFECT_BY_VISIT, EFFECT_BY_VISIT_LOG,
     EFFECT_AT, AFTER_DEATH_NOT_USED, INTERVAL, DISPERSION, PO_TEST, CATEGORIES, LOG_RANK, PH_CHECK, GRAY,
     DISCHARGED_DIED, EVENTS_DIED, STRATA_LEFT_OUT, ANCOVA_FEW_ROWS, WILSON_EMPTY, NO_EVENTS_IN_GROUP, NO_EVENTS,
     NO_EVENTS_IN, NB2_BOUNDARY, NO_EVENTS_RATE, NO_EVENTS_RR, OR_NONE, OR_ALL, PPO_BOUNDARY, LOCKED_OVER,
     LOCKED_OVER_ONE, LOCKED_OUTSIDE, LOCKED_OUTSIDE_ONE, LOCKED_WITHHELD, LOCKED_OUTSIDE_WITHHELD,
     LOCKED_OUTSIDE_WITHHELD_ONE, LOCKED_REVIEWED, LOCKED_OUTSIDE_REVIEWED, LOCKED_OUTSIDE_REVIEWED_ONE,
     HR_NO_EVENTS, HR_NO_EVENTS_IN, RMST_NO_EVENTS, RMST_NO_EVENTS_IN),
    key=lambda m: -len(re.sub(r"%\(\w+\)s", "", m)),
))  # fmt: skip

_PART = re.compile(r"%\((\w+)\)s")
#: What each kind of part may hold: an identifier or a visit is one word, a number is digits
_SHAPES = {"variable": r"\S+?", "outcome": r"\S+?", "form": r"\S+?", "visit": r"\S+?", "set_id": r"\S+?",
           "day": r"-?\d+", "end": r"-?\d+", "death_day": r"-?\d+", "n": r"\d+", "k": r"\d+",
           "effect": r"-?[\d.]+(?:e[-+]?\d+)?|nan|-?inf",
           "p": r"[\d.]+(?:e[-+]?\d+)?|NA|nan", "df": r"[\d.]+|nan|inf", "interval": r"\w+",
           "handling": r"exclude|refuse",
           "df_method": r"\w+", "arm": r"treatment and reference|treatment|reference",
           "at": r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "user": r"\S+",
           "reviewed_at": r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "reviewer": r"\S+", "reason": r".+"}  # fmt: skip
#: Any other part: words, but never across "; " (where sentences are joined)
_FREE = r"(?:(?!; ).)+?"

#: A part in the reader's language: its name (``visit``, ``variable``, ``how``, ...) and its English as written.
Part = Callable[[str, str], str]


@cache
def _pattern(message: str) -> re.Pattern[str]:
    pieces, at = [], 0
    for m in _PART.finditer(message):
        pieces.append(re.escape(message[at : m.start()]))
        pieces.append(f"(?P<{m.group(1)}>{_SHAPES.get(m.group(1), _FREE)})")
        at = m.end()
    pieces.append(re.escape(message[at:]))
    return re.compile("".join(pieces), re.S)


def _one(text: str, gettext: Callable[[str], str], part: Part) -> str | None:
    if (said := gettext(text)) != text:
        return said
    for message in MESSAGES:
        if (m := _pattern(message).fullmatch(text)) is not None:
            return gettext(message) % {k: part(k, v) for k, v in m.groupdict().items()}
    return None


def again(text: str, gettext: Callable[[str], str], part: Part) -> str:
    """An English sentence of the analysis (one of ``MESSAGES`` or a catalog message; several joined by "; ") in the
    reader's language: the catalog's message (``gettext``) with each part said by ``part``; a sentence none matches,
    or a piece of one, as written."""
    whole = _one(text, gettext, part)
    if whole is not None:
        return whole
    pieces = text.split("; ")
    if len(pieces) == 1:
        return text
    return gettext("; ").join(_one(p, gettext, part) or p for p in pieces)
