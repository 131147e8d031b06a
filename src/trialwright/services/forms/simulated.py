"""The simulator's own lifecycle steps: a visit's forms saved and verified in one transaction, and forms signed by
a pre-authenticated simulated investigator. Only ``services/simulation.py`` imports this module, inside ``simulate``
and re-exporting nothing of it (a ``protected`` import-linter contract); what a person does goes through ``save.py``
and ``review.py``.

Each step is the one a person's request makes, in the same order, with the same rules and the same audit entries
(``_move`` and ``_series_in`` of ``review.py``, ``_save_and_view`` of ``save.py``); what differs is how many
transactions they take and how often a password is checked:

- ``save_and_verify_visit``: the coordinator's saves (each in a savepoint, as ``save_visit_forms``) and then the
  monitor's verification of the completed forms (one series in a savepoint; if it is refused, each form in one
  of its own, as the simulator retries one by one) in one transaction instead of two or more.
- ``PreAuthenticated``: made only by ``pre_authenticate``, which checks the account's password once through the
  real re-entry (``require_password``: argon2, the lockout count, a failure audited), and vouches only for that
  username (``_ISSUED``); ``sign_as`` reads the account again in the signing transaction (refused if disabled,
  locked or no longer an investigator since) and then signs a series as ``sign_forms`` does after an accepted
  re-entry. An accepted re-entry writes no audit entry, so the
  trail is entry for entry the one of a password re-entered at every signing session
  (``tests/spec/simulation/test_batched.py``): the same ``form.signed`` entries (signer, role, site, participant,
  form, states, the signature's meaning).
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NoReturn, SupportsIndex, final

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from trialwright.domain.forms import Transition
from trialwright.domain.roles import Role
from trialwright.protocol import Protocol
from trialwright.services import audit, clock
from trialwright.services.bulk_reads import forget_held, reading_once
from trialwright.services.bulk_writes import deferring
from trialwright.services.errors import FormError, denied
from trialwright.services.forms.common import FormView, _role
from trialwright.services.forms.read_ahead import read_ahead
from trialwright.services.forms.review import _series_in
from trialwright.services.forms.save import VisitFormSave, saved_each, unsaved_each
from trialwright.services.lock import hold_data_lock
from trialwright.services.randomization.allocate import allocation_in
from trialwright.services.randomization.common import AllocationTampered, Randomized
from trialwright.services.randomization.common import _audit_tampering as audit_tampering
from trialwright.services.randomization.pharmacy import prepare_in
from trialwright.services.reauth import require_password
from trialwright.services.screening.common import NonEnrolmentReason, ScreeningView
from trialwright.services.screening.consent import enrol_in, record_consent_in
from trialwright.services.screening.log import screen_in, set_non_enrolment_in
from trialwright.services.trial import current_protocol, protocol_in
from trialwright.services.users import UserView
from trialwright.services.users import _row as _user_row
from trialwright.services.users import _view as _user_view
from trialwright.store.engine import session_scope

__all__ = [
    "PreAuthenticated",
    "VisitOutcome",
    "VisitSaves",
    "allocation_and_preparation",
    "consent_and_enrol",
    "pre_authenticate",
    "save_and_verify_visit",
    "save_and_verify_visits",
    "screen_and_decide",
    "sign_as",
]

_MINT: Final = object()  # only pre_authenticate holds it
#: Every PreAuthenticated pre_authenticate issued, with the username whose password it checked: ``sign_as`` signs
#: only for a token found here, and only as that username (a token built, copied or altered otherwise is not here,
#: or names another user).
_ISSUED: Final[weakref.WeakKeyDictionary[PreAuthenticated, str]] = weakref.WeakKeyDictionary()
_NOT_COPIED = "PreAuthenticated: made only by pre_authenticate; it cannot be copied, replaced or pickled"


@final
class PreAuthenticated:
    """A simulated investigator whose password ``pre_authenticate`` checked once; built by nothing else (the
    constructor refuses any other caller with TypeError) and never copied, replaced, pickled or changed. What it
    vouches for is the username ``pre_authenticate`` checked, kept in this module's registry, not its ``user``: a
    token found nowhere there, or naming another user, signs nothing."""

    __slots__ = ("__weakref__", "_user")
    _user: UserView

    def __init__(self, user: UserView, mint: object) -> None:
        if mint is not _MINT:
            raise TypeError("PreAuthenticated: made only by pre_authenticate, after the password was checked")
        object.__setattr__(self, "_user", user)

    @property
    def user(self) -> UserView:
        """The account as ``pre_authenticate`` saw it (``sign_as`` reads it again from the database)."""
        return self._user

    def __repr__(self) -> str:
        return f"PreAuthenticated(user={self._user.username!r})"

    def __setattr__(self, name: str, value: object) -> None:
        raise TypeError(_NOT_COPIED)

    def __delattr__(self, name: str) -> None:
        raise TypeError(_NOT_COPIED)

    def __copy__(self) -> NoReturn:
        raise TypeError(_NOT_COPIED)

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError(_NOT_COPIED)

    def __replace__(self, **changes: object) -> NoReturn:  # copy.replace (Python 3.13)
        raise TypeError(_NOT_COPIED)

    def __reduce__(self) -> NoReturn:
        raise TypeError(_NOT_COPIED)

    def __reduce_ex__(self, protocol: SupportsIndex) -> NoReturn:
        raise TypeError(_NOT_COPIED)


def pre_authenticate(engine: Engine, user: UserView, password: str) -> PreAuthenticated:
    """The simulated investigator's password re-entered once, through the real check (a wrong one is refused,
    audited and counted toward the lockout as any re-entry); the answer signs without entering it again."""
    _role(user, [Role.INVESTIGATOR], "sign forms")
    require_password(engine, user.username, password, None, purpose="sign", error=FormError,
                     message="password: re-enter your own password to sign")  # fmt: skip
    token = PreAuthenticated(user, _MINT)
    _ISSUED[token] = user.username
    return token


def _signer(session: Session, username: str) -> UserView:
    """The pre-authenticated account as it is now, read in the signing transaction (no password, no argon2): refused
    as a person's re-entry refuses it (``reauth.require_password``) if it was disabled or locked since, and as
    ``sign_forms`` refuses another role if its role changed."""
    row = _user_row(session, username)
    if row is None or not row.active:  # a re-entry answers a disabled account as a wrong password
        raise denied(FormError)("password: re-enter your own password to sign")
    if row.locked_until is not None and row.locked_until > dt.datetime.now(dt.UTC):  # real time, as a re-entry
        raise _Locked(row.username, row.role)
    signer = _user_view(session, row)
    _role(signer, [Role.INVESTIGATOR], "sign forms")
    return signer


class _Locked(Exception):
    def __init__(self, username: str, role: str) -> None:
        super().__init__(username)
        self.username, self.role = username, role


def sign_as(engine: Engine, signer: PreAuthenticated, forms: Sequence[tuple[str, str, str]]) -> None:
    """``sign_forms`` for a pre-authenticated simulated investigator: the same series, signatures and entries, signed
    as the account reads now in the signing transaction (refused if disabled, locked or no longer an investigator);
    no views are read (the simulator shows none)."""
    username = _ISSUED.get(signer) if isinstance(signer, PreAuthenticated) else None
    if username is None or signer.user.username != username:  # never a password, a user or a forged token
        raise TypeError("signer: a PreAuthenticated from pre_authenticate")
    _role(signer.user, [Role.INVESTIGATOR], "sign forms")
    if not forms:
        raise FormError("forms: name at least one form to sign")
    protocol = current_protocol(engine).protocol
    try:
        with session_scope(engine) as session:
            _series_in(session, protocol, _signer(session, username), forms, Transition.SIGN, "signed", viewed=False)
    except _Locked as locked:
        with session_scope(engine) as session:  # audited as a person's refused re-entry is
            audit.record(session, actor=locked.username, role=locked.role, action="user.reentry_refused",
                         detail={"why": "locked", "purpose": "sign"})  # fmt: skip
        raise denied(FormError)(
            "password: too many wrong passwords; your account is locked for a while and your sessions have ended. "
            "Sign in again later, or ask an administrator"
        ) from None


@dataclass(frozen=True)
class VisitOutcome:
    """What ``save_and_verify_visit`` did: each save's view or refusal (in order), and the forms verified, with
    the refusals the verification met (the series' first, then one per form verified alone)."""

    saves: tuple[FormView | FormError | ValueError, ...]
    verified: tuple[str, ...]
    refusals: tuple[FormError | ValueError, ...]


@dataclass(frozen=True)
class VisitSaves:
    """One visit of ``save_and_verify_visits``: whose, which, its forms (each with whether to verify it once saved
    complete), the visit's date and the simulated moment its forms are entered (``clock.simulated_time``)."""

    participant_id: str
    visit_id: str
    saves: Sequence[tuple[VisitFormSave, bool]]
    visit_date: dt.date | None
    at: dt.datetime


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
    with session_scope(engine) as session, reading_once(session), audit.batched(session):
        protocol = protocol_in(session).protocol  # read in the visit's transaction: no read transaction of its own
        return _visit_in(session, protocol, coordinator, monitor, participant_id, visit_id, saves, visit_date)


def save_and_verify_visits(
    engine: Engine, coordinator: UserView, monitor: UserView, visits: Sequence[VisitSaves]
) -> tuple[VisitOutcome, ...]:
    """Several visits (of one participant or of many), each exactly as ``save_and_verify_visit`` saves and verifies
    it, one after the other, each at its own simulated moment, in one transaction: the same writes, in the same
    order, as one transaction per visit. The caller runs together only visits that nothing else comes between in
    the trial's time order (``simulate``); what no form save changes is read once for them all
    (``services/bulk_reads.py``; their participants read ahead, ``read_ahead``) and their audit entries are written
    with one INSERT, in the order separate visits would have written them. The visits are first saved without
    savepoints, their new visit and form records written by one executemany per table (``services/bulk_writes.py``);
    if anything is refused there, nothing is kept and they are saved again with a savepoint per form and per series
    (``tests/spec/simulation/test_batched.py``)."""
    if any(verify for each in visits for _, verify in each.saves):
        _role(monitor, [Role.MONITOR], "verify forms against source")
    try:  # first as if nothing were refused: no savepoint, so the new records wait and are written together
        return _visits(engine, coordinator, monitor, visits, savepoints=False)
    except _Refused:
        pass  # nothing was stored; again, each form and each series in a savepoint, as one by one
    return _visits(engine, coordinator, monitor, visits, savepoints=True)


class _Refused(Exception):
    """A save or a series refused in the pass without savepoints: its transaction is rolled back and the visits
    run again, each form and each series in a savepoint."""


def _visits(
    engine: Engine, coordinator: UserView, monitor: UserView, visits: Sequence[VisitSaves], *, savepoints: bool
) -> tuple[VisitOutcome, ...]:
    """The visits in one transaction; the new visit and form records deferred (``services/bulk_writes.py``: one
    executemany per table, before the next statement of any kind, a savepoint among them). Without ``savepoints``
    a refusal raises ``_Refused`` (the caller runs them again with savepoints)."""
    out: list[VisitOutcome] = []
    with session_scope(engine) as session, reading_once(session), audit.batched(session), deferring(session):
        protocol = protocol_in(session).protocol
        # What the saves will look up about their participants, read for them all at once (as a bulk import's
        # batch does), under the data lock held in the transaction itself: no read comes between the saves.
        hold_data_lock(session)
        read_ahead(session, protocol, [{"participant": each.participant_id} for each in visits])
        for each in visits:
            with clock.simulated_time(each.at):
                out.append(_visit_in(session, protocol, coordinator, monitor, each.participant_id, each.visit_id,
                                     each.saves, each.visit_date, savepoints=savepoints))  # fmt: skip
    return tuple(out)


def _visit_in(
    session: Session,
    protocol: Protocol,
    coordinator: UserView,
    monitor: UserView,
    participant_id: str,
    visit_id: str,
    saves: Sequence[tuple[VisitFormSave, bool]],
    visit_date: dt.date | None,
    *,
    savepoints: bool = True,
) -> VisitOutcome:
    """One visit's saves, then its verification series, in the caller's transaction (each in savepoints; without
    ``savepoints``, none, and the first refusal raises ``_Refused``)."""
    out: list[FormView | FormError | ValueError] = []
    refusals: list[FormError | ValueError] = []
    forms = [each for each, _ in saves]
    if savepoints:
        out.extend(saved_each(session, protocol, coordinator, participant_id, visit_id, forms, visit_date))
    else:
        try:
            out.extend(unsaved_each(session, protocol, coordinator, participant_id, visit_id, forms, visit_date))
        except (FormError, ValueError) as exc:
            raise _Refused from exc
    wanted = [each.form_id for (each, verify), result in zip(saves, out, strict=True)
              if verify and not isinstance(result, Exception) and result.state.value == "complete"]  # fmt: skip
    verified: list[str] = []

    def series(form_ids: Sequence[str]) -> bool:
        if not savepoints:
            try:
                with audit.gathered(session):
                    _series_in(session, protocol, monitor, [(participant_id, visit_id, f) for f in form_ids],
                               Transition.VERIFY, "verified", viewed=False)  # fmt: skip
            except (FormError, ValueError) as exc:
                raise _Refused from exc
            verified.extend(form_ids)
            return True
        nested = session.begin_nested()
        try:
            with audit.gathered(session):
                _series_in(session, protocol, monitor, [(participant_id, visit_id, f) for f in form_ids],
                           Transition.VERIFY, "verified", viewed=False)  # fmt: skip
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


# --- a patient's own steps joined ------------------------------------------------------------------------------------


def screen_and_decide(
    engine: Engine,
    coordinator: UserView,
    *,
    site: str,
    screened_on: dt.date,
    values: Mapping[str, Any],
    not_enrolled: Callable[[ScreeningView], str | None],
) -> ScreeningView:
    """A patient screened (``screen``) and, if ``not_enrolled`` names a reason for the screening it made, the reason
    recorded (``set_non_enrolment``), in one transaction: the same rules, rows and audit entries, in the same order,
    as the two requests (``tests/spec/simulation/test_batched.py``)."""
    with session_scope(engine) as session, audit.batched(session):
        protocol = protocol_in(session).protocol
        view = screen_in(session, protocol, coordinator, site=site, screened_on=screened_on, values=values)
        reason = not_enrolled(view)
        if reason is not None:
            set_non_enrolment_in(session, coordinator, view.id, NonEnrolmentReason(reason), None)
    return view


def consent_and_enrol(engine: Engine, coordinator: UserView, screening_id: int, consent: Mapping[str, Any]) -> str:
    """A consent recorded (``record_consent`` with ``consent`` as its keywords) and the patient enrolled (``enrol``)
    in one transaction, each with its own rules and audit entries, in the same order as the two requests; the
    participant id issued (no view is read: the simulator needs none)."""
    with session_scope(engine) as session, audit.batched(session):
        protocol = protocol_in(session).protocol
        record_consent_in(session, protocol, coordinator, screening_id, **consent)
        return enrol_in(session, coordinator, screening_id)[1]


def allocation_and_preparation(
    engine: Engine,
    statistician: UserView,
    pharmacist: UserView,
    participant_id: str,
    dose: Callable[[Randomized | None], tuple[str, Mapping[str, Any]] | None],
    prepared_at: dt.datetime,
) -> Randomized | None:
    """The unblinded statistician's read of a participant's allocation (``allocation_of``, no entry) and, if ``dose``
    gives a preparation code and its values for it, the pharmacist's preparation at ``prepared_at`` (``prepare``),
    in one transaction. A tampered allocation entry is audited in a transaction of its own, as ``prepare`` does."""
    try:  # the participant's row read once for the two (no step here changes it)
        with session_scope(engine) as session, reading_once(session), audit.batched(session):
            protocol = protocol_in(session).protocol
            allocation = allocation_in(session, protocol, statistician, participant_id)
            wanted = dose(allocation)
            if wanted is not None:
                with clock.simulated_time(prepared_at):
                    prepare_in(session, protocol, pharmacist, *wanted)
            return allocation
    except AllocationTampered as exc:
        audit_tampering(engine, pharmacist, exc, None)
        raise
