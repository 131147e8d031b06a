"""Protocol files of format 1 (before estimands), read as format 2.

Format 1 declared each outcome's ``measure``, ``variables`` or ``event``, ``baseline``, ``timepoints``, ``analysis``
methods and ``log_scale``; format 2 declares an ``estimand`` (``trialwright.protocol.estimands``). Trial databases
made before keep the protocol text they ran under, so a format-1 outcome is rewritten into the estimand that the
engine of that time computed, before validation:

* a change from baseline or a value at a visit: the ITT population, the treatment policy for death and withdrawal,
  the first method as the estimator (``ancova_log`` is ANCOVA on the log scale, reported as a ratio of geometric
  means), the other methods and the first method in the per-protocol set (when the protocol defines it) as
  sensitivity estimators;
* participants with an event (``sae`` or ``death``) up to the timepoint's day: the safety set, risk difference,
  Newcombe's interval;
* a duration: death competing, the Fine-Gray model.

An outcome this cannot rewrite exactly (several timepoints, a time to event, which format 1 never analysed) is left
as written, so validation names what to change.

Format 2 also requires ``decimals`` of every derived decimal field (no default places); a format-1 derived decimal
field without them is read with the 2 places its engine rounded such a value to.
"""

from __future__ import annotations

from typing import Any

__all__ = ["read_format_1"]

_ESTIMATOR = {"ancova": "ancova", "ancova_log": "ancova", "t_test": "t_test",
              "wilcoxon_hodges_lehmann": "wilcoxon_hodges_lehmann"}  # fmt: skip
_TREATMENT_POLICY = [
    {"event": "death", "strategy": "treatment_policy"},
    {"event": "withdrawal", "strategy": "treatment_policy"},
]


def read_format_1(data: dict[str, Any]) -> None:
    """Rewrite, in place, every format-1 outcome of a format-1 protocol document into its estimand (and give
    derived decimal fields the places the engine of format 1 kept)."""
    if data.get("format") != 1:
        return
    _derived_places(data)
    if not isinstance(data.get("outcomes"), list):
        return
    visits = {v.get("id"): v for v in data.get("visits") or [] if isinstance(v, dict)}
    sets = {a.get("id") for a in data.get("analysis_sets") or [] if isinstance(a, dict)}
    for outcome in data["outcomes"]:
        if isinstance(outcome, dict) and "measure" in outcome and "estimand" not in outcome:
            estimand = _estimand(outcome, visits, sets)
            if estimand is not None:
                for key in ("measure", "variables", "event", "baseline", "timepoints", "analysis", "log_scale"):
                    outcome.pop(key, None)
                outcome["estimand"] = estimand


def _derived_places(data: dict[str, Any]) -> None:
    for form in data.get("forms") or []:
        for field in form.get("fields") or [] if isinstance(form, dict) else []:
            if isinstance(field, dict) and field.get("type") == "decimal" and field.get("derived") is not None:
                field.setdefault("decimals", _FORMAT_1_DERIVED_PLACES)


#: The places the engine of format 1 rounded a derived decimal to when the protocol gave none.
_FORMAT_1_DERIVED_PLACES = 2


def _estimand(o: dict[str, Any], visits: dict[Any, Any], sets: set[Any]) -> dict[str, Any] | None:
    timepoints = o.get("timepoints") or []
    if len(timepoints) != 1:
        return None
    at, measure = timepoints[0], o.get("measure")
    methods = [m for m in o.get("analysis") or [] if m != "descriptive"]
    if measure in ("change_from_baseline", "value_at") and methods and all(m in _ESTIMATOR for m in methods):
        log = bool(o.get("log_scale"))
        main = methods[0]
        summary = (
            "hodges_lehmann_shift"
            if main == "wilcoxon_hodges_lehmann"
            else ("ratio_of_geometric_means" if log else "difference_in_means")
        )
        sensitivity = [{"estimator": _ESTIMATOR[m]} for m in methods[1:]]
        if main != "wilcoxon_hodges_lehmann" and "per_protocol" in sets:
            sensitivity.append({"estimator": _ESTIMATOR[main], "population": "per_protocol"})
        variable: dict[str, Any] = {"kind": "continuous", "fields": list(o.get("variables") or []), "at": at,
                                    "scale": "log" if log else "natural"}  # fmt: skip
        if o.get("baseline"):
            variable["baseline"] = o["baseline"]
            variable["change_from_baseline"] = measure == "change_from_baseline"
        return {"population": "itt", "variable": variable, "intercurrent_events": list(_TREATMENT_POLICY),
                "summary": summary, "estimator": _ESTIMATOR[main], "sensitivity": sensitivity}  # fmt: skip
    if measure == "participants_with_event" and o.get("event") in ("sae", "death") and at in visits:
        return {"population": "safety",
                "variable": {"kind": "binary", "adverse_event": o["event"], "up_to_day": visits[at].get("day")},
                "summary": "risk_difference", "estimator": "newcombe"}  # fmt: skip
    if measure == "duration" and len(o.get("variables") or []) == 1:
        return {"population": "itt", "variable": {"kind": "duration", "fields": list(o["variables"])},
                "intercurrent_events": [{"event": "death", "strategy": "competing"}],
                "summary": "subdistribution_hazard_ratio", "estimator": "fine_gray"}  # fmt: skip
    return None
