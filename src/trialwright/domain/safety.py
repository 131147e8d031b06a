"""Adverse events: validation, classification, reporting deadlines, tables and the safety pause. Pure code.

Definitions (``shared/reference/clinical.md``): an event is *serious* when it meets an ICH E2A criterion;
*related* when the protocol's causality scale maps its category to related; *expected* when it is one of
the protocol's expected events at a grade up to the one the reference safety information lists; a
*SUSAR* is serious, related and unexpected.

Deadlines (day 0 = the day the site became aware, in the site's own time zone):
- every SAE is due to the sponsor ``sae_to_sponsor_hours`` elapsed hours after awareness;
- a fatal or life-threatening SUSAR within ``susar_fatal_days`` calendar days, then the complete report
  within ``susar_fatal_complete_days`` more calendar days after the initial report (or its deadline);
- any other SUSAR within ``susar_other_days`` calendar days.
A calendar-day deadline ends at the end of that local day, so a daylight-saving change in between moves
it with the site's clock; an hour deadline is elapsed time.

Every date rule (onset, end and death not in the future, awareness not before the onset) compares the
site's local dates (``calendars.local_date``): the same instant sent with any UTC offset gets the same
decision. A time without an offset is refused, unless the page that sent it says its times are the
site's clock (``typed_on_site_clock``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from trialwright.domain.calendars import local_date, on_site_clock
from trialwright.domain.text import text_problem
from trialwright.protocol.base import FREE_TEXT, SHORT_TEXT
from trialwright.protocol.outcomes import SafetySettings

__all__ = [
    "CTCAE_GRADES",
    "REPORT_FIELDS",
    "RULES",
    "Assessment",
    "Classification",
    "Deadline",
    "DeadlineKind",
    "DeadlineState",
    "EventOutcome",
    "PauseState",
    "SafetyInputError",
    "SafetyRow",
    "Seriousness",
    "classify",
    "criterion_label",
    "deadline_state",
    "deadlines",
    "end_of_local_day",
    "merge_report",
    "names_death",
    "overdue_before",
    "pause_state",
    "safety_table",
    "safety_table_counted",
    "table_labels",
    "validate_report",
]

#: CTCAE grades (every version): 1 mild, 2 moderate, 3 severe, 4 life-threatening, 5 death.
CTCAE_GRADES = (1, 2, 3, 4, 5)


class Seriousness(StrEnum):
    """ICH E2A seriousness criteria."""

    DEATH = "death"
    LIFE_THREATENING = "life_threatening"
    HOSPITALISATION = "hospitalisation"  # requires or prolongs inpatient hospitalisation
    DISABILITY = "disability"  # persistent or significant disability or incapacity
    CONGENITAL_ANOMALY = "congenital_anomaly"
    MEDICALLY_IMPORTANT = "medically_important"


class EventOutcome(StrEnum):
    """Outcome of the event (ICH E2B terms)."""

    RECOVERED = "recovered"
    RECOVERING = "recovering"
    NOT_RECOVERED = "not_recovered"
    RECOVERED_WITH_SEQUELAE = "recovered_with_sequelae"
    FATAL = "fatal"
    UNKNOWN = "unknown"


class SafetyInputError(ValueError):
    """A report that breaks rules; ``problems`` holds every (field, rule) at once."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{f}: {r}" for f, r in self.problems))


