"""The screening log's writes: screening a patient, changing the values (the decision re-evaluated), and the
reason a patient was not enrolled.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from trialwright.domain.calendars import local_date
from trialwright.domain.eligibility import Decision, ScreeningValueError, applies_if_problems, evaluate, validate_values
from trialwright.domain.text import checked_text
from trialwright.protocol import Protocol
from trialwright.services import audit
from trialwright.services.lock import require_unlocked
from trialwright.services.screening.common import (
    WRITERS,
    NonEnrolmentReason,
    ScreeningError,
    ScreeningView,
    _decision_detail,
    _dump,
    _now,
    _row,
    _typed_values,
    _view,
    require_role,
)
from trialwright.services.trial import current_protocol
from trialwright.services.users import UserView
from trialwright.store.engine import inserted_id, serialise, session_scope
from trialwright.store.screening_tables import participants, screenings

__all__ = ["screen", "screen_in", "set_non_enrolment", "set_non_enrolment_in", "update_screening"]


def screen(
    engine: Engine, actor: UserView, *, site: str, screened_on: dt.date | None, values: Mapping[str, Any]
) -> ScreeningView:
    """Add a patient to the screening log with whatever values are known; the decision is computed.
    ``screened_on`` is the site's local date (None: today at the site) and may not be after the site's today."""
    protocol = current_protocol(engine).protocol
    with session_scope(engine) as session:
        return screen_in(session, protocol, actor, site=site, screened_on=screened_on, values=values)


def screen_in(
    session: Session,
    protocol: Protocol,
    actor: UserView,
    *,
    site: str,
    screened_on: dt.date | None,
    values: Mapping[str, Any],
) -> ScreeningView:
    """``screen`` in the caller's transaction, under ``protocol`` (the simulator joins steps in one)."""
    require_role(actor, WRITERS, "screen patients")
    if site not in protocol.site_codes:
        raise ScreeningError(f"site: unknown site {site!r} (sites: {', '.join(protocol.site_codes)})")
    if actor.role.site_scoped and site not in actor.sites:  # a new screening: the site is public, nothing leaks
        raise ScreeningError(f"site: you screen at {', '.join(actor.sites) or 'no site'}, not at {site}")
    today = local_date(_now(), protocol.site(site).timezone)
    if screened_on is None:
        screened_on = today
    if screened_on > today:
        raise ScreeningError(
            f"screened_on: {screened_on.isoformat()} is in the future (today is {today.isoformat()} at the site)"
        )
    consent_field = protocol.eligibility.consent_field
    if consent_field is not None and consent_field in values:
        raise ScreeningError(f"{consent_field}: is set from the consent record, not typed in")
    typed = validate_values(protocol, values)
    if problems := applies_if_problems(protocol, typed):
        raise ScreeningValueError(problems)
    decision = evaluate(protocol, typed)
    now = _now()
    require_unlocked(session, site=site, error=ScreeningError)  # the database lock, or the site's soft lock
    serialise(session, f"screening:{site}")
    number = (session.execute(select(func.max(screenings.c.number)).where(screenings.c.site == site)).scalar() or 0) + 1
    new_id = inserted_id(
        session,
        screenings.insert().values(
            site=site,
            number=number,
            screened_on=screened_on,
            screening_values=_dump(typed),
            decision=decision.decision.value,
            decision_detail=_dump(_decision_detail(decision)),
            protocol_version=protocol.version.number,
            created_at=now,
            created_by=actor.username,
            updated_at=now,
        ),
    )
    label = f"{site}-S{number:04d}"
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=site,
        form="screening",
        action="screening.created",
        new_value={"values": typed, "decision": decision.decision.value},
        detail={"screening": label, "protocol_version": protocol.version.number},
    )
    return _view(session, _row(session, actor, new_id))


def update_screening(
    engine: Engine,
    actor: UserView,
    screening_id: int,
    *,
    values: Mapping[str, Any],
    reason: str | None = None,
    consent: Mapping[str, Any] | None = None,
) -> ScreeningView:
    """Change screening values; changing a saved value needs a reason. The decision is re-evaluated.

    A correction of the age that decides whether a child's assent is sought (``eligibility.assent.age_field``) is
    refused when the consent record in force (the latest, a decision after regaining capacity aside) would then
    break the assent rule, unless ``consent`` records the consent again (``record_consent``'s fields) in the same
    transaction, after the correction, with the assent the corrected age needs."""
    from trialwright.services.screening.consent import age_correction_problem, record_consent_in

    require_role(actor, WRITERS, "change screening values")
    protocol = current_protocol(engine).protocol
    consent_field = protocol.eligibility.consent_field
    if consent_field is not None and consent_field in values:
        raise ScreeningError(f"{consent_field}: is set from the consent record, not typed in")
    typed = validate_values(protocol, values)
    checked_text(reason, "reason", error=ScreeningError)
    with session_scope(engine) as session:
        row = _row(session, actor, screening_id)
        _require_unlocked(session, row)
        old = _typed_values(protocol, json.loads(row.screening_values))
        changed = {k: v for k, v in typed.items() if old.get(k) != v}
        overwritten = [k for k in changed if old.get(k) is not None]
        if overwritten and not (reason and reason.strip()):
            raise ScreeningError(f"reason: changing saved values ({', '.join(sorted(overwritten))}) needs a reason")
        if not changed:
            if consent is None:
                return _view(session, row)
            # the consent sent with the values is recorded all the same, never dropped
            record_consent_in(session, protocol, actor, screening_id, **consent)
            return _view(session, session.execute(select(screenings).where(screenings.c.id == row.id)).first())
        if problems := applies_if_problems(protocol, {**old, **changed}, changed):
            raise ScreeningValueError(problems)
        _store_values(session, actor, row, protocol, {**old, **changed}, old, reason, "screening.changed")
        if consent is not None:
            record_consent_in(session, protocol, actor, screening_id, **consent)
        problem = age_correction_problem(session, protocol, row.id, changed)
        if problem is not None:
            raise ScreeningError(problem)
        return _view(session, session.execute(select(screenings).where(screenings.c.id == row.id)).first())


