"""The simulator's own lifecycle steps: a visit's forms saved and verified in one transaction, and forms signed by
a pre-authenticated simulated investigator. Only ``services/simulation.py`` uses this module (an import-linter
contract keeps web, api and cli from importing it); what a person does goes through ``save.py`` and ``review.py``.

Each step is the one a person's request makes, in the same order, with the same rules and the same audit entries
(``_move`` and ``_series_in`` of ``review.py``, ``_save_and_view`` of ``save.py``); what differs is how many
transactions they take and how often a password is checked:

- ``save_and_verify_visit``: the coordinator's saves (each in a savepoint, as ``save_visit_forms``) and then the
  monitor's verification of the completed forms (one series in a savepoint; if it is refused, each form in one
  of its own, as the simulator retries one by one) in one transaction instead of two or more.
- ``PreAuthenticated``: made only by ``pre_authenticate``, which checks the account's password once through the
  real re-entry (``require_password``: argon2, the lockout count, a failure audited); ``sign_as`` then signs a
  series as ``sign_forms`` does after an accepted re-entry. An accepted re-entry writes no audit entry, so the
  trail is entry for entry the one of a password re-entered at every signing session
  (``tests/spec/simulation/test_batched.py``): the same ``form.signed`` entries (signer, role, site, participant,
  form, states, the signature's meaning).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, final

from sqlalchemy import Engine

from trialwright.domain.forms import Transition
from trialwright.domain.roles import Role
from trialwright.services import audit
from trialwright.services.bulk_reads import forget_held, reading_once
from trialwright.services.errors import FormError
from trialwright.services.forms.common import FormView, _role
from trialwright.services.forms.review import _series, _series_in
from trialwright.services.forms.save import VisitFormSave, _save_and_view
from trialwright.services.reauth import require_password
from trialwright.services.trial import protocol_in
from trialwright.services.users import UserView
from trialwright.store.engine import session_scope

__all__ = ["PreAuthenticated", "VisitOutcome", "pre_authenticate", "save_and_verify_visit", "sign_as"]

_MINT: Final = object()  # only pre_authenticate holds it


@final
@dataclass(frozen=True)
class PreAuthenticated:
    """A simulated investigator whose password ``pre_authenticate`` checked once; built by nothing else (the
    constructor refuses any other caller with TypeError)."""

    user: UserView
    mint: object = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mint is not _MINT:
            raise TypeError("PreAuthenticated: made only by pre_authenticate, after the password was checked")


def pre_authenticate(engine: Engine, user: UserView, password: str) -> PreAuthenticated:
    """The simulated investigator's password re-entered once, through the real check (a wrong one is refused,
    audited and counted toward the lockout as any re-entry); the answer signs without entering it again."""
    _role(user, [Role.INVESTIGATOR], "sign forms")
    require_password(engine, user.username, password, None, purpose="sign", error=FormError,
                     message="password: re-enter your own password to sign")  # fmt: skip
    return PreAuthenticated(user, _MINT)


def sign_as(engine: Engine, signer: PreAuthenticated, forms: Sequence[tuple[str, str, str]]) -> tuple[FormView, ...]:
    """``sign_forms`` for a pre-authenticated simulated investigator: the same series, signatures and entries."""
    if not isinstance(signer, PreAuthenticated):  # never a password or a user in its place
        raise TypeError("signer: a PreAuthenticated from pre_authenticate")
    _role(signer.user, [Role.INVESTIGATOR], "sign forms")
    if not forms:
        raise FormError("forms: name at least one form to sign")
    return _series(engine, signer.user, forms, Transition.SIGN, "signed")


@dataclass(frozen=True)
class VisitOutcome:
    """What ``save_and_verify_visit`` did: each save's view or refusal (in order), and the forms verified, with
    the refusals the verification met (the series' first, then one per form verified alone)."""

    saves: tuple[FormView | FormError | ValueError, ...]
    verified: tuple[str, ...]
    refusals: tuple[FormError | ValueError, ...]


def save_and_verify_visit(
    engine: Engine,
    coordinator: UserView,
    monitor: UserView,
    participant_id: str,
    visit_id: str,
    saves: Sequence[tuple[VisitFormSave, bool]],
    *,
    visit_date: dt.date | None = None,
) -> VisitOutcome:
    """A visit's forms saved by the coordinator exactly as ``save_visit_forms`` saves them, then the ones marked
    for verification (``True``) that were saved complete verified by the monitor as ``verify_forms`` would (one
    series; if refused, each form alone), all in one transaction."""
    if any(verify for _, verify in saves):
        _role(monitor, [Role.MONITOR], "verify forms against source")
    out: list[FormView | FormError | ValueError] = []
    refusals: list[FormError | ValueError] = []
    with session_scope(engine) as session, reading_once(session), audit.batched(session):
        protocol = protocol_in(session).protocol  # read in the visit's transaction: no read transaction of its own
        for each, _ in saves:
            nested = session.begin_nested()
            try:
                view = _save_and_view(session, protocol, coordinator, participant_id, visit_id, each.form_id,
                                      each.entries, reason=None, visit_date=visit_date,
                                      complete=each.complete)  # fmt: skip
            except (FormError, ValueError) as exc:
                nested.rollback()
                forget_held(session)
                out.append(exc)
                continue
            nested.commit()
            out.append(view)
        wanted = [each.form_id for (each, verify), result in zip(saves, out, strict=True)
                  if verify and not isinstance(result, Exception) and result.state.value == "complete"]  # fmt: skip
        verified: list[str] = []

        def series(form_ids: Sequence[str]) -> bool:
            nested = session.begin_nested()
            try:
                with audit.gathered(session):
                    _series_in(session, protocol, monitor, [(participant_id, visit_id, f) for f in form_ids],
                               Transition.VERIFY, "verified")  # fmt: skip
            except (FormError, ValueError) as exc:
                nested.rollback()
                forget_held(session)
                refusals.append(exc)
                return False
            nested.commit()
            verified.extend(form_ids)
            return True

        if wanted and not series(wanted):
            for form_id in wanted:  # a form changed on the way: verify the others one by one
                series([form_id])
    return VisitOutcome(tuple(out), tuple(verified), tuple(refusals))
