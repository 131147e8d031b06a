"""The confirmation step before what cannot be undone: randomizing a participant, locking the database, an
emergency unblinding and a DSMB decision.

The first post of such a form changes nothing: it shows a confirmation page saying what will happen, to whom,
in the words of the people who do it. Only a post carrying the page's ``confirm`` field does it. That field is a
fingerprint of the facts the page stated that bear on the decision (that this randomization goes past the
target, how many blockers a lock overrides, the pause a DSMB decision acts on): when they have changed between
the page and the click, the fingerprint no longer matches and the page is shown again, saying so, so that nothing
is done that the person did not see. The fingerprint is no secret (the form's CSRF token guards the post), and
the service checks everything again when it acts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from enum import Enum

__all__ = ["CONFIRM_FIELD", "Step", "step", "token"]

#: The form field a confirmation page posts back.
CONFIRM_FIELD = "confirm"


class Step(Enum):
    """Where a guarded post stands."""

    ASK = "ask"  # the first post: show what will happen
    CHANGED = "changed"  # confirmed, but the facts shown have changed since: show them again
    CONFIRMED = "confirmed"  # confirmed on the facts that still hold: do it


def token(*facts: object) -> str:
    """The fingerprint of what a confirmation page stated (strings, numbers, booleans, None)."""
    text = json.dumps(facts, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def step(sent: str, *facts: object) -> Step:
    """The step of a post whose ``confirm`` field is ``sent``, the facts being ``facts`` now."""
    if not sent:
        return Step.ASK
    return Step.CONFIRMED if hmac.compare_digest(sent, token(*facts)) else Step.CHANGED