@dataclass(frozen=True)
class Assessment:
    """What one report (initial or follow-up) says of an adverse event."""

    term: str
    onset: dt.date
    end: dt.date | None
    grade: int
    serious: bool
    criteria: tuple[Seriousness, ...]
    causality: str
    expected_event: str | None
    action_taken: str  # a code of the protocol's ``safety.action_choices``
    outcome: EventOutcome
    aware_at: dt.datetime  # UTC
    death_date: dt.date | None = None
    death_cause: str | None = None
    narrative: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Plain JSON values (dates as ISO text)."""
        return {
            "term": self.term,
            "onset": self.onset.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "grade": self.grade,
            "serious": self.serious,
            "seriousness_criteria": [c.value for c in self.criteria],
            "causality": self.causality,
            "expected_event": self.expected_event,
            "action_taken": self.action_taken,
            "outcome": self.outcome.value,
            "aware_at": self.aware_at.isoformat(),
            "death_date": self.death_date.isoformat() if self.death_date else None,
            "death_cause": self.death_cause,
            "narrative": self.narrative,
        }


#: The fields of a report, in the order people fill them in.
REPORT_FIELDS = tuple(("seriousness_criteria" if k == "criteria" else k) for k in Assessment.__dataclass_fields__)


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


def _within(name: str, text: str | None, problems: list[tuple[str, str]], *, limit: int, multiline: bool) -> None:
    """The text limits (``trialwright.domain.text``): length, control and bidi-override characters."""
    problem = None if text is None else text_problem(text, limit=limit, multiline=multiline)
    if problem is not None:
        problems.append((name, problem))


def _date(raw: Any, name: str, tz: ZoneInfo, problems: list[tuple[str, str]]) -> dt.date | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, dt.datetime):
        try:
            return local_date(raw, tz, name)  # the site's date of that instant
        except ValueError as exc:
            problems.append((name, str(exc).split(": ", 1)[1]))
            return None
    if isinstance(raw, dt.date):
        return raw
    try:
        return dt.date.fromisoformat(str(raw).strip())
    except ValueError:
        problems.append((name, f"must be a date as YYYY-MM-DD, not {raw!r}"))
        return None


def _aware(raw: Any, tz: ZoneInfo, problems: list[tuple[str, str]], site_clock: bool) -> dt.datetime | None:
    if raw in (None, ""):
        problems.append(("aware_at", "is required: when the site became aware of the event"))
        return None
    text = raw.isoformat() if isinstance(raw, dt.datetime) else str(raw).strip()
    try:
        value = dt.datetime.fromisoformat(on_site_clock(text, tz, "aware_at") if site_clock else text)
    except ValueError as exc:
        detail = str(exc).split(": ", 1)[1] if str(exc).startswith("aware_at: ") else None
        problems.append(("aware_at", detail or f"must be a date and time with its UTC offset, "
                                               f"e.g. 2021-05-01T10:30+04:30, not {raw!r}"))  # fmt: skip
        return None
    if value.tzinfo is None:
        problems.append(("aware_at", f"{text} has no UTC offset; give the time with its offset, "
                                     "e.g. 2021-05-01T10:30+04:30"))  # fmt: skip
        return None
    return value.astimezone(dt.UTC)


def _choice(raw: Any, name: str, allowed: Iterable[str], problems: list[tuple[str, str]]) -> str | None:
    codes = list(allowed)
    value = _text(raw)
    if value is None:
        problems.append((name, f"is required; one of {', '.join(codes)}"))
        return None
    if value not in codes:
        problems.append((name, f"{value!r} is not one of {', '.join(codes)}"))
        return None
    return value


def _flag(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if raw is None or raw == "":
        return None
    text = str(raw).strip().lower()
    if text in {"true", "yes", "1", "on"}:
        return True
    if text in {"false", "no", "0", "off"}:
        return False
    return None


#: A term that is death itself: "Death", "Died", "Exitus", optionally with a parenthesis ("Death (respiratory
#: failure)") or "of unknown cause"; not a term that merely mentions it ("Sudden cardiac arrest", "Dead space").
_DEATH_TERM = re.compile(
    r"^\W*(death|died|dead|exitus|deceased)(\s*\(.*\)|\s+(of\s+)?unknown(\s+cause)?)?\W*$", re.IGNORECASE
)


def names_death(term: str) -> bool:
    """Whether an adverse event term names death itself ("Death", "Death (respiratory failure)", "Died") rather
    than the event that caused it: death is an outcome (SDTMIG 3.4 AE: AEOUT FATAL, AESDTH Y), never the term."""
    return bool(_DEATH_TERM.match(term))


def validate_report(
    raw: Mapping[str, Any],
    settings: SafetySettings,
    tz: ZoneInfo,
    now: dt.datetime,
    *,
    typed_on_site_clock: bool = False,
) -> Assessment:
    """Check a whole report (an initial one, or a follow-up already merged with what was known) and return
    it; raise SafetyInputError naming every field and rule at once. ``now`` is aware; dates are the site's
    local dates and may not lie after the site's today. ``aware_at`` needs its UTC offset, unless
    ``typed_on_site_clock`` (a page whose input says "site time") reads an offset-less time on the site's clock."""
    problems: list[tuple[str, str]] = []
    known = {*REPORT_FIELDS, "reason"}
    for key in raw:
        if key not in known:
            problems.append((key, f"is not a field of an adverse event report; fields: {', '.join(REPORT_FIELDS)}"))
    today = local_date(now, tz, "now")
    term = _text(raw.get("term"))
    if term is None:
        problems.append(("term", "is required: the adverse event's name"))
    else:
        _within("term", term, problems, limit=SHORT_TEXT, multiline=False)
        # A term naming death itself is accepted: a serious report is due within hours, often before the cause
        # is known. Death is the outcome; the SDTM export lists such a term for the site to correct when the cause
        # is known (a follow-up may change the term), and the coder may query it.
    onset = _date(raw.get("onset"), "onset", tz, problems)
    if onset is None and not any(p[0] == "onset" for p in problems):
        problems.append(("onset", "is required"))
    end = _date(raw.get("end"), "end", tz, problems)
    for name, day in (("onset", onset), ("end", end)):
        if day is not None and day > today:
            problems.append((name, f"{day.isoformat()} is in the future (today is {today.isoformat()} at the site)"))
    if onset is not None and end is not None and end < onset:
        problems.append(("end", f"{end.isoformat()} is before the onset {onset.isoformat()}"))
    grade: int | None = None
    raw_grade = raw.get("grade")
    if raw_grade in (None, ""):
        problems.append(("grade", f"is required: CTCAE v{settings.ctcae_version} grade 1-5"))
    else:
        try:
            number = None if isinstance(raw_grade, bool) else float(str(raw_grade).strip())
        except ValueError:
            number = None
        if number is None or not number.is_integer():
            problems.append(("grade", f"must be a whole number 1-5, not {raw_grade!r}"))
        elif int(number) not in CTCAE_GRADES:
            problems.append(("grade", f"{int(number)} is outside the CTCAE v{settings.ctcae_version} grades 1-5"))
        else:
            grade = int(number)
    serious = _flag(raw.get("serious"))
    if serious is None:
        problems.append(("serious", "is required: yes or no"))
    raw_criteria = raw.get("seriousness_criteria") or []
    if isinstance(raw_criteria, str):
        raw_criteria = [c for c in raw_criteria.replace(",", " ").split() if c]
    criteria: list[Seriousness] = []
    for code in raw_criteria:
        try:
            criteria.append(Seriousness(str(code).strip()))
        except ValueError:
            problems.append(
                ("seriousness_criteria", f"{code!r} is not an ICH E2A criterion; one of {', '.join(Seriousness)}")
            )
    criteria = sorted(set(criteria), key=list(Seriousness).index)
    if serious is True and not criteria and not any(p[0] == "seriousness_criteria" for p in problems):
        problems.append(("seriousness_criteria", "a serious adverse event needs at least one ICH E2A criterion"))
    if serious is False and criteria:
        problems.append(("seriousness_criteria", "criteria are given but the event is marked not serious"))
    causality = _choice(raw.get("causality"), "causality", [c.code for c in settings.causality], problems)
    expected_codes = [e.code for e in settings.expected_events]
    expected_event = _text(raw.get("expected_event"))
    if expected_event is not None and expected_event not in expected_codes:
        problems.append(
            ("expected_event", f"{expected_event!r} is not an expected event of the protocol; one of "
             f"{', '.join(expected_codes) or '(none listed)'}, or empty")
        )  # fmt: skip
        expected_event = None
    action = _choice(raw.get("action_taken"), "action_taken", [a.code for a in settings.action_choices], problems)
    outcome = _choice(raw.get("outcome"), "outcome", [o.value for o in EventOutcome], problems)
    aware_at = _aware(raw.get("aware_at"), tz, problems, typed_on_site_clock)
    if aware_at is not None:
        if aware_at > now:
            problems.append(("aware_at", "is in the future"))
        elif onset is not None and local_date(aware_at, tz) < onset:
            problems.append(("aware_at", f"is before the onset {onset.isoformat()}"))
    death_date = _date(raw.get("death_date"), "death_date", tz, problems)
    death_cause = _text(raw.get("death_cause"))
    _within("death_cause", death_cause, problems, limit=SHORT_TEXT, multiline=False)
    fatal = outcome == EventOutcome.FATAL.value
    if fatal:
        if death_date is None and not any(p[0] == "death_date" for p in problems):
            problems.append(("death_date", "is required when the outcome is fatal"))
        if death_cause is None:
            problems.append(("death_cause", "is required when the outcome is fatal"))
        if serious is not None and Seriousness.DEATH not in criteria:
            problems.append(("seriousness_criteria", "a fatal outcome makes the event serious by the criterion death"))
        if grade is not None and grade != 5:
            problems.append(("grade", f"a fatal outcome is CTCAE grade 5, not {grade}"))
    else:
        if outcome is not None and (death_date is not None or death_cause is not None):
            problems.append(("death_date", "a date or cause of death needs the outcome fatal"))
        if Seriousness.DEATH in criteria and outcome is not None:
            problems.append(("outcome", "the criterion death needs the outcome fatal"))
        if grade == 5 and outcome is not None:
            problems.append(("outcome", "grade 5 is death; the outcome must be fatal"))
    if death_date is not None:
        if onset is not None and death_date < onset:
            problems.append(("death_date", f"{death_date.isoformat()} is before the onset {onset.isoformat()}"))
        if death_date > today:
            problems.append(
                ("death_date", f"{death_date.isoformat()} is in the future (today is {today.isoformat()} at the site)")
            )
    narrative = _text(raw.get("narrative"))
    _within("narrative", narrative, problems, limit=FREE_TEXT, multiline=True)
    if problems:
        raise SafetyInputError(problems)
    assert term and onset and grade and serious is not None and causality and action and outcome and aware_at
    return Assessment(
        term=term,
        onset=onset,
        end=end,
        grade=grade,
        serious=serious,
        criteria=tuple(criteria),
        causality=causality,
        expected_event=expected_event,
        action_taken=action,
        outcome=EventOutcome(outcome),
        aware_at=aware_at,
        death_date=death_date,
        death_cause=death_cause,
        narrative=narrative,
    )


