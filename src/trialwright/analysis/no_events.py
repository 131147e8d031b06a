"""Time-to-event results with no events: said, never left to look like findings.

With no event in a group its Kaplan-Meier curve stays flat (everyone free of the event to the end), its restricted
mean survival time is the whole follow-up with no variance, and a hazard ratio against it is 0 or infinite. With no
event anywhere the report's figures ("free of the event: 100%", an RMST difference of "0 (95% CI 0 to 0)") are
exact but empty. This module words what the analysis says beside those figures, never changing one: the report's
notes (``notes_for``, in ``sentences``' messages so a reader's language says them again), the Cox model's reason
for not being estimable naming the groups (``hazard_ratio_refused``), and the note beside the restricted mean
difference (``rmst_note``). A group is named as the analysis names it (an arm in an analysis by arm, an unnamed
group or the pooled group otherwise), so a note tells no reader more than the table of events beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from trialwright.analysis import sentences as say
from trialwright.analysis.results import OutcomeResult

__all__ = ["hazard_ratio_refused", "notes_for", "rmst_note"]


def _events(events: Sequence[int], group: Sequence[int]) -> tuple[int, int]:
    """Events in the treatment group (coded 1) and in the reference group (coded 0)."""
    return (
        sum(1 for d, g in zip(events, group, strict=True) if d and g == 1),
        sum(1 for d, g in zip(events, group, strict=True) if d and g == 0),
    )


def _both_present(group: Sequence[int]) -> bool:
    return 1 in group and 0 in group  # a missing group is refused by the method itself, with its own reason


def hazard_ratio_refused(events: Sequence[int], group: Sequence[int], treat: str, ref: str, end: int) -> str | None:
    """Why the hazard ratio of ``treat`` against ``ref`` cannot be estimated for want of events, naming the groups;
    None when both groups have an event (or a group has no one: the method says so)."""
    if not _both_present(group):
        return None
    in_treat, in_ref = _events(events, group)
    if not in_treat and not in_ref:
        return say.HR_NO_EVENTS % {"treatment": treat, "reference": ref, "day": end}
    empty = [name for name, k in ((treat, in_treat), (ref, in_ref)) if not k]
    if empty:
        return say.HR_NO_EVENTS_IN % {"group": empty[0], "day": end}
    return None


def rmst_note(events: Sequence[int], group: Sequence[int], treat: str, ref: str, end: int) -> str:
    """What the restricted mean difference means when a group has no events ("" otherwise)."""
    if not _both_present(group):
        return ""
    in_treat, in_ref = _events(events, group)
    if not in_treat and not in_ref:
        return say.RMST_NO_EVENTS % {"day": end, "end": end}
    empty = [name for name, k in ((treat, in_treat), (ref, in_ref)) if not k]
    if empty:
        return say.RMST_NO_EVENTS_IN % {"group": empty[0], "day": end, "end": end}
    return ""


def notes_for(results: Iterable[OutcomeResult]) -> list[str]:
    """The report's notes for every time-to-event outcome with no events at all, or none in a group (each once)."""
    notes: list[str] = []
    for r in results:
        curves = r.extra.get("kaplan_meier")
        day = r.extra.get("up_to_day")
        if not curves or day is None:
            continue
        known = {g: c for g, c in curves.items() if c is not None}
        if not known:
            continue  # nobody to estimate: the table says "no data" and the exclusions say why
        if all(c["events"] == 0 for c in known.values()):
            notes.append(say.NO_EVENTS % {"outcome": r.outcome_id, "day": day})
        elif len(known) > 1:
            notes.extend(
                say.NO_EVENTS_IN % {"outcome": r.outcome_id, "group": g, "day": day}
                for g, c in known.items()
                if c["events"] == 0
            )
    return list(dict.fromkeys(notes))
