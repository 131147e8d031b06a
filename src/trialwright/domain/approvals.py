"""The two-person rule: which accounts are guarded, and who may approve a change to one.

A guarded account is one whose holder sees allocations by their work (``masking.UNBLINDED_ROLES``: the
unblinded pharmacist, the unblinded statistician and the DSMB member) or approves the requests of this rule
(the protocol's ``masking.account_approvers``, by default administrators: otherwise one administrator could make
a second administrator and approve their own requests with it). Creating, re-enabling or resetting the
password of a guarded account is only a request until a second person approves it. Roles never change: a
person who needs another role gets a new account, which is a creation.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from trialwright.domain.masking import UNBLINDED_ROLES
from trialwright.domain.roles import Role

__all__ = ["RequestKind", "approval_refusal", "guarded_roles", "same_person"]


class RequestKind(StrEnum):
    """What a request would do to the account once approved."""

    CREATE = "create"
    RESET = "reset"
    ENABLE = "enable"


def guarded_roles(approvers: Iterable[Role | str]) -> frozenset[Role]:
    """The roles whose accounts need a second person: the unblinded roles and the approving roles."""
    return UNBLINDED_ROLES | frozenset(Role(r) for r in approvers)


def same_person(a: str, b: str) -> bool:
    """Whether two audit names are one person: ``cli:alice`` (the command line's default actor) is ``alice``."""

    def plain(name: str) -> str:
        name = name.strip().lower()
        return name.removeprefix("cli:")

    return plain(a) == plain(b)


def approval_refusal(
    *, approver: str, approver_role: Role, requested_by: str, account: str, approvers: Iterable[Role | str]
) -> str | None:
    """Why this person may not approve this request (a message naming the rule), or None when they may."""
    allowed = sorted(Role(r).value for r in approvers)
    if approver_role not in {Role(r) for r in allowed}:
        return (
            f"two-person rule: approvers hold the role {' or '.join(allowed)} (masking.account_approvers); "
            f"a {approver_role.value} may not approve"
        )
    if same_person(approver, requested_by):
        return "two-person rule: a second person approves; you made this request and may not approve it yourself"
    if same_person(approver, account):
        return "two-person rule: nobody approves a request about their own account"
    return None