def merge_report(previous: Assessment, changes: Mapping[str, Any]) -> dict[str, Any]:
    """A follow-up: what was known, overlaid with the fields the follow-up gives (aware_at is the
    follow-up's own and so must be given again)."""
    merged = {k: v for k, v in previous.as_json().items() if k != "aware_at"}
    merged.update(changes)
    return merged


@dataclass(frozen=True)
class Classification:
    """What an assessment makes of the event."""

    serious: bool
    related: bool
    expected: bool
    susar: bool
    fatal_or_life_threatening: bool


def classify(assessment: Assessment, settings: SafetySettings) -> Classification:
    """Seriousness, relatedness (the protocol's causality mapping), expectedness (a listed expected event
    at a grade up to its listed grade) and SUSAR."""
    related = next(c.related for c in settings.causality if c.code == assessment.causality)
    listed = next((e for e in settings.expected_events if e.code == assessment.expected_event), None)
    expected = listed is not None and assessment.grade <= listed.up_to_grade
    serious = assessment.serious
    return Classification(
        serious=serious,
        related=related,
        expected=expected,
        susar=serious and related and not expected,
        fatal_or_life_threatening=serious
        and bool({Seriousness.DEATH, Seriousness.LIFE_THREATENING} & set(assessment.criteria)),
    )


