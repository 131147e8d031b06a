"""A minor's assent beside a representative's consent (ICH E6(R3) 2.8.9-2.8.12, ICH E11).

The protocol's ``eligibility.assent`` says from which age a child's own assent is sought; this module decides, for
one consent record, whether assent had to be recorded and whether what was recorded is complete. A dissent is
recorded (it is the child's answer) and the enrolment service refuses the participant on it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING, Any

from trialwright.protocol.design import Assent

if TYPE_CHECKING:
    from trialwright.protocol import Protocol

__all__ = ["ASSENT_ANSWERS", "age_in", "assent_problem", "assent_rule_digest", "own_consent_problem"]

#: What a consent record may say of the child's assent.
ASSENT_ANSWERS = ("given", "dissent", "not_sought")


def assent_rule_digest(protocol: Protocol) -> str:
    """What the assent and age-of-consent rules check a consent record by, as one digest (``sha256:`` and 64 hex
    digits): the SHA-256 of the canonical JSON (keys sorted, no spaces) of ``{"assent": eligibility.assent as the
    protocol model dumps it (null where none), "age_unit": the unit of its age field (null where none)}``. The age
    field's unit is in it because the same age means another age in another unit. Two protocol versions with the same
    digest check every consent record alike; the ODM export writes it on each record (``AssentRuleInForce``) and the
    import compares it with the imported protocol's."""
    rule = protocol.eligibility.assent
    field = None if rule is None else next((f for f in protocol.eligibility.screening_fields
                                             if f.id == rule.age_field), None)  # fmt: skip
    held = {"assent": None if rule is None else rule.model_dump(mode="json"),
            "age_unit": None if field is None else field.unit}  # fmt: skip
    canonical = json.dumps(held, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def age_in(value: float, field_unit: str, unit: str) -> float:
    """``value`` (in ``field_unit``, years or months) in ``unit`` (years or months)."""
    months = value * 12 if field_unit == "years" else value
    return months / 12 if unit == "years" else months


def assent_problem(
    rule: Assent | None,
    *,
    age: Any,
    age_unit: str | None,
    given_by: str,
    kind: str,
    decision: str,
    assent: str | None,
    assent_obtained_by: str | None,
    assent_obtained_at: dt.datetime | None,
    assent_form_version: str | None,
    assent_not_sought_reason: str | None,
) -> str | None:
    """The first assent rule a consent record breaks, as ``field: why``, or None.

    Assent is sought when the protocol declares ``eligibility.assent``, a representative gives an initial or
    re-consent decision ``consent``, and the participant's age at screening is at least ``from_age``. Assent details
    sent where assent is not sought are refused, never kept unread."""
    details = {
        "assent_obtained_by": assent_obtained_by,
        "assent_obtained_at": assent_obtained_at,
        "assent_form_version": assent_form_version,
        "assent_not_sought_reason": assent_not_sought_reason,
    }
    if assent is None and any(v is not None for v in details.values()):
        sent = next(k for k, v in details.items() if v is not None)
        return f"{sent}: given without assent (given, dissent or not_sought)"
    if assent is not None and assent not in ASSENT_ANSWERS:
        return f"assent: must be one of {', '.join(ASSENT_ANSWERS)}"
    sought = rule is not None and given_by == "representative" and kind != "regained_capacity" and decision == "consent"
    if rule is None:
        if assent is not None:
            return "assent: the protocol declares no assent (eligibility.assent)"
        return None
    if sought:
        if age is None or isinstance(age, bool) or not isinstance(age, int | float):
            return (f"assent: the age at screening ({rule.age_field}) is not recorded; it decides whether the "
                    f"participant's assent is sought (eligibility.assent)")  # fmt: skip
        years = age_in(float(age), age_unit or "years", rule.unit)
        sought = years >= rule.from_age
        if not sought and assent is not None:
            return (f"assent: sought from {rule.from_age:g} {rule.unit} (eligibility.assent.from_age); this "
                    f"participant is {years:.3g} {rule.unit} at screening")  # fmt: skip
    if not sought:
        if assent is not None:
            return "assent: recorded only with a representative's consent (eligibility.assent)"
        return None
    if assent is None:
        return (
            f"assent: the participant is {rule.from_age:g} {rule.unit} or older "
            "(eligibility.assent.from_age); record their assent (given or dissent) or why it was not sought"
        )
    if assent == "not_sought":
        if not (assent_not_sought_reason and assent_not_sought_reason.strip()):
            return (
                "assent_not_sought_reason: say why the participant's assent was not sought (e.g. unable to understand)"
            )
        sought_only = ("assent_obtained_by", "assent_obtained_at", "assent_form_version")
        extra = [k for k in sought_only if details[k] is not None]
        if extra:
            return f"{extra[0]}: assent was not sought"
        return None
    if assent_not_sought_reason is not None:
        return f"assent_not_sought_reason: assent was {assent}, not left unsought"
    if not (assent_obtained_by and assent_obtained_by.strip()):
        return "assent_obtained_by: name the person who sought the participant's assent"
    if assent_obtained_at is None:
        return "assent_obtained_at: when the participant's assent was sought"
    if rule.form_versions:
        if assent_form_version not in rule.form_versions:
            return (f"assent_form_version: must be one of {', '.join(rule.form_versions)} "
                    "(eligibility.assent.form_versions)")  # fmt: skip
    elif assent_form_version is not None:
        return "assent_form_version: the protocol declares no assent form (eligibility.assent.form_versions)"
    return None


def own_consent_problem(
    rule: Assent | None, *, age: Any, age_unit: str | None, given_by: str, days_since: int
) -> str | None:
    """Why a participant's own consent record is refused, as ``field: why``, or None: a participant below the age of
    consent (``eligibility.assent.consent_age``) does not consent (or refuse, or decide) for themselves; a
    representative does, with their assent. The age at the record is at least the age at screening plus the
    ``days_since`` screening (counted as 366-day years and 31-day months, so never over-counted); an age not recorded
    at screening is refused too, never guessed. A protocol without assent or without a declared age of consent (a
    text stored before it was declared) applies no age of consent."""
    if rule is None or rule.consent_age is None or given_by != "participant":
        return None
    if age is None or isinstance(age, bool) or not isinstance(age, int | float):
        return (f"given_by: the age at screening ({rule.age_field}) is not recorded; it decides whether the "
                "participant may consent for themselves (eligibility.assent.consent_age)")  # fmt: skip
    at_least = age_in(float(age), age_unit or "years", rule.unit) + max(days_since, 0) / (
        366 if rule.unit == "years" else 31
    )
    if at_least < rule.consent_age:
        return (f"given_by: the participant is {float(age):g} {age_unit or 'years'} at screening, below the age of "
                f"consent ({rule.consent_age:g} {rule.unit}, eligibility.assent.consent_age); a representative "
                "consents for them, with their assent")  # fmt: skip
    return None
