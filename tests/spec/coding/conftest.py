"""Coding specs share the forms specs' trial and enrolled participant, and a fictional MedDRA release."""

from tests.spec.forms.conftest import pid, trial

__all__ = ["pid", "trial"]