class DeadlineKind(StrEnum):
    """The reports a deadline is for."""

    SAE_TO_SPONSOR = "sae_to_sponsor"
    SUSAR_INITIAL = "susar_initial"
    SUSAR_COMPLETE = "susar_complete"


class DeadlineState(StrEnum):
    """A deadline's state at a moment."""

    PENDING = "pending"
    OVERDUE = "overdue"
    MET = "met"
    LATE = "late"  # submitted after its due time


@dataclass(frozen=True)
class Deadline:
    """One report due: from when the clock ran, by when (inclusive, UTC), and under which rule."""

    kind: DeadlineKind
    clock_start: dt.datetime
    due_at: dt.datetime
    rule: str
    #: The rule's words (a key of ``RULES``) and its number, so a page can say it in its own language.
    rule_id: str = ""
    rule_number: int = 0


#: The reporting rules in words, ``{n}`` their hours or days (English; the web's catalog translates each).
RULES = {
    "sae_to_sponsor": "every SAE to the sponsor within {n} hours of awareness",
    "susar_other": "a SUSAR within {n} calendar days (day 0 = awareness)",
    "susar_fatal": "a fatal or life-threatening SUSAR within {n} calendar days",
    "susar_complete": "then the complete report within {n} more calendar days",
}


def _deadline(kind: DeadlineKind, start: dt.datetime, due: dt.datetime, rule_id: str, n: int) -> Deadline:
    return Deadline(kind, start, due, RULES[rule_id].format(n=n), rule_id, n)