def _store_values(
    session: Session,
    actor: UserView,
    row: Any,
    protocol: Protocol,
    merged: dict[str, Any],
    old: Mapping[str, Any],
    reason: str | None,
    action: str,
) -> None:
    """The screening's values replaced by ``merged``, the decision evaluated again, audited (the caller reads the
    view it needs: consent reads none)."""
    decision = evaluate(protocol, merged)
    session.execute(
        screenings.update()
        .where(screenings.c.id == row.id)
        .values(
            screening_values=_dump(merged),
            decision=decision.decision.value,
            decision_detail=_dump(_decision_detail(decision)),
            protocol_version=protocol.version.number,
            updated_at=_now(),
        )
    )
    old_changed = {k: old.get(k) for k in merged if old.get(k) != merged[k]}
    new_changed = {k: merged[k] for k in old_changed}
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=row.site,
        form="screening",
        action=action,
        old_value={"values": old_changed, "decision": row.decision},
        new_value={"values": new_changed, "decision": decision.decision.value},
        reason=reason,
        detail={"screening": f"{row.site}-S{row.number:04d}"},
    )


def _require_unlocked(session: Session, row: Any) -> str | None:
    """Refuse a change of a screening (``row``) while the database is locked, or its site, or once enrolled its
    participant, is soft-locked (``services.lock.require_unlocked``, raising a ``ScreeningError``). The participant
    enrolled from it (None: not enrolled), read once here, for the change's own rules."""
    participant_id: str | None = session.execute(
        select(participants.c.participant_id).where(participants.c.screening_id == row.id)
    ).scalar()
    require_unlocked(session, participant_id, site=row.site, error=ScreeningError)
    return participant_id


def non_enrolment_problem(reason: str, text_: str | None, decision: str | None) -> str | None:
    """The first rule a reason for not enrolling breaks, as ``field: why``, or None; ``decision``: the screening's
    (None: not read yet). ``set_non_enrolment`` and ``import odm`` (``odm_import_consents``) check by these rules."""
    try:
        code = NonEnrolmentReason(reason)
    except ValueError:
        return f"reason: must be one of {', '.join(r.value for r in NonEnrolmentReason)}"
    if code is NonEnrolmentReason.OTHER and not (text_ and text_.strip()):
        return "text: 'other' needs a description"
    if decision is not None and code is NonEnrolmentReason.NOT_ELIGIBLE and decision != Decision.NOT_ELIGIBLE.value:
        return f"reason: the patient is {decision.replace('_', ' ')}, not 'not eligible'"
    return None


def set_non_enrolment(
    engine: Engine, actor: UserView, screening_id: int, *, reason: str, text_: str | None = None
) -> ScreeningView:
    """Record why a screened patient was not enrolled, as a coded reason (and text for 'other')."""
    require_role(actor, WRITERS, "record why a patient was not enrolled")
    if (problem := non_enrolment_problem(reason, text_, None)) is not None:
        raise ScreeningError(problem)
    code = NonEnrolmentReason(reason)
    checked_text(text_, "text", error=ScreeningError)
    with session_scope(engine) as session:
        set_non_enrolment_in(session, actor, screening_id, code, text_)
        return _view(session, _row(session, actor, screening_id))


def set_non_enrolment_in(
    session: Session, actor: UserView, screening_id: int, code: NonEnrolmentReason, text_: str | None
) -> None:
    """``set_non_enrolment`` in the caller's transaction, the reason already checked (``NonEnrolmentReason``); the
    caller reads the view it needs."""
    require_role(actor, WRITERS, "record why a patient was not enrolled")
    row = _row(session, actor, screening_id)
    enrolled = _require_unlocked(session, row)
    if (problem := non_enrolment_problem(code.value, text_, row.decision)) is not None:
        raise ScreeningError(problem)
    if enrolled is not None:
        raise ScreeningError("reason: the patient is enrolled")
    old = {"reason": row.non_enrolment_reason, "text": row.non_enrolment_text}
    session.execute(
        screenings.update()
        .where(screenings.c.id == row.id)
        .values(non_enrolment_reason=code.value, non_enrolment_text=text_, updated_at=_now())
    )
    audit.record(
        session,
        actor=actor.username,
        role=actor.role.value,
        site=row.site,
        form="screening",
        field="non_enrolment_reason",
        action="screening.not_enrolled",
        old_value=old,
        new_value={"reason": code.value, "text": text_},
        detail={"screening": f"{row.site}-S{row.number:04d}"},
    )
