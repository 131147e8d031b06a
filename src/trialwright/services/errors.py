"""The error a data request raises when it breaks a rule (shared by forms, the lock and the readiness report), and
the mark of a refusal that is about who asks rather than what is asked (a wrong password re-entered)."""

from __future__ import annotations

__all__ = ["AccessDenied", "FormError", "denied"]


class FormError(ValueError):
    """A data request that breaks a rule; the message names the field or state and the rule."""


class AccessDenied:
    """Marks a refusal as a matter of permission, whatever rule error it also is: the actor's role may not, or the
    password re-entered is wrong (the CLI's exit code 4). A plain mixin, so ``raise denied(FormError)("role: ...")``
    is still caught as a FormError everywhere."""


_DENIED: dict[type[Exception], type[Exception]] = {}


def denied(error: type[Exception]) -> type[Exception]:
    """``error`` marked as :class:`AccessDenied` (one subclass per error type, named like it)."""
    if error not in _DENIED:
        attributes = {"__module__": error.__module__, "__doc__": error.__doc__}
        _DENIED[error] = type(error.__name__, (error, AccessDenied), attributes)
    return _DENIED[error]