def end_of_local_day(start: dt.datetime, days: int, tz: ZoneInfo) -> dt.datetime:
    """The last instant of calendar day ``days`` counted from ``start``'s local day (day 0), in UTC."""
    day = local_date(start, tz, "clock_start") + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time.max, tzinfo=tz).astimezone(dt.UTC)


def overdue_before(now: dt.datetime, days: int, tz: ZoneInfo) -> dt.datetime:
    """The instant before which a clock start makes ``end_of_local_day(start, days, tz)`` already passed at
    ``now``: ``now > end_of_local_day(start, days, tz)`` exactly when ``start < overdue_before(now, days, tz)``.

    The due time depends only on the start's local day, so the starts already overdue are those on a local day
    up to the last day X whose due time (the end of day X + ``days``) is before ``now``; the answer is the first
    instant of day X + 1 (the transition itself where that midnight does not exist). It lets a database find
    the overdue deadlines by comparing stored clock starts with one instant per site and rule."""
    last = local_date(now, tz, "now") - dt.timedelta(days=days) + dt.timedelta(days=1)
    while dt.datetime.combine(last + dt.timedelta(days=days), dt.time.max, tzinfo=tz).astimezone(dt.UTC) >= now:
        last -= dt.timedelta(days=1)
    first = last + dt.timedelta(days=1)
    return dt.datetime.combine(first, dt.time.min, tzinfo=tz).astimezone(dt.UTC)


