"""The error a data request raises when it breaks a rule (shared by forms, the lock and the readiness report)."""

from __future__ import annotations

__all__ = ["FormError"]


class FormError(ValueError):
    """A data request that breaks a rule; the message names the field or state and the rule."""