def deadlines(
    history: Sequence[tuple[Assessment, Classification]],
    settings: SafetySettings,
    tz: ZoneInfo,
    submitted: Mapping[DeadlineKind, dt.datetime] | None = None,
) -> list[Deadline]:
    """Every report due for an event, from its reports in order (initial first). A clock starts at the
    awareness time of the first report that made the event serious, a SUSAR, or a fatal or
    life-threatening SUSAR."""
    submitted = submitted or {}
    rules = settings.deadlines
    out: list[Deadline] = []
    first_serious = next((a for a, c in history if c.serious), None)
    if first_serious is not None:
        start = first_serious.aware_at
        out.append(
            _deadline(
                DeadlineKind.SAE_TO_SPONSOR,
                start,
                start + dt.timedelta(hours=rules.sae_to_sponsor_hours),
                "sae_to_sponsor",
                rules.sae_to_sponsor_hours,
            )
        )
    first_susar = next((a for a, c in history if c.susar), None)
    first_fatal = next((a for a, c in history if c.susar and c.fatal_or_life_threatening), None)
    if first_susar is not None:
        start = first_susar.aware_at
        due = end_of_local_day(start, rules.susar_other_days, tz)
        rule, n = "susar_other", rules.susar_other_days
        if first_fatal is not None:
            fatal_due = end_of_local_day(first_fatal.aware_at, rules.susar_fatal_days, tz)
            if fatal_due < due:
                start, due = first_fatal.aware_at, fatal_due
                rule, n = "susar_fatal", rules.susar_fatal_days
        out.append(_deadline(DeadlineKind.SUSAR_INITIAL, start, due, rule, n))
        if first_fatal is not None:
            initial = submitted.get(DeadlineKind.SUSAR_INITIAL)
            base = min(initial, due) if initial is not None else due
            out.append(
                _deadline(
                    DeadlineKind.SUSAR_COMPLETE,
                    base,
                    end_of_local_day(base, rules.susar_fatal_complete_days, tz),
                    "susar_complete",
                    rules.susar_fatal_complete_days,
                )
            )
    return out


def deadline_state(deadline: Deadline, submitted_at: dt.datetime | None, now: dt.datetime) -> DeadlineState:
    """Pending until due, overdue after; met when submitted by the due time (inclusive), else late."""
    if submitted_at is not None:
        return DeadlineState.MET if submitted_at <= deadline.due_at else DeadlineState.LATE
    return DeadlineState.OVERDUE if now > deadline.due_at else DeadlineState.PENDING


# --- tables ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SafetyRow:
    """One line of a safety table: participants (n of N, per group) with at least one such event."""

    label: str
    counts: Mapping[str, int]  # group -> participants
    totals: Mapping[str, int]  # group -> participants in the group

    def cell(self, group: str) -> str:
        """``n (p%)`` for a group."""
        n, total = self.counts.get(group, 0), self.totals.get(group, 0)
        return f"{n} ({100 * n / total:.0f}%)" if total else f"{n}"


def table_labels() -> list[str]:
    """The safety table's lines, in order."""
    labels = ["Any adverse event", "Any serious adverse event"]
    labels += [f"SAE: {c.value.replace('_', ' ')}" for c in Seriousness]
    labels += [f"Worst grade {g}" for g in CTCAE_GRADES]
    labels += ["Related adverse event", "Related SAE", "SUSAR"]
    return labels


def criterion_label(criterion: Seriousness) -> str:
    """The safety table's line for SAEs with this criterion."""
    return f"SAE: {criterion.value.replace('_', ' ')}"


def _totals(group_of: Mapping[str, str], groups: Sequence[str], given: Mapping[str, int] | None) -> dict[str, int]:
    if given is not None:
        return {g: int(given.get(g, 0)) for g in groups}
    totals = {g: 0 for g in groups}
    for group in group_of.values():
        totals[group] += 1
    return totals


def safety_table_counted(
    participants: Iterable[tuple[str, int, Collection[str]]],
    group_of: Mapping[str, str],
    groups: Sequence[str],
    totals: Mapping[str, int] | None = None,
) -> list[SafetyRow]:
    """``safety_table`` from what a database counts per participant: (participant, worst grade of their events'
    current assessments, the other lines their events earn: "Any adverse event", "SAE: death", "SUSAR" ...).
    Participants outside ``group_of`` are left out. ``totals``: each group's denominator when the database counted
    it (``group_of`` then needs to hold only the participants with events); else counted from ``group_of``."""
    totals = _totals(group_of, groups, totals)
    counts: dict[str, dict[str, int]] = {label: dict.fromkeys(groups, 0) for label in table_labels()}
    for pid, worst, earned in participants:
        held = group_of.get(pid)
        if held is None:
            continue
        for label in (*earned, f"Worst grade {worst}"):
            if label in counts:
                counts[label][held] += 1
    return [SafetyRow(label, counts[label], dict(totals)) for label in table_labels()]


def safety_table(
    events: Iterable[tuple[str, Assessment, Classification]],
    group_of: Mapping[str, str],
    groups: Sequence[str],
) -> list[SafetyRow]:
    """Participants with at least one adverse event / SAE, by seriousness criterion, worst grade and
    relatedness, per group. ``events`` are (participant, current assessment, classification);
    ``group_of`` maps each participant in the table's denominator to its group; events of participants
    outside it are left out."""
    totals = {g: 0 for g in groups}
    for group in group_of.values():
        totals[group] += 1
    sets: dict[str, dict[str, set[str]]] = {}
    worst: dict[str, int] = {}

    def add(label: str, pid: str) -> None:
        sets.setdefault(label, {g: set() for g in groups})[group_of[pid]].add(pid)

    labels = table_labels()
    for pid, assessment, c in events:
        if pid not in group_of:
            continue
        add("Any adverse event", pid)
        worst[pid] = max(worst.get(pid, 0), assessment.grade)
        if c.serious:
            add("Any serious adverse event", pid)
            for criterion in assessment.criteria:
                add(f"SAE: {criterion.value.replace('_', ' ')}", pid)
        if c.related:
            add("Related adverse event", pid)
        if c.related and c.serious:
            add("Related SAE", pid)
        if c.susar:
            add("SUSAR", pid)
    for pid, grade in worst.items():
        add(f"Worst grade {grade}", pid)
    return [
        SafetyRow(label, {g: len(sets.get(label, {}).get(g, ())) for g in groups}, dict(totals)) for label in labels
    ]


# --- the safety pause ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PauseState:
    """Whether new randomizations are paused by the protocol's safety rule, and why."""

    active: bool
    stopped: bool  # the DSMB stopped the trial
    related_saes: int  # related SAEs counted since the last decision to resume
    threshold: int | None
    since: dt.datetime | None  # when the pause began
    last_decision: str | None

    @property
    def message(self) -> str:
        """A sentence for the randomizer (no arm, no participant)."""
        if self.stopped:
            return "randomization: the DSMB stopped recruitment; no new participant can be randomized"
        if self.active:
            return (
                f"randomization: paused by the protocol's safety rule ({self.related_saes} related SAE(s), "
                f"threshold {self.threshold}); the DSMB must record a decision to resume"
            )
        return "randomization: open"


def pause_state(
    related_sae_times: Iterable[dt.datetime],
    decisions: Sequence[tuple[dt.datetime, str]],
    threshold: int | None,
) -> PauseState:
    """The pause: active once ``threshold`` related SAEs have become known since the DSMB's last decision
    to resume; a decision to stop ends randomization for good. ``decisions`` are (time, resume | pause |
    stop), oldest first."""
    last = decisions[-1][1] if decisions else None
    stopped = any(d == "stop" for _, d in decisions)
    resumed = max((t for t, d in decisions if d == "resume"), default=None)
    times = sorted(t for t in related_sae_times if resumed is None or t > resumed)
    paused_by_rule = threshold is not None and len(times) >= threshold
    paused_by_dsmb = last == "pause"
    since: dt.datetime | None = None
    if paused_by_rule and threshold is not None:
        since = times[threshold - 1]
    elif paused_by_dsmb:
        since = decisions[-1][0]
    return PauseState(
        active=stopped or paused_by_rule or paused_by_dsmb,
        stopped=stopped,
        related_saes=len(times),
        threshold=threshold,
        since=since,
        last_decision=last,
    )
